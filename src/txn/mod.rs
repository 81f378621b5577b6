//! Transactions (KIP-98, KIP-447): the coordinator of every transactional id that hashes to
//! this shard, with its state durable in a state log.
//!
//! Placement: a transactional id hashes like a group id (see [`crate::group`]) to one of
//! [`crate::group::OFFSETS_PARTITION_COUNT`] transaction-state partitions, and partition `p`
//! lives on shard `p % shard_count`; clients find that shard with FindCoordinator
//! (key type 1) and send it InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn and EndTxn.
//!
//! A transaction's life (Kafka's TransactionMetadata states): `Empty` after InitProducerId;
//! `Ongoing` once partitions or a group's offsets join it; `PrepareCommit` or `PrepareAbort`
//! once EndTxn is durable; then the partition-owning shards write the commit or abort marker
//! into each partition (a [`TxnMessage`] when that is another shard), a committed
//! transaction's offsets are committed to its groups, and the state becomes `CompleteCommit`
//! or `CompleteAbort`. A `Prepare*` state found at start-up is completed then, so a kill -9
//! between the two steps loses nothing.
//!
//! - [`txn_metadata`] — one transactional id's state machine, pure.
//! - [`txn_store`] — the durable state logs, replayed at start-up.
//! - [`txn_coordinator`] — the per-shard service the handlers call; drives markers.
//! - [`txn_message`] — requests between shards (markers, offsets).
//!
//! The shard tasks that drive them live in `crate::shard`: `txn_inbox` answers other shards'
//! messages, `txn_timers` aborts transactions that outlive their timeout.

pub mod txn_coordinator;
mod txn_error;
pub mod txn_host;
pub mod txn_message;
pub mod txn_metadata;
pub mod txn_store;

pub use txn_coordinator::TxnCoordinator;
pub use txn_error::TxnError;
pub use txn_message::TxnMessage;

/// The shard that coordinates `transactional_id`.
pub fn coordinator_shard(transactional_id: &str, shard_count: usize) -> usize {
    crate::group::coordinator_shard(transactional_id, shard_count)
}

/// Kafka's `transaction.max.timeout.ms` default: longer client timeouts are refused.
pub const TRANSACTION_TIMEOUT_MS_MAX: i32 = 900_000;
/// Kafka's `transactional.id.expiration.ms` default: a transactional id with no
/// transaction open and no request for this long is forgotten.
pub const TRANSACTIONAL_ID_EXPIRATION_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// How often the timers task looks for transactions past their timeout (Kafka's
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms` is 10 s).
pub const TIMEOUT_CHECK_INTERVAL_MS: u64 = 1_000;
