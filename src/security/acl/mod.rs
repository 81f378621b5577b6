//! Authorization: Kafka ACLs, kept in the catalog (so every shard has a replica and
//! decides locally, without locks or cross-core calls), and the authorizer that reads them.

mod acl_binding;
mod authorizer;

pub use acl_binding::{
    AclBinding, AclFilter, AclOperation, AclPermission, InvalidAcl, PatternType, ResourceType,
    CLUSTER_RESOURCE_NAME, WILDCARD, WILDCARD_PRINCIPAL,
};
pub use authorizer::{
    authorize, authorize_any, authorized_operations, supported_operations, AuthorizerConfig,
    Requester,
};
