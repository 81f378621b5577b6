//! Authorized-operations bitfields (KIP-430), answered when a client sets
//! `IncludeTopicAuthorizedOperations` or `IncludeClusterAuthorizedOperations`.
//!
//! Without an authorizer sluice answers as Kafka does: every operation the resource type
//! supports is allowed (these constants). With `--authorizer acl` the shard computes them
//! from the ACLs. A field the client did not ask for keeps the protocol default,
//! `i32::MIN`, which clients read as "not provided".

/// Kafka's `AclOperation` codes; an operation is allowed when bit `code` is set.
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
enum AclOperation {
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
}

const fn bitfield(operations: &[AclOperation]) -> i32 {
    let mut bits = 0i32;
    let mut i = 0;
    while i < operations.len() {
        bits |= 1 << (operations[i] as u8);
        i += 1;
    }
    bits
}

/// Every operation Kafka supports on a topic.
pub const TOPIC: i32 = bitfield(&[
    AclOperation::Read,
    AclOperation::Write,
    AclOperation::Create,
    AclOperation::Delete,
    AclOperation::Alter,
    AclOperation::Describe,
    AclOperation::DescribeConfigs,
    AclOperation::AlterConfigs,
]);

/// Every operation Kafka supports on a group.
pub const GROUP: i32 = bitfield(&[
    AclOperation::Read,
    AclOperation::Delete,
    AclOperation::Describe,
    AclOperation::DescribeConfigs,
    AclOperation::AlterConfigs,
]);

/// Every operation Kafka supports on the cluster.
pub const CLUSTER: i32 = bitfield(&[
    AclOperation::Create,
    AclOperation::Alter,
    AclOperation::Describe,
    AclOperation::ClusterAction,
    AclOperation::DescribeConfigs,
    AclOperation::AlterConfigs,
    AclOperation::IdempotentWrite,
]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitfields_match_kafka() {
        // The values a Kafka 4.x broker without an authorizer sends.
        assert_eq!(TOPIC, 0b1101_1111_1000);
        assert_eq!(CLUSTER, 0b1_1111_1010_0000);
        assert_eq!(GROUP, 0b1101_0100_1000);
    }
}
