//! Argument types shared by the client subcommands, with their parsers.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use kafka_protocol::records::Compression;

use crate::client::group_admin::ResetSpec;
use crate::client::{Acks, Cluster, ConnectionConfig, SaslLogin};
use crate::security::sasl::SaslMechanism;
use crate::security::tls::TlsClientSettings;

use super::CliError;

/// Where to find the cluster.
#[derive(Debug, Clone, Args)]
pub struct BootstrapArgs {
    /// Broker address(es) to bootstrap from, comma-separated host:port.
    #[arg(long, env = "SLUICE_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Authenticate with SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (needs --sasl-username and --sasl-password)
    #[arg(long, env = "SLUICE_SASL_MECHANISM", value_parser = parse_sasl_mechanism)]
    pub sasl_mechanism: Option<SaslMechanism>,
    #[arg(long, env = "SLUICE_SASL_USERNAME")]
    pub sasl_username: Option<String>,
    #[arg(long, env = "SLUICE_SASL_PASSWORD", hide_env_values = true)]
    pub sasl_password: Option<String>,
    /// Speak TLS (an SSL or SASL_SSL listener), trusting the brokers' certificates that these
    /// PEM CA certificates sign
    #[arg(long, env = "SLUICE_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate chain, for listeners that ask for one (with --tls-ca and --tls-key)
    #[arg(long, env = "SLUICE_TLS_CERT", requires_all = ["tls_ca", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert
    #[arg(long, env = "SLUICE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl BootstrapArgs {
    pub fn connect(&self) -> Result<Cluster, CliError> {
        let config = ConnectionConfig {
            request_timeout: Duration::from_secs(30),
            sasl: self.sasl_login()?,
            tls: self.tls_config()?,
            ..ConnectionConfig::default()
        };
        Ok(Cluster::connect(&self.bootstrap, config)?)
    }

    fn tls_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, CliError> {
        let Some(ca) = self.tls_ca.clone() else {
            return Ok(None);
        };
        let settings = TlsClientSettings {
            ca,
            cert_and_key: self.tls_cert.clone().zip(self.tls_key.clone()),
        };
        Ok(Some(Arc::new(settings.load()?)))
    }

    fn sasl_login(&self) -> Result<Option<SaslLogin>, CliError> {
        let Some(mechanism) = self.sasl_mechanism else {
            return Ok(None);
        };
        match (&self.sasl_username, &self.sasl_password) {
            (Some(username), Some(password)) => Ok(Some(SaslLogin {
                mechanism,
                username: username.clone(),
                password: password.clone(),
            })),
            _ => Err(CliError::Usage(
                "--sasl-mechanism needs --sasl-username and --sasl-password".to_owned(),
            )),
        }
    }
}

pub fn parse_sasl_mechanism(name: &str) -> Result<SaslMechanism, String> {
    SaslMechanism::parse(name)
        .ok_or_else(|| format!("expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got '{name}'"))
}

/// Where `group reset-offsets` and `share-group reset` move offsets: one of these.
#[derive(Debug, Clone, Args)]
#[group(id = "to", multiple = false)]
pub struct ResetToArgs {
    #[arg(long)]
    pub to_earliest: bool,
    #[arg(long)]
    pub to_latest: bool,
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// Milliseconds since the epoch: the first offset at or after it
    #[arg(long, value_name = "TIMESTAMP_MS")]
    pub to_timestamp: Option<i64>,
}

impl ResetToArgs {
    pub fn spec(&self) -> Result<ResetSpec, CliError> {
        match (
            self.to_earliest,
            self.to_latest,
            self.to_offset,
            self.to_timestamp,
        ) {
            (true, _, _, _) => Ok(ResetSpec::Earliest),
            (_, true, _, _) => Ok(ResetSpec::Latest),
            (_, _, Some(offset), _) => Ok(ResetSpec::Offset(offset)),
            (_, _, _, Some(timestamp_ms)) => Ok(ResetSpec::Timestamp(timestamp_ms)),
            _ => Err(CliError::Usage(
                "one of --to-earliest, --to-latest, --to-offset or --to-timestamp is required"
                    .to_owned(),
            )),
        }
    }
}

/// Parses `key=value` (value may contain `=`; key must be non-empty).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// `--acks`: all (or -1), 1, 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AcksArg {
    #[value(name = "all", alias = "-1")]
    All,
    #[value(name = "1")]
    Leader,
    #[value(name = "0")]
    None,
}

impl From<AcksArg> for Acks {
    fn from(a: AcksArg) -> Self {
        match a {
            AcksArg::All => Acks::All,
            AcksArg::Leader => Acks::Leader,
            AcksArg::None => Acks::None,
        }
    }
}

/// `--compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Self {
        match c {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

/// `--from`: earliest | latest | OFFSET | ts:MILLIS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromArg {
    Earliest,
    Latest,
    Offset(i64),
    Timestamp(i64),
}

pub fn parse_from(s: &str) -> Result<FromArg, String> {
    match s {
        "earliest" | "beginning" => Ok(FromArg::Earliest),
        "latest" | "end" => Ok(FromArg::Latest),
        _ => {
            if let Some(ts) = s.strip_prefix("ts:") {
                let ts: i64 = ts
                    .parse()
                    .map_err(|_| format!("'{ts}' is not a timestamp in milliseconds"))?;
                if ts < 0 {
                    return Err("timestamp must be >= 0".to_owned());
                }
                return Ok(FromArg::Timestamp(ts));
            }
            match s.parse::<i64>() {
                Ok(offset) if offset >= 0 => Ok(FromArg::Offset(offset)),
                _ => Err(format!(
                    "expected earliest, latest, an offset >= 0 or ts:MILLIS, got '{s}'"
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_splits_at_first_equals() {
        assert_eq!(
            parse_key_value("a=b=c"),
            Ok(("a".to_owned(), "b=c".to_owned()))
        );
        assert_eq!(parse_key_value("a="), Ok(("a".to_owned(), String::new())));
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
    }

    #[test]
    fn from_accepts_all_forms() {
        assert_eq!(parse_from("earliest"), Ok(FromArg::Earliest));
        assert_eq!(parse_from("latest"), Ok(FromArg::Latest));
        assert_eq!(parse_from("42"), Ok(FromArg::Offset(42)));
        assert_eq!(
            parse_from("ts:1700000000000"),
            Ok(FromArg::Timestamp(1_700_000_000_000))
        );
        assert!(parse_from("-1").is_err());
        assert!(parse_from("ts:x").is_err());
        assert!(parse_from("soon").is_err());
    }
}
