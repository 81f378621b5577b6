//! ACL administration over CreateAcls, DescribeAcls and DeleteAcls.
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use super::cluster::Cluster;
use super::error::{check_error_code, ClientError};
use crate::security::acl::{
    AclBinding, AclFilter, AclOperation, AclPermission, PatternType, ResourceType,
};

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A binding from the wire's codes; codes this client does not know are an error.
fn binding(
    codes: (i8, i8, i8, i8),
    resource_name: &StrBytes,
    principal: &StrBytes,
    host: &StrBytes,
) -> Result<AclBinding, ClientError> {
    let (resource_type, pattern_type, operation, permission) = codes;
    let unknown = |what: &str, code: i8| {
        ClientError::InvalidArgument(format!("the broker answered an unknown {what} {code}"))
    };
    Ok(AclBinding {
        resource_type: ResourceType::from_code(resource_type)
            .ok_or_else(|| unknown("resource type", resource_type))?,
        resource_name: resource_name.to_string(),
        pattern_type: PatternType::from_code(pattern_type)
            .ok_or_else(|| unknown("pattern type", pattern_type))?,
        principal: principal.to_string(),
        host: host.to_string(),
        operation: AclOperation::from_code(operation)
            .ok_or_else(|| unknown("operation", operation))?,
        permission: AclPermission::from_code(permission)
            .ok_or_else(|| unknown("permission", permission))?,
    })
}

/// Creates ACLs; the first refusal is the error.
pub fn create_acls(cluster: &mut Cluster, acls: &[AclBinding]) -> Result<(), ClientError> {
    let creations = acls
        .iter()
        .map(|acl| {
            AclCreation::default()
                .with_resource_type(acl.resource_type.code())
                .with_resource_name(text(&acl.resource_name))
                .with_resource_pattern_type(acl.pattern_type.code())
                .with_principal(text(&acl.principal))
                .with_host(text(&acl.host))
                .with_operation(acl.operation.code())
                .with_permission_type(acl.permission.code())
        })
        .collect();
    let request = CreateAclsRequest::default().with_creations(creations);
    let (response, _) = cluster.admin_connection()?.send(&request)?;
    for result in &response.results {
        check_error_code(result.error_code, result.error_message.as_deref(), || {
            "cannot create ACLs".to_owned()
        })?;
    }
    Ok(())
}

/// The ACLs `filter` selects.
pub fn describe_acls(
    cluster: &mut Cluster,
    filter: &AclFilter,
) -> Result<Vec<AclBinding>, ClientError> {
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(filter.resource_type.code())
        .with_resource_name_filter(filter.resource_name.as_deref().map(text))
        .with_pattern_type_filter(filter.pattern_type.code())
        .with_principal_filter(filter.principal.as_deref().map(text))
        .with_host_filter(filter.host.as_deref().map(text))
        .with_operation(filter.operation.code())
        .with_permission_type(filter.permission.code());
    let (response, _) = cluster.admin_connection()?.send(&request)?;
    check_error_code(
        response.error_code,
        response.error_message.as_deref(),
        || "cannot describe ACLs".to_owned(),
    )?;
    let mut acls = Vec::new();
    for resource in &response.resources {
        for acl in &resource.acls {
            let codes = (
                resource.resource_type,
                resource.pattern_type,
                acl.operation,
                acl.permission_type,
            );
            acls.push(binding(
                codes,
                &resource.resource_name,
                &acl.principal,
                &acl.host,
            )?);
        }
    }
    Ok(acls)
}

/// Deletes the ACLs `filter` selects and returns them.
pub fn delete_acls(
    cluster: &mut Cluster,
    filter: &AclFilter,
) -> Result<Vec<AclBinding>, ClientError> {
    let wire = DeleteAclsFilter::default()
        .with_resource_type_filter(filter.resource_type.code())
        .with_resource_name_filter(filter.resource_name.as_deref().map(text))
        .with_pattern_type_filter(filter.pattern_type.code())
        .with_principal_filter(filter.principal.as_deref().map(text))
        .with_host_filter(filter.host.as_deref().map(text))
        .with_operation(filter.operation.code())
        .with_permission_type(filter.permission.code());
    let request = DeleteAclsRequest::default().with_filters(vec![wire]);
    let (response, _) = cluster.admin_connection()?.send(&request)?;
    let mut deleted = Vec::new();
    for result in &response.filter_results {
        check_error_code(result.error_code, result.error_message.as_deref(), || {
            "cannot delete ACLs".to_owned()
        })?;
        for acl in &result.matching_acls {
            let codes = (
                acl.resource_type,
                acl.pattern_type,
                acl.operation,
                acl.permission_type,
            );
            deleted.push(binding(
                codes,
                &acl.resource_name,
                &acl.principal,
                &acl.host,
            )?);
        }
    }
    Ok(deleted)
}
