//! Requests between shards about transactions, and the per-shard task that answers them.
//! Each message runs as its own task, so a slow one (a marker waiting for its fsync) holds
//! up none.

use std::rc::Rc;

use futures_channel::oneshot;

use super::txn_coordinator::{commit_local_offsets, write_local_markers, Verified};
use super::txn_metadata::PendingOffset;
use super::TxnError;
use crate::group::offset_record::CommittedOffset;
use crate::shard::Shard;

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

pub async fn run(shard: Rc<Shard>, inbox: async_channel::Receiver<TxnMessage>) {
    while let Ok(message) = inbox.recv().await {
        let shard = Rc::clone(&shard);
        crate::io::spawn(handle(shard, message)).detach();
    }
}

async fn handle(shard: Rc<Shard>, message: TxnMessage) {
    // A requester that went away needs no answer.
    match message {
        TxnMessage::WriteMarkers {
            producer_id,
            epoch,
            commit,
            partitions,
            reply,
        } => {
            let result = write_local_markers(&shard, producer_id, epoch, commit, partitions).await;
            let _ = reply.send(result);
        }
        TxnMessage::SettleOffsets {
            group,
            transactional_id,
            offsets,
            reply,
        } => {
            let result = commit_local_offsets(&shard, &group, &transactional_id, offsets).await;
            let _ = reply.send(result);
        }
        TxnMessage::PendingOffsets {
            group,
            transactional_id,
            partitions,
        } => {
            shard
                .txn()
                .note_pending_offsets(&group, &transactional_id, partitions);
        }
        TxnMessage::Verify {
            transactional_id,
            producer_id,
            epoch,
            partitions,
            reply,
        } => {
            let result = shard
                .txn()
                .verify(&transactional_id, (producer_id, epoch), partitions);
            let _ = reply.send(result);
        }
        TxnMessage::StageOffsets {
            transactional_id,
            producer_id,
            epoch,
            offsets,
            reply,
        } => {
            let result = shard
                .txn()
                .stage_offsets(&transactional_id, (producer_id, epoch), offsets)
                .await;
            let _ = reply.send(result);
        }
    }
}
