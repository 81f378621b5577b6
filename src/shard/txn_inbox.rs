//! The per-shard task that answers other shards' [`TxnMessage`]s. Each message runs as its
//! own task, so a slow one (a marker waiting for its fsync) holds up none.

use std::rc::Rc;

use crate::shard::Shard;
use crate::txn::txn_host::TxnHost;
use crate::txn::TxnMessage;

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
            // From another shard these are all this shard's partitions; from another node
            // (through shard 0) they are spread over this node's shards.
            let result = shard
                .txn()
                .write_markers(
                    &shard,
                    crate::txn::txn_coordinator::MarkerRoute::ThisNode,
                    producer_id,
                    epoch,
                    commit,
                    partitions,
                )
                .await;
            let _ = reply.send(result);
        }
        TxnMessage::SettleOffsets {
            group,
            transactional_id,
            offsets,
            reply,
        } => {
            let result = shard
                .commit_local_offsets(&group, &transactional_id, offsets)
                .await;
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
