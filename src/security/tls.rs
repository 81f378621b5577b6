//! TLS for SSL and SASL_SSL listeners: the rustls server configuration built from PEM files,
//! swapped on SIGHUP, and the principal a client certificate names.
//!
//! Reload keeps the last good configuration: a broken new certificate is logged and the
//! connections accepted after it keep using the old one, as a broker must not lose its
//! listener to a bad deploy.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Whether a TLS listener asks for a client certificate (`ssl.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

impl ClientAuth {
    pub fn parse(text: &str) -> Option<ClientAuth> {
        match text {
            "none" => Some(ClientAuth::None),
            "requested" => Some(ClientAuth::Requested),
            "required" => Some(ClientAuth::Required),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ClientAuth::None => "none",
            ClientAuth::Requested => "requested",
            ClientAuth::Required => "required",
        }
    }
}

/// Where the listener's certificate, key and client CA come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates that sign acceptable client certificates.
    pub ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("{path} holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("--tls-client-auth {0} needs --tls-ca")]
    NoClientCa(&'static str),
    #[error("bad client CA certificate in {path}: {source}")]
    BadCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("cannot build the client certificate verifier: {0}")]
    Verifier(String),
    #[error("certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

impl TlsSettings {
    /// Reads the PEM files and builds the server configuration.
    pub fn load(&self) -> Result<ServerConfig, TlsError> {
        let chain = read_chain(&self.cert)?;
        let key = read_key(&self.key)?;
        let provider = ring_provider();
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
        let builder = match (self.client_auth, &self.ca) {
            (ClientAuth::None, _) => builder.with_no_client_auth(),
            (auth, None) => return Err(TlsError::NoClientCa(auth.name())),
            (auth, Some(ca)) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(read_roots(ca)?),
                    provider,
                );
                let verifier = if auth == ClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| TlsError::Verifier(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        Ok(builder.with_single_cert(chain, key)?)
    }
}

/// What a client (`sluice bench`, the blocking client) trusts and presents on an SSL
/// connection: the CA that signs the brokers' certificates and an optional certificate and
/// key for listeners that ask for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsClientSettings {
    /// PEM CA certificates that sign the brokers' certificates.
    pub ca: PathBuf,
    /// PEM certificate chain and key, both or neither.
    pub cert_and_key: Option<(PathBuf, PathBuf)>,
}

impl TlsClientSettings {
    /// Reads the PEM files and builds the client configuration (TLS 1.3 and 1.2, as the
    /// listeners).
    pub fn load(&self) -> Result<rustls::ClientConfig, TlsError> {
        let provider = ring_provider();
        let roots = read_roots(&self.ca)?;
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_root_certificates(roots);
        Ok(match &self.cert_and_key {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                builder.with_client_auth_cert(read_chain(cert)?, read_key(key)?)?
            }
        })
    }
}

#[expect(
    deprecated,
    reason = "ring lacks post-quantum key exchange; aws-lc-rs, which has it, needs cmake and is not in this build's crate set"
)]
fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_error(path: &std::path::Path) -> impl Fn(rustls_pki_types::pem::Error) -> TlsError + '_ {
    move |source| TlsError::Pem {
        path: path.to_owned(),
        source,
    }
}

/// A PEM certificate chain, leaf first; at least one certificate.
fn read_chain(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(pem_error(path))?
        .collect::<Result<_, _>>()
        .map_err(pem_error(path))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

fn read_key(path: &std::path::Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(pem_error(path))
}

/// The CA certificates in a PEM file as trust roots.
fn read_roots(path: &std::path::Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(pem_error(path))? {
        roots
            .add(cert.map_err(pem_error(path))?)
            .map_err(|source| TlsError::BadCa {
                path: path.to_owned(),
                source,
            })?;
    }
    Ok(roots)
}

/// The current server configuration, shared by every shard's TLS listeners. Each accepted
/// connection takes the configuration current at that moment.
#[derive(Debug)]
pub struct TlsReloader {
    settings: TlsSettings,
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsReloader {
    pub fn new(settings: TlsSettings) -> Result<TlsReloader, TlsError> {
        let config = settings.load()?;
        Ok(TlsReloader {
            settings,
            current: RwLock::new(Arc::new(config)),
        })
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(config) => Arc::clone(&config),
            // A writer never panics while holding the lock (it only assigns), but a poisoned
            // lock still holds a complete configuration.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Rereads the files; on error the old configuration stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Arc::new(self.settings.load()?);
        match self.current.write() {
            Ok(mut current) => *current = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        Ok(())
    }
}

/// Kafka's default principal for a client certificate: `User:` and the subject's
/// distinguished name as RFC 2253 prints it, most specific part first and values escaped
/// (`User:CN=alice,OU=eng,O=corp`). `None` when the certificate does not parse.
pub fn certificate_principal(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(super::distinguished_name::rfc2253(parsed.subject()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_auth_names_round_trip() {
        for auth in [
            ClientAuth::None,
            ClientAuth::Requested,
            ClientAuth::Required,
        ] {
            assert_eq!(ClientAuth::parse(auth.name()), Some(auth));
        }
        assert_eq!(ClientAuth::parse("always"), None);
    }

    #[test]
    fn missing_files_are_typed_errors() {
        let settings = TlsSettings {
            cert: PathBuf::from("/nonexistent/cert.pem"),
            key: PathBuf::from("/nonexistent/key.pem"),
            ca: None,
            client_auth: ClientAuth::None,
        };
        assert!(matches!(settings.load(), Err(TlsError::Pem { .. })));
    }
}
