//! The shard's side of [`TxnHost`]: what a transaction coordinator has its shard do.

use crate::group::offset_record::CommittedOffset;
use crate::io::clock::now_ms;
use crate::log::LogError;
use crate::shard::control::AdminRequest;
use crate::shard::{PartitionLookup, Shard};
use crate::txn::txn_host::TxnHost;
use crate::txn::TxnError;

/// Coordinator epoch written into markers. sluice keeps one replica, so it never changes.
const COORDINATOR_EPOCH: i32 = 0;

impl TxnHost for Shard {
    fn owner_of(&self, topic: &str, partition: i32) -> usize {
        Shard::owner_of(self, topic, partition)
    }

    fn remote_node_of(&self, topic: &str, partition: i32) -> Option<u64> {
        Shard::remote_node_of(self, topic, partition)
    }

    async fn write_remote_markers(
        &self,
        node: u64,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        partitions: Vec<(String, i32)>,
    ) -> Result<(), TxnError> {
        self.markers_on_node(node, producer_id, epoch, commit, partitions)
            .await
    }

    fn remote_group_node(&self, group: &str) -> Option<u64> {
        self.remote_internal_coordinator(group, crate::group::OFFSETS_TOPIC)
    }

    async fn settle_remote_offsets(
        &self,
        node: u64,
        group: &str,
        transactional_id: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), TxnError> {
        self.settle_offsets_on_node(node, group, transactional_id, offsets)
            .await
    }

    async fn allocate_producer_id(&self) -> Result<i64, TxnError> {
        self.admin(|reply| AdminRequest::AllocateProducerId { reply })
            .await
            .and_then(|id| id)
            .map_err(|e| TxnError::ProducerIds(e.to_string()))
    }

    async fn write_local_markers(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        partitions: Vec<(String, i32)>,
    ) -> Result<(), TxnError> {
        let now = now_ms();
        let mut appended = Vec::with_capacity(partitions.len());
        let mut proposed = Vec::new();
        for (topic, partition) in partitions {
            // A replicated partition's marker is an entry of its Raft group, so that every
            // replica stores it at the same offset; only the leader proposes it (a follower
            // fails the call, and the coordinator retries once Metadata names the leader).
            if let Some(replica) = self.replica(&topic, partition) {
                let marker =
                    crate::log::marker_batch(producer_id, epoch, commit, COORDINATOR_EPOCH, now);
                match replica.propose_marker(&marker, now) {
                    Ok(committed) => proposed.push((topic, partition, committed)),
                    Err(e) => return Err(TxnError::Markers(format!("{topic}-{partition}: {e}"))),
                }
                continue;
            }
            let log = match self.partition(&topic, partition) {
                PartitionLookup::Local(log) => log,
                PartitionLookup::UnknownTopic => continue,
                PartitionLookup::NotHere => {
                    if self.owner_of(&topic, partition) == self.id {
                        continue; // a partition index the topic does not have
                    }
                    return Err(TxnError::Markers(format!(
                        "{topic}-{partition} is not on shard {}",
                        self.id
                    )));
                }
            };
            match log.append_marker(producer_id, epoch, commit, COORDINATOR_EPOCH, now) {
                Ok(offset) => appended.push((log, offset)),
                // A newer epoch already ended this producer's transaction here.
                Err(LogError::InvalidProducerEpoch { .. }) => {}
                Err(e) => return Err(TxnError::Markers(format!("{topic}-{partition}: {e}"))),
            }
        }
        for (log, offset) in appended {
            log.wait_durable(offset)
                .await
                .map_err(|e| TxnError::Markers(e.to_string()))?;
        }
        for (topic, partition, committed) in proposed {
            match committed.await {
                Ok(_) => {}
                // A newer epoch already ended this producer's transaction there.
                Err(crate::replica::ReplicaError::Partition {
                    source: LogError::InvalidProducerEpoch { .. },
                    ..
                }) => {}
                Err(e) => return Err(TxnError::Markers(format!("{topic}-{partition}: {e}"))),
            }
        }
        Ok(())
    }

    async fn commit_local_offsets(
        &self,
        group: &str,
        transactional_id: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), TxnError> {
        self.groups()
            .commit_transaction_offsets(group, offsets)
            .map_err(|e| TxnError::Storage(e.to_string()))?
            .await
            .map_err(|e| TxnError::Storage(e.to_string()))?;
        self.txn().clear_pending_offsets(group, transactional_id);
        Ok(())
    }
}
