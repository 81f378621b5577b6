//! Which SASL mechanisms exist and which the broker enables.

use std::fmt;

/// The SASL mechanisms sluice serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    pub const ALL: [SaslMechanism; 3] = [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// Mechanism names are case-sensitive in Kafka (`enabledMechanisms.contains`).
    pub fn parse(name: &str) -> Option<SaslMechanism> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The SCRAM mechanism's number in Describe/AlterUserScramCredentials (Kafka's
    /// `ScramMechanism.type()`): 1 and 2; 0 is UNKNOWN.
    pub fn scram_type(self) -> i8 {
        match self {
            SaslMechanism::Plain => 0,
            SaslMechanism::ScramSha256 => 1,
            SaslMechanism::ScramSha512 => 2,
        }
    }

    pub fn from_scram_type(scram_type: i8) -> Option<SaslMechanism> {
        match scram_type {
            1 => Some(SaslMechanism::ScramSha256),
            2 => Some(SaslMechanism::ScramSha512),
            _ => None,
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The broker's SASL settings (Kafka's `sasl.enabled.mechanisms`, `connections.max.reauth.ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslConfig {
    pub mechanisms: Vec<SaslMechanism>,
    /// KIP-368: how long an authentication lasts before the client must re-authenticate;
    /// 0 means forever.
    pub session_lifetime_ms: i64,
}

impl Default for SaslConfig {
    fn default() -> Self {
        SaslConfig {
            mechanisms: SaslMechanism::ALL.to_vec(),
            session_lifetime_ms: 0,
        }
    }
}
