//! The server side of a SCRAM exchange (RFC 5802, RFC 7677), as Kafka's ScramSaslServer runs
//! it: client-first → server-first (nonce, salt, iterations) → client-final (proof) →
//! server-final (signature). Channel binding is not offered (`n,,` / `c=biws`).

use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use base64::Engine;
use subtle::ConstantTimeEq;

use super::{CredentialSource, SaslError, SaslMechanism, ScramCredential, ScramHash};

/// Random bytes behind the server's half of the nonce.
const SERVER_NONCE_BYTES: usize = 24;

/// Where an exchange stands after the client-first message.
#[derive(Debug, Clone)]
pub struct ScramServer {
    mechanism: SaslMechanism,
    hash: ScramHash,
    username: String,
    credential: ScramCredential,
    nonce: String,
    client_first_bare: String,
    server_first: String,
}

impl ScramServer {
    /// Handles the client-first message; returns the exchange and the server-first message.
    pub fn start(
        mechanism: SaslMechanism,
        token: &[u8],
        credentials: &dyn CredentialSource,
        reauth: bool,
    ) -> Result<(ScramServer, Vec<u8>), SaslError> {
        let invalid = |reason: String| SaslError::invalid_credentials(mechanism, reauth, reason);
        let hash = mechanism
            .scram_hash()
            .ok_or_else(|| invalid(format!("{mechanism} is not a SCRAM mechanism")))?;
        let text =
            std::str::from_utf8(token).map_err(|_| invalid("client-first is not UTF-8".into()))?;
        let first = ClientFirst::parse(text).ok_or_else(|| {
            invalid(format!(
                "Invalid SCRAM client first message format: {text:?}"
            ))
        })?;
        let credential = credentials
            .scram_credential(&first.username, mechanism)
            .ok_or_else(|| invalid(format!("no {mechanism} credential for the user")))?;
        if !first.authorization_id.is_empty() && first.authorization_id != first.username {
            return Err(SaslError::told(
                "Authentication failed: Client requested an authorization id that is different from username",
            ));
        }
        let mut random = [0u8; SERVER_NONCE_BYTES];
        getrandom::getrandom(&mut random)
            .map_err(|e| invalid(format!("no randomness for the nonce: {e}")))?;
        let nonce = format!("{}{}", first.nonce, URL_SAFE_NO_PAD.encode(random));
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let reply = server_first.as_bytes().to_vec();
        Ok((
            ScramServer {
                mechanism,
                hash,
                username: first.username,
                credential,
                nonce,
                client_first_bare: first.bare.to_owned(),
                server_first,
            },
            reply,
        ))
    }

    pub fn mechanism(&self) -> SaslMechanism {
        self.mechanism
    }

    /// Checks the client-final message's proof; returns the user name and server-final.
    pub fn finish(self, token: &[u8], reauth: bool) -> Result<(String, Vec<u8>), SaslError> {
        let invalid =
            |reason: &str| SaslError::invalid_credentials(self.mechanism, reauth, reason.into());
        let text = std::str::from_utf8(token)
            .map_err(|_| invalid("Invalid client final message: not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| invalid("Invalid client final message: no proof"))?;
        let mut fields = without_proof.split(',');
        let channel_binding = fields.next().and_then(|f| f.strip_prefix("c="));
        let nonce = fields.next().and_then(|f| f.strip_prefix("r="));
        // Kafka accepts any nonce that ends with the server's (librdkafka 2.0 repeats the
        // client's part in front), so sluice does too.
        let nonce_matches = nonce.is_some_and(|n| n.ends_with(self.nonce.as_str()));
        if channel_binding.is_none() || !nonce_matches {
            return Err(invalid("Invalid client nonce in the final client message."));
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| invalid("Invalid client final message: proof is not base64"))?;
        if proof.len() != self.hash.output_bytes() {
            return Err(invalid("Invalid client credentials"));
        }
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let client_signature = self
            .hash
            .hmac(&self.credential.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let stored_key = self.hash.digest(&client_key);
        if !bool::from(stored_key.ct_eq(&self.credential.stored_key)) {
            return Err(invalid("Invalid client credentials"));
        }
        let server_signature = self
            .hash
            .hmac(&self.credential.server_key, auth_message.as_bytes());
        let server_final = format!("v={}", BASE64.encode(server_signature));
        Ok((self.username, server_final.into_bytes()))
    }
}

/// `gs2-header client-first-message-bare`: `n,[a=authzid],n=user,r=nonce[,ext...]`.
struct ClientFirst<'a> {
    authorization_id: String,
    username: String,
    nonce: &'a str,
    bare: &'a str,
}

impl<'a> ClientFirst<'a> {
    fn parse(text: &'a str) -> Option<ClientFirst<'a>> {
        // Channel binding: 'n' (client does not support it) or 'y' (thinks we do not).
        let rest = text
            .strip_prefix("n,")
            .or_else(|| text.strip_prefix("y,"))?;
        let (authorization, bare) = rest.split_once(',')?;
        let authorization_id = match authorization {
            "" => String::new(),
            a => decode_sasl_name(a.strip_prefix("a=")?)?,
        };
        let mut fields = bare.split(',');
        let username = decode_sasl_name(fields.next()?.strip_prefix("n=")?)?;
        let nonce = fields.next()?.strip_prefix("r=")?;
        let printable = |c: char| c.is_ascii_graphic() && c != ',';
        if username.is_empty() || nonce.is_empty() || !nonce.chars().all(printable) {
            return None;
        }
        Some(ClientFirst {
            authorization_id,
            username,
            nonce,
            bare,
        })
    }
}

/// RFC 5802 `saslname`: `,` and `=` travel as `=2C` and `=3D`; any other `=` is invalid.
fn decode_sasl_name(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3)?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_names_unescape() {
        assert_eq!(decode_sasl_name("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(decode_sasl_name("plain").as_deref(), Some("plain"));
        assert_eq!(decode_sasl_name("bad=2"), None);
        assert_eq!(decode_sasl_name("bad=41"), None);
    }

    #[test]
    fn client_first_parses_with_and_without_authzid() {
        let first = ClientFirst::parse("n,,n=user,r=abc").expect("valid");
        assert_eq!((first.username.as_str(), first.nonce), ("user", "abc"));
        assert_eq!(first.bare, "n=user,r=abc");
        let first = ClientFirst::parse("n,a=user,n=user,r=abc,ext=1").expect("valid");
        assert_eq!(first.authorization_id, "user");
        for bad in ["", "p=tls,,n=u,r=x", "n,,r=x,n=u", "n,,n=,r=x", "n,,n=u,r="] {
            assert!(ClientFirst::parse(bad).is_none(), "{bad:?}");
        }
    }
}
