//! SCRAM credentials (RFC 5802): what the broker keeps of a password, and the few
//! derivations both the SCRAM exchange and PLAIN's password check need.
//!
//! The broker never stores a password: only the salt, the iteration count and the two keys
//! derived from `SaltedPassword = PBKDF2-HMAC(password, salt, iterations)`:
//! `StoredKey = H(HMAC(SaltedPassword, "Client Key"))` and
//! `ServerKey = HMAC(SaltedPassword, "Server Key")`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::SaslMechanism;

/// Kafka's floor for SCRAM iterations (ScramMechanism.minIterations) ...
pub const SCRAM_ITERATIONS_MIN: i32 = 4096;
/// ... and its ceiling (ScramControlManager.MAX_ITERATIONS).
pub const SCRAM_ITERATIONS_MAX: i32 = 16384;
/// Salt length for credentials the broker or the CLI generates (Kafka's ScramFormatter
/// uses a random 130-bit string; 32 bytes is at least as strong).
const SALT_BYTES: usize = 32;

impl SaslMechanism {
    pub fn scram_hash(self) -> Option<ScramHash> {
        match self {
            SaslMechanism::Plain => None,
            SaslMechanism::ScramSha256 => Some(ScramHash::Sha256),
            SaslMechanism::ScramSha512 => Some(ScramHash::Sha512),
        }
    }
}

/// The hash behind a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
        match self {
            ScramHash::Sha256 => match Hmac::<Sha256>::new_from_slice(key) {
                Ok(mac) => mac.chain_update(data).finalize().into_bytes().to_vec(),
                Err(_) => unreachable!("HMAC takes keys of any length"),
            },
            ScramHash::Sha512 => match Hmac::<Sha512>::new_from_slice(key) {
                Ok(mac) => mac.chain_update(data).finalize().into_bytes().to_vec(),
                Err(_) => unreachable!("HMAC takes keys of any length"),
            },
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// RFC 5802's `Hi(password, salt, i)`: PBKDF2 with this hash's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut out = vec![0; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            ScramHash::Sha512 => {
                let mut out = vec![0; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }

    pub fn output_bytes(self) -> usize {
        match self {
            ScramHash::Sha256 => 32,
            ScramHash::Sha512 => 64,
        }
    }
}

/// One user's credential for one SCRAM mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub iterations: i32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramCredential {
    /// The credential for a salted password (what AlterUserScramCredentials carries).
    pub fn from_salted_password(
        hash: ScramHash,
        salt: Vec<u8>,
        salted_password: &[u8],
        iterations: i32,
    ) -> ScramCredential {
        let client_key = hash.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt,
            iterations,
            stored_key: hash.digest(&client_key),
            server_key: hash.hmac(salted_password, b"Server Key"),
        }
    }

    /// Whether `password` is the one this credential was made from, compared in constant
    /// time. This is how PLAIN checks a password: one credential store for every mechanism.
    pub fn verifies_password(&self, hash: ScramHash, password: &[u8]) -> bool {
        let Ok(iterations) = u32::try_from(self.iterations) else {
            return false;
        };
        let salted = hash.salted_password(password, &self.salt, iterations);
        let stored_key = hash.digest(&hash.hmac(&salted, b"Client Key"));
        stored_key.ct_eq(&self.stored_key).into()
    }
}

/// A random salt and the salted password for `password`: what a client sends in
/// AlterUserScramCredentials, and what the offline `user add` stores.
pub fn salt_password(
    hash: ScramHash,
    password: &[u8],
    iterations: i32,
) -> Result<(Vec<u8>, Vec<u8>), getrandom::Error> {
    let mut salt = vec![0; SALT_BYTES];
    getrandom::getrandom(&mut salt)?;
    let rounds = u32::try_from(iterations.max(1)).unwrap_or(1);
    let salted = hash.salted_password(password, &salt, rounds);
    Ok((salt, salted))
}

/// A user's credentials as catalog.toml keeps them (binary fields in base64).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct UserEntry {
    pub name: String,
    #[serde(default)]
    pub scram: Vec<ScramEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ScramEntry {
    pub mechanism: String,
    pub salt: String,
    pub iterations: i32,
    pub stored_key: String,
    pub server_key: String,
}

impl ScramEntry {
    pub fn new(mechanism: SaslMechanism, credential: &ScramCredential) -> ScramEntry {
        ScramEntry {
            mechanism: mechanism.name().to_owned(),
            salt: BASE64.encode(&credential.salt),
            iterations: credential.iterations,
            stored_key: BASE64.encode(&credential.stored_key),
            server_key: BASE64.encode(&credential.server_key),
        }
    }

    /// The mechanism and credential, or why the entry cannot be one.
    pub fn decode(&self) -> Result<(SaslMechanism, ScramCredential), String> {
        let mechanism = SaslMechanism::parse(&self.mechanism)
            .filter(|m| m.scram_hash().is_some())
            .ok_or_else(|| format!("unknown SCRAM mechanism {:?}", self.mechanism))?;
        let bytes = |field: &str, text: &str| {
            BASE64
                .decode(text)
                .map_err(|e| format!("{} of {}: {e}", field, self.mechanism))
        };
        Ok((
            mechanism,
            ScramCredential {
                salt: bytes("salt", &self.salt)?,
                iterations: self.iterations,
                stored_key: bytes("stored-key", &self.stored_key)?,
                server_key: bytes("server-key", &self.server_key)?,
            },
        ))
    }
}

/// Where the SASL exchange finds a user's SCRAM credential (the shard's catalog replica).
pub trait CredentialSource {
    fn scram_credential(&self, user: &str, mechanism: SaslMechanism) -> Option<ScramCredential>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example: user "user", password "pencil".
    #[test]
    fn rfc7677_salted_password_gives_its_keys() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let hash = ScramHash::Sha256;
        let salted = hash.salted_password(b"pencil", &salt, 4096);
        let credential = ScramCredential::from_salted_password(hash, salt, &salted, 4096);
        // ServerSignature for the RFC's AuthMessage, from its server-final-message.
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let signature = hash.hmac(&credential.server_key, auth_message.as_bytes());
        assert_eq!(
            BASE64.encode(signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        assert!(credential.verifies_password(hash, b"pencil"));
        assert!(!credential.verifies_password(hash, b"pencil2"));
    }

    #[test]
    fn entries_round_trip() {
        let hash = ScramHash::Sha512;
        let (salt, salted) = salt_password(hash, b"pw", 4096).expect("random");
        let credential = ScramCredential::from_salted_password(hash, salt, &salted, 4096);
        let entry = ScramEntry::new(SaslMechanism::ScramSha512, &credential);
        assert_eq!(
            entry.decode().expect("decodes"),
            (SaslMechanism::ScramSha512, credential)
        );
    }
}
