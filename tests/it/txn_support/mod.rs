//! Helpers for the transaction tests: transactional rdkafka producers and consumers that
//! read each partition up to a known last record.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, InitProducerIdRequest, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;

use sluice::client::{Connection, ConnectionConfig};
use sluice::log::testing::{make_batch_with, ProducerFields};

use crate::common::{self, Broker, Consumed, TestProducer, TestRecord, CLIENT_TIMEOUT};

/// Value of the record each test writes last into every partition, in a committed
/// transaction: a consumer that has seen it on every partition has read everything before.
pub fn end_marker(partition: i32) -> String {
    format!("end-{partition}")
}

/// An initialized transactional producer.
pub fn transactional_producer(bootstrap: &str, transactional_id: &str) -> TestProducer {
    let producer = common::producer(
        bootstrap,
        &[
            ("transactional.id", transactional_id),
            ("enable.idempotence", "true"),
            ("transaction.timeout.ms", "60000"),
        ],
    );
    producer
        .init_transactions(CLIENT_TIMEOUT)
        .expect("init_transactions");
    producer
}

/// Sends `values` to `partition` and waits until all are acknowledged.
pub fn send(producer: &TestProducer, topic: &str, partition: i32, values: &[String]) {
    let records: Vec<TestRecord> = values
        .iter()
        .map(|v| TestRecord::new(Vec::new(), v.as_bytes()).partition(partition))
        .collect();
    common::produce_all(producer, topic, &records);
}

/// Writes the end marker of each of `partitions` in one committed transaction.
pub fn write_end_markers(producer: &TestProducer, topic: &str, partitions: i32) {
    producer.begin_transaction().expect("begin");
    for partition in 0..partitions {
        send(producer, topic, partition, &[end_marker(partition)]);
    }
    producer
        .commit_transaction(CLIENT_TIMEOUT)
        .expect("commit end markers");
}

/// Polls until the end marker of every one of `partitions` arrived; returns every other
/// record in arrival order.
pub fn consume_to_end_markers(consumer: &BaseConsumer, partitions: i32) -> Vec<Consumed> {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut ended = BTreeSet::new();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    while ended.len() < partitions as usize {
        assert!(
            Instant::now() < deadline,
            "end markers of {ended:?} only, after {} records; errors {errors:?}",
            out.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let consumed = Consumed::from_message(&message);
                let value = String::from_utf8_lossy(consumed.value.as_deref().unwrap_or_default())
                    .into_owned();
                if value == end_marker(consumed.partition) {
                    ended.insert(consumed.partition);
                } else {
                    out.push(consumed);
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(error)) => errors.push(error.to_string()),
        }
    }
    out
}

/// The values of `consumed` on `partition`, in order.
pub fn values_on(consumed: &[Consumed], partition: i32) -> Vec<String> {
    consumed
        .iter()
        .filter(|c| c.partition == partition)
        .map(|c| String::from_utf8_lossy(c.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

pub fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A connection of sluice's own client, for requests sent one by one.
pub fn connect(addr: &str) -> Connection {
    Connection::connect(addr, &ConnectionConfig::default()).expect("connect")
}

/// The broker id of the coordinator of `key`, a transactional id (`key_type` 1) or a
/// group (0), as `broker` answers FindCoordinator v1 (retried while not available: in a
/// cluster a group's first lookup creates the offsets topic).
pub fn coordinator_id(broker: &Broker, key: &str, key_type: i8) -> i32 {
    crate::cluster_support::find_coordinator(broker.bootstrap(), key, key_type)
}

/// The node id and address of `transactional_id`'s coordinator (FindCoordinator v1).
pub fn coordinator(broker: &Broker, transactional_id: &str) -> (i32, String) {
    let id = coordinator_id(broker, transactional_id, 1);
    let (node, addr) = broker
        .ready_line()
        .brokers
        .iter()
        .find(|(node, _)| *node == id)
        .expect("the coordinator is one of the brokers");
    (*node, addr.clone())
}

/// A one-record transactional batch of `producer` at sequence `seq`.
pub fn transactional_batch(producer: (i64, i16), seq: i32) -> Bytes {
    let fields = ProducerFields {
        producer_id: producer.0,
        producer_epoch: producer.1,
        base_sequence: seq,
    };
    let mut batch = make_batch_with(1, 20, 1, fields);
    batch[21..23].copy_from_slice(&0x10i16.to_be_bytes()); // attributes: transactional
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(batch)
}

/// InitProducerId v4 for `transactional_id` on its coordinator: (producer id, epoch).
pub fn init_producer(coordinator: &mut Connection, transactional_id: &str) -> (i64, i16) {
    let init = coordinator
        .send_version(
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(text(transactional_id))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
            4,
            Duration::ZERO,
        )
        .expect("InitProducerId");
    assert_eq!(init.error_code, 0, "InitProducerId error");
    (init.producer_id.0, init.producer_epoch)
}

/// AddPartitionsToTxn v3 of `partitions` of `topic`: each partition's error code.
pub fn add_partitions(
    coordinator: &mut Connection,
    transactional_id: &str,
    producer: (i64, i16),
    topic: &str,
    partitions: Vec<i32>,
) -> Vec<i16> {
    let added = coordinator
        .send_version(
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(text(transactional_id)))
                .with_v3_and_below_producer_id(ProducerId(producer.0))
                .with_v3_and_below_producer_epoch(producer.1)
                .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(text(topic)))
                    .with_partitions(partitions)]),
            3,
            Duration::ZERO,
        )
        .expect("AddPartitionsToTxn");
    added.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .map(|r| r.partition_error_code)
        .collect()
}
