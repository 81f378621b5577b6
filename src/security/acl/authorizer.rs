//! Decisions as Kafka's StandardAuthorizer makes them: super users may do anything; a
//! matching DENY beats any ALLOW; READ, WRITE, DELETE and ALTER imply DESCRIBE, and
//! ALTER_CONFIGS implies DESCRIBE_CONFIGS (for ALLOW only); a resource no ACL covers is
//! allowed only with `allow_everyone_if_no_acl_found`.
//!
//! Every shard decides alone, from its own replica of the ACLs in the catalog.

use std::net::IpAddr;

use super::acl_binding::{
    AclBinding, AclOperation, AclPermission, PatternType, ResourceType, WILDCARD,
    WILDCARD_PRINCIPAL,
};
use crate::security::KafkaPrincipal;

/// How the broker authorizes (`--authorizer`, `--super-users`,
/// `--allow-everyone-if-no-acl-found`). Disabled, every request is allowed, as before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    pub enabled: bool,
    /// Principals in `Type:name` form.
    pub super_users: Vec<String>,
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerConfig {
    /// Parses Kafka's `super.users` form: `User:admin;User:ops`.
    pub fn parse_super_users(text: &str) -> Result<Vec<String>, String> {
        text.split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                KafkaPrincipal::parse(p)
                    .map(|principal| principal.to_string())
                    .ok_or_else(|| format!("'{p}' is not a principal of the form Type:name"))
            })
            .collect()
    }

    fn is_super_user(&self, principal: &KafkaPrincipal) -> bool {
        self.super_users.iter().any(|s| is_principal(s, principal))
    }
}

/// Who asks: the session's principal and the peer's address.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub principal: &'a KafkaPrincipal,
    pub host: Option<IpAddr>,
}

/// Whether `requester` may perform `operation` on the resource `resource_type`/`name`.
pub fn authorize(
    config: &AuthorizerConfig,
    acls: &[AclBinding],
    requester: Requester<'_>,
    operation: AclOperation,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    if !config.enabled || config.is_super_user(requester.principal) {
        return true;
    }
    let mut resource_has_acls = false;
    let mut allowed = false;
    for acl in acls.iter().filter(|a| a.covers(resource_type, name)) {
        resource_has_acls = true;
        if !applies_to(acl, requester) {
            continue;
        }
        match acl.permission {
            AclPermission::Deny
                if acl.operation == AclOperation::All || acl.operation == operation =>
            {
                return false;
            }
            AclPermission::Allow if grants(acl.operation, operation) => allowed = true,
            _ => {}
        }
    }
    allowed || (!resource_has_acls && config.allow_everyone_if_no_acl_found)
}

/// Kafka's `authorizeByResourceType`: whether `requester` may perform `operation` on at
/// least one resource of the type (InitProducerId lets an idempotent producer in this way
/// when it may write to some topic). A wildcard DENY closes the whole type.
pub fn authorize_any(
    config: &AuthorizerConfig,
    acls: &[AclBinding],
    requester: Requester<'_>,
    operation: AclOperation,
    resource_type: ResourceType,
) -> bool {
    if !config.enabled || config.is_super_user(requester.principal) {
        return true;
    }
    let relevant: Vec<&AclBinding> = acls
        .iter()
        .filter(|a| a.resource_type == resource_type && applies_to(a, requester))
        .collect();
    let denies = |acl: &AclBinding| {
        acl.permission == AclPermission::Deny
            && (acl.operation == AclOperation::All || acl.operation == operation)
    };
    let denied = |name: &str| {
        relevant.iter().any(|d| {
            denies(d)
                && match d.pattern_type {
                    PatternType::Literal => d.resource_name == name || d.resource_name == WILDCARD,
                    PatternType::Prefixed => name.starts_with(&d.resource_name),
                    PatternType::Any | PatternType::Match => false,
                }
        })
    };
    let any_allowed = relevant.iter().any(|a| {
        a.permission == AclPermission::Allow
            && grants(a.operation, operation)
            && !denied(&a.resource_name)
    });
    let type_has_acls = acls.iter().any(|a| a.resource_type == resource_type);
    any_allowed || (!type_has_acls && config.allow_everyone_if_no_acl_found)
}

/// The KIP-430 bitfield of the operations `requester` may perform on a resource: bit
/// `code` set for each allowed operation the resource type supports.
pub fn authorized_operations(
    config: &AuthorizerConfig,
    acls: &[AclBinding],
    requester: Requester<'_>,
    resource_type: ResourceType,
    name: &str,
) -> i32 {
    supported_operations(resource_type)
        .iter()
        .filter(|op| authorize(config, acls, requester, **op, resource_type, name))
        .fold(0, |bits, op| bits | (1 << op.code()))
}

/// The operations Kafka defines on each resource type (`AclEntry.supportedOperations`).
pub fn supported_operations(resource_type: ResourceType) -> &'static [AclOperation] {
    use AclOperation::*;
    match resource_type {
        ResourceType::Topic => &[
            Read,
            Write,
            Create,
            Describe,
            Delete,
            Alter,
            DescribeConfigs,
            AlterConfigs,
        ],
        ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
        ResourceType::Cluster => &[
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            Alter,
            Describe,
        ],
        ResourceType::TransactionalId => &[Describe, Write, TwoPhaseCommit],
        ResourceType::DelegationToken => &[Describe],
        ResourceType::User => &[CreateTokens, DescribeTokens],
        ResourceType::Any => &[],
    }
}

