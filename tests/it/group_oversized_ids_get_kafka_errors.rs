//! Group requests carrying strings longer than the offsets log can store: a 70 000-byte group
//! id is refused with INVALID_GROUP_ID (OffsetCommit, OffsetFetch), 70 000 bytes of commit
//! metadata with OFFSET_METADATA_TOO_LARGE, and the same connection keeps being served.
//! Flexible versions (v8) carry such lengths: their strings have varint lengths.

use crate::common;

use std::time::Duration;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice::client::{Connection, ConnectionConfig};

use common::{create_topic, topic_name, Broker, BrokerOptions};

const NONE: i16 = 0;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;
const INVALID_GROUP_ID: i16 = 24;
const OVERSIZED_BYTES: usize = 70_000;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// OffsetCommit v8 of offset 1 of `topic` partition 0, from outside the group protocol.
fn commit(group: &str, topic: &str, metadata: &str) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(text(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(text(topic)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)
                .with_committed_metadata(Some(text(metadata)))])])
}

fn partition_errors(response: &OffsetCommitResponse) -> Vec<i16> {
    response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// OffsetFetch v8 of `topic` partition 0: (group error, committed offset).
fn fetch(connection: &mut Connection, group: &str, topic: &str) -> (i16, Option<i64>) {
    let request =
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(text(group)))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(TopicName(text(topic)))
                .with_partition_indexes(vec![0])]))]);
    let response = connection
        .send_version(&request, 8, Duration::ZERO)
        .expect("OffsetFetch v8 answered");
    let group = &response.groups[0];
    let offset = group
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .map(|p| p.committed_offset);
    (group.error_code, offset)
}

#[test]
fn group_oversized_ids_get_kafka_errors() {
    // One shard coordinates every group, so each request below reaches its coordinator.
    let mut broker = Broker::start_with(BrokerOptions {
        shards_count: 1,
        ..BrokerOptions::default()
    });
    let topic = topic_name("oversized");
    create_topic(broker.bootstrap(), &topic, 1);
    let mut connection =
        Connection::connect(broker.bootstrap(), &ConnectionConfig::default()).expect("connect");
    let commit_v8 = |connection: &mut Connection, request: &OffsetCommitRequest| {
        let response = connection
            .send_version(request, 8, Duration::ZERO)
            .expect("OffsetCommit v8 answered");
        partition_errors(&response)
    };

    let huge_group = "g".repeat(OVERSIZED_BYTES);
    assert_eq!(
        commit_v8(&mut connection, &commit(&huge_group, &topic, "")),
        vec![INVALID_GROUP_ID]
    );
    assert_eq!(
        fetch(&mut connection, &huge_group, &topic).0,
        INVALID_GROUP_ID
    );

    let group = topic_name("bounded");
    let huge_metadata = "m".repeat(OVERSIZED_BYTES);
    assert_eq!(
        commit_v8(&mut connection, &commit(&group, &topic, &huge_metadata)),
        vec![OFFSET_METADATA_TOO_LARGE]
    );

    // The same connection is still served, and an ordinary commit is stored.
    assert_eq!(
        commit_v8(&mut connection, &commit(&group, &topic, "ok")),
        vec![NONE]
    );
    assert_eq!(fetch(&mut connection, &group, &topic), (NONE, Some(1)));
    broker.assert_alive();
}
