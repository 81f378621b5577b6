//! An rdkafka producer with acks=all writes keyed records with headers to a 3-partition topic;
//! a group-less consumer using assign() and explicit offsets reads back every record with its
//! key, value and headers, in offset order per partition, and starting mid-partition works.

use crate::common;

use common::{
    assert_partition_contents, assign, consume_count, consumer, create_topic, produce_all,
    producer, topic_name, Broker, TestRecord, CLIENT_TIMEOUT,
};

const PARTITIONS_COUNT: i32 = 3;
const RECORDS_COUNT: usize = 3_000;

fn record(i: usize) -> TestRecord {
    let record = TestRecord::new(
        format!("key-{i}"),
        format!("value-{i}-{}", "x".repeat(i % 200)),
    )
    .partition(i as i32 % PARTITIONS_COUNT)
    .header("seq", Some(i.to_string().as_bytes()))
    .header("empty", Some(b""))
    .header("null", None);
    match i % 50 {
        // A few records without a key or without a value.
        7 => TestRecord {
            key: None,
            ..record
        },
        13 => TestRecord {
            value: None,
            ..record
        },
        _ => record,
    }
}

#[test]
fn acks_all_produce_reads_back_from_explicit_offsets() {
    let broker = Broker::start();
    let topic = topic_name("roundtrip");
    create_topic(broker.bootstrap(), &topic, PARTITIONS_COUNT);

    let records: Vec<TestRecord> = (0..RECORDS_COUNT).map(record).collect();
    let producer = producer(broker.bootstrap(), &[]);
    let deliveries = produce_all(&producer, &topic, &records);

    // Offsets per partition are dense and start at 0, in send order.
    for partition in 0..PARTITIONS_COUNT {
        let offsets: Vec<i64> = deliveries
            .iter()
            .filter(|d| d.partition == partition)
            .map(|d| d.offset)
            .collect();
        let dense: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, dense,
            "partition {partition}: acknowledged offsets"
        );
    }

    let expected: Vec<(i32, i64, &TestRecord)> = deliveries
        .iter()
        .map(|d| (d.partition, d.offset, &records[d.id]))
        .collect();

    // Everything from offset 0.
    let consumer = consumer(broker.bootstrap(), &[]);
    let starts: Vec<(i32, i64)> = (0..PARTITIONS_COUNT).map(|p| (p, 0)).collect();
    assign(&consumer, &topic, &starts);
    let consumed = consume_count(&consumer, RECORDS_COUNT, CLIENT_TIMEOUT);
    assert_partition_contents(&consumed, &expected);

    // From an explicit offset in the middle of each partition.
    let start_offset = 250;
    let consumer = common::consumer(broker.bootstrap(), &[]);
    let starts: Vec<(i32, i64)> = (0..PARTITIONS_COUNT).map(|p| (p, start_offset)).collect();
    assign(&consumer, &topic, &starts);
    let tail: Vec<(i32, i64, &TestRecord)> = expected
        .iter()
        .copied()
        .filter(|(_, offset, _)| *offset >= start_offset)
        .collect();
    let consumed = consume_count(&consumer, tail.len(), CLIENT_TIMEOUT);
    assert_partition_contents(&consumed, &tail);

    // The watermarks agree with what was acknowledged.
    for partition in 0..PARTITIONS_COUNT {
        let count = deliveries
            .iter()
            .filter(|d| d.partition == partition)
            .count() as i64;
        let watermarks = rdkafka::consumer::Consumer::fetch_watermarks(
            &consumer,
            &topic,
            partition,
            CLIENT_TIMEOUT,
        )
        .expect("fetch watermarks");
        assert_eq!(watermarks, (0, count), "partition {partition} watermarks");
    }
}
