//! ListOffsets serves Kafka 4.1's versions 1-10 and its special positions: MAX_TIMESTAMP (-3,
//! v7+) answers the first record with the largest timestamp, even inside a batch and after
//! DeleteRecords removed it; EARLIEST_LOCAL (-4, v8+) answers the log start offset (there is
//! no tiered storage); LATEST_TIERED (-5, v9+) answers offset -1 with leader epoch -1, as
//! Kafka does without tiered storage. A special position asked at a version below its own,
//! or an unknown one, is UNSUPPORTED_VERSION for that partition; an empty partition has no
//! record with a largest timestamp (offset and timestamp -1).

use crate::common;

use std::time::Duration;

use common::{create_topic, produce_all, producer, topic_name, Broker, TestRecord};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest,
    ListOffsetsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice::client::{Cluster, Connection, ConnectionConfig};

const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const UNSUPPORTED_VERSION: i16 = 35;
/// Record timestamps relative to the base: the largest, 300, first at offset 1.
const TIMESTAMP_DELTAS_MS: [i64; 6] = [100, 300, 200, 250, 300, 150];

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

/// ListOffsets of one partition at `version`: (error code, offset, timestamp, leader epoch).
fn list_offset(
    connection: &mut Connection,
    version: i16,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> (i16, i64, i64, i32) {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])]);
    let response: ListOffsetsResponse = connection
        .send_version(&request, version, Duration::ZERO)
        .expect("ListOffsets round trip");
    let answer = &response.topics[0].partitions[0];
    (
        answer.error_code,
        answer.offset,
        answer.timestamp,
        answer.leader_epoch,
    )
}

#[test]
fn list_offsets_max_timestamp_and_special_positions() {
    let broker = Broker::start();
    let topic = topic_name("max-ts");
    create_topic(broker.bootstrap(), &topic, 2);
    let base_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
        - 3_600_000;
    // One batch: the largest timestamp is inside it, not at its end.
    let producer = producer(broker.bootstrap(), &[("linger.ms", "1000")]);
    let records: Vec<TestRecord> = TIMESTAMP_DELTAS_MS
        .iter()
        .enumerate()
        .map(|(i, delta)| {
            TestRecord::new(format!("k{i}"), format!("v{i}"))
                .partition(0)
                .timestamp_ms(base_ms + delta)
        })
        .collect();
    produce_all(&producer, &topic, &records);

    let mut cluster =
        Cluster::connect(broker.bootstrap(), ConnectionConfig::default()).expect("connect");
    let (_, connection) = cluster.leader_connection(&topic, 0).expect("leader of 0");
    assert_eq!(
        connection.broker_versions(ApiKey::ListOffsets),
        Some((1, 10)),
        "advertised ListOffsets versions"
    );
    for version in 7..=10 {
        assert_eq!(
            list_offset(connection, version, &topic, 0, MAX_TIMESTAMP),
            (0, 1, base_ms + 300, 0),
            "MAX_TIMESTAMP at v{version}"
        );
    }
    for version in 8..=10 {
        assert_eq!(
            list_offset(connection, version, &topic, 0, EARLIEST_LOCAL),
            (0, 0, -1, 0),
            "EARLIEST_LOCAL at v{version}"
        );
    }
    for version in 9..=10 {
        assert_eq!(
            list_offset(connection, version, &topic, 0, LATEST_TIERED),
            (0, -1, -1, -1),
            "LATEST_TIERED at v{version}"
        );
    }
    for (version, timestamp) in [
        (6, MAX_TIMESTAMP),
        (7, EARLIEST_LOCAL),
        (8, LATEST_TIERED),
        (10, -6),
    ] {
        assert_eq!(
            list_offset(connection, version, &topic, 0, timestamp).0,
            UNSUPPORTED_VERSION,
            "timestamp {timestamp} at v{version}"
        );
    }

    // Records below the log start are gone: the next record with the largest timestamp.
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(name(&topic))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(2)])]);
    let deleted: DeleteRecordsResponse = connection
        .send_version(&request, 0, Duration::ZERO)
        .expect("DeleteRecords round trip");
    assert_eq!(deleted.topics[0].partitions[0].error_code, 0);
    assert_eq!(
        list_offset(connection, 10, &topic, 0, MAX_TIMESTAMP),
        (0, 4, base_ms + 300, 0)
    );
    assert_eq!(
        list_offset(connection, 10, &topic, 0, EARLIEST_LOCAL),
        (0, 2, -1, 0)
    );

    let (_, connection) = cluster.leader_connection(&topic, 1).expect("leader of 1");
    assert_eq!(
        list_offset(connection, 7, &topic, 1, MAX_TIMESTAMP),
        (0, -1, -1, -1),
        "MAX_TIMESTAMP of an empty partition"
    );
}
