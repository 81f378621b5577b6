//! CreateAcls, DescribeAcls and DeleteAcls. Reads answer from this shard's replica of the
//! ACLs; changes go to the catalog owner, which answers once every shard has them.
//!
//! As in Kafka: without an authorizer they answer SECURITY_DISABLED; changing ACLs needs
//! ALTER on the cluster and describing them DESCRIBE, else CLUSTER_AUTHORIZATION_FAILED.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::create_acls_request::CreateAclsRequest;
use kafka_protocol::messages::create_acls_response::{AclCreationResult, CreateAclsResponse};
use kafka_protocol::messages::delete_acls_request::DeleteAclsRequest;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl, DeleteAclsResponse,
};
use kafka_protocol::messages::describe_acls_request::DescribeAclsRequest;
use kafka_protocol::messages::describe_acls_response::{
    AclDescription, DescribeAclsResource, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::{
    AclBinding, AclFilter, AclOperation, AclPermission, InvalidAcl, PatternType, ResourceType,
    CLUSTER_RESOURCE_NAME,
};
use crate::security::Session;
use crate::server::connection::Reply;
use crate::server::error_codes::admin_error;
use crate::shard::control::AdminRequest;
use crate::shard::Shard;

const NO_AUTHORIZER: &str = "No Authorizer is configured.";

/// Why a whole request is refused before looking at its contents.
fn refusal(
    shard: &Shard,
    session: &Session,
    operation: AclOperation,
) -> Option<(ResponseError, Option<StrBytes>)> {
    if !shard.config.authorizer.enabled {
        return Some((
            ResponseError::SecurityDisabled,
            Some(StrBytes::from_static_str(NO_AUTHORIZER)),
        ));
    }
    let allowed = shard.authorize(
        session,
        operation,
        ResourceType::Cluster,
        CLUSTER_RESOURCE_NAME,
    );
    (!allowed).then_some((ResponseError::ClusterAuthorizationFailed, None))
}

fn text(message: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(message.into()))
}

fn creation(acl: &kafka_protocol::messages::create_acls_request::AclCreation) -> AclBinding {
    // Undefined codes become ANY, which validation refuses with Kafka's message.
    AclBinding {
        resource_type: ResourceType::from_code(acl.resource_type).unwrap_or(ResourceType::Any),
        resource_name: acl.resource_name.to_string(),
        pattern_type: PatternType::from_code(acl.resource_pattern_type).unwrap_or(PatternType::Any),
        principal: acl.principal.to_string(),
        host: acl.host.to_string(),
        operation: AclOperation::from_code(acl.operation).unwrap_or(AclOperation::Any),
        permission: AclPermission::from_code(acl.permission_type).unwrap_or(AclPermission::Any),
    }
}

pub fn create_acls(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: CreateAclsRequest = ctx.decode(&mut body)?;
    if let Some((error, message)) = refusal(shard, session, AclOperation::Alter) {
        let result = AclCreationResult::default()
            .with_error_code(code(error))
            .with_error_message(message);
        let results = vec![result; request.creations.len()];
        return ctx.reply(&CreateAclsResponse::default().with_results(results));
    }
    let checked: Vec<Result<AclBinding, InvalidAcl>> = request
        .creations
        .iter()
        .map(|c| {
            let acl = creation(c);
            acl.validate().map(|()| acl)
        })
        .collect();
    let valid: Vec<AclBinding> = checked.iter().filter_map(|c| c.clone().ok()).collect();
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let stored = if valid.is_empty() {
            Ok(())
        } else {
            shard
                .admin(|reply| AdminRequest::CreateAcls { acls: valid, reply })
                .await
                .and_then(|r| r)
        };
        let results = checked
            .into_iter()
            .map(|c| match (c, &stored) {
                (Err(invalid), _) => AclCreationResult::default()
                    .with_error_code(code(ResponseError::InvalidRequest))
                    .with_error_message(text(invalid.0)),
                (Ok(_), Ok(())) => AclCreationResult::default(),
                (Ok(_), Err(e)) => AclCreationResult::default()
                    .with_error_code(code(admin_error(e)))
                    .with_error_message(text(e.to_string())),
            })
            .collect();
        ctx.encode(&CreateAclsResponse::default().with_results(results))
    })))
}

