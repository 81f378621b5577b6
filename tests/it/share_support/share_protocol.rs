//! Share-group requests sent one by one over sluice's own client connection, for tests that
//! must control what no ShareConsumer lets them choose: session epochs, member ids, when a
//! member stops heartbeating.

use std::time::Duration;

use kafka_protocol::messages::describe_share_group_offsets_request::{
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsRequestGroup,
    DescribeShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::describe_share_group_offsets_response::DescribeShareGroupOffsetsResponseGroup;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::share_acknowledge_request::{
    self as ack, AcknowledgePartition, AcknowledgeTopic,
};
use kafka_protocol::messages::share_fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::share_fetch_response::AcquiredRecords;
use kafka_protocol::messages::share_group_describe_response::DescribedGroup;
use kafka_protocol::messages::{
    GroupId, IncrementalAlterConfigsRequest, ShareAcknowledgeRequest, ShareAcknowledgeResponse,
    ShareFetchRequest, ShareFetchResponse, ShareGroupDescribeRequest, ShareGroupHeartbeatRequest,
    ShareGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice::client::{Cluster, Connection, ConnectionConfig};
use uuid::Uuid;

/// Kafka error codes the share tests expect.
pub const NONE: i16 = 0;
pub const NOT_COORDINATOR: i16 = 16;
pub const INVALID_REQUEST: i16 = 42;
pub const SHARE_SESSION_NOT_FOUND: i16 = 122;
pub const INVALID_SHARE_SESSION_EPOCH: i16 = 123;
pub const SHARE_SESSION_LIMIT_REACHED: i16 = 133;

/// AcknowledgeType ACCEPT.
pub const ACCEPT: i8 = 1;

/// IncrementalAlterConfigs resource type GROUP (Kafka 4).
const RESOURCE_GROUP: i8 = 32;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub fn cluster(bootstrap: &str) -> Cluster {
    Cluster::connect(bootstrap, ConnectionConfig::default()).expect("connect to the broker")
}

/// A share group's member as far as its requests go: its group and member id. The test
/// keeps the session epochs itself, one per broker, as a client would.
pub struct ShareMember {
    pub group: String,
    pub member_id: String,
}

/// One partition of a ShareFetch: its acknowledgements ride along.
#[derive(Clone, Debug, Default)]
pub struct FetchPart {
    pub topic_id: Uuid,
    pub partition: i32,
    /// (first, last, type) batches.
    pub acks: Vec<(i64, i64, i8)>,
}

impl FetchPart {
    pub fn new(topic_id: Uuid, partition: i32) -> FetchPart {
        FetchPart {
            topic_id,
            partition,
            acks: Vec::new(),
        }
    }

    pub fn acking(mut self, first: i64, last: i64, ack_type: i8) -> FetchPart {
        self.acks.push((first, last, ack_type));
        self
    }
}

/// The MaxBytes and MaxRecords of a ShareFetch.
#[derive(Clone, Copy, Debug)]
pub struct FetchLimits {
    pub max_bytes: i32,
    pub max_records: i32,
}

impl ShareMember {
    pub fn new(group: &str, member_id: &str) -> ShareMember {
        ShareMember {
            group: group.to_owned(),
            member_id: member_id.to_owned(),
        }
    }

    /// ShareFetch of `parts` at `epoch`, waiting up to `max_wait_ms` for records.
    pub fn fetch(
        &self,
        connection: &mut Connection,
        epoch: i32,
        parts: &[FetchPart],
        max_wait_ms: i32,
    ) -> ShareFetchResponse {
        let limits = FetchLimits {
            max_bytes: 1 << 20,
            max_records: 100,
        };
        self.fetch_limited(connection, epoch, parts, max_wait_ms, limits)
    }

    /// [`ShareMember::fetch`] with the request's MaxBytes and MaxRecords chosen.
    pub fn fetch_limited(
        &self,
        connection: &mut Connection,
        epoch: i32,
        parts: &[FetchPart],
        max_wait_ms: i32,
        limits: FetchLimits,
    ) -> ShareFetchResponse {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for part in parts {
            let partition = FetchPartition::default()
                .with_partition_index(part.partition)
                .with_acknowledgement_batches(
                    part.acks
                        .iter()
                        .map(|(first, last, ack_type)| {
                            kafka_protocol::messages::share_fetch_request::AcknowledgementBatch::default()
                                .with_first_offset(*first)
                                .with_last_offset(*last)
                                .with_acknowledge_types(vec![*ack_type])
                        })
                        .collect(),
                );
            match topics.iter_mut().find(|t| t.topic_id == part.topic_id) {
                Some(topic) => topic.partitions.push(partition),
                None => topics.push(
                    FetchTopic::default()
                        .with_topic_id(part.topic_id)
                        .with_partitions(vec![partition]),
                ),
            }
        }
        let request = ShareFetchRequest::default()
            .with_group_id(Some(GroupId(text(&self.group))))
            .with_member_id(Some(text(&self.member_id)))
            .with_share_session_epoch(epoch)
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(limits.max_bytes)
            .with_max_records(limits.max_records)
            .with_batch_size(100)
            .with_topics(topics);
        let wait = Duration::from_millis(u64::try_from(max_wait_ms).unwrap_or(0));
        connection
            .send_version(&request, 1, wait)
            .expect("ShareFetch round trip")
    }

    /// ShareFetch forgetting `forgotten` partitions of `topic_id` at `epoch`, fetching nothing new.
    pub fn forget(
        &self,
        connection: &mut Connection,
        epoch: i32,
        topic_id: Uuid,
        forgotten: &[i32],
    ) -> ShareFetchResponse {
        let request = ShareFetchRequest::default()
            .with_group_id(Some(GroupId(text(&self.group))))
            .with_member_id(Some(text(&self.member_id)))
            .with_share_session_epoch(epoch)
            .with_max_wait_ms(0)
            .with_max_records(100)
            .with_batch_size(100)
            .with_forgotten_topics_data(vec![ForgottenTopic::default()
                .with_topic_id(topic_id)
                .with_partitions(forgotten.to_vec())]);
        connection
            .send_version(&request, 1, Duration::ZERO)
            .expect("ShareFetch round trip")
    }

    /// ShareAcknowledge at `epoch` of (first, last, type) batches on one partition.
    pub fn acknowledge(
        &self,
        connection: &mut Connection,
        epoch: i32,
        topic_id: Uuid,
        partition: i32,
        acks: &[(i64, i64, i8)],
    ) -> ShareAcknowledgeResponse {
        let topics = if acks.is_empty() {
            Vec::new()
        } else {
            vec![AcknowledgeTopic::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![AcknowledgePartition::default()
                    .with_partition_index(partition)
                    .with_acknowledgement_batches(
                        acks.iter()
                            .map(|(first, last, ack_type)| {
                                ack::AcknowledgementBatch::default()
                                    .with_first_offset(*first)
                                    .with_last_offset(*last)
                                    .with_acknowledge_types(vec![*ack_type])
                            })
                            .collect(),
                    )])]
        };
        let request = ShareAcknowledgeRequest::default()
            .with_group_id(Some(GroupId(text(&self.group))))
            .with_member_id(Some(text(&self.member_id)))
            .with_share_session_epoch(epoch)
            .with_topics(topics);
        connection
            .send_version(&request, 1, Duration::ZERO)
            .expect("ShareAcknowledge round trip")
    }

    /// ShareGroupHeartbeat at `member_epoch` (0 joins, subscribing to `topics`).
    pub fn heartbeat(
        &self,
        connection: &mut Connection,
        member_epoch: i32,
        topics: &[&str],
    ) -> ShareGroupHeartbeatResponse {
        let subscribed =
            (member_epoch == 0).then(|| topics.iter().map(|t| TopicName(text(t))).collect());
        let request = ShareGroupHeartbeatRequest::default()
            .with_group_id(GroupId(text(&self.group)))
            .with_member_id(text(&self.member_id))
            .with_member_epoch(member_epoch)
            .with_subscribed_topic_names(subscribed);
        connection
            .send_version(&request, 1, Duration::ZERO)
            .expect("ShareGroupHeartbeat round trip")
    }
}

/// The records a ShareFetch response acquired, over all partitions.
pub fn acquired(response: &ShareFetchResponse) -> Vec<AcquiredRecords> {
    response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .flat_map(|p| p.acquired_records.iter().cloned())
        .collect()
}

/// Every acquired offset with its delivery count, sorted.
pub fn acquired_offsets(response: &ShareFetchResponse) -> Vec<(i64, i16)> {
    let mut offsets: Vec<(i64, i16)> = acquired(response)
        .iter()
        .flat_map(|r| (r.first_offset..=r.last_offset).map(move |o| (o, r.delivery_count)))
        .collect();
    offsets.sort_unstable();
    offsets
}

/// The per-partition error and acknowledgement error codes of a ShareFetch response.
pub fn partition_errors(response: &ShareFetchResponse) -> Vec<(i32, i16, i16)> {
    response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.error_code, p.acknowledge_error_code))
        .collect()
}

