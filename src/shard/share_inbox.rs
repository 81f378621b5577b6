//! The per-shard task that answers other shards' [`ShareMessage`]s. Each message runs as
//! its own task, so a slow one (a dead-letter append waiting for its fsync) holds up none.

use std::collections::BTreeSet;
use std::rc::Rc;

use crate::shard::{PartitionLookup, Shard};
use crate::share::partition_shares::wait_durable;
use crate::share::share_state::{PartitionStart, PartitionSummary, ShareMessage, StartMoved};
use crate::share::ShareError;

pub async fn run(shard: Rc<Shard>, inbox: async_channel::Receiver<ShareMessage>) {
    while let Ok(message) = inbox.recv().await {
        let shard = Rc::clone(&shard);
        crate::io::spawn(handle(shard, message)).detach();
    }
}

async fn handle(shard: Rc<Shard>, message: ShareMessage) {
    // A requester that went away needs no answer.
    match message {
        ShareMessage::AppendDeadLetter {
            topic,
            partition,
            batch,
            reply,
        } => {
            let result = super::dead_letter::append_local(&shard, &topic, partition, batch).await;
            let _ = reply.send(result);
        }
        ShareMessage::AlterGroupConfig {
            group,
            ops,
            validate_only,
            reply,
        } => {
            let result = shard
                .share()
                .alter_group_config(&group, ops, validate_only)
                .await;
            let _ = reply.send(result);
        }
        ShareMessage::DropSessions { group, members } => {
            shard.share().drop_sessions(&group, &members);
        }
        ShareMessage::SetGroupConfig { group, overrides } => {
            shard.share().set_group_config(&group, overrides);
        }
        ShareMessage::DescribePartitions { group, reply } => {
            let _ = reply.send(describe_partitions(&shard, &group));
        }
        ShareMessage::ResetStart {
            group,
            starts,
            reply,
        } => {
            let mut moved = Vec::with_capacity(starts.len());
            for start in starts {
                let (topic, partition) = (start.topic.clone(), start.partition);
                let result = reset_start(&shard, &group, start).await;
                moved.push(StartMoved {
                    topic,
                    partition,
                    result,
                });
            }
            let _ = reply.send(moved);
        }
        ShareMessage::DeleteGroup {
            group,
            topics,
            reply,
        } => {
            let _ = reply.send(delete_group(&shard, &group, topics.as_ref()).await);
        }
        ShareMessage::KnownGroups { groups } => shard.share().register_groups(groups),
    }
}

fn describe_partitions(shard: &Shard, group: &str) -> Vec<PartitionSummary> {
    let mut out: Vec<PartitionSummary> = shard
        .share()
        .all_partition_shares()
        .iter()
        .filter_map(|shares| shares.summary(group))
        .collect();
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    out
}

/// Moves the start offset of one partition this shard owns, opening its share state (and
/// creating the group's share-partition) if need be.
async fn reset_start(shard: &Shard, group: &str, start: PartitionStart) -> Result<(), ShareError> {
    let lookup = (
        shard.partition(&start.topic, start.partition),
        shard.topic(&start.topic),
    );
    let (PartitionLookup::Local(log), Some(meta)) = lookup else {
        return Err(ShareError::UnknownTopicOrPartition(format!(
            "{}-{} is not a partition of this broker",
            start.topic, start.partition
        )));
    };
    let shares = shard
        .share()
        .partition_shares(
            &start.topic,
            meta.id,
            start.partition,
            log,
            shard.replica(&start.topic, start.partition),
        )
        .await?;
    wait_durable(shares.reset_start(group, start.to)?).await
}

/// Forgets the group's share-partitions of `topics` (all when `None`); returns the topics
/// whose state it forgot.
async fn delete_group(
    shard: &Shard,
    group: &str,
    topics: Option<&BTreeSet<String>>,
) -> Result<BTreeSet<String>, ShareError> {
    let mut deleted = BTreeSet::new();
    for shares in shard.share().all_partition_shares() {
        if topics.is_some_and(|t| !t.contains(&shares.topic)) {
            continue;
        }
        if let Some(durable) = shares.delete_group(group)? {
            wait_durable(durable).await?;
            deleted.insert(shares.topic.clone());
        }
    }
    Ok(deleted)
}
