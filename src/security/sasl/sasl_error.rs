//! Why a SASL exchange ends the connection.

use super::SaslMechanism;

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
    pub(super) fn invalid_credentials(
        mechanism: SaslMechanism,
        reauth: bool,
        reason: String,
    ) -> SaslError {
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
    pub(super) fn told(message: impl Into<String>) -> SaslError {
        let client_message = message.into();
        SaslError::Authentication {
            reason: client_message.clone(),
            client_message,
        }
    }
}