/// ShareGroupDescribe of one group.
pub fn describe(connection: &mut Connection, group: &str) -> DescribedGroup {
    let request = ShareGroupDescribeRequest::default().with_group_ids(vec![GroupId(text(group))]);
    let response = connection
        .send_version(&request, 1, Duration::ZERO)
        .expect("ShareGroupDescribe round trip");
    response
        .groups
        .into_iter()
        .next()
        .expect("one described group")
}

/// DescribeShareGroupOffsets (v0) of one group on its coordinator: of `topics` (name,
/// partitions), or of every partition with state when `None`.
pub fn describe_offsets(
    connection: &mut Connection,
    group: &str,
    topics: Option<&[(&str, &[i32])]>,
) -> DescribeShareGroupOffsetsResponseGroup {
    let topics = topics.map(|topics| {
        topics
            .iter()
            .map(|(name, partitions)| {
                DescribeShareGroupOffsetsRequestTopic::default()
                    .with_topic_name(TopicName(text(name)))
                    .with_partitions(partitions.to_vec())
            })
            .collect()
    });
    let request = DescribeShareGroupOffsetsRequest::default().with_groups(vec![
        DescribeShareGroupOffsetsRequestGroup::default()
            .with_group_id(GroupId(text(group)))
            .with_topics(topics),
    ]);
    let response = connection
        .send_version(&request, 0, Duration::ZERO)
        .expect("DescribeShareGroupOffsets round trip");
    response
        .groups
        .into_iter()
        .next()
        .expect("one described group")
}

