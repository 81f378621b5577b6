//! A log start offset moved by DeleteRecords into the middle of a segment survives SIGKILL:
//! after the restart ListOffsets EARLIEST still answers it, a fetch below it is still
//! OFFSET_OUT_OF_RANGE, and a consumer reading from the beginning starts there.

use crate::common;

use common::{
    consume_count, create_topic, produce_all, producer, topic_name, Broker, BrokerOptions,
    TestRecord, CLIENT_TIMEOUT,
};
use futures_lite::future::block_on;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const RECORDS_COUNT: i64 = 100;
/// Inside the second 64 KiB segment (about 30 records of 2 KiB each per segment).
const DELETE_BEFORE: i64 = 45;

fn value(i: i64) -> Vec<u8> {
    format!("value {i} {}", "x".repeat(2000)).into_bytes()
}

#[test]
fn delete_records_log_start_survives_kill9() {
    let mut broker = Broker::start_with(BrokerOptions {
        fixed_ports: true,
        segment_bytes: 64 * 1024,
        ..BrokerOptions::default()
    });
    let topic = topic_name("delete-records-kill");
    create_topic(broker.bootstrap(), &topic, 1);
    let producer = producer(
        broker.bootstrap(),
        &[("linger.ms", "0"), ("batch.num.messages", "1")],
    );
    let records: Vec<TestRecord> = (0..RECORDS_COUNT)
        .map(|i| TestRecord::new(format!("k{i}"), value(i)).partition(0))
        .collect();
    produce_all(&producer, &topic, &records);
    drop(producer);

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("admin client");
    let mut wanted = TopicPartitionList::new();
    wanted
        .add_partition_offset(&topic, 0, Offset::Offset(DELETE_BEFORE))
        .expect("add partition");
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let deleted = block_on(admin.delete_records(&wanted, &options)).expect("DeleteRecords");
    let element = deleted.find_partition(&topic, 0).expect("partition 0");
    element.error().expect("DeleteRecords partition 0");
    assert_eq!(element.offset(), Offset::Offset(DELETE_BEFORE));
    drop(admin);

    broker.kill();
    broker.restart();

    let consumer = common::consumer(broker.bootstrap(), &[]);
    let watermarks = consumer
        .fetch_watermarks(&topic, 0, CLIENT_TIMEOUT)
        .expect("watermarks after the restart");
    assert_eq!(watermarks, (DELETE_BEFORE, RECORDS_COUNT));

    // auto.offset.reset=error: a fetch below the start must fail, not silently skip ahead.
    let mut below = TopicPartitionList::new();
    below
        .add_partition_offset(&topic, 0, Offset::Offset(DELETE_BEFORE - 1))
        .expect("add partition");
    consumer.assign(&below).expect("assign below the start");
    let deadline = std::time::Instant::now() + CLIENT_TIMEOUT;
    let error = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no out-of-range error for a fetch below the start"
        );
        match consumer.poll(std::time::Duration::from_millis(100)) {
            Some(Ok(message)) => panic!("read offset {} below the start", message.offset()),
            Some(Err(error)) => break error,
            None => {}
        }
    };
    // librdkafka turns the broker's OFFSET_OUT_OF_RANGE into this under
    // auto.offset.reset=error.
    assert!(
        error.to_string().contains("AutoOffsetReset"),
        "unexpected error: {error}"
    );

    let reader = common::consumer(broker.bootstrap(), &[]);
    let mut beginning = TopicPartitionList::new();
    beginning
        .add_partition_offset(&topic, 0, Offset::Beginning)
        .expect("add partition");
    reader
        .assign(&beginning)
        .expect("assign from the beginning");
    let consumed = consume_count(
        &reader,
        usize::try_from(RECORDS_COUNT - DELETE_BEFORE).expect("count"),
        CLIENT_TIMEOUT,
    );
    assert_eq!(consumed[0].offset, DELETE_BEFORE);
    assert_eq!(
        consumed[0].value.as_deref(),
        Some(&value(DELETE_BEFORE)[..])
    );
}
