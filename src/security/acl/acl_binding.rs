//! Kafka's ACL model: a binding is a resource pattern plus an access-control entry, and a
//! filter selects bindings (for DescribeAcls, DeleteAcls and `sluice acl list|remove`).
//!
//! The enums carry Kafka's wire codes; the `Any`/`Match` variants exist only in filters.

use serde::{Deserialize, Serialize};

/// The only name Kafka accepts for the CLUSTER resource.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";
/// A literal resource name, principal or host that matches every one.
pub const WILDCARD: &str = "*";
/// The principal every principal matches.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// Defines a Kafka ACL enum with its wire codes and the names Kafka's tools print.
macro_rules! kafka_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $code:literal, $text:literal;)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            $($variant,)+
        }

        impl $name {
            /// `None` for UNKNOWN (0) and codes Kafka does not define.
            pub fn from_code(code: i8) -> Option<$name> {
                match code {
                    $($code => Some($name::$variant),)+
                    _ => None,
                }
            }

            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code,)+
                }
            }

            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Parses Kafka's name in any case, `-` or `_` alike (`describe-configs`).
            pub fn parse(text: &str) -> Option<$name> {
                let text = text.replace('-', "_");
                [$($name::$variant,)+]
                    .into_iter()
                    .find(|v| v.name().eq_ignore_ascii_case(&text))
            }
        }
    };
}

kafka_enum!(
    /// Kafka's `ResourceType`.
    ResourceType {
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
);

kafka_enum!(
    /// Kafka's `PatternType`.
    PatternType {
        Any = 1, "ANY";
        Match = 2, "MATCH";
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
);

kafka_enum!(
    /// Kafka's `AclOperation`; the codes are also the bits of authorized-operations fields.
    AclOperation {
        Any = 1, "ANY";
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
        TwoPhaseCommit = 15, "TWO_PHASE_COMMIT";
    }
);

kafka_enum!(
    /// Kafka's `AclPermissionType`.
    AclPermission {
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
);

/// One ACL: who (principal, host) may or may not (permission) do what (operation) on which
/// resources (type, name, pattern type).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// Kafka's `Type:name` form; `User:*` matches every principal.
    pub principal: String,
    /// An IP address, or `*` for every host.
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

/// Why an ACL or a filter was refused: Kafka answers INVALID_REQUEST with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidAcl(pub String);

impl AclBinding {
    /// Kafka's checks on a new ACL (CreateAcls), in the order Kafka makes them.
    pub fn validate(&self) -> Result<(), InvalidAcl> {
        let invalid = |reason: String| Err(InvalidAcl(reason));
        if self.resource_type == ResourceType::Any {
            return invalid(format!(
                "Invalid resourceType {}",
                self.resource_type.name()
            ));
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return invalid(format!("Invalid patternType {}", self.pattern_type.name()));
        }
        if matches!(self.operation, AclOperation::Any) {
            return invalid(format!("Invalid operation {}", self.operation.name()));
        }
        if self.permission == AclPermission::Any {
            return invalid(format!("Invalid permissionType {}", self.permission.name()));
        }
        if self.resource_type == ResourceType::Cluster
            && self.resource_name != CLUSTER_RESOURCE_NAME
        {
            return invalid(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_RESOURCE_NAME}"
            ));
        }
        if self.resource_name.is_empty() {
            return invalid("Resource name should not be empty".to_owned());
        }
        if !self.principal.contains(':') {
            return invalid(format!(
                "Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)",
                self.principal
            ));
        }
        Ok(())
    }

    /// Whether this ACL's resource pattern covers the resource `resource_type`/`name`.
    pub fn covers(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => {
                    self.resource_name == name || self.resource_name == WILDCARD
                }
                PatternType::Prefixed => name.starts_with(&self.resource_name),
                PatternType::Any | PatternType::Match => false,
            }
    }
}

/// Selects ACLs: `None` names and ANY enums match everything; pattern type MATCH selects
/// the ACLs that would apply to the named resource (literal, wildcard and prefixes of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

