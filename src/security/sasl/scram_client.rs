//! The client side of a SCRAM exchange, for sluice's own CLI (RFC 5802 without channel
//! binding): client-first, then the proof for the server's salt and iterations, then a check
//! of the server's signature so a broker that does not know the password is caught.

use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use base64::Engine;
use subtle::ConstantTimeEq;

use super::scram_credential::SCRAM_ITERATIONS_MIN;
use super::ScramHash;

/// Random bytes behind the client's nonce.
const CLIENT_NONCE_BYTES: usize = 24;

pub struct ScramClient {
    hash: ScramHash,
    password: Vec<u8>,
    nonce: String,
    client_first_bare: String,
}

/// What the server's signature must be once the client-final message is sent.
pub struct ScramClientFinal {
    expected_server_signature: Vec<u8>,
}

impl ScramClient {
    /// The exchange and its client-first message.
    pub fn start(
        hash: ScramHash,
        username: &str,
        password: &str,
    ) -> Result<(ScramClient, Vec<u8>), String> {
        let mut random = [0u8; CLIENT_NONCE_BYTES];
        getrandom::getrandom(&mut random).map_err(|e| format!("no randomness: {e}"))?;
        let nonce = URL_SAFE_NO_PAD.encode(random);
        let name = username.replace('=', "=3D").replace(',', "=2C");
        let client_first_bare = format!("n={name},r={nonce}");
        let first = format!("n,,{client_first_bare}").into_bytes();
        Ok((
            ScramClient {
                hash,
                password: password.as_bytes().to_vec(),
                nonce,
                client_first_bare,
            },
            first,
        ))
    }

    /// Answers the server-first message with the client-final message.
    pub fn finish(self, server_first: &[u8]) -> Result<(ScramClientFinal, Vec<u8>), String> {
        let text = std::str::from_utf8(server_first)
            .map_err(|_| "server-first message is not UTF-8".to_owned())?;
        let field = |name: &str| {
            text.split(',')
                .find_map(|f| f.strip_prefix(name))
                .ok_or_else(|| format!("server-first message {text:?} has no {name}"))
        };
        let nonce = field("r=")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("server nonce does not extend the client's".to_owned());
        }
        let salt = BASE64
            .decode(field("s=")?)
            .map_err(|e| format!("salt is not base64: {e}"))?;
        let iterations: i32 = field("i=")?
            .parse()
            .map_err(|e| format!("iterations: {e}"))?;
        if iterations < SCRAM_ITERATIONS_MIN {
            return Err(format!("server asks for only {iterations} iterations"));
        }
        let rounds = u32::try_from(iterations).map_err(|e| format!("iterations: {e}"))?;
        let salted = self.hash.salted_password(&self.password, &salt, rounds);
        let client_key = self.hash.hmac(&salted, b"Client Key");
        let stored_key = self.hash.digest(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let signature = self.hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = self.hash.hmac(&salted, b"Server Key");
        let final_message = format!("{without_proof},p={}", BASE64.encode(proof));
        Ok((
            ScramClientFinal {
                expected_server_signature: self.hash.hmac(&server_key, auth_message.as_bytes()),
            },
            final_message.into_bytes(),
        ))
    }
}

impl ScramClientFinal {
    /// Checks the server-final message (`v=signature`, or `e=error`).
    pub fn verify(&self, server_final: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(server_final);
        if let Some(error) = text.strip_prefix("e=") {
            return Err(format!("server refused: {error}"));
        }
        let signature = text
            .strip_prefix("v=")
            .and_then(|v| BASE64.decode(v).ok())
            .ok_or_else(|| format!("server-final message {text:?} has no signature"))?;
        if bool::from(signature.ct_eq(&self.expected_server_signature)) {
            Ok(())
        } else {
            Err("the server's signature is wrong: it does not know the password".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::scram_credential::salt_password;
    use super::super::scram_server::ScramServer;
    use super::super::{CredentialSource, SaslMechanism, ScramCredential};
    use super::*;

    struct One(ScramCredential);

    impl CredentialSource for One {
        fn scram_credential(&self, user: &str, _: SaslMechanism) -> Option<ScramCredential> {
            (user == "a,b=c").then(|| self.0.clone())
        }
    }

    #[test]
    fn client_and_server_agree() {
        let hash = ScramHash::Sha256;
        let (salt, salted) = salt_password(hash, b"pw", 4096).expect("random");
        let users = One(ScramCredential::from_salted_password(
            hash, salt, &salted, 4096,
        ));
        let (client, first) = ScramClient::start(hash, "a,b=c", "pw").expect("start");
        let (server, server_first) =
            ScramServer::start(SaslMechanism::ScramSha256, &first, &users, false).expect("first");
        let (check, client_final) = client.finish(&server_first).expect("final");
        let (user, server_final) = server.finish(&client_final, false).expect("proof");
        assert_eq!(user, "a,b=c");
        assert!(check.verify(&server_final).is_ok());
    }
}
