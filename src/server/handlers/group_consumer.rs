//! KIP-848: ConsumerGroupHeartbeat and ConsumerGroupDescribe. The coordinator works with
//! topic names; topic ids are translated here, at the protocol edge.

use std::collections::BTreeSet;
use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::consumer_group_describe_response::{
    self as describe, ConsumerGroupDescribeResponse,
};
use kafka_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment, ConsumerGroupHeartbeatResponse, TopicPartitions,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use super::group_errors::group_error_code;
use super::{access, ClientIdentity, RequestContext};
use crate::group::consumer_group::{HeartbeatRequest, Partitions};
use crate::group::group_coordinator::ConsumerGroupTimeouts;
use crate::group::TopicCatalog;
use crate::protocol::ProtocolError;
use crate::protocol::{code, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::{now_ms, Reply};
use crate::shard::Shard;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub fn heartbeat(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    client: ClientIdentity,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: ConsumerGroupHeartbeatRequest = ctx.decode(&mut body)?;
    if !access::group(shard, session, AclOperation::Read, &request.group_id) {
        let refused = ConsumerGroupHeartbeatResponse::default()
            .with_error_code(code(ResponseError::GroupAuthorizationFailed));
        return ctx.reply(&refused);
    }
    let mut response = ConsumerGroupHeartbeatResponse::default();
    // Owned partitions arrive by topic id; ids of deleted topics are dropped.
    let owned = request.topic_partitions.as_ref().map(|topics| {
        let mut owned = Partitions::new();
        for t in topics {
            if let Some(meta) = shard.topic_by_id(t.topic_id) {
                owned
                    .entry(meta.name)
                    .or_default()
                    .extend(t.partitions.iter().copied());
            }
        }
        owned
    });
    let heartbeat = HeartbeatRequest {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: request.rack_id.as_ref().map(|s| s.to_string()),
        client_id: client.client_id,
        client_host: client.client_host,
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.0.to_string()).collect()),
        subscribed_topic_regex: request
            .subscribed_topic_regex
            .as_ref()
            .map(|regex| regex.to_string()),
        server_assignor: request.server_assignor.as_ref().map(|s| s.to_string()),
        owned,
    };
    // The group's configs (set with IncrementalAlterConfigs on the GROUP) are kept with the
    // share-group configs, which every shard holds.
    let group_config = shard.share().group_config(&request.group_id.0);
    let timeouts = ConsumerGroupTimeouts {
        session_timeout_ms: group_config.consumer_session_timeout_ms,
        heartbeat_interval_ms: group_config.consumer_heartbeat_interval_ms,
    };
    match shard.groups().consumer_heartbeat(
        &request.group_id.0,
        heartbeat,
        &**shard,
        timeouts,
        now_ms(),
    ) {
        Err(error) => {
            tracing::debug!(group = %request.group_id.0, %error, "ConsumerGroupHeartbeat refused");
            response.error_code = group_error_code(&error);
            response.error_message = Some(text(&error.to_string()));
        }
        Ok(result) => {
            response.member_id = Some(text(&result.member_id));
            response.member_epoch = result.member_epoch;
            response.heartbeat_interval_ms = result.heartbeat_interval_ms;
            response.assignment = result.assignment.map(|partitions| {
                Assignment::default().with_topic_partitions(
                    partitions
                        .into_iter()
                        .filter_map(|(topic, parts)| {
                            let meta = shard.topic(&topic)?;
                            Some(
                                TopicPartitions::default()
                                    .with_topic_id(meta.id)
                                    .with_partitions(parts.into_iter().collect()),
                            )
                        })
                        .collect(),
                )
            });
        }
    }
    ctx.reply(&response)
}

/// The coordinator sees topics through the shard's replica of the catalog.
impl TopicCatalog for Shard {
    fn partition_count(&self, topic: &str) -> Option<i32> {
        self.topic(topic).map(|meta| meta.partition_count)
    }

    /// Internal topics are left out: they never match a subscription pattern, as in Kafka.
    fn topic_names(&self) -> Vec<String> {
        let names = self.topics().into_iter().map(|meta| meta.name);
        names
            .filter(|name| !crate::shard::placement::is_internal(name))
            .collect()
    }
}

fn described_assignment(shard: &Shard, partitions: &Partitions) -> describe::Assignment {
    describe::Assignment::default().with_topic_partitions(
        partitions
            .iter()
            .filter_map(|(topic, parts)| {
                let meta = shard.topic(topic)?;
                Some(
                    describe::TopicPartitions::default()
                        .with_topic_id(meta.id)
                        .with_topic_name(TopicName(text(topic)))
                        .with_partitions(parts.iter().copied().collect()),
                )
            })
            .collect(),
    )
}

pub fn describe(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: ConsumerGroupDescribeRequest = ctx.decode(&mut body)?;
    let mut groups: Vec<describe::DescribedGroup> = request
        .group_ids
        .iter()
        .map(|group_id| {
            let mut described = describe::DescribedGroup::default().with_group_id(group_id.clone());
            if !access::group(shard, session, AclOperation::Describe, group_id) {
                described.error_code = code(ResponseError::GroupAuthorizationFailed);
                return described;
            }
            match shard.groups().describe(group_id) {
                Err(error) => {
                    described.error_code = group_error_code(&error);
                    described.error_message = Some(text(&error.to_string()));
                }
                Ok(d) if d.group_type != "consumer" => {
                    let error = crate::group::GroupError::GroupIdNotFound(group_id.to_string());
                    described.error_code = group_error_code(&error);
                    described.error_message = Some(text(&format!("{error} as a consumer group")));
                }
                Ok(d) => {
                    described.group_state = text(&d.state);
                    described.group_epoch = d.group_epoch;
                    described.assignment_epoch = d.assignment_epoch;
                    described.assignor_name = text(&d.assignor);
                    described.members = d
                        .members
                        .iter()
                        .map(|m| {
                            let subscribed: BTreeSet<&String> = m.subscribed.iter().collect();
                            let mut member = describe::Member::default()
                                .with_member_id(text(&m.member_id))
                                .with_instance_id(m.group_instance_id.as_deref().map(text))
                                .with_rack_id(m.rack_id.as_deref().map(text))
                                .with_member_epoch(m.member_epoch)
                                .with_client_id(text(&m.client_id))
                                .with_client_host(text(&m.client_host))
                                .with_subscribed_topic_names(
                                    subscribed.into_iter().map(|t| TopicName(text(t))).collect(),
                                )
                                .with_subscribed_topic_regex(
                                    m.subscribed_regex.as_deref().map(text),
                                )
                                .with_assignment(described_assignment(shard, &m.partitions))
                                .with_target_assignment(described_assignment(shard, &m.target));
                            if ctx.version >= 1 {
                                member.member_type = 1;
                            }
                            member
                        })
                        .collect();
                }
            }
            described
        })
        .collect();
    if request.include_authorized_operations {
        for group in groups.iter_mut().filter(|g| g.error_code == 0) {
            group.authorized_operations = access::group_operations(shard, session, &group.group_id);
        }
    }
    ctx.reply(&ConsumerGroupDescribeResponse::default().with_groups(groups))
}
