//! Partition replication (issue 17): each partition's replicas form a Raft group (raft-rs),
//! led by one shard on one node; the partition log is the group's state machine.
//!
//! - [`Replica`] (`partition_replica`): one replica, driven by its shard (tick, step, drive);
//!   proposals resolve once a majority has the record set durable and it is applied.
//! - `raft_store` / `raft_record`: the replica's Raft log (entries, HardState, ConfState,
//!   the applied checkpoint) in a [`StateLog`](crate::log::state_log::StateLog) beside the
//!   partition, group-committed with the shard's other logs.
//! - [`attached_state`]: state kept beside a partition's log and changed through its Raft
//!   group (share-group delivery state).
//! - [`ReplicaTransport`]: messages out by group; the network is the next slice's.
//! - [`state_partitions`]: internal state (group offsets, transactions) kept in replicated
//!   partitions, served by their leaders.
//!
//! The layer sits between `log` (which it drives) and `group` (whose internal topics will be
//! replicated partitions). See docs/cluster.md, "Partition replication".

pub mod attached_state;
mod partition_replica;
mod raft_record;
mod raft_store;
mod replica_error;
pub mod state_partitions;
mod transport;

#[cfg(test)]
mod replica_group_tests;

pub use partition_replica::{Committed, Replica, ReplicaConfig};
pub use raft::eraftpb::Message as RaftMessage;
pub use raft_store::AppliedCheckpoint;
pub use replica_error::ReplicaError;
pub use transport::{GroupKey, LogRead, ReplicaTransport, StateRead};
