//! SaslHandshake and SaslAuthenticate, and the gate that keeps everything else off a SASL
//! listener until the connection has authenticated (Kafka's SaslServerAuthenticator).

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use kafka_protocol::messages::sasl_authenticate_response::SaslAuthenticateResponse;
use kafka_protocol::messages::sasl_handshake_request::SaslHandshakeRequest;
use kafka_protocol::messages::sasl_handshake_response::SaslHandshakeResponse;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::StrBytes;

use super::{api_name, RequestContext};
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::sasl::{AuthStep, HandshakeOutcome, SaslError, SaslPhase};
use crate::security::{KafkaPrincipal, Session};
use crate::server::connection::{now_ms, Reply};
use crate::shard::Shard;

/// What KafkaApis answers a SaslAuthenticate outside a SASL exchange.
const AUTHENTICATE_AFTER_SUCCESS: &str =
    "SaslAuthenticate request received after successful authentication";

/// Refuses (closing the connection) a request the connection's SASL phase does not allow:
/// before authentication only ApiVersions, SaslHandshake and SaslAuthenticate in their turn;
/// after the session lifetime only a SaslHandshake that starts re-authentication.
pub fn gate(session: &Session, api_key: ApiKey) -> Result<(), SaslError> {
    if !session.protocol.uses_sasl() {
        return Ok(());
    }
    let unexpected = |phase| SaslError::UnexpectedRequest {
        api: kafka_enum_name(api_key),
        phase,
    };
    match session.sasl.phase() {
        SaslPhase::Handshake if matches!(api_key, ApiKey::ApiVersions | ApiKey::SaslHandshake) => {
            Ok(())
        }
        SaslPhase::Handshake | SaslPhase::Failed => Err(unexpected("handshake")),
        SaslPhase::Authenticating if api_key == ApiKey::SaslAuthenticate => Ok(()),
        SaslPhase::Authenticating => Err(unexpected("authentication")),
        // Reads the clock only when the session has a lifetime.
        SaslPhase::Authenticated
            if api_key != ApiKey::SaslHandshake
                && session
                    .sasl
                    .expires_at_ms()
                    .is_some_and(|at| now_ms() >= at) =>
        {
            Err(SaslError::SessionExpired)
        }
        SaslPhase::Authenticated => Ok(()),
    }
}

pub fn handshake(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    mut body: Bytes,
    session: &mut Session,
) -> Result<Reply, ProtocolError> {
    let request: SaslHandshakeRequest = ctx.decode(&mut body)?;
    if !session.protocol.uses_sasl() {
        return ctx.reply(
            &SaslHandshakeResponse::default()
                .with_error_code(code(ResponseError::IllegalSaslState)),
        );
    }
    // v0 sends the mechanism's tokens as bare frames; Kafka 4 deprecates it and every
    // client sluice serves uses v1 with SaslAuthenticate.
    if ctx.version == 0 {
        session.sasl.fail();
        return Err(SaslError::HandshakeV0.into());
    }
    let enabled = &shard.config.sasl.mechanisms;
    let error = match session.sasl.handshake(&request.mechanism, enabled) {
        HandshakeOutcome::Accepted => 0,
        HandshakeOutcome::Unsupported => code(ResponseError::UnsupportedSaslMechanism),
    };
    ctx.reply(
        &SaslHandshakeResponse::default()
            .with_error_code(error)
            .with_mechanisms(
                enabled
                    .iter()
                    .map(|m| StrBytes::from_static_str(m.name()))
                    .collect(),
            ),
    )
}

pub fn authenticate(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    mut body: Bytes,
    session: &mut Session,
) -> Result<Reply, ProtocolError> {
    let request: SaslAuthenticateRequest = ctx.decode(&mut body)?;
    if !session.protocol.uses_sasl() || session.sasl.phase() == SaslPhase::Authenticated {
        return ctx.reply(
            &SaslAuthenticateResponse::default()
                .with_error_code(code(ResponseError::IllegalSaslState))
                .with_error_message(Some(StrBytes::from_static_str(AUTHENTICATE_AFTER_SUCCESS))),
        );
    }
    let lifetime_ms = shard.config.sasl.session_lifetime_ms;
    let step = session
        .sasl
        .authenticate(&request.auth_bytes, &**shard, lifetime_ms, now_ms());
    let response = match step {
        Ok(AuthStep::Challenge(token)) => {
            SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(token))
        }
        Ok(AuthStep::Complete {
            token,
            user,
            session_lifetime_ms,
            reauthenticated,
        }) => {
            if reauthenticated {
                tracing::info!(peer = ?session.peer, %user, "SASL re-authentication succeeded");
            } else {
                tracing::debug!(peer = ?session.peer, %user, "SASL authentication succeeded");
            }
            session.principal = KafkaPrincipal::user(user);
            SaslAuthenticateResponse::default()
                .with_auth_bytes(Bytes::from(token))
                .with_session_lifetime_ms(session_lifetime_ms)
        }
        Err(SaslError::Authentication {
            client_message,
            reason,
        }) => {
            tracing::info!(peer = ?session.peer, %reason, "SASL authentication failed");
            // The session is now failed: the connection closes once this is written.
            SaslAuthenticateResponse::default()
                .with_error_code(code(ResponseError::SaslAuthenticationFailed))
                .with_error_message(Some(StrBytes::from_string(client_message)))
        }
        Err(e) => return Err(e.into()),
    };
    ctx.reply(&response)
}

/// Kafka's `ApiKeys` constant name (`METADATA`, `SASL_HANDSHAKE`), as its messages print it.
fn kafka_enum_name(api_key: ApiKey) -> String {
    let mut out = String::new();
    for (i, c) in api_name(api_key).chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

impl From<SaslError> for ProtocolError {
    fn from(e: SaslError) -> ProtocolError {
        ProtocolError::SecurityRefused(e.to_string())
    }
}
