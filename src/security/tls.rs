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
        let pem = |path: &PathBuf| {
            let path = path.clone();
            move |source| TlsError::Pem { path, source }
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert)
            .map_err(pem(&self.cert))?
            .collect::<Result<_, _>>()
            .map_err(pem(&self.cert))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: self.cert.clone(),
            });
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(pem(&self.key))?;
        #[expect(
            deprecated,
            reason = "ring lacks post-quantum key exchange; aws-lc-rs, which has it, needs cmake and is not in this build's crate set"
        )]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
        let builder = match (self.client_auth, &self.ca) {
            (ClientAuth::None, _) => builder.with_no_client_auth(),
            (auth, None) => return Err(TlsError::NoClientCa(auth.name())),
            (auth, Some(ca)) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(ca).map_err(pem(ca))? {
                    roots
                        .add(cert.map_err(pem(ca))?)
                        .map_err(|source| TlsError::BadCa {
                            path: ca.clone(),
                            source,
                        })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
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
/// distinguished name, most specific part first (`User:CN=alice,OU=eng,O=corp`).
pub fn certificate_principal(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let mut parts = Vec::new();
    // X.509 stores the RDNs most general first; Kafka (RFC 2253) prints them reversed.
    for rdn in parsed
        .subject()
        .iter()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        for attr in rdn.iter() {
            let name = x509_parser::objects::oid2abbrev(
                attr.attr_type(),
                x509_parser::objects::oid_registry(),
            )
            .map(str::to_owned)
            .unwrap_or_else(|_| attr.attr_type().to_id_string());
            let value = attr.as_str().ok()?;
            parts.push(format!("{name}={value}"));
        }
    }
    Some(parts.join(","))
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
