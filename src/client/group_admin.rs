//! Consumer-group administration: list, describe (members, assignments, committed offsets,
//! lag), reset committed offsets, delete. Requests about a group go to its coordinator,
//! found with FindCoordinator; ListGroups goes to every broker.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequest, OffsetFetchRequestGroup};
use kafka_protocol::messages::{GroupId, TopicName};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::cluster::Cluster;
use super::connection::Connection;
use super::error::{check_error_code, ClientError};

/// One group as ListGroups reports it.
#[derive(Debug, Clone)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
    pub group_type: String,
    pub coordinator_id: i32,
}

#[derive(Debug, Clone)]
pub struct GroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Decoded from the consumer protocol assignment: topic → partitions.
    pub assignment: BTreeMap<String, Vec<i32>>,
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub coordinator_id: i32,
    pub members: Vec<GroupMember>,
}

impl GroupDescription {
    /// Whether members are connected: offsets must not be reset then.
    pub fn is_active(&self) -> bool {
        !self.members.is_empty() || !matches!(self.state.as_str(), "Empty" | "Dead")
    }
}

/// Where `reset_offsets` moves a partition's committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetSpec {
    Earliest,
    Latest,
    Offset(i64),
    /// The first offset whose timestamp is at or after this many ms since the epoch.
    Timestamp(i64),
}

pub struct GroupAdmin {
    cluster: Cluster,
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Topic → partitions of a ConsumerProtocolAssignment (i16 version prefix, then the body).
fn decode_assignment(mut bytes: Bytes) -> BTreeMap<String, Vec<i32>> {
    let mut out = BTreeMap::new();
    if bytes.remaining() < 2 {
        return out;
    }
    let version = bytes.get_i16().clamp(0, 3);
    if let Ok(assignment) = ConsumerProtocolAssignment::decode(&mut bytes, version) {
        for tp in assignment.assigned_partitions {
            out.entry(tp.topic.0.to_string())
                .or_insert_with(Vec::new)
                .extend(tp.partitions);
        }
    }
    out
}

/// `(topic, partition, offset)` triples grouped by topic, in topic order.
pub(super) fn offsets_by_topic(offsets: &[(String, i32, i64)]) -> BTreeMap<&str, Vec<(i32, i64)>> {
    let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for (topic, partition, offset) in offsets {
        by_topic
            .entry(topic.as_str())
            .or_default()
            .push((*partition, *offset));
    }
    by_topic
}

/// What a FindCoordinator key names (its `key_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinatorKind {
    Group,
    Transaction,
}

impl CoordinatorKind {
    fn key_type(self) -> i8 {
        match self {
            CoordinatorKind::Group => 0,
            CoordinatorKind::Transaction => 1,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            CoordinatorKind::Group => "group",
            CoordinatorKind::Transaction => "transactional id",
        }
    }
}

/// The broker id coordinating `key`, asked of whichever broker `connection` reaches.
pub fn find_coordinator(
    connection: &mut Connection,
    key: &str,
    kind: CoordinatorKind,
) -> Result<i32, ClientError> {
    let version = connection.version::<FindCoordinatorRequest>()?;
    let mut request = FindCoordinatorRequest::default().with_key_type(kind.key_type());
    if version >= 4 {
        request.coordinator_keys = vec![text(key)];
    } else {
        request.key = text(key);
    }
    let response = connection.send_version(&request, version, std::time::Duration::ZERO)?;
    let context = || format!("finding the coordinator of {} '{key}'", kind.noun());
    if version >= 4 {
        let found =
            response
                .coordinators
                .first()
                .ok_or_else(|| ClientError::MissingInResponse {
                    addr: connection.addr().to_owned(),
                    what: "a coordinator".to_owned(),
                })?;
        check_error_code(found.error_code, found.error_message.as_deref(), context)?;
        Ok(found.node_id.0)
    } else {
        check_error_code(
            response.error_code,
            response.error_message.as_deref(),
            context,
        )?;
        Ok(response.node_id.0)
    }
}

