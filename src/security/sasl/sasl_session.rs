//! One connection's SASL state machine: handshake, the mechanism's token exchange,
//! authenticated (until the KIP-368 session lifetime runs out), and re-authentication, which
//! must keep the mechanism and the principal. Any failure is final: the connection closes.

use super::plain_server;
use super::scram_server::ScramServer;
use super::{CredentialSource, SaslError, SaslMechanism};

/// What a connection may send next, for the request gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslPhase {
    /// Only ApiVersions and SaslHandshake.
    Handshake,
    /// Only SaslAuthenticate.
    Authenticating,
    /// Anything; SaslHandshake starts a re-authentication.
    Authenticated,
    /// Nothing: the connection is closing.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeOutcome {
    Accepted,
    /// Answered with UNSUPPORTED_SASL_MECHANISM, then the connection closes.
    Unsupported,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// The exchange goes on: send this token and wait for the next.
    Challenge(Vec<u8>),
    /// Authenticated as `user`; the last token, and the session lifetime to announce.
    Complete {
        token: Vec<u8>,
        user: String,
        session_lifetime_ms: i64,
        /// Whether this renewed an earlier authentication (KIP-368).
        reauthenticated: bool,
    },
}

#[derive(Debug, Clone)]
struct Authenticated {
    mechanism: SaslMechanism,
    user: String,
    expires_at_ms: Option<i64>,
}

#[derive(Debug, Clone)]
enum State {
    AwaitingHandshake,
    AwaitingFirstToken {
        mechanism: SaslMechanism,
        previous: Option<Authenticated>,
    },
    AwaitingScramFinal {
        server: Box<ScramServer>,
        previous: Option<Authenticated>,
    },
    /// Re-authentication asked for another mechanism: Kafka accepts the handshake and fails
    /// the first SaslAuthenticate with this message.
    BadReauthMechanism {
        message: String,
    },
    Authenticated(Authenticated),
    Failed,
}

#[derive(Debug, Clone)]
pub struct SaslSession {
    state: State,
}

impl Default for SaslSession {
    fn default() -> Self {
        SaslSession {
            state: State::AwaitingHandshake,
        }
    }
}

impl SaslSession {
    pub fn phase(&self) -> SaslPhase {
        match self.state {
            State::AwaitingHandshake => SaslPhase::Handshake,
            State::AwaitingFirstToken { .. }
            | State::AwaitingScramFinal { .. }
            | State::BadReauthMechanism { .. } => SaslPhase::Authenticating,
            State::Authenticated(_) => SaslPhase::Authenticated,
            State::Failed => SaslPhase::Failed,
        }
    }

    /// When an authenticated session's lifetime ends (KIP-368), if it has one.
    pub fn expires_at_ms(&self) -> Option<i64> {
        match &self.state {
            State::Authenticated(done) => done.expires_at_ms,
            _ => None,
        }
    }