pub fn describe_acls(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: DescribeAclsRequest = ctx.decode(&mut body)?;
    if let Some((error, message)) = refusal(shard, session, AclOperation::Describe) {
        let response = DescribeAclsResponse::default()
            .with_error_code(code(error))
            .with_error_message(message);
        return ctx.reply(&response);
    }
    let filter = AclFilter::from_codes(
        request.resource_type_filter,
        request.resource_name_filter.map(|n| n.to_string()),
        request.pattern_type_filter,
        request.principal_filter.map(|p| p.to_string()),
        request.host_filter.map(|h| h.to_string()),
        request.operation,
        request.permission_type,
    );
    let filter = match filter {
        Ok(filter) => filter,
        Err(invalid) => {
            let response = DescribeAclsResponse::default()
                .with_error_code(code(ResponseError::InvalidRequest))
                .with_error_message(text(invalid.0));
            return ctx.reply(&response);
        }
    };
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    for acl in shard.acls(&filter) {
        let description = AclDescription::default()
            .with_principal(StrBytes::from_string(acl.principal))
            .with_host(StrBytes::from_string(acl.host))
            .with_operation(acl.operation.code())
            .with_permission_type(acl.permission.code());
        let same_resource = |r: &&mut DescribeAclsResource| {
            r.resource_type == acl.resource_type.code()
                && r.pattern_type == acl.pattern_type.code()
                && *r.resource_name == *acl.resource_name
        };
        match resources.iter_mut().find(same_resource) {
            Some(resource) => resource.acls.push(description),
            None => resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(acl.resource_type.code())
                    .with_resource_name(StrBytes::from_string(acl.resource_name))
                    .with_pattern_type(acl.pattern_type.code())
                    .with_acls(vec![description]),
            ),
        }
    }
    ctx.reply(&DescribeAclsResponse::default().with_resources(resources))
}

pub fn delete_acls(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: DeleteAclsRequest = ctx.decode(&mut body)?;
    if let Some((error, message)) = refusal(shard, session, AclOperation::Alter) {
        let result = DeleteAclsFilterResult::default()
            .with_error_code(code(error))
            .with_error_message(message);
        let results = vec![result; request.filters.len()];
        return ctx.reply(&DeleteAclsResponse::default().with_filter_results(results));
    }
    let checked: Vec<Result<AclFilter, InvalidAcl>> = request
        .filters
        .into_iter()
        .map(|f| {
            AclFilter::from_codes(
                f.resource_type_filter,
                f.resource_name_filter.map(|n| n.to_string()),
                f.pattern_type_filter,
                f.principal_filter.map(|p| p.to_string()),
                f.host_filter.map(|h| h.to_string()),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let valid: Vec<AclFilter> = checked.iter().filter_map(|c| c.clone().ok()).collect();
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let deleted = if valid.is_empty() {
            Ok(Vec::new())
        } else {
            shard
                .admin(|reply| AdminRequest::DeleteAcls {
                    filters: valid,
                    reply,
                })
                .await
                .and_then(|r| r)
        };
        let mut matched = match &deleted {
            Ok(matched) => matched.clone().into_iter(),
            Err(_) => Vec::new().into_iter(),
        };
        let results = checked
            .into_iter()
            .map(|c| match (c, &deleted) {
                (Err(invalid), _) => DeleteAclsFilterResult::default()
                    .with_error_code(code(ResponseError::InvalidRequest))
                    .with_error_message(text(invalid.0)),
                (Ok(_), Err(e)) => DeleteAclsFilterResult::default()
                    .with_error_code(code(admin_error(e)))
                    .with_error_message(text(e.to_string())),
                (Ok(_), Ok(_)) => DeleteAclsFilterResult::default().with_matching_acls(
                    matched
                        .next()
                        .unwrap_or_default()
                        .into_iter()
                        .map(matching_acl)
                        .collect(),
                ),
            })
            .collect();
        ctx.encode(&DeleteAclsResponse::default().with_filter_results(results))
    })))
}

fn matching_acl(acl: AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(acl.resource_type.code())
        .with_resource_name(StrBytes::from_string(acl.resource_name))
        .with_pattern_type(acl.pattern_type.code())
        .with_principal(StrBytes::from_string(acl.principal))
        .with_host(StrBytes::from_string(acl.host))
        .with_operation(acl.operation.code())
        .with_permission_type(acl.permission.code())
}
