//! SASL authentication as Kafka brokers do it: SaslHandshake names a mechanism, then
//! SaslAuthenticate requests carry the mechanism's tokens (KIP-152). PLAIN and SCRAM-SHA-256/512
//! are served, both checked against one store of SCRAM credentials kept in the catalog.

mod plain_server;
mod sasl_session;
pub mod scram_client;
pub mod scram_credential;
mod scram_server;

pub use sasl_session::{AuthStep, HandshakeOutcome, SaslPhase, SaslSession};
pub use scram_credential::{ScramCredential, ScramHash};

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

    pub fn scram_hash(self) -> Option<ScramHash> {
        match self {
            SaslMechanism::Plain => None,
            SaslMechanism::ScramSha256 => Some(ScramHash::Sha256),
            SaslMechanism::ScramSha512 => Some(ScramHash::Sha512),
        }
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

/// Where the SASL exchange finds a user's SCRAM credential (the shard's catalog replica).
pub trait CredentialSource {
    fn scram_credential(&self, user: &str, mechanism: SaslMechanism) -> Option<ScramCredential>;
}

/// Why a SASL exchange ends the connection. `Authentication` failures are answered with
/// SASL_AUTHENTICATION_FAILED and `client_message` before the connection closes; the others
/// close it without an answer, as Kafka's SaslServerAuthenticator does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    #[error("authentication failed: {client_message} ({reason})")]
    Authentication {
        /// What the client is told: Kafka's own wording.
        client_message: String,
        /// What the broker logs; may name the user, so never sent.
        reason: String,
    },
    #[error("Unexpected Kafka request of type {api} during SASL {phase}.")]
    UnexpectedRequest { api: String, phase: &'static str },
    #[error("SASL session expired; the client did not re-authenticate in time")]
    SessionExpired,
    #[error("SaslHandshake v0 (SASL tokens without SaslAuthenticate framing) is not supported")]
    HandshakeV0,
}

impl SaslError {
    /// A failure whose message Kafka keeps vague, lest it tell who exists.
    fn invalid_credentials(mechanism: SaslMechanism, reauth: bool, reason: String) -> SaslError {
        let phase = if reauth {
            "re-authentication"
        } else {
            "authentication"
        };
        SaslError::Authentication {
            client_message: format!(
                "Authentication failed during {phase} due to invalid credentials with SASL mechanism {mechanism}"
            ),
            reason,
        }
    }

    /// A failure Kafka reports to the client as it is.
    fn told(message: impl Into<String>) -> SaslError {
        let client_message = message.into();
        SaslError::Authentication {
            reason: client_message.clone(),
            client_message,
        }
    }
}
