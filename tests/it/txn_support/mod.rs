//! Helpers for the transaction tests: transactional rdkafka producers and consumers that
//! read each partition up to a known last record.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;

use sluice::client::{Connection, ConnectionConfig};

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
/// group (0), as `broker` answers FindCoordinator v1.
pub fn coordinator_id(broker: &Broker, key: &str, key_type: i8) -> i32 {
    let request = FindCoordinatorRequest::default()
        .with_key(text(key))
        .with_key_type(key_type);
    let found = connect(broker.bootstrap())
        .send_version(&request, 1, Duration::ZERO)
        .expect("FindCoordinator");
    assert_eq!(found.error_code, 0, "FindCoordinator error");
    found.node_id.0
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
