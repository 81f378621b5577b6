//! SASL authentication as Kafka brokers do it: SaslHandshake names a mechanism, then
//! SaslAuthenticate requests carry the mechanism's tokens (KIP-152). PLAIN and SCRAM-SHA-256/512
//! are served, both checked against one store of SCRAM credentials kept in the catalog.

mod mechanism;
mod plain_server;
mod sasl_error;
mod sasl_session;
pub mod scram_client;
pub mod scram_credential;
mod scram_server;

pub use mechanism::{SaslConfig, SaslMechanism};
pub use sasl_error::SaslError;
pub use sasl_session::{AuthStep, HandshakeOutcome, SaslPhase, SaslSession};
pub use scram_credential::{CredentialSource, ScramCredential, ScramHash};
