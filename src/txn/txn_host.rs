//! What a transaction coordinator needs from the shard it runs on: the partition owners,
//! producer ids, and the markers and offsets it has that shard write. The shard implements
//! it (`crate::shard::txn_host`); as a trait it keeps txn/ below shard/ in the layering.

use std::rc::Rc;

use super::TxnError;
use crate::group::offset_record::CommittedOffset;

#[expect(
    async_fn_in_trait,
    reason = "its futures run on the shard's own executor and are never sent between threads"
)]
pub trait TxnHost {
    /// The shard that owns `topic`-`partition`.
    fn owner_of(&self, topic: &str, partition: i32) -> usize;

    /// The cluster node `topic`-`partition` lives on when that is another node; `None`
    /// when it is this node's (always on a single node).
    fn remote_node_of(&self, topic: &str, partition: i32) -> Option<u64>;

    /// Has node `node` write the marker to each of `partitions` (all of them its own) and
    /// answers once all are durable there.
    async fn write_remote_markers(
        &self,
        node: u64,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        partitions: Vec<(String, i32)>,
    ) -> Result<(), TxnError>;

    /// The cluster node coordinating group `group` when that is another node; `None` when
    /// it is this node (always on a single node).
    fn remote_group_node(&self, group: &str) -> Option<u64>;

    /// Has node `node`, which coordinates `group`, commit `offsets` of `transactional_id`
    /// (none when it aborted).
    async fn settle_remote_offsets(
        &self,
        node: u64,
        group: &str,
        transactional_id: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), TxnError>;

    /// A new producer id, unique in the cluster.
    async fn allocate_producer_id(&self) -> Result<i64, TxnError>;

    /// Appends the marker to each of `partitions` (owned by this shard) and waits until all
    /// are durable. A partition whose topic is gone needs no marker.
    async fn write_local_markers(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        partitions: Vec<(String, i32)>,
    ) -> Result<(), TxnError>;

    /// Commits `offsets` of `transactional_id` (none when it aborted) to `group`, which this
    /// shard coordinates; then they are no longer pending.
    async fn commit_local_offsets(
        &self,
        group: &str,
        transactional_id: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), TxnError>;
}

// The shard is shared as an Rc; callers hand the coordinator that.
impl<T: TxnHost> TxnHost for Rc<T> {
    fn owner_of(&self, topic: &str, partition: i32) -> usize {
        (**self).owner_of(topic, partition)
    }

    fn remote_node_of(&self, topic: &str, partition: i32) -> Option<u64> {
        (**self).remote_node_of(topic, partition)
    }

    async fn write_remote_markers(
        &self,
        node: u64,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        partitions: Vec<(String, i32)>,
    ) -> Result<(), TxnError> {
        (**self)
            .write_remote_markers(node, producer_id, epoch, commit, partitions)
            .await
    }

    fn remote_group_node(&self, group: &str) -> Option<u64> {
        (**self).remote_group_node(group)
    }

    async fn settle_remote_offsets(
        &self,
        node: u64,
        group: &str,
        transactional_id: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), TxnError> {
        (**self)
            .settle_remote_offsets(node, group, transactional_id, offsets)
            .await
    }

    async fn allocate_producer_id(&self) -> Result<i64, TxnError> {
        (**self).allocate_producer_id().await
    }

    async fn write_local_markers(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        partitions: Vec<(String, i32)>,
    ) -> Result<(), TxnError> {
        (**self)
            .write_local_markers(producer_id, epoch, commit, partitions)
            .await
    }

    async fn commit_local_offsets(
        &self,
        group: &str,
        transactional_id: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), TxnError> {
        (**self)
            .commit_local_offsets(group, transactional_id, offsets)
            .await
    }
}
