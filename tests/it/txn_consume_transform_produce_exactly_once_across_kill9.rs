//! Consume-transform-produce with send_offsets_to_transaction (KIP-98/KIP-447): a processor
//! copies an input topic to an output topic, one transaction per batch, committing its input
//! offsets inside the transaction. The broker is killed with SIGKILL while a transaction is
//! open, restarted, and the processor is run again with the same transactional.id and group:
//! the output holds every input record exactly once.

use crate::common;
use crate::txn_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use common::{BrokerOptions, TestProducer, TestRecord, CLIENT_TIMEOUT};

const PARTITIONS: i32 = 2;
const RECORDS_PER_PARTITION: usize = 600;
const BATCH_RECORDS_MAX: usize = 50;
/// Transactions the first run commits before the kill.
const COMMITS_BEFORE_KILL: usize = 5;

fn group_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    common::consumer(
        bootstrap,
        &[
            ("group.id", group),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
            ("enable.partition.eof", "true"),
            ("session.timeout.ms", "6000"),
        ],
    )
}

/// One batch of input records: `(partition, offset, value)`; empty once every partition is
/// at its end.
fn next_batch(consumer: &BaseConsumer, at_end: &mut BTreeSet<i32>) -> Vec<(i32, i64, Vec<u8>)> {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut batch = Vec::new();
    while batch.len() < BATCH_RECORDS_MAX {
        assert!(
            Instant::now() < deadline,
            "no input within {CLIENT_TIMEOUT:?}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                at_end.remove(&message.partition());
                let value = message.payload().unwrap_or_default().to_vec();
                batch.push((message.partition(), message.offset(), value));
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
                if at_end.len() == PARTITIONS as usize {
                    break;
                }
            }
            Some(Err(error)) => eprintln!("consumer: {error}"),
            None if !batch.is_empty() => break,
            None => {}
        }
    }
    batch
}

/// Copies one batch inside a transaction, with the consumer's offsets; leaves it open when
/// `commit` is false. Returns how many records it copied.
fn copy_batch(
    consumer: &BaseConsumer,
    producer: &TestProducer,
    output: &str,
    input: &str,
    at_end: &mut BTreeSet<i32>,
    commit: bool,
) -> usize {
    let batch = next_batch(consumer, at_end);
    if batch.is_empty() {
        return 0;
    }
    producer.begin_transaction().expect("begin");
    let records: Vec<TestRecord> = batch
        .iter()
        .map(|(partition, _, value)| {
            let mut out = b"out-".to_vec();
            out.extend_from_slice(value);
            TestRecord::new(Vec::new(), out).partition(*partition)
        })
        .collect();
    common::produce_all(producer, output, &records);
    let mut offsets = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        if let Some(last) = batch
            .iter()
            .filter(|(p, _, _)| *p == partition)
            .map(|r| r.1)
            .max()
        {
            offsets
                .add_partition_offset(input, partition, Offset::Offset(last + 1))
                .expect("offset");
        }
    }
    let metadata = consumer.group_metadata().expect("group metadata");
    producer
        .send_offsets_to_transaction(&offsets, &metadata, CLIENT_TIMEOUT)
        .expect("send offsets");
    if commit {
        producer.commit_transaction(CLIENT_TIMEOUT).expect("commit");
    }
    batch.len()
}

#[test]
fn consume_transform_produce_is_exactly_once_across_a_broker_kill() {
    let mut broker = common::Broker::start_with(BrokerOptions {
        fixed_ports: true,
        ..BrokerOptions::default()
    });
    let bootstrap = broker.bootstrap().to_owned();
    let input = common::topic_name("ctp-in");
    let output = common::topic_name("ctp-out");
    common::create_topic(&bootstrap, &input, PARTITIONS);
    common::create_topic(&bootstrap, &output, PARTITIONS);
    let mut expected = BTreeSet::new();
    {
        let plain = common::producer(&bootstrap, &[]);
        let mut records = Vec::new();
        for partition in 0..PARTITIONS {
            for i in 0..RECORDS_PER_PARTITION {
                let value = format!("{partition}-{i}");
                expected.insert(format!("out-{value}"));
                records.push(TestRecord::new(Vec::new(), value.into_bytes()).partition(partition));
            }
        }
        common::produce_all(&plain, &input, &records);
    }
    let group = common::topic_name("ctp-group");
    let transactional_id = common::topic_name("ctp-txn");

    // First run: a few committed transactions, then one left open when the broker dies.
    {
        let consumer = group_consumer(&bootstrap, &group);
        consumer.subscribe(&[input.as_str()]).expect("subscribe");
        let producer = txn_support::transactional_producer(&bootstrap, &transactional_id);
        let mut at_end = BTreeSet::new();
        for _ in 0..COMMITS_BEFORE_KILL {
            assert!(copy_batch(&consumer, &producer, &output, &input, &mut at_end, true) > 0);
        }
        assert!(copy_batch(&consumer, &producer, &output, &input, &mut at_end, false) > 0);
        broker.kill();
        broker.restart();
        // The old instances go now; their transaction is left to the coordinator.
    }

    // Rerun to the end of the input with a new instance of the same processor.
    {
        let consumer = group_consumer(&bootstrap, &group);
        consumer.subscribe(&[input.as_str()]).expect("subscribe");
        let producer = txn_support::transactional_producer(&bootstrap, &transactional_id);
        let mut at_end = BTreeSet::new();
        while copy_batch(&consumer, &producer, &output, &input, &mut at_end, true) > 0 {}
        txn_support::write_end_markers(&producer, &output, PARTITIONS);
    }

    let reader = common::consumer(&bootstrap, &[("isolation.level", "read_committed")]);
    let starts: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    common::assign(&reader, &output, &starts);
    let seen = txn_support::consume_to_end_markers(&reader, PARTITIONS);
    let values: Vec<String> = seen
        .iter()
        .map(|c| String::from_utf8_lossy(c.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    let distinct: BTreeSet<String> = values.iter().cloned().collect();
    assert_eq!(values.len(), distinct.len(), "duplicates in the output");
    assert_eq!(distinct, expected, "the output is not the input");
}
