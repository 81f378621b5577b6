//! KIP-890 part 1: before the first transactional batch of a transaction lands in a
//! partition, the transaction's coordinator confirms that the partition was added to it
//! (AddPartitionsToTxn). A late or stray batch would otherwise open a transaction in the
//! partition that no marker ever closes, holding read_committed consumers back forever.
//! Later batches of the same transaction find it open in the partition and go straight in.

use std::collections::HashMap;
use std::rc::Rc;

use futures_channel::oneshot;
use kafka_protocol::messages::produce_request::ProduceRequest;

use crate::log::{transactional_producer, PartitionLog};
use crate::protocol::ResponseError;
use crate::shard::{PartitionLookup, Shard};
use crate::txn::txn_coordinator::Verified;
use crate::txn::{TxnError, TxnMessage};

/// Refusals by (topic, partition), applied instead of appending.
pub type Refusals = HashMap<(String, i32), ResponseError>;

/// What the coordinator must confirm before a produce request is appended.
pub struct Needed {
    producer: (i64, i16),
    /// Local partitions where the producer's transaction is not open yet.
    partitions: Vec<(String, i32)>,
}

/// What the coordinator must confirm before `request` is appended; `None` when nothing.
pub fn needed(shard: &Shard, request: &ProduceRequest) -> Option<Needed> {
    let mut producer = None;
    let mut partitions = Vec::new();
    for topic in &request.topic_data {
        for data in &topic.partition_data {
            let Some(found) = data.records.as_deref().and_then(transactional_producer) else {
                continue;
            };
            let PartitionLookup::Local(log) = shard.partition(&topic.name, data.index) else {
                continue; // refused as not here or unknown anyway
            };
            if !in_transaction(&log, found) {
                producer = Some(found);
                partitions.push((topic.name.0.to_string(), data.index));
            }
        }
    }
    producer.map(|producer| Needed {
        producer,
        partitions,
    })
}

fn in_transaction(log: &PartitionLog, (producer_id, epoch): (i64, i16)) -> bool {
    log.has_open_transaction(producer_id, epoch)
}

/// Asks the coordinator of `transactional_id`; the partitions it does not confirm, with
/// the produce error Kafka answers for each.
pub async fn verify(
    shard: &Rc<Shard>,
    transactional_id: Option<String>,
    needed: Needed,
) -> Refusals {
    let Needed {
        producer,
        partitions,
    } = needed;
    let refuse_all = |error: ResponseError| {
        partitions
            .iter()
            .map(|p| (p.clone(), error))
            .collect::<Refusals>()
    };
    let Some(transactional_id) = transactional_id else {
        return refuse_all(ResponseError::InvalidTxnState);
    };
    let coordinator = crate::txn::coordinator_shard(&transactional_id, shard.config.shard_count);
    let verified = if let Some(node) =
        shard.remote_internal_coordinator(&transactional_id, crate::txn::txn_store::TXN_STATE_TOPIC)
    {
        shard
            .verify_on_node(node, transactional_id, producer, partitions.clone())
            .await
    } else if coordinator == shard.id {
        shard
            .txn()
            .verify(&transactional_id, producer, partitions.clone())
    } else {
        ask(
            shard,
            coordinator,
            transactional_id,
            producer,
            partitions.clone(),
        )
        .await
    };
    match verified {
        Err(e) => refuse_all(produce_error(&e)),
        Ok(results) => results
            .into_iter()
            .filter_map(|(p, result)| result.err().map(|e| (p, produce_error(&e))))
            .collect(),
    }
}

async fn ask(
    shard: &Shard,
    coordinator: usize,
    transactional_id: String,
    producer: (i64, i16),
    partitions: Vec<(String, i32)>,
) -> Result<Verified, TxnError> {
    let (reply, answer) = oneshot::channel();
    let message = TxnMessage::Verify {
        transactional_id,
        producer_id: producer.0,
        epoch: producer.1,
        partitions,
        reply,
    };
    shard.txn().send(coordinator, message).await?;
    answer.await.map_err(|_| TxnError::ShuttingDown)?
}

/// Kafka's translation of verification failures into produce errors (ReplicaManager,
/// AddPartitionsToTxnManager): not in the transaction is INVALID_TXN_STATE, a fenced epoch
/// INVALID_PRODUCER_EPOCH, and a coordinator that cannot tell yet NOT_ENOUGH_REPLICAS,
/// which every client retries.
fn produce_error(error: &TxnError) -> ResponseError {
    match error {
        TxnError::TransactionAbortable | TxnError::InvalidTxnState(_) => {
            ResponseError::InvalidTxnState
        }
        TxnError::ProducerFenced { .. } => ResponseError::InvalidProducerEpoch,
        TxnError::InvalidProducerIdMapping { .. } => ResponseError::InvalidProducerIdMapping,
        TxnError::NotCoordinator(_)
        | TxnError::LoadInProgress
        | TxnError::InvalidTransactionalId
        | TxnError::InvalidTransactionTimeout { .. }
        | TxnError::ConcurrentTransactions
        | TxnError::Storage(_)
        | TxnError::Markers(_)
        | TxnError::ProducerIds(_)
        | TxnError::ShuttingDown => ResponseError::NotEnoughReplicas,
    }
}
