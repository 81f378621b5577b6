//! Share-group administration: describe a group (ShareGroupDescribe) and its start offsets
//! (DescribeShareGroupOffsets), move them (AlterShareGroupOffsets), forget them
//! (DeleteShareGroupOffsets). Listing and deleting groups are [`GroupAdmin`]'s ListGroups
//! and DeleteGroups, which cover share groups too. Requests about a group go to its
//! coordinator.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_share_group_offsets_request::{
    AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsRequestPartition,
    AlterShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_request::{
    DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::describe_share_group_offsets_request::{
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsRequestGroup,
};
use kafka_protocol::messages::share_group_describe_request::ShareGroupDescribeRequest;
use kafka_protocol::messages::{GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::error::{check_error_code, ClientError};
use super::group_admin::{offsets_by_topic, GroupAdmin};
use crate::protocol::share_extensions;

/// ListGroups' type of a share group.
pub const SHARE_GROUP_TYPE: &str = "share";

#[derive(Debug, Clone)]
pub struct ShareMember {
    pub member_id: String,
    pub member_epoch: i32,
    pub rack_id: Option<String>,
    pub subscribed: Vec<String>,
    /// Topic → partitions. Members of a share group share partitions.
    pub assignment: BTreeMap<String, Vec<i32>>,
}

#[derive(Debug, Clone)]
pub struct ShareGroupDescription {
    pub group_id: String,
    pub state: String,
    pub group_epoch: i32,
    pub assignor: String,
    pub coordinator_id: i32,
    pub members: Vec<ShareMember>,
}

/// One share-partition as DescribeShareGroupOffsets reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareOffset {
    pub topic: String,
    pub partition: i32,
    /// -1 when the group has no state for the partition yet.
    pub start_offset: i64,
    /// From DescribeShareGroupOffsets v1 (Kafka 4.2); `None` from older brokers.
    pub lag: Option<i64>,
    /// sluice's tagged-field extension; `None` from other brokers.
    pub in_flight: Option<u32>,
}

pub struct ShareAdmin {
    groups: GroupAdmin,
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl ShareAdmin {
    pub fn new(groups: GroupAdmin) -> Self {
        Self { groups }
    }

    /// The consumer-group admin this wraps (ListGroups, DeleteGroups, ListOffsets).
    pub fn groups(&mut self) -> &mut GroupAdmin {
        &mut self.groups
    }

    /// ShareGroupDescribe of one group. A group that does not exist is
    /// GROUP_ID_NOT_FOUND ([`ClientError::response_error`]).
    pub fn describe_group(&mut self, group: &str) -> Result<ShareGroupDescription, ClientError> {
        let (coordinator_id, connection) = self.groups.coordinator(group)?;
        let request =
            ShareGroupDescribeRequest::default().with_group_ids(vec![GroupId(text(group))]);
        let (response, _) = connection.send(&request)?;
        let addr = connection.addr().to_owned();
        let described =
            response
                .groups
                .into_iter()
                .next()
                .ok_or_else(|| ClientError::MissingInResponse {
                    addr,
                    what: format!("share group '{group}'"),
                })?;
        check_error_code(
            described.error_code,
            described.error_message.as_deref(),
            || format!("describing share group '{group}'"),
        )?;
        Ok(ShareGroupDescription {
            group_id: group.to_owned(),
            state: described.group_state.to_string(),
            group_epoch: described.group_epoch,
            assignor: described.assignor_name.to_string(),
            coordinator_id,
            members: described
                .members
                .into_iter()
                .map(|m| ShareMember {
                    member_id: m.member_id.to_string(),
                    member_epoch: m.member_epoch,
                    rack_id: m.rack_id.map(|r| r.to_string()),
                    subscribed: m
                        .subscribed_topic_names
                        .iter()
                        .map(|t| t.0.to_string())
                        .collect(),
                    assignment: m
                        .assignment
                        .topic_partitions
                        .into_iter()
                        .map(|tp| (tp.topic_name.0.to_string(), tp.partitions))
                        .collect(),
                })
                .collect(),
        })
    }

    /// DescribeShareGroupOffsets of every share-partition the group has, sorted.
    pub fn start_offsets(&mut self, group: &str) -> Result<Vec<ShareOffset>, ClientError> {
        let (_, connection) = self.groups.coordinator(group)?;
        let request = DescribeShareGroupOffsetsRequest::default().with_groups(vec![
            DescribeShareGroupOffsetsRequestGroup::default()
                .with_group_id(GroupId(text(group)))
                .with_topics(None),
        ]);
        let (response, version) = connection.send(&request)?;
        let context = || format!("describing the start offsets of share group '{group}'");
        let mut offsets = Vec::new();
        for g in response.groups {
            check_error_code(g.error_code, g.error_message.as_deref(), context)?;
            for t in g.topics {
                for p in t.partitions {
                    check_error_code(p.error_code, p.error_message.as_deref(), context)?;
                    offsets.push(ShareOffset {
                        topic: t.topic_name.0.to_string(),
                        partition: p.partition_index,
                        start_offset: p.start_offset,
                        lag: (version >= 1 && p.lag >= 0).then_some(p.lag),
                        in_flight: share_extensions::in_flight(&p.unknown_tagged_fields),
                    });
                }
            }
        }
        offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(offsets)
    }

    /// AlterShareGroupOffsets: `(topic, partition, start offset)`. The coordinator refuses
    /// with NON_EMPTY_GROUP while the group has members.
    pub fn alter_start_offsets(
        &mut self,
        group: &str,
        starts: &[(String, i32, i64)],
    ) -> Result<(), ClientError> {
        let topics = offsets_by_topic(starts)
            .into_iter()
            .map(|(topic, partitions)| {
                AlterShareGroupOffsetsRequestTopic::default()
                    .with_topic_name(TopicName(text(topic)))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(partition, offset)| {
                                AlterShareGroupOffsetsRequestPartition::default()
                                    .with_partition_index(partition)
                                    .with_start_offset(offset)
                            })
                            .collect(),
                    )
            })
            .collect();
        let request = AlterShareGroupOffsetsRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_topics(topics);
        let (_, connection) = self.groups.coordinator(group)?;
        let (response, _) = connection.send(&request)?;
        check_error_code(
            response.error_code,
            response.error_message.as_deref(),
            || format!("resetting the start offsets of share group '{group}'"),
        )?;
        for t in response.responses {
            for p in t.partitions {
                check_error_code(p.error_code, p.error_message.as_deref(), || {
                    format!(
                        "resetting the start offset of share group '{group}' on {}-{}",
                        t.topic_name.0, p.partition_index
                    )
                })?;
            }
        }
        Ok(())
    }

    /// DeleteShareGroupOffsets: forgets the group's state for `topics`.
    pub fn delete_start_offsets(
        &mut self,
        group: &str,
        topics: &[String],
    ) -> Result<(), ClientError> {
        let request = DeleteShareGroupOffsetsRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        DeleteShareGroupOffsetsRequestTopic::default()
                            .with_topic_name(TopicName(text(t)))
                    })
                    .collect(),
            );
        let (_, connection) = self.groups.coordinator(group)?;
        let (response, _) = connection.send(&request)?;
        check_error_code(
            response.error_code,
            response.error_message.as_deref(),
            || format!("deleting the start offsets of share group '{group}'"),
        )?;
        for t in response.responses {
            check_error_code(t.error_code, t.error_message.as_deref(), || {
                format!(
                    "deleting the start offsets of share group '{group}' for topic '{}'",
                    t.topic_name.0
                )
            })?;
        }
        Ok(())
    }
}

/// Whether `error` says the group does not exist.
pub fn is_group_not_found(error: &ClientError) -> bool {
    error.response_error() == Some(ResponseError::GroupIdNotFound)
}

/// Whether `error` says the group still has members.
pub fn is_non_empty_group(error: &ClientError) -> bool {
    error.response_error() == Some(ResponseError::NonEmptyGroup)
}
