//! One connection's security state: the listener's protocol, the peer and the principal.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::sasl::SaslSession;
use super::KafkaPrincipal;

/// Kafka's listener security protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ]
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Owned by the connection; handlers read it, SASL authentication replaces the principal.
#[derive(Debug, Clone)]
pub struct Session {
    pub protocol: SecurityProtocol,
    /// Index of the listener the connection came through (Metadata answers with its brokers).
    pub listener: usize,
    pub peer: Option<SocketAddr>,
    pub principal: KafkaPrincipal,
    /// The SASL exchange's state; used only on SASL listeners.
    pub sasl: SaslSession,
}

impl Session {
    pub fn new(protocol: SecurityProtocol, peer: Option<SocketAddr>) -> Session {
        Session {
            protocol,
            listener: 0,
            peer,
            principal: KafkaPrincipal::anonymous(),
            sasl: SaslSession::default(),
        }
    }

    /// A plaintext connection's session: anonymous, as Kafka's PLAINTEXT listeners are.
    pub fn plaintext(peer: Option<SocketAddr>) -> Session {
        Session::new(SecurityProtocol::Plaintext, peer)
    }

    /// Whether the connection must close once its current answer is written: a failed
    /// SASL exchange ends the connection after telling the client why, as Kafka does.
    pub fn closing(&self) -> bool {
        self.sasl.phase() == crate::security::sasl::SaslPhase::Failed
    }

    pub fn peer_ip(&self) -> Option<IpAddr> {
        self.peer.map(|p| p.ip())
    }
}
