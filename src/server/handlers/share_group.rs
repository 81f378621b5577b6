//! ShareGroupHeartbeat and ShareGroupDescribe (KIP-932), served by the group's coordinator
//! shard. Topic ids are translated to names here, at the protocol edge.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::share_group_describe_request::ShareGroupDescribeRequest;
use kafka_protocol::messages::share_group_describe_response::{
    self as describe, ShareGroupDescribeResponse,
};
use kafka_protocol::messages::share_group_heartbeat_request::ShareGroupHeartbeatRequest;
use kafka_protocol::messages::share_group_heartbeat_response::{
    Assignment, ShareGroupHeartbeatResponse, TopicPartitions,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use super::share_errors::share_error_code;
use super::{access, ClientIdentity, RequestContext};
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::{now_ms, Reply};
use crate::shard::Shard;
use crate::share::share_group::HeartbeatRequest;

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
    let request: ShareGroupHeartbeatRequest = ctx.decode(&mut body)?;
    let group_id = request.group_id.0.as_str();
    if !access::group(shard, session, AclOperation::Read, group_id) {
        let denied = code(ResponseError::GroupAuthorizationFailed);
        return ctx.reply(&ShareGroupHeartbeatResponse::default().with_error_code(denied));
    }
    let group = request.group_id.0.to_string();
    let heartbeat = HeartbeatRequest {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        rack_id: request.rack_id.as_ref().map(|s| s.to_string()),
        client_id: client.client_id,
        client_host: client.client_host,
        subscribed_topic_names: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.0.to_string()).collect()),
    };
    let topic = |name: &str| shard.topic(name).map(|m| (m.id, m.partition_count));
    let mut response = ShareGroupHeartbeatResponse::default();
    match shard.share().heartbeat(&group, heartbeat, &topic, now_ms()) {
        Err(error) => {
            tracing::debug!(%group, %error, "ShareGroupHeartbeat refused");
            response.error_code = share_error_code(&error);
            response.error_message = Some(text(&error.to_string()));
        }
        Ok(result) => {
            response.member_id = Some(text(&result.member_id));
            response.member_epoch = result.member_epoch;
            response.heartbeat_interval_ms =
                shard.share().group_config(&group).heartbeat_interval_ms;
            response.assignment = result.assignment.map(|assignment| {
                Assignment::default().with_topic_partitions(
                    assignment
                        .into_values()
                        .map(|topic| {
                            TopicPartitions::default()
                                .with_topic_id(topic.id)
                                .with_partitions(topic.partitions.into_iter().collect())
                        })
                        .collect(),
                )
            });
        }
    }
    ctx.reply(&response)
}

pub fn describe(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: ShareGroupDescribeRequest = ctx.decode(&mut body)?;
    let mut groups: Vec<describe::DescribedGroup> = request
        .group_ids
        .iter()
        .map(|group_id| {
            let mut described = describe::DescribedGroup::default()
                .with_group_id(group_id.clone())
                .with_authorized_operations(i32::MIN);
            // Kafka: DESCRIBE on the group, else GROUP_AUTHORIZATION_FAILED for that group.
            if !access::group(shard, session, AclOperation::Describe, group_id) {
                described.error_code = code(ResponseError::GroupAuthorizationFailed);
                return described;
            }
            match shard.share().describe_group(group_id) {
                Err(error) => {
                    described.error_code = share_error_code(&error);
                    described.error_message = Some(text(&error.to_string()));
                }
                Ok(group) => {
                    described.group_state = text(group.state());
                    described.group_epoch = group.group_epoch;
                    described.assignment_epoch = group.group_epoch;
                    described.assignor_name = text("simple");
                    described.members = group
                        .members
                        .values()
                        .map(|m| {
                            let assignment = describe::Assignment::default().with_topic_partitions(
                                m.assignment
                                    .iter()
                                    // A topic deleted since the member's last heartbeat is
                                    // no longer described, as before ids were kept.
                                    .filter(|(name, topic)| {
                                        shard.topic(name).is_some_and(|m| m.id == topic.id)
                                    })
                                    .map(|(name, topic)| {
                                        describe::TopicPartitions::default()
                                            .with_topic_id(topic.id)
                                            .with_topic_name(TopicName(text(name)))
                                            .with_partitions(
                                                topic.partitions.iter().copied().collect(),
                                            )
                                    })
                                    .collect(),
                            );
                            describe::Member::default()
                                .with_member_id(text(&m.member_id))
                                .with_rack_id(m.rack_id.as_deref().map(text))
                                .with_client_id(text(&m.client_id))
                                .with_client_host(text(&m.client_host))
                                .with_member_epoch(m.member_epoch)
                                .with_subscribed_topic_names(
                                    m.subscribed.iter().map(|t| TopicName(text(t))).collect(),
                                )
                                .with_assignment(assignment)
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
    ctx.reply(&ShareGroupDescribeResponse::default().with_groups(groups))
}
