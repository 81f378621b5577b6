//! Kafka's principal: a type and a name, written `User:alice`.

use std::fmt;

/// Who a request acts as. Unauthenticated connections are `User:ANONYMOUS`, as in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KafkaPrincipal {
    pub principal_type: String,
    pub name: String,
}

impl KafkaPrincipal {
    pub const USER_TYPE: &'static str = "User";
    pub const ANONYMOUS_NAME: &'static str = "ANONYMOUS";

    pub fn user(name: impl Into<String>) -> KafkaPrincipal {
        KafkaPrincipal {
            principal_type: Self::USER_TYPE.to_owned(),
            name: name.into(),
        }
    }

    pub fn anonymous() -> KafkaPrincipal {
        Self::user(Self::ANONYMOUS_NAME)
    }

    pub fn is_anonymous(&self) -> bool {
        self.principal_type == Self::USER_TYPE && self.name == Self::ANONYMOUS_NAME
    }

    /// Parses Kafka's `Type:name` form (`User:alice`); the name may itself contain `:`.
    pub fn parse(text: &str) -> Option<KafkaPrincipal> {
        let (principal_type, name) = text.split_once(':')?;
        if principal_type.is_empty() || name.is_empty() {
            return None;
        }
        Some(KafkaPrincipal {
            principal_type: principal_type.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_kafka_form() {
        let alice = KafkaPrincipal::parse("User:alice").expect("valid");
        assert_eq!(alice, KafkaPrincipal::user("alice"));
        assert_eq!(alice.to_string(), "User:alice");
        assert_eq!(
            KafkaPrincipal::parse("User:CN=a:b").map(|p| p.name),
            Some("CN=a:b".to_owned())
        );
        assert!(KafkaPrincipal::parse("alice").is_none());
        assert!(KafkaPrincipal::parse("User:").is_none());
        assert!(KafkaPrincipal::anonymous().is_anonymous());
        assert!(!alice.is_anonymous());
    }
}
