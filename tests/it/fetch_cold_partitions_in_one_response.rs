//! One Fetch for many partitions whose data is only on disk (the broker restarted, so its
//! in-memory tails are empty): every partition answers with all of its records, in request
//! order, and a response limit smaller than the data is honoured the way Kafka does: whole
//! batches, partitions in request order, the limit never exceeded when the first batch fits.

use crate::common;

use std::net::TcpStream;
use std::time::Duration;

use common::raw::{round_trip, Cursor, Reply};
use common::{create_topic, produce_all, producer, topic_name, Broker, BrokerOptions, TestRecord};

const PARTITIONS_COUNT: i32 = 8;
const RECORDS_PER_PARTITION: i64 = 200;
const VALUE_BYTES: usize = 1000;

/// One partition of a Fetch v4 answer: error code, high watermark, and per batch its base
/// offset, record count and size in bytes.
struct PartitionAnswer {
    partition: i32,
    error_code: i16,
    high_watermark: i64,
    batches: Vec<(i64, i32, usize)>,
}

/// Fetch v4 of every partition of `topic` from offset 0.
fn fetch_all(
    stream: &mut TcpStream,
    topic: &str,
    max_bytes: i32,
    partition_max_bytes: i32,
) -> Vec<PartitionAnswer> {
    let mut body = Vec::new();
    body.extend_from_slice(&(-1i32).to_be_bytes()); // replica_id
    body.extend_from_slice(&1000i32.to_be_bytes()); // max_wait_ms
    body.extend_from_slice(&1i32.to_be_bytes()); // min_bytes
    body.extend_from_slice(&max_bytes.to_be_bytes());
    body.push(0); // isolation_level READ_UNCOMMITTED
    body.extend_from_slice(&1i32.to_be_bytes()); // topics count
    body.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    body.extend_from_slice(&PARTITIONS_COUNT.to_be_bytes());
    for partition in 0..PARTITIONS_COUNT {
        body.extend_from_slice(&partition.to_be_bytes());
        body.extend_from_slice(&0i64.to_be_bytes()); // fetch offset
        body.extend_from_slice(&partition_max_bytes.to_be_bytes());
    }
    let reply = round_trip(stream, 1, 4, 41, &body, Duration::from_secs(30));
    let Reply::Frame(frame) = reply else {
        panic!("Fetch v4 got no response: {reply:?}");
    };
    let mut cursor = Cursor::new(&frame);
    assert_eq!(cursor.i32(), 41, "correlation id");
    let _throttle_ms = cursor.i32();
    assert_eq!(cursor.i32(), 1, "topics count");
    assert_eq!(cursor.string(), topic);
    let count = cursor.i32();
    assert_eq!(count, PARTITIONS_COUNT, "every requested partition answers");
    (0..count)
        .map(|_| {
            let partition = cursor.i32();
            let error_code = cursor.i16();
            let high_watermark = cursor.i64();
            let _last_stable_offset = cursor.i64();
            for _ in 0..cursor.i32().max(0) {
                cursor.take(16); // aborted transactions
            }
            let records_len = cursor.i32().max(0) as usize;
            let records = cursor.take(records_len);
            let mut batches = Vec::new();
            let mut position = 0;
            while records.len() - position >= 61 {
                let mut batch = Cursor::new(&records[position..]);
                let base_offset = batch.i64();
                let size = 12 + batch.i32() as usize;
                assert!(
                    position + size <= records.len(),
                    "partition {partition}: a partial batch in the answer"
                );
                batch.take(4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4);
                batches.push((base_offset, batch.i32(), size));
                position += size;
            }
            assert_eq!(
                position,
                records.len(),
                "partition {partition}: stray bytes"
            );
            PartitionAnswer {
                partition,
                error_code,
                high_watermark,
                batches,
            }
        })
        .collect()
}

#[test]
fn fetch_cold_partitions_in_one_response() {
    let mut broker = Broker::start_with(BrokerOptions {
        shards_count: 1,
        ..BrokerOptions::default()
    });
    let topic = topic_name("cold-fetch");
    create_topic(broker.bootstrap(), &topic, PARTITIONS_COUNT);
    let records: Vec<TestRecord> = (0..PARTITIONS_COUNT as i64 * RECORDS_PER_PARTITION)
        .map(|i| {
            TestRecord::new(format!("k{i}"), vec![b'v'; VALUE_BYTES])
                .partition((i % PARTITIONS_COUNT as i64) as i32)
        })
        .collect();
    // Small producer batches, so each partition holds many batches.
    let producer = producer(broker.bootstrap(), &[("batch.size", "16384")]);
    produce_all(&producer, &topic, &records);
    drop(producer);
    broker.stop_graceful();
    broker.restart();

    let mut stream = TcpStream::connect(broker.bootstrap()).expect("connect");
    let answers = fetch_all(&mut stream, &topic, 64 << 20, 4 << 20);
    for answer in &answers {
        assert_eq!(answer.error_code, 0, "partition {}", answer.partition);
        assert_eq!(answer.high_watermark, RECORDS_PER_PARTITION);
        let mut next = 0;
        for &(base_offset, count, _) in &answer.batches {
            assert_eq!(base_offset, next, "partition {}: gap", answer.partition);
            next += i64::from(count);
        }
        assert_eq!(
            next, RECORDS_PER_PARTITION,
            "partition {}: every record in one answer",
            answer.partition
        );
    }
    assert_eq!(
        answers.iter().map(|a| a.partition).collect::<Vec<_>>(),
        (0..PARTITIONS_COUNT).collect::<Vec<_>>(),
        "partitions answer in request order"
    );

    // A response limit of two and a half partitions' worth.
    let partition_bytes: usize = answers[0].batches.iter().map(|b| b.2).sum();
    let limit = partition_bytes * 5 / 2;
    let limited = fetch_all(&mut stream, &topic, limit as i32, 4 << 20);
    let sizes: Vec<usize> = limited
        .iter()
        .map(|a| a.batches.iter().map(|b| b.2).sum())
        .collect();
    let total: usize = sizes.iter().sum();
    // The first partition's batches fit, so nothing may go past the limit (KIP-74 lets only
    // the first partition with data exceed it).
    assert!(
        total <= limit,
        "{total} bytes answered for a {limit}-byte limit: {sizes:?}"
    );
    assert_eq!(sizes[0], partition_bytes, "the first partition fills first");
    assert_eq!(sizes[1], partition_bytes, "then the second: {sizes:?}");
    assert!(sizes[2] > 0, "the third gets the rest: {sizes:?}");
    assert!(
        sizes[3..].iter().all(|&s| s == 0),
        "nothing past the limit: {sizes:?}"
    );
    for answer in &limited {
        assert_eq!(answer.error_code, 0);
        if let Some(&(base_offset, _, _)) = answer.batches.first() {
            assert_eq!(base_offset, 0, "partition {}", answer.partition);
        }
    }
}