    /// Whether an authenticated session has outlived its lifetime.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms().is_some_and(|at| now_ms >= at)
    }

    /// SaslHandshake: picks the mechanism, or begins a re-authentication.
    pub fn handshake(&mut self, mechanism: &str, enabled: &[SaslMechanism]) -> HandshakeOutcome {
        let Some(chosen) = SaslMechanism::parse(mechanism).filter(|m| enabled.contains(m)) else {
            self.state = State::Failed;
            return HandshakeOutcome::Unsupported;
        };
        self.state = match std::mem::replace(&mut self.state, State::Failed) {
            State::AwaitingHandshake => State::AwaitingFirstToken {
                mechanism: chosen,
                previous: None,
            },
            State::Authenticated(previous) if previous.mechanism == chosen => {
                State::AwaitingFirstToken {
                    mechanism: chosen,
                    previous: Some(previous),
                }
            }
            State::Authenticated(previous) => State::BadReauthMechanism {
                message: format!(
                    "SASL mechanism '{chosen}' requested by client is not supported for re-authentication of mechanism '{}'",
                    previous.mechanism
                ),
            },
            // The request gate lets SaslHandshake through only in the two states above.
            _ => State::Failed,
        };
        if matches!(self.state, State::Failed) {
            HandshakeOutcome::Unsupported
        } else {
            HandshakeOutcome::Accepted
        }
    }

    /// SaslAuthenticate: one token of the exchange. An error leaves the session failed.
    pub fn authenticate(
        &mut self,
        token: &[u8],
        credentials: &dyn CredentialSource,
        session_lifetime_ms: i64,
        now_ms: i64,
    ) -> Result<AuthStep, SaslError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let (mechanism, previous, outcome) = match state {
            State::AwaitingFirstToken {
                mechanism: mechanism @ SaslMechanism::Plain,
                previous,
            } => {
                let outcome = plain_server::authenticate(token, credentials).map(|u| (u, vec![]));
                (mechanism, previous, outcome)
            }
            State::AwaitingFirstToken {
                mechanism,
                previous,
            } => {
                let (server, reply) =
                    ScramServer::start(mechanism, token, credentials, previous.is_some())?;
                self.state = State::AwaitingScramFinal {
                    server: Box::new(server),
                    previous,
                };
                return Ok(AuthStep::Challenge(reply));
            }
            State::AwaitingScramFinal { server, previous } => {
                let reauth = previous.is_some();
                let mechanism = server.mechanism();
                (mechanism, previous, server.finish(token, reauth))
            }
            State::BadReauthMechanism { message } => return Err(SaslError::told(message)),
            State::AwaitingHandshake | State::Authenticated(_) | State::Failed => {
                return Err(SaslError::UnexpectedRequest {
                    api: "SASL_AUTHENTICATE".to_owned(),
                    phase: "handshake",
                })
            }
        };
        let (user, token) = outcome?;
        let reauthenticated = previous.is_some();
        if let Some(previous) = previous.filter(|p| p.user != user) {
            return Err(SaslError::told(format!(
                "Cannot change principals during re-authentication from User.{}: User.{user}",
                previous.user
            )));
        }
        let session_lifetime_ms = session_lifetime_ms.max(0);
        self.state = State::Authenticated(Authenticated {
            mechanism,
            user: user.clone(),
            expires_at_ms: (session_lifetime_ms > 0)
                .then(|| now_ms.saturating_add(session_lifetime_ms)),
        });
        Ok(AuthStep::Complete {
            token,
            user,
            session_lifetime_ms,
            reauthenticated,
        })
    }

    /// Ends the session, so the connection closes after its current answer.
    pub fn fail(&mut self) {
        self.state = State::Failed;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::super::scram_credential::salt_password;
    use super::super::ScramCredential;
    use super::*;

    struct Users(HashMap<(String, SaslMechanism), ScramCredential>);

    impl CredentialSource for Users {
        fn scram_credential(&self, user: &str, m: SaslMechanism) -> Option<ScramCredential> {
            self.0.get(&(user.to_owned(), m)).cloned()
        }
    }

    /// alice (password "secret") and bob ("other") with both SCRAM credentials; derived once,
    /// as PBKDF2 dominates the proptest's time otherwise.
    fn users() -> &'static Users {
        static USERS: std::sync::OnceLock<Users> = std::sync::OnceLock::new();
        USERS.get_or_init(derive_users)
    }

    fn derive_users() -> Users {
        let mut map = HashMap::new();
        for m in [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512] {
            let hash = m.scram_hash().expect("scram");
            let (salt, salted) = salt_password(hash, b"secret", 4096).expect("random");
            let credential = ScramCredential::from_salted_password(hash, salt, &salted, 4096);
            map.insert(("alice".to_owned(), m), credential);
            let (salt, salted) = salt_password(hash, b"other", 4096).expect("random");
            let credential = ScramCredential::from_salted_password(hash, salt, &salted, 4096);
            map.insert(("bob".to_owned(), m), credential);
        }
        Users(map)
    }

    #[test]
    fn plain_accepts_the_password_and_refuses_others() {
        let users = users();
        let mut session = SaslSession::default();
        assert_eq!(
            session.handshake("PLAIN", &SaslMechanism::ALL),
            HandshakeOutcome::Accepted
        );
        let step = session.authenticate(b"\0alice\0secret", users, 1000, 5);
        assert!(
            matches!(step, Ok(AuthStep::Complete { ref user, session_lifetime_ms: 1000, .. }) if user == "alice")
        );
        assert!(!session.expired(1004));
        assert!(session.expired(1005));

        let mut session = SaslSession::default();
        session.handshake("PLAIN", &SaslMechanism::ALL);
        let refused = session.authenticate(b"\0alice\0wrong", users, 0, 0);
        assert!(
            matches!(refused, Err(SaslError::Authentication { ref client_message, .. })
            if client_message == "Authentication failed: Invalid username or password")
        );
        assert_eq!(session.phase(), SaslPhase::Failed);
    }

    #[test]
    fn unknown_or_disabled_mechanisms_are_unsupported() {
        let mut session = SaslSession::default();
        assert_eq!(
            session.handshake("GSSAPI", &SaslMechanism::ALL),
            HandshakeOutcome::Unsupported
        );
        let mut session = SaslSession::default();
        assert_eq!(
            session.handshake("PLAIN", &[SaslMechanism::ScramSha512]),
            HandshakeOutcome::Unsupported
        );
    }

    #[test]
    fn reauthentication_keeps_the_mechanism() {
        let users = users();
        let mut session = SaslSession::default();
        session.handshake("PLAIN", &SaslMechanism::ALL);
        assert!(session
            .authenticate(b"\0alice\0secret", users, 0, 0)
            .is_ok());
        assert_eq!(
            session.handshake("SCRAM-SHA-256", &SaslMechanism::ALL),
            HandshakeOutcome::Accepted
        );
        let refused = session.authenticate(b"n,,n=alice,r=abc", users, 0, 0);
        assert!(
            matches!(refused, Err(SaslError::Authentication { ref client_message, .. })
            if client_message.starts_with("SASL mechanism 'SCRAM-SHA-256' requested by client is not supported for re-authentication"))
        );
    }

    #[test]
    fn reauthentication_keeps_the_principal() {
        let users = users();
        let mut session = SaslSession::default();
        session.handshake("PLAIN", &SaslMechanism::ALL);
        assert!(session
            .authenticate(b"\0alice\0secret", users, 100, 0)
            .is_ok());
        assert!(session.expired(100));
        // The same user again renews the session.
        assert_eq!(
            session.handshake("PLAIN", &SaslMechanism::ALL),
            HandshakeOutcome::Accepted
        );
        let renewed = session.authenticate(b"\0alice\0secret", users, 100, 150);
        assert!(matches!(
            renewed,
            Ok(AuthStep::Complete {
                reauthenticated: true,
                ..
            })
        ));
        assert!(!session.expired(200));
        // Another user is refused with Kafka's message, and the session ends.
        session.handshake("PLAIN", &SaslMechanism::ALL);
        let refused = session.authenticate(b"\0bob\0other", users, 100, 300);
        assert!(
            matches!(refused, Err(SaslError::Authentication { ref client_message, .. })
            if client_message == "Cannot change principals during re-authentication from User.alice: User.bob")
        );
        assert_eq!(session.phase(), SaslPhase::Failed);
    }

    proptest! {
        /// Whatever a client sends, in whatever order, the state machine answers or fails;
        /// it never panics, and once failed it stays failed.
        #[test]
        fn arbitrary_exchanges_never_panic(
            steps in proptest::collection::vec(
                (0u8..4, proptest::collection::vec(any::<u8>(), 0..96)), 0..8)
        ) {
            let users = users();
            let mut session = SaslSession::default();
            let mut failed = false;
            for (kind, bytes) in steps {
                match kind {
                    0 => { session.handshake(&String::from_utf8_lossy(&bytes), &SaslMechanism::ALL); }
                    1 => { session.handshake("SCRAM-SHA-256", &SaslMechanism::ALL); }
                    2 => {
                        // A plausible client-first with a fuzzed tail.
                        let mut token = b"n,,n=alice,r=".to_vec();
                        token.extend_from_slice(&bytes);
                        let _ = session.authenticate(&token, users, 10, 0);
                    }
                    _ => { let _ = session.authenticate(&bytes, users, 10, 0); }
                }
                if failed {
                    prop_assert_eq!(session.phase(), SaslPhase::Failed);
                }
                failed = session.phase() == SaslPhase::Failed;
            }
        }
    }
}