impl GroupAdmin {
    pub fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }

    pub fn cluster(&mut self) -> &mut Cluster {
        &mut self.cluster
    }

    /// The broker id coordinating `group`.
    pub fn find_coordinator(&mut self, group: &str) -> Result<i32, ClientError> {
        find_coordinator(self.cluster.any_connection(), group, CoordinatorKind::Group)
    }

    /// Learns the brokers (a Metadata request for no topics) unless already known.
    fn ensure_brokers(&mut self) -> Result<(), ClientError> {
        if self.cluster.brokers().next().is_none() {
            self.cluster.refresh_metadata(Some(&[]), false)?;
        }
        Ok(())
    }

    /// The coordinator of `group`: its broker id and a connection to it.
    pub fn coordinator(&mut self, group: &str) -> Result<(i32, &mut Connection), ClientError> {
        let node_id = self.find_coordinator(group)?;
        if self.cluster.broker_connection(node_id).is_err() {
            self.cluster.refresh_metadata(Some(&[]), false)?;
        }
        Ok((node_id, self.cluster.broker_connection(node_id)?))
    }

    /// Every group of every broker, sorted by id.
    pub fn list_groups(&mut self) -> Result<Vec<GroupListing>, ClientError> {
        self.ensure_brokers()?;
        let ids: Vec<i32> = self.cluster.brokers().map(|b| b.node_id).collect();
        let mut listings = Vec::new();
        for node_id in ids {
            let connection = self.cluster.broker_connection(node_id)?;
            let (response, _) = connection.send(&ListGroupsRequest::default())?;
            check_error_code(response.error_code, None, || {
                format!("listing groups of broker {node_id}")
            })?;
            listings.extend(response.groups.into_iter().map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
                group_type: g.group_type.to_string(),
                coordinator_id: node_id,
            }));
        }
        listings.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(listings)
    }

    pub fn describe_group(&mut self, group: &str) -> Result<GroupDescription, ClientError> {
        let (coordinator_id, connection) = self.coordinator(group)?;
        let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(text(group))]);
        let (response, _) = connection.send(&request)?;
        let addr = connection.addr().to_owned();
        let described =
            response
                .groups
                .into_iter()
                .next()
                .ok_or(ClientError::MissingInResponse {
                    addr,
                    what: format!("group '{group}'"),
                })?;
        if described.error_code != kafka_protocol::error::ResponseError::GroupIdNotFound.code() {
            check_error_code(
                described.error_code,
                described.error_message.as_deref(),
                || format!("describing group '{group}'"),
            )?;
        }
        Ok(GroupDescription {
            group_id: group.to_owned(),
            state: if described.group_state.is_empty() {
                "Dead".to_owned()
            } else {
                described.group_state.to_string()
            },
            protocol_type: described.protocol_type.to_string(),
            protocol: described.protocol_data.to_string(),
            coordinator_id,
            members: described
                .members
                .into_iter()
                .map(|m| GroupMember {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.map(|s| s.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    assignment: decode_assignment(m.member_assignment),
                })
                .collect(),
        })
    }

    /// Every committed offset of `group`: (topic, partition) → offset.
    pub fn committed_offsets(
        &mut self,
        group: &str,
    ) -> Result<BTreeMap<(String, i32), i64>, ClientError> {
        let (_, connection) = self.coordinator(group)?;
        let version = connection.version::<OffsetFetchRequest>()?;
        let mut request = OffsetFetchRequest::default();
        if version >= 8 {
            request.groups = vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(text(group)))
                .with_topics(None)];
        } else {
            request.group_id = GroupId(text(group));
            request.topics = None;
        }
        let response = connection.send_version(&request, version, std::time::Duration::ZERO)?;
        let context = || format!("fetching offsets of group '{group}'");
        let mut offsets = BTreeMap::new();
        if version >= 8 {
            for g in response.groups {
                check_error_code(g.error_code, None, context)?;
                for t in g.topics {
                    for p in t.partitions {
                        check_error_code(p.error_code, None, context)?;
                        if p.committed_offset >= 0 {
                            offsets.insert(
                                (t.name.0.to_string(), p.partition_index),
                                p.committed_offset,
                            );
                        }
                    }
                }
            }
        } else {
            check_error_code(response.error_code, None, context)?;
            for t in response.topics {
                for p in t.partitions {
                    check_error_code(p.error_code, None, context)?;
                    if p.committed_offset >= 0 {
                        offsets.insert(
                            (t.name.0.to_string(), p.partition_index),
                            p.committed_offset,
                        );
                    }
                }
            }
        }
        Ok(offsets)
    }

    /// ListOffsets of one partition: -2 earliest, -1 latest, or a timestamp. A timestamp past
    /// the last record resolves to the log end, like Kafka's reset tool.
    pub fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<i64, ClientError> {
        let (_, connection) = self.cluster.leader_connection(topic, partition)?;
        let request = ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(text(topic)))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(timestamp)])]);
        let (response, _) = connection.send(&request)?;
        let addr = connection.addr().to_owned();
        let p = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| ClientError::MissingInResponse {
                addr,
                what: format!("a ListOffsets result for {topic}-{partition}"),
            })?;
        check_error_code(p.error_code, None, || {
            format!("listing offsets of {topic}-{partition}")
        })?;
        if p.offset < 0 && timestamp >= 0 {
            return self.list_offset(topic, partition, -1);
        }
        Ok(p.offset)
    }

    /// The offset `spec` resolves to on one partition; explicit offsets are clamped into the
    /// log.
    pub fn reset_target(
        &mut self,
        topic: &str,
        partition: i32,
        spec: ResetSpec,
    ) -> Result<i64, ClientError> {
        match spec {
            ResetSpec::Earliest => self.list_offset(topic, partition, -2),
            ResetSpec::Latest => self.list_offset(topic, partition, -1),
            ResetSpec::Timestamp(timestamp_ms) => self.list_offset(topic, partition, timestamp_ms),
            ResetSpec::Offset(offset) => {
                let start = self.list_offset(topic, partition, -2)?;
                let end = self.list_offset(topic, partition, -1)?;
                Ok(offset.clamp(start, end))
            }
        }
    }

    /// Partition indexes of `topic`.
    pub fn partitions(&mut self, topic: &str) -> Result<Vec<i32>, ClientError> {
        Ok(self
            .cluster
            .topic(topic)?
            .partitions
            .iter()
            .map(|p| p.partition)
            .collect())
    }

    /// Commits `offsets` for `group` from outside the group protocol (generation -1); the
    /// coordinator refuses while the group has members.
    pub fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &[(String, i32, i64)],
    ) -> Result<(), ClientError> {
        let topics = offsets_by_topic(offsets)
            .into_iter()
            .map(|(topic, partitions)| {
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(text(topic)))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(partition, offset)| {
                                OffsetCommitRequestPartition::default()
                                    .with_partition_index(partition)
                                    .with_committed_offset(offset)
                            })
                            .collect(),
                    )
            })
            .collect();
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(topics);
        let (_, connection) = self.coordinator(group)?;
        let (response, _) = connection.send(&request)?;
        for t in response.topics {
            for p in t.partitions {
                check_error_code(p.error_code, None, || {
                    format!(
                        "committing offsets of group '{group}' for {}-{}",
                        t.name.0, p.partition_index
                    )
                })?;
            }
        }
        Ok(())
    }

    pub fn delete_group(&mut self, group: &str) -> Result<(), ClientError> {
        let (_, connection) = self.coordinator(group)?;
        let request = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text(group))]);
        let (response, _) = connection.send(&request)?;
        for result in response.results {
            check_error_code(result.error_code, None, || {
                format!("deleting group '{group}'")
            })?;
        }
        Ok(())
    }
}
