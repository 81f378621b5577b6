//! Broker configuration: embedded defaults, overridden by a TOML file, overridden by flags
//! and `SLUICE_*` environment variables (clap resolves flag-vs-env; the file sits below both).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::log::{FlushPolicy, LogConfig};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid value for {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// Everything the broker process needs to start. Built once, then shared read-only by the shards.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub data_dir: PathBuf,
    /// Shard `i` listens on `listen.port() + i` (or an ephemeral port each when the port is 0).
    pub listen: SocketAddr,
    /// Host name put in Metadata; defaults to the listen IP.
    pub advertised_host: String,
    pub shard_count: usize,
    /// CPU for each shard; empty means threads are not pinned.
    pub cpus: Vec<usize>,
    pub auto_create_topics: bool,
    /// `num.partitions` for auto-created topics and CreateTopics with -1 partitions.
    pub num_partitions: i32,
    /// Replicas of a topic created without a replication factor (Kafka's
    /// `default.replication.factor`); above 1 only means something in a cluster.
    pub default_replication_factor: i16,
    /// Growth of a partition's Raft log that triggers its compaction.
    pub replica_log_compact_bytes: u64,
    /// Defaults for topic-level settings (`segment.bytes`, `retention.ms`, flush policy, ...).
    pub log: LogConfig,
    pub cluster_id: String,
    /// Group coordinator settings (Kafka's `group.*` and `offsets.*`).
    pub group: crate::group::GroupConfig,
    /// Share-group settings (Kafka's `group.share.*`).
    pub share: crate::share::share_config::ShareBrokerConfig,
    /// The admin HTTP endpoint (`/metrics`, `/health`, `/ready`); port 0 picks a free port.
    pub admin_listen: SocketAddr,
    /// Bearer token the admin endpoint requires (`--admin-token`, `--admin-token-file`).
    pub admin_token: Option<String>,
    /// Certificate and key that make the admin endpoint HTTPS (`--admin-tls-cert/-key`).
    pub admin_tls: Option<crate::security::tls::TlsSettings>,
    /// The security protocol of the first client listener.
    pub security_protocol: crate::security::SecurityProtocol,
    /// Every client listener (`--listener`); the first is `listen` with `security_protocol`.
    /// Each shard serves each listener on its port plus the shard's index.
    pub listeners: Vec<ListenerConfig>,
    /// Certificate and key of the SSL and SASL_SSL listeners.
    pub tls: Option<crate::security::tls::TlsSettings>,
    /// SASL mechanisms and session lifetime, for SASL listeners.
    pub sasl: crate::security::sasl::SaslConfig,
    /// ACL authorization (`--authorizer acl`); disabled, every request is allowed.
    pub authorizer: crate::security::acl::AuthorizerConfig,
    /// This node and its peers when it is one node of a cluster (`--node-id`, `--peers`);
    /// `None` runs the single node exactly as before, with no Raft and no cluster port.
    pub cluster: Option<crate::cluster::PeerList>,
}

/// One client listener: its security protocol, shard 0's address, and the host its
/// Metadata answers name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub protocol: crate::security::SecurityProtocol,
    pub listen: SocketAddr,
    pub advertised_host: String,
}

/// Parses `PROTOCOL://host:port` (Kafka's `listeners` entries, the protocol as the name).
pub fn parse_listener(
    text: &str,
) -> Result<(crate::security::SecurityProtocol, SocketAddr, String), ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        key: "listener",
        reason: format!("{reason} (got {text:?}; expected PROTOCOL://host:port)"),
    };
    let (name, address) = text
        .split_once("://")
        .ok_or_else(|| invalid("no ://".to_owned()))?;
    let protocol = crate::security::SecurityProtocol::parse(name).ok_or_else(|| {
        invalid(format!(
            "{name:?} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
        ))
    })?;
    let host = address
        .rsplit_once(':')
        .map(|(host, _)| {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned()
        })
        .ok_or_else(|| invalid("no port".to_owned()))?;
    let listen = std::net::ToSocketAddrs::to_socket_addrs(address)
        .map_err(|e| invalid(e.to_string()))?
        .next()
        .ok_or_else(|| invalid("the host resolves to no address".to_owned()))?;
    Ok((protocol, listen, host))
}

