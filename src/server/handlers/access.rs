//! The authorization checks handlers make, named by resource, as Kafka's `AuthHelper`.
//! Without `--authorizer acl` each is true.

use crate::security::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use crate::security::Session;
use crate::shard::Shard;

pub fn topic(shard: &Shard, session: &Session, operation: AclOperation, name: &str) -> bool {
    shard.authorize(session, operation, ResourceType::Topic, name)
}

pub fn group(shard: &Shard, session: &Session, operation: AclOperation, name: &str) -> bool {
    shard.authorize(session, operation, ResourceType::Group, name)
}

pub fn transactional_id(
    shard: &Shard,
    session: &Session,
    operation: AclOperation,
    name: &str,
) -> bool {
    shard.authorize(session, operation, ResourceType::TransactionalId, name)
}

pub fn cluster(shard: &Shard, session: &Session, operation: AclOperation) -> bool {
    shard.authorize(
        session,
        operation,
        ResourceType::Cluster,
        CLUSTER_RESOURCE_NAME,
    )
}

/// Kafka's CreateTopics and auto-creation rule: CREATE on the cluster, or on the topic.
pub fn create_topic(shard: &Shard, session: &Session, name: &str) -> bool {
    cluster(shard, session, AclOperation::Create)
        || topic(shard, session, AclOperation::Create, name)
}

/// The topics among `names` the session may not perform `operation` on; checked before a
/// handler's asynchronous part, which no longer has the session.
pub fn denied_topics<'a>(
    shard: &Shard,
    session: &Session,
    operation: AclOperation,
    names: impl Iterator<Item = &'a str>,
) -> Vec<String> {
    names
        .filter(|name| !topic(shard, session, operation, name))
        .map(str::to_owned)
        .collect()
}

/// The KIP-430 bitfield of what the session may do to a group.
pub fn group_operations(shard: &Shard, session: &Session, name: &str) -> i32 {
    shard.authorized_operations(
        session,
        ResourceType::Group,
        name,
        crate::protocol::authorized_operations::GROUP,
    )
}