/// Whether an ALLOW of `granted` permits `asked`, implications included.
fn grants(granted: AclOperation, asked: AclOperation) -> bool {
    use AclOperation::*;
    granted == All
        || granted == asked
        || (asked == Describe && matches!(granted, Read | Write | Delete | Alter))
        || (asked == DescribeConfigs && granted == AlterConfigs)
}

fn applies_to(acl: &AclBinding, requester: Requester<'_>) -> bool {
    (acl.principal == WILDCARD_PRINCIPAL || is_principal(&acl.principal, requester.principal))
        && (acl.host == WILDCARD
            || requester
                .host
                .is_some_and(|ip| acl.host.parse::<IpAddr>().is_ok_and(|h| h == ip)))
}

/// Compares a `Type:name` string with a principal without formatting it.
fn is_principal(text: &str, principal: &KafkaPrincipal) -> bool {
    text.split_once(':')
        .is_some_and(|(t, n)| t == principal.principal_type && n == principal.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> AuthorizerConfig {
        AuthorizerConfig {
            enabled: true,
            ..AuthorizerConfig::default()
        }
    }

    fn acl(
        pattern_type: PatternType,
        name: &str,
        principal: &str,
        operation: AclOperation,
        permission: AclPermission,
    ) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.to_owned(),
            pattern_type,
            principal: principal.to_owned(),
            host: WILDCARD.to_owned(),
            operation,
            permission,
        }
    }

    fn can(config: &AuthorizerConfig, acls: &[AclBinding], who: &str, op: AclOperation) -> bool {
        let principal = KafkaPrincipal::parse(who).expect("principal");
        let requester = Requester {
            principal: &principal,
            host: "10.0.0.1".parse().ok(),
        };
        authorize(config, acls, requester, op, ResourceType::Topic, "orders")
    }

    #[test]
    fn deny_beats_allow_and_wildcards_match() {
        use AclOperation::*;
        use AclPermission::*;
        let acls = [
            acl(PatternType::Literal, "*", "User:*", Read, Allow),
            acl(PatternType::Prefixed, "ord", "User:bob", All, Deny),
        ];
        assert!(can(&enabled(), &acls, "User:alice", Read));
        assert!(!can(&enabled(), &acls, "User:bob", Read));
        assert!(!can(&enabled(), &acls, "User:alice", Write));
    }

    #[test]
    fn allow_implies_describe_but_deny_does_not() {
        use AclOperation::*;
        use AclPermission::*;
        let acls = [
            acl(PatternType::Literal, "orders", "User:alice", Write, Allow),
            acl(
                PatternType::Literal,
                "orders",
                "User:alice",
                AlterConfigs,
                Allow,
            ),
        ];
        assert!(can(&enabled(), &acls, "User:alice", Describe));
        assert!(can(&enabled(), &acls, "User:alice", DescribeConfigs));
        assert!(!can(&enabled(), &acls, "User:alice", Read));
        let deny_read = [
            acl(PatternType::Literal, "orders", "User:alice", All, Allow),
            acl(PatternType::Literal, "orders", "User:alice", Read, Deny),
        ];
        assert!(can(&enabled(), &deny_read, "User:alice", Describe));
    }

    #[test]
    fn super_users_and_the_no_acl_default() {
        let mut config = enabled();
        assert!(!can(&config, &[], "User:alice", AclOperation::Read));
        config.allow_everyone_if_no_acl_found = true;
        assert!(can(&config, &[], "User:alice", AclOperation::Read));
        let other = [acl(
            PatternType::Literal,
            "orders",
            "User:bob",
            AclOperation::Read,
            AclPermission::Allow,
        )];
        assert!(!can(&config, &other, "User:alice", AclOperation::Read));
        config.super_users =
            AuthorizerConfig::parse_super_users("User:admin; User:ops").expect("valid");
        assert!(can(&config, &other, "User:ops", AclOperation::Write));
        assert!(AuthorizerConfig::parse_super_users("admin").is_err());
    }

    #[test]
    fn hosts_must_match() {
        let mut only_other_host = acl(
            PatternType::Literal,
            "orders",
            "User:alice",
            AclOperation::Read,
            AclPermission::Allow,
        );
        only_other_host.host = "10.0.0.2".to_owned();
        assert!(!can(
            &enabled(),
            &[only_other_host.clone()],
            "User:alice",
            AclOperation::Read
        ));
        only_other_host.host = "10.0.0.1".to_owned();
        assert!(can(
            &enabled(),
            &[only_other_host],
            "User:alice",
            AclOperation::Read
        ));
    }

    #[test]
    fn any_topic_writable_lets_idempotent_producers_in() {
        use AclOperation::*;
        use AclPermission::*;
        let principal = KafkaPrincipal::user("alice");
        let requester = Requester {
            principal: &principal,
            host: None,
        };
        let some = [acl(
            PatternType::Prefixed,
            "app-",
            "User:alice",
            Write,
            Allow,
        )];
        assert!(authorize_any(
            &enabled(),
            &some,
            requester,
            Write,
            ResourceType::Topic
        ));
        let mut closed = some.to_vec();
        closed.push(acl(PatternType::Literal, "*", "User:*", Write, Deny));
        assert!(!authorize_any(
            &enabled(),
            &closed,
            requester,
            Write,
            ResourceType::Topic
        ));
    }
}
