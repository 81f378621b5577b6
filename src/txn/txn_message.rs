//! Requests between shards about transactions: what a coordinator asks of the shards that
//! own the partitions and groups of a transaction, and what they ask of it. The shard's
//! inbox task (`crate::shard::txn_inbox`) answers them.

use futures_channel::oneshot;

use super::txn_metadata::PendingOffset;
use super::TxnError;
use crate::group::offset_record::CommittedOffset;

/// One partition's answer to AddPartitionsToTxn's verify-only path (KIP-890).
pub type Verified = Vec<((String, i32), Result<(), TxnError>)>;

pub enum TxnMessage {
    /// From a coordinator to a partition-owning shard: end `producer_id`'s transaction in
    /// `partitions`; answer once the markers are durable.
    WriteMarkers {
        producer_id: i64,
        epoch: i16,
        commit: bool,
        partitions: Vec<(String, i32)>,
        reply: oneshot::Sender<Result<(), TxnError>>,
    },
    /// From a coordinator to a group's coordinator: the transaction ended; commit its
    /// offsets (none when it aborted).
    SettleOffsets {
        group: String,
        transactional_id: String,
        offsets: Vec<(String, i32, CommittedOffset)>,
        reply: oneshot::Sender<Result<(), TxnError>>,
    },
    /// From a coordinator at start-up to a group's coordinator: an open transaction commits
    /// offsets of these partitions.
    PendingOffsets {
        group: String,
        transactional_id: String,
        partitions: Vec<(String, i32)>,
    },
    /// From a partition-owning shard to the transaction's coordinator (KIP-890): are these
    /// partitions in the producer's transaction?
    Verify {
        transactional_id: String,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
        reply: oneshot::Sender<Result<Verified, TxnError>>,
    },
    /// From a group's coordinator (TxnOffsetCommit) to the transaction's coordinator.
    StageOffsets {
        transactional_id: String,
        producer_id: i64,
        epoch: i16,
        offsets: Vec<PendingOffset>,
        reply: oneshot::Sender<Result<(), TxnError>>,
    },
}