/// The TOML file's shape. Every field is optional; absent ones keep their defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFile {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub advertised_host: Option<String>,
    pub shards: Option<usize>,
    pub cpus: Option<Vec<usize>>,
    pub auto_create_topics: Option<bool>,
    pub num_partitions: Option<i32>,
    pub segment_bytes: Option<u64>,
    pub segment_ms: Option<u64>,
    pub retention_ms: Option<i64>,
    pub retention_bytes: Option<i64>,
    pub flush_policy: Option<String>,
    pub message_max_bytes: Option<u32>,
    pub cluster_id: Option<String>,
    pub group_min_session_timeout_ms: Option<i32>,
    pub group_initial_rebalance_delay_ms: Option<i64>,
    pub offsets_retention_ms: Option<i64>,
    pub group_consumer_session_timeout_ms: Option<i32>,
    pub group_consumer_heartbeat_interval_ms: Option<i32>,
    pub share_record_lock_duration_ms: Option<i64>,
    pub share_delivery_count_limit: Option<i16>,
    pub share_session_timeout_ms: Option<i64>,
    pub share_heartbeat_interval_ms: Option<i32>,
    pub share_partition_max_record_locks: Option<usize>,
    pub share_max_share_sessions: Option<usize>,
    pub admin_listen: Option<SocketAddr>,
    pub admin_token_file: Option<PathBuf>,
    pub admin_tls_cert: Option<PathBuf>,
    pub admin_tls_key: Option<PathBuf>,
    pub security_protocol: Option<String>,
    /// `listener = ["SSL://0.0.0.0:9093", ...]`, as the repeatable `--listener` flag.
    pub listener: Option<Vec<String>>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub tls_client_auth: Option<String>,
    pub sasl_enabled_mechanisms: Option<String>,
    pub sasl_session_lifetime_ms: Option<i64>,
    pub authorizer: Option<String>,
    pub super_users: Option<String>,
    pub allow_everyone_if_no_acl_found: Option<bool>,
    pub cluster: Option<ClusterSection>,
}

/// The config file's `[cluster]` table: `node-id = 1`, `peers = "1@host:port,2@host:port"`,
/// and for a node added to a running cluster `cluster-addr = "host:port"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClusterSection {
    pub node_id: Option<u64>,
    pub peers: Option<String>,
    pub cluster_addr: Option<String>,
    pub default_replication_factor: Option<i16>,
    pub replica_log_compact_bytes: Option<u64>,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }
}

/// Parses `group-commit`, `group-commit:DELAY_US`, `interval:MS` or `never`.
pub fn parse_flush_policy(text: &str) -> Result<FlushPolicy, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        key: "flush-policy",
        reason: format!(
            "{reason} (got {text:?}; expected group-commit[:DELAY_US], interval:MS or never)"
        ),
    };
    let (name, arg) = match text.split_once(':') {
        Some((name, arg)) => (name, Some(arg)),
        None => (text, None),
    };
    let number = |arg: Option<&str>| -> Result<Option<u64>, ConfigError> {
        arg.map(|a| a.parse::<u64>().map_err(|_| invalid("not a number")))
            .transpose()
    };
    match name {
        "group-commit" => {
            let default = LogConfig::default();
            let (delay_default, bytes_default) = match default.flush {
                FlushPolicy::GroupCommit {
                    delay_us,
                    bytes_max,
                } => (delay_us, bytes_max),
                _ => (200, 4 << 20),
            };
            Ok(FlushPolicy::GroupCommit {
                delay_us: number(arg)?.unwrap_or(delay_default),
                bytes_max: bytes_default,
            })
        }
        "interval" => Ok(FlushPolicy::IntervalMs(
            number(arg)?.ok_or_else(|| invalid("interval needs milliseconds"))?,
        )),
        "never" => Ok(FlushPolicy::Never),
        _ => Err(invalid("unknown policy")),
    }
}

/// Parses `sasl.enabled.mechanisms`: a comma-separated list of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512.
pub fn parse_sasl_mechanisms(
    text: &str,
) -> Result<Vec<crate::security::sasl::SaslMechanism>, ConfigError> {
    let mut mechanisms = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let mechanism = crate::security::sasl::SaslMechanism::parse(name).ok_or_else(|| {
            ConfigError::Invalid {
                key: "sasl-enabled-mechanisms",
                reason: format!("{name:?} is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
            }
        })?;
        if !mechanisms.contains(&mechanism) {
            mechanisms.push(mechanism);
        }
    }
    if mechanisms.is_empty() {
        return Err(ConfigError::Invalid {
            key: "sasl-enabled-mechanisms",
            reason: "no mechanism enabled".to_owned(),
        });
    }
    Ok(mechanisms)
}

/// Where the admin HTTP endpoint listens unless configured (Redpanda's admin port).
pub const ADMIN_LISTEN_DEFAULT: ([u8; 4], u16) = ([127, 0, 0, 1], 9644);

pub fn default_shard_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
