//! The per-shard task that answers other shards' [`ShareMessage`]s. Each message runs as
//! its own task, so a slow one (a dead-letter append waiting for its fsync) holds up none.

use std::rc::Rc;

use super::share_state::{wait_durable, PartitionSummary, ShareMessage};
use super::ShareError;
use crate::shard::Shard;

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
            topic,
            to,
            reply,
        } => {
            let _ = reply.send(reset_start(&shard, &group, topic.as_deref(), to).await);
        }
        ShareMessage::DeleteGroup { group, reply } => {
            let _ = reply.send(delete_group(&shard, &group).await);
        }
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

async fn reset_start(
    shard: &Shard,
    group: &str,
    topic: Option<&str>,
    to: super::share_state::ResetTarget,
) -> Result<usize, ShareError> {
    let mut count = 0;
    for shares in shard.share().all_partition_shares() {
        if topic.is_some_and(|t| t != shares.topic) {
            continue;
        }
        if shares.summary(group).is_none() && topic.is_none() {
            continue;
        }
        wait_durable(shares.reset_start(group, to)?).await?;
        count += 1;
    }
    Ok(count)
}

async fn delete_group(shard: &Shard, group: &str) -> Result<(), ShareError> {
    for shares in shard.share().all_partition_shares() {
        wait_durable(shares.delete_group(group)?).await?;
    }
    Ok(())
}
