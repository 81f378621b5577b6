//! DeleteRecords (rdkafka `AdminClient::delete_records`) moves a partition's log start
//! offset: to the requested offset, or to the high watermark for `Offset::End`. Afterwards
//! ListOffsets EARLIEST answers the new start, a fetch below it is OFFSET_OUT_OF_RANGE and
//! every fetch reports it as `log_start_offset`, a timestamp lookup never lands below it,
//! consumers start there, and the segments wholly below it are gone from the disk. Requests
//! Kafka refuses get Kafka's errors: an offset past the high watermark or below -1
//! (OFFSET_OUT_OF_RANGE), an unknown topic or partition (UNKNOWN_TOPIC_OR_PARTITION), a
//! partition sent to a shard that does not lead it (NOT_LEADER_OR_FOLLOWER), a compacted
//! topic (POLICY_VIOLATION); an offset below the current start changes nothing.

use crate::common;

use std::time::Duration;

use common::{
    assign, consume_count, create_topic, produce_all, producer, topic_name, Broker, BrokerOptions,
    TestRecord, CLIENT_TIMEOUT,
};
use futures_lite::future::block_on;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, FetchRequest, FetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sluice::client::{Cluster, Connection, ConnectionConfig};

const RECORDS_COUNT: i64 = 100;
const DELETE_BEFORE: i64 = 50;
const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const POLICY_VIOLATION: i16 = 44;

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

/// One DeleteRecords v2 for one partition: (error code, low watermark).
fn delete_records(
    connection: &mut Connection,
    topic: &str,
    partition: i32,
    offset: i64,
) -> (i16, i64) {
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(partition)
                .with_offset(offset)])]);
    let response: DeleteRecordsResponse = connection
        .send_version(&request, 2, Duration::ZERO)
        .expect("DeleteRecords round trip");
    let answer = &response.topics[0].partitions[0];
    assert_eq!(answer.partition_index, partition);
    (answer.error_code, answer.low_watermark)
}

/// One Fetch v12 (topics by name) of one partition from `offset`: (error code, log start
/// offset, high watermark, base offset of the first batch returned).
fn fetch(
    connection: &mut Connection,
    topic: &str,
    partition: i32,
    offset: i64,
) -> (i16, i64, i64, Option<i64>) {
    let request = FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(1 << 20)])]);
    let response: FetchResponse = connection
        .send_version(&request, 12, Duration::ZERO)
        .expect("Fetch round trip");
    let answer = &response.responses[0].partitions[0];
    let first_base = answer
        .records
        .as_ref()
        .filter(|records| records.len() >= 8)
        .map(|records| i64::from_be_bytes(records[..8].try_into().expect("8 bytes")));
    (
        answer.error_code,
        answer.log_start_offset,
        answer.high_watermark,
        first_base,
    )
}

/// Base offsets of the segment files of `topic`-`partition`, sorted.
fn segment_bases(broker: &Broker, topic: &str, partition: i32) -> Vec<i64> {
    let dir = broker.data_dir().join(format!("{topic}-{partition}"));
    let mut bases: Vec<i64> = std::fs::read_dir(&dir)
        .expect("partition dir")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    bases
}