/// Sets one group config with IncrementalAlterConfigs (any broker forwards it).
pub fn set_group_config(connection: &mut Connection, group: &str, name: &str, value: &str) {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(RESOURCE_GROUP)
            .with_resource_name(text(group))
            .with_configs(vec![AlterableConfig::default()
                .with_name(text(name))
                .with_config_operation(0)
                .with_value(Some(text(value)))]),
    ]);
    let response = connection
        .send_version(&request, 1, Duration::ZERO)
        .expect("IncrementalAlterConfigs round trip");
    for resource in &response.responses {
        assert_eq!(
            resource.error_code, NONE,
            "setting {name}={value} on group {group}: {:?}",
            resource.error_message
        );
    }
}

/// A new share group (named from `prefix`) that starts from the earliest offset.
pub fn group_from_earliest(connection: &mut Connection, prefix: &str) -> String {
    let group = crate::common::topic_name(prefix);
    set_group_config(connection, &group, "share.auto.offset.reset", "earliest");
    group
}

/// The node id of the shard coordinating `group`: the broker whose heartbeat is not
/// answered NOT_COORDINATOR. Joins `member` on the way.
pub fn join_on_coordinator(
    cluster: &mut Cluster,
    member: &ShareMember,
    topics: &[&str],
) -> (i32, ShareGroupHeartbeatResponse) {
    let mut node_ids: Vec<i32> = cluster.brokers().map(|b| b.node_id).collect();
    node_ids.sort_unstable();
    for node_id in node_ids {
        let connection = cluster
            .broker_connection(node_id)
            .expect("broker connection");
        let response = member.heartbeat(connection, 0, topics);
        match response.error_code {
            NONE => return (node_id, response),
            NOT_COORDINATOR => continue,
            other => panic!("ShareGroupHeartbeat join failed with {other}: {response:?}"),
        }
    }
    panic!("no broker coordinates share group {}", member.group)
}
