//! Share groups (KIP-932): queues on the log. Competing members acquire individual records
//! under a time-limited lock and acknowledge each one; unacknowledged records come back
//! after the lock expires, and records that keep failing go to a dead-letter topic.
//!
//! Placement follows the rule "everything stays on the partition's shard":
//! - a share group's membership (ShareGroupHeartbeat, ShareGroupDescribe) lives on its
//!   coordinator shard, found like a consumer group's ([`crate::group::coordinator_shard`]);
//! - a share-partition's record states live on the shard that owns the partition, next to
//!   its log, and ShareFetch / ShareAcknowledge for it are served there (clients send them
//!   to the partition leader, as they send Fetch);
//! - what crosses shards (group configs from the coordinator, dead letters for a partition
//!   on another shard, admin requests) goes as a [`ShareMessage`], never through a lock.
//!
//! - [`share_partition`] — one share-partition's record states (pure).
//! - [`share_state_store`] — the durable state log of a partition's share-partitions.
//! - [`partition_shares`] — one partition's share-partitions and state log, replicated
//!   through the partition's Raft group when the partition is.
//! - [`share_state`] — a shard's share state and the messages between shards.
//! - [`share_session`] — the members' share sessions on a shard (session epochs).
//! - [`share_group`] — membership and assignment on the coordinator.
//! - [`share_config`] — broker defaults and per-group configs.
//!
//! What drives them from a shard lives in `crate::shard`: `share_admin` (describe, reset
//! and delete a group's start offsets, delete a group), `dead_letter` (the dead-letter
//! topic), and the background tasks `share_timers` and `share_inbox`.

pub mod partition_shares;
pub mod share_config;
mod share_error;
pub mod share_group;
pub mod share_partition;
pub mod share_session;
pub mod share_state;
pub mod share_state_store;

pub use share_error::ShareError;
pub use share_state::{ShareMessage, ShareState};