#[test]
fn delete_records_moves_log_start_offset() {
    let broker = Broker::start_with(BrokerOptions {
        segment_bytes: 64 * 1024,
        ..BrokerOptions::default()
    });
    let topic = topic_name("delete-records");
    create_topic(broker.bootstrap(), &topic, 2);

    // One record per batch, ~2 KiB each: about 30 batches per 64 KiB segment.
    let producer = producer(
        broker.bootstrap(),
        &[("linger.ms", "0"), ("batch.num.messages", "1")],
    );
    // An hour ago: well inside the default 7-day retention.
    let timestamp_base_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
        - 3_600_000;
    for partition in 0..2 {
        let records: Vec<TestRecord> = (0..RECORDS_COUNT)
            .map(|i| {
                TestRecord::new(format!("k{i}"), format!("value {i} {}", "x".repeat(2000)))
                    .partition(partition)
                    .timestamp_ms(timestamp_base_ms + i)
            })
            .collect();
        produce_all(&producer, &topic, &records);
    }
    let before = segment_bases(&broker, &topic, 0);
    assert!(
        before.iter().filter(|&&b| b < DELETE_BEFORE).count() >= 2,
        "the test needs several segments below {DELETE_BEFORE}: {before:?}"
    );

    // The client sends each partition to its leader.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("admin client");
    let mut wanted = TopicPartitionList::new();
    wanted
        .add_partition_offset(&topic, 0, Offset::Offset(DELETE_BEFORE))
        .expect("add partition 0");
    wanted
        .add_partition_offset(&topic, 1, Offset::End)
        .expect("add partition 1");
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let deleted = block_on(admin.delete_records(&wanted, &options)).expect("DeleteRecords");
    for (partition, low_watermark) in [(0, DELETE_BEFORE), (1, RECORDS_COUNT)] {
        let element = deleted
            .find_partition(&topic, partition)
            .expect("partition in the DeleteRecords answer");
        element
            .error()
            .unwrap_or_else(|e| panic!("partition {partition}: {e}"));
        assert_eq!(
            element.offset(),
            Offset::Offset(low_watermark),
            "partition {partition} low watermark"
        );
    }

    // ListOffsets EARLIEST / LATEST.
    let consumer = common::consumer(broker.bootstrap(), &[]);
    for (partition, start) in [(0, DELETE_BEFORE), (1, RECORDS_COUNT)] {
        let watermarks = consumer
            .fetch_watermarks(&topic, partition, CLIENT_TIMEOUT)
            .expect("watermarks");
        assert_eq!(watermarks, (start, RECORDS_COUNT), "partition {partition}");
    }
    // A timestamp older than every record finds the first record still in the log.
    let mut by_time = TopicPartitionList::new();
    by_time
        .add_partition_offset(&topic, 0, Offset::Offset(timestamp_base_ms))
        .expect("add partition");
    let found = consumer
        .offsets_for_times(by_time, CLIENT_TIMEOUT)
        .expect("ListOffsets by timestamp");
    assert_eq!(
        found.find_partition(&topic, 0).map(|e| e.offset()),
        Some(Offset::Offset(DELETE_BEFORE))
    );

    // Whole segments below the new start are deleted; the one holding it stays.
    let after = segment_bases(&broker, &topic, 0);
    assert!(
        after[0] <= DELETE_BEFORE && after.get(1).is_none_or(|&b| b > DELETE_BEFORE),
        "segments before {before:?}, after {after:?}"
    );

    // Fetch: below the start is out of range; at it, the answer starts at it.
    let mut cluster =
        Cluster::connect(broker.bootstrap(), ConnectionConfig::default()).expect("connect");
    let (leader, connection) = cluster.leader_connection(&topic, 0).expect("leader of 0");
    let below = fetch(connection, &topic, 0, DELETE_BEFORE - 1);
    assert_eq!(below.0, OFFSET_OUT_OF_RANGE, "fetch below the log start");
    assert_eq!((below.1, below.2), (DELETE_BEFORE, RECORDS_COUNT));
    let at = fetch(connection, &topic, 0, DELETE_BEFORE);
    assert_eq!(
        at,
        (NONE, DELETE_BEFORE, RECORDS_COUNT, Some(DELETE_BEFORE)),
        "fetch at the log start"
    );

    // Errors, as Kafka answers them.
    assert_eq!(
        delete_records(connection, &topic, 0, RECORDS_COUNT + 1),
        (OFFSET_OUT_OF_RANGE, -1)
    );
    assert_eq!(
        delete_records(connection, &topic, 0, -2),
        (OFFSET_OUT_OF_RANGE, -1)
    );
    assert_eq!(
        delete_records(connection, &topic, 0, 10),
        (NONE, DELETE_BEFORE),
        "an offset below the start changes nothing"
    );
    assert_eq!(
        delete_records(connection, &topic, 7, 10),
        (UNKNOWN_TOPIC_OR_PARTITION, -1)
    );
    assert_eq!(
        delete_records(connection, &topic_name("missing"), 0, 10),
        (UNKNOWN_TOPIC_OR_PARTITION, -1)
    );
    let other = cluster
        .brokers()
        .map(|b| b.node_id)
        .find(|&id| id != leader)
        .expect("a second broker");
    let connection = cluster.broker_connection(other).expect("other broker");
    assert_eq!(
        delete_records(connection, &topic, 0, 60),
        (NOT_LEADER_OR_FOLLOWER, -1)
    );

    // A compacted topic keeps the newest record of every key: no deleting below an offset.
    let compacted = topic_name("compacted");
    let new_topic =
        NewTopic::new(&compacted, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
    let created = block_on(admin.create_topics([&new_topic], &options)).expect("CreateTopics");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let (_, connection) = cluster
        .leader_connection(&compacted, 0)
        .expect("leader of the compacted topic");
    assert_eq!(
        delete_records(connection, &compacted, 0, 0),
        (POLICY_VIOLATION, -1)
    );

    // A consumer reads on from the start.
    assign(&consumer, &topic, &[(0, DELETE_BEFORE)]);
    let consumed = consume_count(
        &consumer,
        usize::try_from(RECORDS_COUNT - DELETE_BEFORE).expect("count"),
        CLIENT_TIMEOUT,
    );
    assert_eq!(consumed.first().map(|c| c.offset), Some(DELETE_BEFORE));
    assert_eq!(consumed.last().map(|c| c.offset), Some(RECORDS_COUNT - 1));
}
