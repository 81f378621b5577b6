//! Errors of a partition replica.

use crate::log::state_log::StateLogError;
use crate::log::LogError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// This replica does not lead its group; `leader` is the node it last heard from as
    /// leader (Kafka's NOT_LEADER_OR_FOLLOWER, with a hint).
    #[error("not the leader of {group} (leader: {leader:?})")]
    NotLeader { group: String, leader: Option<u64> },
    /// The proposal's entry was replaced by another leader's before it committed: it is not
    /// in the log, and the producer must retry.
    #[error("the proposal at index {index} of {group} was superseded by a new leader")]
    Superseded { group: String, index: u64 },
    /// The replica was closed (or failed) while the proposal waited.
    #[error("the replica of {group} is closed")]
    Closed { group: String },
    #[error("the Raft log of {group}: {source}")]
    RaftLog {
        group: String,
        #[source]
        source: StateLogError,
    },
    #[error("the partition log of {group}: {source}")]
    Partition {
        group: String,
        #[source]
        source: LogError,
    },
    /// raft-rs refused a call (a storage error it reports, a proposal it dropped).
    #[error("raft on {group}: {source}")]
    Raft {
        group: String,
        #[source]
        source: raft::Error,
    },
    /// What is on disk cannot be what this replica wrote (a gap in the Raft log, a partition
    /// log that ends before the applied checkpoint): refuse to start rather than diverge.
    #[error("inconsistent replica state of {group}: {reason}")]
    Inconsistent { group: String, reason: String },
    /// The state attached beside the partition log failed to apply a change (its disk).
    #[error("the attached state of {group}: {reason}")]
    AttachedState { group: String, reason: String },
    /// A snapshot's data could not be copied from the leader's partition log.
    #[error("{group}: copying a snapshot's data from node {from}: {reason}")]
    SnapshotCopy {
        group: String,
        from: u64,
        reason: String,
    },
}
