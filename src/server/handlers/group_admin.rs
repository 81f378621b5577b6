//! ListGroups, DescribeGroups and DeleteGroups. Each broker (shard) lists the groups it
//! coordinates; clients ask every broker, as they do with Kafka.
//!
//! Share groups are listed beside consumer groups (type and protocol type `share`) and
//! deleted by DeleteGroups like them; DescribeGroups answers for a share group as Kafka
//! does for any group that is not a classic group (`Dead`, and GROUP_ID_NOT_FOUND from
//! version 6), since ShareGroupDescribe is the API that describes it.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition,
};
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::delete_groups_response::{
    DeletableGroupResult, DeleteGroupsResponse,
};
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};
use kafka_protocol::messages::{GroupId, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::group_errors::{error_code, group_error_code};
use super::share_errors::share_error_code;
use super::{access, RequestContext};
use crate::group::consumer_group::Partitions;
use crate::group::group_coordinator::GroupListing;
use crate::group::GroupError;
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::Reply;
use crate::shard::share_admin;
use crate::shard::Shard;

/// ListGroups' group type and protocol type of a share group (Kafka's `ShareGroup`).
const SHARE_GROUP_TYPE: &str = "share";

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub fn list_groups(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: ListGroupsRequest = ctx.decode(&mut body)?;
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_string())
        .collect();
    let types: Vec<String> = request.types_filter.iter().map(|s| s.to_string()).collect();
    let mut listings = shard.groups().list(&states, &types);
    listings.extend(
        shard
            .share()
            .list_groups()
            .into_iter()
            .map(|(group_id, state)| GroupListing {
                group_id,
                protocol_type: SHARE_GROUP_TYPE.to_owned(),
                state: state.to_owned(),
                group_type: SHARE_GROUP_TYPE.to_owned(),
            })
            .filter(|listing| listing.matches(&states, &types)),
    );
    // Kafka: DESCRIBE on the cluster lists every group, else those the session may describe.
    if !access::cluster(shard, session, AclOperation::Describe) {
        listings.retain(|l| access::group(shard, session, AclOperation::Describe, &l.group_id));
    }
    listings.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    let groups = listings
        .into_iter()
        .map(|listing| {
            let mut group = ListedGroup::default()
                .with_group_id(GroupId(text(&listing.group_id)))
                .with_protocol_type(text(&listing.protocol_type));
            if ctx.version >= 4 {
                group.group_state = text(&listing.state);
            }
            if ctx.version >= 5 {
                group.group_type = text(&listing.group_type);
            }
            group
        })
        .collect();
    ctx.reply(&ListGroupsResponse::default().with_groups(groups))
}

/// A KIP-848 member's partitions in the classic consumer assignment format, so that
/// DescribeGroups shows consumer groups too.
fn classic_assignment(partitions: &Partitions) -> Bytes {
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        partitions
            .iter()
            .map(|(topic, parts)| {
                TopicPartition::default()
                    .with_topic(TopicName(text(topic)))
                    .with_partitions(parts.iter().copied().collect())
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&0i16.to_be_bytes());
    if assignment.encode(&mut buf, 0).is_err() {
        return Bytes::new();
    }
    buf.freeze()
}

pub fn describe_groups(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: DescribeGroupsRequest = ctx.decode(&mut body)?;
    let version = ctx.version;
    let mut groups: Vec<DescribedGroup> = request
        .groups
        .iter()
        .map(|group_id| {
            let mut described = DescribedGroup::default().with_group_id(group_id.clone());
            if !access::group(shard, session, AclOperation::Describe, group_id) {
                described.error_code = code(ResponseError::GroupAuthorizationFailed);
                return described;
            }
            match shard.groups().describe(group_id) {
                Err(error) => {
                    described.error_code = group_error_code(&error);
                    if version >= 6 {
                        described.error_message = Some(text(&error.to_string()));
                    }
                }
                Ok(description)
                    if description.state == "Dead" && shard.share().has_group(group_id) =>
                {
                    described.group_state = text("Dead");
                    if version >= 6 {
                        described.error_code = code(ResponseError::GroupIdNotFound);
                        described.error_message = Some(text(&format!(
                            "Group {} is not a classic group.",
                            group_id.as_str()
                        )));
                    }
                }
                Ok(description) => {
                    if description.state == "Dead" && version >= 6 {
                        described.error_code = code(ResponseError::GroupIdNotFound);
                    }
                    described.group_state = text(&description.state);
                    described.protocol_type = text(&description.protocol_type);
                    described.protocol_data = text(&description.protocol_data);
                    let consumer = description.group_type == "consumer";
                    described.members = description
                        .members
                        .into_iter()
                        .map(|m| {
                            let mut member = DescribedGroupMember::default()
                                .with_member_id(text(&m.member_id))
                                .with_client_id(text(&m.client_id))
                                .with_client_host(text(&m.client_host))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(if consumer {
                                    classic_assignment(&m.partitions)
                                } else {
                                    m.assignment
                                });
                            if version >= 4 {
                                member.group_instance_id = m.group_instance_id.as_deref().map(text);
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
    ctx.reply(&DescribeGroupsResponse::default().with_groups(groups))
}

pub fn delete_groups(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: DeleteGroupsRequest = ctx.decode(&mut body)?;
    // Consumer groups are deleted at once (durably later); share groups need their
    // shards, so their deletion runs in the deferred answer.
    let pending: Vec<(GroupId, Option<Option<Result<_, GroupError>>>)> = request
        .groups_names
        .into_iter()
        .map(|group_id| {
            if !access::group(shard, session, AclOperation::Delete, &group_id) {
                return (group_id, None);
            }
            let outcome =
                (!shard.share().has_group(&group_id)).then(|| shard.groups().delete(&group_id));
            (group_id, Some(outcome))
        })
        .collect();
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let mut results = Vec::with_capacity(pending.len());
        for (group_id, outcome) in pending {
            let Some(outcome) = outcome else {
                let denied = code(ResponseError::GroupAuthorizationFailed);
                results.push(
                    DeletableGroupResult::default()
                        .with_group_id(group_id)
                        .with_error_code(denied),
                );
                continue;
            };
            let result_code = match outcome {
                Some(Ok(durable)) => error_code(durable.await.err().as_ref()),
                Some(Err(error)) => group_error_code(&error),
                None => share_admin::delete_group(&shard, &group_id)
                    .await
                    .err()
                    .map_or(0, |error| share_error_code(&error)),
            };
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(group_id)
                    .with_error_code(result_code),
            );
        }
        ctx.encode(&DeleteGroupsResponse::default().with_results(results))
    })))
}
