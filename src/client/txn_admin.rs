//! Starting a transactional producer: find the transaction coordinator of its transactional
//! id (FindCoordinator, key_type 1) and get a producer id and epoch from it (InitProducerId).
//! The coordinator answers retriable errors while it loads or while an earlier transaction of
//! the same id is still completing, so both steps are retried for a while.

use std::time::Duration;

use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::{ProducerId, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use super::cluster::Cluster;
use super::error::{check_error_code, ClientError};
use super::group_admin::{find_coordinator, CoordinatorKind};
use crate::protocol::ResponseError;

const INIT_ATTEMPTS_MAX: u32 = 50;
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// A transactional producer's identity, fenced in: older epochs of the same transactional id
/// are refused from now on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionalProducer {
    pub transactional_id: String,
    /// host:port of the transaction coordinator.
    pub coordinator_addr: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// Finds the coordinator of `transactional_id` and initializes the producer there, as
/// Kafka's `initTransactions()`.
pub fn init_transactions(
    cluster: &mut Cluster,
    transactional_id: &str,
    transaction_timeout_ms: i32,
) -> Result<TransactionalProducer, ClientError> {
    let mut attempt = 1;
    loop {
        match try_init(cluster, transactional_id, transaction_timeout_ms) {
            Err(e) if is_retriable(&e) && attempt < INIT_ATTEMPTS_MAX => {
                attempt += 1;
                std::thread::sleep(RETRY_BACKOFF);
            }
            result => return result,
        }
    }
}

/// CONCURRENT_TRANSACTIONS is not marked retriable, but Kafka's producer retries it: an
/// earlier transaction of the id is still being completed.
fn is_retriable(e: &ClientError) -> bool {
    e.is_retriable() || e.response_error() == Some(ResponseError::ConcurrentTransactions)
}

fn try_init(
    cluster: &mut Cluster,
    transactional_id: &str,
    transaction_timeout_ms: i32,
) -> Result<TransactionalProducer, ClientError> {
    let node_id = find_coordinator(
        cluster.any_connection(),
        transactional_id,
        CoordinatorKind::Transaction,
    )?;
    if cluster.broker_connection(node_id).is_err() {
        cluster.refresh_metadata(Some(&[]), false)?;
    }
    let connection = cluster.broker_connection(node_id)?;
    let coordinator_addr = connection.addr().to_owned();
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_string(
            transactional_id.to_owned(),
        ))))
        .with_transaction_timeout_ms(transaction_timeout_ms)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let (response, _) = connection.send(&request)?;
    check_error_code(response.error_code, None, || {
        format!("initializing transactional id '{transactional_id}'")
    })?;
    Ok(TransactionalProducer {
        transactional_id: transactional_id.to_owned(),
        coordinator_addr,
        producer_id: response.producer_id.0,
        producer_epoch: response.producer_epoch,
    })
}
