//! `message.timestamp.type=LogAppendTime`: the broker stamps each batch with its own clock as
//! Kafka does (timestamp-type bit, maxTimestamp, CRC recomputed), the produce response
//! carries that time, and consumers see it, from memory and, after a restart, from disk.

use crate::common;
use crate::compaction_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafka_protocol::records::Compression;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Message, Timestamp};
use sluice::client::{Cluster, ConnectionConfig};

use compaction_support::produce_v9;
use sluice::log::testing::keyed_batch;

use common::{
    assign, consumer, create_topic_with_configs, produce_all, producer, topic_name, Broker,
    TestRecord, CLIENT_TIMEOUT,
};

/// A producer's timestamp far in the past, which the broker must replace.
const PRODUCER_TIMESTAMP_MS: i64 = 1_000_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Timestamps (with their type) of the first `count` records of partition 0.
fn timestamps(bootstrap: &str, topic: &str, count: usize) -> Vec<Timestamp> {
    let consumer = consumer(bootstrap, &[]);
    assign(&consumer, topic, &[(0, 0)]);
    let deadline = std::time::Instant::now() + CLIENT_TIMEOUT;
    let mut out = Vec::new();
    while out.len() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "consuming {topic} timed out"
        );
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            out.push(message.timestamp());
        }
    }
    consumer.unassign().expect("unassign");
    out
}

#[test]
fn log_append_time_topic_stamps_broker_time() {
    let mut broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("append-time");
    create_topic_with_configs(
        &bootstrap,
        &topic,
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    );
    let before_ms = now_ms();
    // A raw Produce v9: the answer must carry the broker's time.
    let mut cluster = Cluster::connect(&bootstrap, ConnectionConfig::default()).expect("connect");
    let raw = keyed_batch(
        Compression::None,
        &[(None, Some("raw"))],
        PRODUCER_TIMESTAMP_MS,
    );
    let answer = produce_v9(&mut cluster, &topic, raw);
    assert_eq!(answer.error_code, 0, "{answer:?}");
    let appended_ms = answer.log_append_time_ms;
    assert!(
        appended_ms >= before_ms && appended_ms <= now_ms(),
        "log_append_time_ms {appended_ms} is the broker's clock"
    );
    // rdkafka, compressed: the broker stamps compressed batches the same way.
    let producer = producer(&bootstrap, &[("compression.type", "lz4")]);
    produce_all(
        &producer,
        &topic,
        &[TestRecord::new("k", "rdkafka").timestamp_ms(PRODUCER_TIMESTAMP_MS)],
    );
    let after_ms = now_ms();
    let check = |stamps: Vec<Timestamp>| {
        assert_eq!(
            stamps[0],
            Timestamp::LogAppendTime(appended_ms),
            "raw batch"
        );
        match stamps[1] {
            Timestamp::LogAppendTime(ms) => {
                assert!(ms >= before_ms && ms <= after_ms, "stamped {ms}")
            }
            other => panic!("compressed batch read back as {other:?}"),
        }
    };
    check(timestamps(&bootstrap, &topic, 2));
    // From the segment file: the writer stamped its copy the same way.
    broker.stop_graceful();
    broker.restart();
    check(timestamps(broker.bootstrap(), &topic, 2));
}
