//! A share group's administration, run on its coordinator shard: describe its start offsets,
//! move them, forget them, delete the group. The coordinator holds the membership; the
//! share-partitions live on the shards of their partitions, so each operation checks the
//! group here and then asks those shards with [`ShareMessage`]s (answered by
//! [`super::share_inbox`]). Requests go out to every shard involved before any answer is
//! awaited, so the shards work on them at the same time.
//!
//! Start offsets change only while the group has no members (NON_EMPTY_GROUP otherwise, as
//! in Kafka). A member joining while a change is under way is not held off; its first fetch
//! sees the state from before or after the change on each partition.

use std::collections::{BTreeMap, BTreeSet};

use futures_channel::oneshot;

use crate::shard::Shard;
pub use crate::share::share_state::StartMoved;
use crate::share::share_state::{PartitionStart, PartitionSummary, ShareMessage, ShareState};
use crate::share::ShareError;

/// Sends a request to shard `shard_id`; its answer arrives on the returned receiver.
async fn ask<T>(
    share: &ShareState,
    shard_id: usize,
    message: impl FnOnce(oneshot::Sender<T>) -> ShareMessage,
) -> Result<oneshot::Receiver<T>, ShareError> {
    let (reply, answer) = oneshot::channel();
    share.send(shard_id, message(reply)).await?;
    Ok(answer)
}

async fn answer<T>(receiver: oneshot::Receiver<T>) -> Result<T, ShareError> {
    receiver.await.map_err(|_| ShareError::ShuttingDown)
}

/// Asks every shard, and in a cluster every other node, to forget the group's
/// share-partitions of `topics` (all when `None`); returns the topics that had some. A node
/// that cannot be reached is passed over: it leads nothing the others could not, and the
/// deletion reaches its copies as entries of each partition's Raft group.
async fn forget_partitions(
    shard: &Shard,
    group: &str,
    topics: Option<&BTreeSet<String>>,
) -> Result<BTreeSet<String>, ShareError> {
    let mut deleted = forget_local_partitions(shard.share(), group, topics).await?;
    for node in shard.other_nodes() {
        match shard.forget_shares_on_node(node, group, topics).await {
            Ok(forgotten) => deleted.extend(forgotten),
            Err(e) => {
                tracing::warn!(%group, node, error = %e, "share-partitions on a node not forgotten")
            }
        }
    }
    Ok(deleted)
}

async fn forget_local_partitions(
    share: &ShareState,
    group: &str,
    topics: Option<&BTreeSet<String>>,
) -> Result<BTreeSet<String>, ShareError> {
    let mut pending = Vec::with_capacity(share.shard_count());
    for shard_id in 0..share.shard_count() {
        let topics = topics.cloned();
        pending.push(
            ask(share, shard_id, |reply| ShareMessage::DeleteGroup {
                group: group.to_owned(),
                topics,
                reply,
            })
            .await?,
        );
    }
    let mut deleted = BTreeSet::new();
    for receiver in pending {
        deleted.extend(answer(receiver).await??);
    }
    Ok(deleted)
}

/// DescribeShareGroupOffsets: the group's share-partitions on every shard, and in a cluster
/// on every other node (those a node leads; one that cannot be reached is passed over),
/// sorted by topic and partition.
pub async fn describe_start_offsets(
    shard: &Shard,
    group: &str,
) -> Result<Vec<PartitionSummary>, ShareError> {
    if group.is_empty() {
        return Err(ShareError::InvalidGroupId);
    }
    let share = shard.share();
    share.describe_group(group)?;
    let mut pending = Vec::with_capacity(share.shard_count());
    for shard_id in 0..share.shard_count() {
        pending.push(
            ask(share, shard_id, |reply| ShareMessage::DescribePartitions {
                group: group.to_owned(),
                reply,
            })
            .await?,
        );
    }
    let mut summaries = Vec::new();
    for receiver in pending {
        summaries.extend(answer(receiver).await?);
    }
    for node in shard.other_nodes() {
        match shard.describe_shares_on_node(node, group).await {
            Ok(found) => summaries.extend(found),
            Err(e) => {
                tracing::warn!(%group, node, error = %e, "share-partitions on a node not described")
            }
        }
    }
    summaries.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(summaries)
}

/// AlterShareGroupOffsets: moves the start offsets of an empty group (creating the group if
/// it does not exist yet, so that a new group can start where the operator chooses). Each
/// partition's shard clamps the offset into its log and forgets what was in flight.
pub async fn alter_start_offsets(
    shard: &Shard,
    group: &str,
    starts: Vec<PartitionStart>,
) -> Result<Vec<StartMoved>, ShareError> {
    let share = shard.share();
    share.check_empty_group(group, true)?;
    let mut by_owner: BTreeMap<usize, Vec<PartitionStart>> = BTreeMap::new();
    for start in starts {
        let owner = shard.owner_of(&start.topic, start.partition);
        by_owner.entry(owner).or_default().push(start);
    }
    let mut pending = Vec::with_capacity(by_owner.len());
    for (owner, starts) in by_owner {
        pending.push(
            ask(share, owner, |reply| ShareMessage::ResetStart {
                group: group.to_owned(),
                starts,
                reply,
            })
            .await?,
        );
    }
    // Each answer names its partition, so answers need no lining up with the requests.
    let mut moved = Vec::new();
    for receiver in pending {
        moved.extend(answer(receiver).await?);
    }
    Ok(moved)
}

/// DeleteShareGroupOffsets: forgets an empty group's share-partitions of `topics`; returns
/// the topics that had some.
pub async fn delete_start_offsets(
    shard: &Shard,
    group: &str,
    topics: &BTreeSet<String>,
) -> Result<BTreeSet<String>, ShareError> {
    let share = shard.share();
    share.check_empty_group(group, false)?;
    forget_partitions(shard, group, Some(topics)).await
}

/// DeleteGroups of a share group: refused while it has members; its share-partition state
/// is forgotten durably on every shard before the group itself (membership and configs), so
/// that a failure leaves a group that can be deleted again.
pub async fn delete_group(shard: &Shard, group: &str) -> Result<(), ShareError> {
    let share = shard.share();
    share.check_empty_group(group, false)?;
    forget_partitions(shard, group, None).await?;
    if !shard.in_cluster() {
        return share.forget_group(group).await;
    }
    share.forget_membership(group)?;
    if share.group_overrides(group).is_empty() {
        return Ok(());
    }
    let removed = shard
        .admin(
            |reply| crate::shard::control::AdminRequest::AlterGroupConfig {
                group: group.to_owned(),
                overrides: Default::default(),
                reply,
            },
        )
        .await
        .and_then(|r| r);
    removed.map_err(|e| ShareError::Storage(format!("removing the group's configs: {e}")))
}