impl AclFilter {
    /// A filter from wire codes; UNKNOWN or undefined codes are Kafka's "unknown filter".
    pub fn from_codes(
        resource_type: i8,
        resource_name: Option<String>,
        pattern_type: i8,
        principal: Option<String>,
        host: Option<String>,
        operation: i8,
        permission: i8,
    ) -> Result<AclFilter, InvalidAcl> {
        let unknown = |what: &str| InvalidAcl(format!("Unknown {what}."));
        Ok(AclFilter {
            resource_type: ResourceType::from_code(resource_type)
                .ok_or_else(|| unknown("patternFilter"))?,
            resource_name,
            pattern_type: PatternType::from_code(pattern_type)
                .ok_or_else(|| unknown("patternFilter"))?,
            principal,
            host,
            operation: AclOperation::from_code(operation).ok_or_else(|| unknown("entryFilter"))?,
            permission: AclPermission::from_code(permission)
                .ok_or_else(|| unknown("entryFilter"))?,
        })
    }

    pub fn matches(&self, acl: &AclBinding) -> bool {
        self.matches_pattern(acl)
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == AclOperation::Any || self.operation == acl.operation)
            && (self.permission == AclPermission::Any || self.permission == acl.permission)
    }

    fn matches_pattern(&self, acl: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != acl.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != acl.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type != PatternType::Match {
            return *name == acl.resource_name;
        }
        match acl.pattern_type {
            PatternType::Literal => *name == acl.resource_name || acl.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&acl.resource_name),
            PatternType::Any | PatternType::Match => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(pattern_type: PatternType, name: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.to_owned(),
            pattern_type,
            principal: "User:alice".to_owned(),
            host: WILDCARD.to_owned(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        }
    }

    fn filter(pattern_type: PatternType, name: Option<&str>) -> AclFilter {
        AclFilter {
            resource_type: ResourceType::Any,
            resource_name: name.map(str::to_owned),
            pattern_type,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        }
    }

    #[test]
    fn codes_and_names_round_trip() {
        for code in 1..=15 {
            let op = AclOperation::from_code(code).expect("defined");
            assert_eq!(op.code(), code);
            assert_eq!(AclOperation::parse(op.name()), Some(op));
        }
        assert_eq!(AclOperation::from_code(0), None);
        assert_eq!(
            AclOperation::parse("describe-configs"),
            Some(AclOperation::DescribeConfigs)
        );
        assert_eq!(ResourceType::from_code(8), None);
    }

    #[test]
    fn validation_refuses_what_kafka_refuses() {
        assert!(binding(PatternType::Literal, "t").validate().is_ok());
        assert!(binding(PatternType::Match, "t").validate().is_err());
        assert!(binding(PatternType::Literal, "").validate().is_err());
        let mut cluster = binding(PatternType::Literal, "other");
        cluster.resource_type = ResourceType::Cluster;
        assert!(cluster.validate().is_err());
        let mut no_colon = binding(PatternType::Literal, "t");
        no_colon.principal = "alice".to_owned();
        assert!(no_colon.validate().is_err());
    }

    #[test]
    fn match_filter_selects_every_acl_that_applies() {
        let literal = binding(PatternType::Literal, "orders");
        let wildcard = binding(PatternType::Literal, "*");
        let prefix = binding(PatternType::Prefixed, "ord");
        let other = binding(PatternType::Prefixed, "pay");
        let matching = filter(PatternType::Match, Some("orders"));
        assert!(matching.matches(&literal));
        assert!(matching.matches(&wildcard));
        assert!(matching.matches(&prefix));
        assert!(!matching.matches(&other));
        let exact = filter(PatternType::Any, Some("orders"));
        assert!(exact.matches(&literal));
        assert!(!exact.matches(&prefix));
        assert!(filter(PatternType::Prefixed, None).matches(&prefix));
        assert!(!filter(PatternType::Prefixed, None).matches(&literal));
    }
}
