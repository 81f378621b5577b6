//! SASL/PLAIN (RFC 4616): one token, `authzid NUL authcid NUL password`, checked against the
//! user's SCRAM credential. Error texts are Kafka's PlainSaslServer's.

use super::{CredentialSource, SaslError, SaslMechanism};

/// The authenticated user name, or why not.
pub fn authenticate(token: &[u8], credentials: &dyn CredentialSource) -> Result<String, SaslError> {
    let text = String::from_utf8_lossy(token);
    let tokens: Vec<&str> = text.split('\u{0}').collect();
    let [authorization_id, username, password] = tokens[..] else {
        return Err(SaslError::told(format!(
            "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
            tokens.len()
        )));
    };
    if username.is_empty() {
        return Err(SaslError::told(
            "Authentication failed: username not specified",
        ));
    }
    if password.is_empty() {
        return Err(SaslError::told(
            "Authentication failed: password not specified",
        ));
    }
    // The strongest hash the user has a credential for; any of them proves the password.
    let verified = [SaslMechanism::ScramSha512, SaslMechanism::ScramSha256]
        .into_iter()
        .find_map(|m| Some((m.scram_hash()?, credentials.scram_credential(username, m)?)))
        .is_some_and(|(hash, credential)| credential.verifies_password(hash, password.as_bytes()));
    if !verified {
        return Err(SaslError::told(
            "Authentication failed: Invalid username or password",
        ));
    }
    if !authorization_id.is_empty() && authorization_id != username {
        return Err(SaslError::told(
            "Authentication failed: Client requested an authorization id that is different from username",
        ));
    }
    Ok(username.to_owned())
}
