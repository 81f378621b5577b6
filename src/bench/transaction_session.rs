//! A bench producer's open transaction, driven over its own connection to the transaction
//! coordinator: AddPartitionsToTxn before the first batch of a partition, EndTxn to commit.
//!
//! Requests here wait for their answer: a transaction's partitions must be registered before
//! its batches are sent, and the next transaction starts only after the commit, as in Kafka's
//! producer. That round trip is part of what transactional throughput costs.

use std::time::Duration;

use crate::protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, EndTxnRequest, EndTxnResponse,
    ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::error::BenchError;
use super::wire::{self, WireReader, WireWriter};
use crate::client::txn_admin::TransactionalProducer;

/// v3 is the last client version; v4 and later are for brokers verifying partitions.
const ADD_PARTITIONS_VERSION: i16 = 3;
const END_TXN_VERSION: i16 = 3;
/// Retries of AddPartitionsToTxn while the previous transaction's markers are written.
const ADD_ATTEMPTS_MAX: u32 = 200;
const RETRY_BACKOFF: Duration = Duration::from_millis(5);

pub struct TransactionSession {
    identity: TransactionalProducer,
    writer: WireWriter,
    reader: WireReader,
    /// Per partition: registered in the open transaction.
    added: Vec<bool>,
    /// Records generated into the open transaction.
    record_count: u64,
}

impl TransactionSession {
    pub async fn open(
        identity: TransactionalProducer,
        partition_count: usize,
        client_id: &str,
        tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
    ) -> Result<TransactionSession, BenchError> {
        let (writer, reader) = wire::connect(&identity.coordinator_addr, client_id, tls).await?;
        Ok(TransactionSession {
            identity,
            writer,
            reader,
            added: vec![false; partition_count],
            record_count: 0,
        })
    }

    pub fn identity(&self) -> &TransactionalProducer {
        &self.identity
    }

    pub fn record_count(&self) -> u64 {
        self.record_count
    }

    pub fn count_record(&mut self) {
        self.record_count += 1;
    }

    pub fn is_added(&self, partition: usize) -> bool {
        self.added.get(partition).copied().unwrap_or(false)
    }

    /// Registers `partitions` of `topic` in the transaction (the first call begins it).
    pub async fn add_partitions(
        &mut self,
        topic: &TopicName,
        partitions: &[i32],
    ) -> Result<(), BenchError> {
        let request = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(self.transactional_id())
            .with_v3_and_below_producer_id(ProducerId(self.identity.producer_id))
            .with_v3_and_below_producer_epoch(self.identity.producer_epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(topic.clone())
                .with_partitions(partitions.to_vec())]);
        let mut attempt = 1;
        loop {
            let correlation_id = self
                .writer
                .send(ApiKey::AddPartitionsToTxn, ADD_PARTITIONS_VERSION, &request)
                .await?;
            let response: AddPartitionsToTxnResponse = self
                .reader
                .recv(
                    ApiKey::AddPartitionsToTxn,
                    ADD_PARTITIONS_VERSION,
                    correlation_id,
                )
                .await?;
            let code = response
                .results_by_topic_v3_and_below
                .iter()
                .flat_map(|t| &t.results_by_partition)
                .map(|p| p.partition_error_code)
                .find(|&code| code != 0)
                .unwrap_or(0);
            if code == 0 {
                break;
            }
            if !is_retriable(code) || attempt >= ADD_ATTEMPTS_MAX {
                return Err(self.broker_error("AddPartitionsToTxn", code));
            }
            attempt += 1;
            crate::io::sleep(RETRY_BACKOFF).await;
        }
        for &partition in partitions {
            if let Some(slot) = usize::try_from(partition)
                .ok()
                .and_then(|i| self.added.get_mut(i))
            {
                *slot = true;
            }
        }
        Ok(())
    }

    /// Commits the open transaction (every batch of it must be acknowledged) and returns how
    /// many records it held; the next record begins a new one.
    pub async fn commit(&mut self) -> Result<u64, BenchError> {
        self.end(true).await
    }

    /// Aborts the open transaction, after a produce to one of its partitions failed.
    pub async fn abort(&mut self) -> Result<u64, BenchError> {
        self.end(false).await
    }

    async fn end(&mut self, committed: bool) -> Result<u64, BenchError> {
        if self.added.iter().any(|&a| a) {
            let request = EndTxnRequest::default()
                .with_transactional_id(self.transactional_id())
                .with_producer_id(ProducerId(self.identity.producer_id))
                .with_producer_epoch(self.identity.producer_epoch)
                .with_committed(committed);
            let correlation_id = self
                .writer
                .send(ApiKey::EndTxn, END_TXN_VERSION, &request)
                .await?;
            let response: EndTxnResponse = self
                .reader
                .recv(ApiKey::EndTxn, END_TXN_VERSION, correlation_id)
                .await?;
            if response.error_code != 0 {
                return Err(self.broker_error("EndTxn", response.error_code));
            }
        }
        self.added.fill(false);
        Ok(std::mem::take(&mut self.record_count))
    }

    pub async fn close(&mut self) {
        self.writer.close().await;
    }

    fn transactional_id(&self) -> TransactionalId {
        TransactionalId(StrBytes::from_string(
            self.identity.transactional_id.clone(),
        ))
    }

    fn broker_error(&self, what: &'static str, code: i16) -> BenchError {
        BenchError::Broker {
            addr: self.identity.coordinator_addr.clone(),
            what,
            code,
        }
    }
}

/// CONCURRENT_TRANSACTIONS is not marked retriable, but Kafka's producer retries it: it only
/// means the previous transaction's markers are still being written.
fn is_retriable(code: i16) -> bool {
    ResponseError::try_from_code(code)
        .is_some_and(|e| e.is_retriable() || e == ResponseError::ConcurrentTransactions)
}
