//! The classic group protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup. JoinGroup and
//! SyncGroup answers that wait for the rest of the group are deferred, so they keep their
//! place in the connection's reply order.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::heartbeat_response::HeartbeatResponse;
use kafka_protocol::messages::join_group_request::JoinGroupRequest;
use kafka_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use kafka_protocol::messages::leave_group_request::LeaveGroupRequest;
use kafka_protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};
use kafka_protocol::messages::sync_group_request::SyncGroupRequest;
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use kafka_protocol::protocol::StrBytes;

use super::group_errors::{error_code, group_error_code};
use super::{access, ClientIdentity, RequestContext};
use crate::group::classic_group::{JoinRequest, JoinResult, Pending, SyncResult};
use crate::group::GroupError;
use crate::protocol::ProtocolError;
use crate::protocol::{code, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::{now_ms, Reply};
use crate::shard::Shard;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn join_response(version: i16, result: JoinResult) -> JoinGroupResponse {
    // A MEMBER_ID_REQUIRED answer carries the id the member must join with.
    let member_id = match &result.error {
        Some(GroupError::MemberIdRequired(id)) => id.clone(),
        _ => result.member_id.clone(),
    };
    let mut response = JoinGroupResponse::default()
        .with_error_code(error_code(result.error.as_ref()))
        .with_generation_id(result.generation_id)
        .with_leader(text(&result.leader_id))
        .with_member_id(text(&member_id));
    // protocol_name is nullable only from v7, like protocol_type which v7 adds.
    let protocol_name = result.protocol_name.as_deref().map(text);
    if version >= 7 {
        response.protocol_type = result.protocol_type.as_deref().map(text);
        response.protocol_name = protocol_name;
    } else {
        response.protocol_name = Some(protocol_name.unwrap_or_default());
    }
    response.members = result
        .members
        .into_iter()
        .map(|(member_id, instance_id, metadata)| {
            let mut member = JoinGroupResponseMember::default()
                .with_member_id(text(&member_id))
                .with_metadata(metadata);
            if version >= 5 {
                member.group_instance_id = instance_id.as_deref().map(text);
            }
            member
        })
        .collect();
    response
}

pub fn join_group(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    client: ClientIdentity,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: JoinGroupRequest = ctx.decode(&mut body)?;
    if !access::group(shard, session, AclOperation::Read, &request.group_id) {
        let refused = JoinGroupResponse::default()
            .with_error_code(code(ResponseError::GroupAuthorizationFailed));
        return ctx.reply(&refused);
    }
    let version = ctx.version;
    let member_id = request.member_id.to_string();
    let join = JoinRequest {
        member_id: member_id.clone(),
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: client.client_id,
        client_host: client.client_host,
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    match shard.groups().join(&request.group_id.0, join, now_ms()) {
        Ok(Pending::Now(result)) => ctx.reply(&join_response(version, result)),
        Ok(Pending::Later(answer)) => Ok(Reply::Deferred(Box::pin(async move {
            let result = answer
                .await
                .unwrap_or_else(|_| JoinResult::error(GroupError::ShuttingDown, member_id));
            ctx.encode(&join_response(version, result))
        }))),
        Err(error) => ctx.reply(&join_response(version, JoinResult::error(error, member_id))),
    }
}

fn sync_response(version: i16, result: SyncResult) -> SyncGroupResponse {
    let mut response = SyncGroupResponse::default()
        .with_error_code(error_code(result.error.as_ref()))
        .with_assignment(result.assignment);
    if version >= 5 {
        response.protocol_type = result.protocol_type.as_deref().map(text);
        response.protocol_name = result.protocol_name.as_deref().map(text);
    }
    response
}

pub fn sync_group(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: SyncGroupRequest = ctx.decode(&mut body)?;
    if !access::group(shard, session, AclOperation::Read, &request.group_id) {
        let refused = SyncGroupResponse::default()
            .with_error_code(code(ResponseError::GroupAuthorizationFailed));
        return ctx.reply(&refused);
    }
    let version = ctx.version;
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let outcome = shard.groups().sync(
        &request.group_id.0,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
        (
            request.protocol_type.as_deref(),
            request.protocol_name.as_deref(),
        ),
        assignments,
        now_ms(),
    );
    match outcome {
        Ok(Pending::Now(result)) => ctx.reply(&sync_response(version, result)),
        Ok(Pending::Later(answer)) => Ok(Reply::Deferred(Box::pin(async move {
            let result = answer
                .await
                .unwrap_or_else(|_| SyncResult::error(GroupError::ShuttingDown));
            ctx.encode(&sync_response(version, result))
        }))),
        Err(error) => ctx.reply(&sync_response(version, SyncResult::error(error))),
    }
}

pub fn heartbeat(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: HeartbeatRequest = ctx.decode(&mut body)?;
    if !access::group(shard, session, AclOperation::Read, &request.group_id) {
        let refused = HeartbeatResponse::default()
            .with_error_code(code(ResponseError::GroupAuthorizationFailed));
        return ctx.reply(&refused);
    }
    let outcome = shard.groups().heartbeat(
        &request.group_id.0,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
        now_ms(),
    );
    ctx.reply(&HeartbeatResponse::default().with_error_code(error_code(outcome.err().as_ref())))
}

pub fn leave_group(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: LeaveGroupRequest = ctx.decode(&mut body)?;
    if !access::group(shard, session, AclOperation::Read, &request.group_id) {
        let refused = LeaveGroupResponse::default()
            .with_error_code(code(ResponseError::GroupAuthorizationFailed));
        return ctx.reply(&refused);
    }
    let members: Vec<(String, Option<String>)> = if ctx.version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let outcome = shard
        .groups()
        .leave(&request.group_id.0, &members, now_ms());
    let mut response = LeaveGroupResponse::default();
    match outcome {
        Err(error) => response.error_code = group_error_code(&error),
        Ok(results) if ctx.version >= 3 => {
            response.members = members
                .into_iter()
                .zip(results)
                .map(|((member_id, instance_id), result)| {
                    MemberResponse::default()
                        .with_member_id(text(&member_id))
                        .with_group_instance_id(instance_id.as_deref().map(text))
                        .with_error_code(error_code(result.err().as_ref()))
                })
                .collect();
        }
        Ok(results) => {
            response.error_code = error_code(results.first().and_then(|r| r.as_ref().err()));
        }
    }
    ctx.reply(&response)
}
