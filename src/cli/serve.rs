//! `sluice serve`: flags and env over the config file over embedded defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{self, BrokerConfig, ConfigError, ConfigFile};
use crate::log::LogConfig;
use crate::security::sasl::SaslConfig;
use crate::security::tls::{ClientAuth, TlsSettings};
use crate::security::SecurityProtocol;
use crate::share::share_config::{self, ShareBrokerConfig};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML config file; flags and SLUICE_* env vars override it.
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where partitions and metadata live [default: ./data]
    #[arg(long, env = "SLUICE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of shard 0; shard i listens on PORT+i (port 0: ephemeral ports) [default: 127.0.0.1:9092]
    #[arg(long, env = "SLUICE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Host name advertised to clients in Metadata [default: the listen IP]
    #[arg(long, env = "SLUICE_ADVERTISED_HOST")]
    pub advertised_host: Option<String>,
    /// This node's id in a cluster (with --peers); without both, a single node as before
    #[arg(long, env = "SLUICE_NODE_ID")]
    pub node_id: Option<u64>,
    /// The cluster's initial nodes with their cluster ports, e.g. 1@10.0.0.1:9093,2@10.0.0.2:9093
    /// (the same list on every node, also on nodes added later)
    #[arg(long, env = "SLUICE_PEERS")]
    pub peers: Option<String>,
    /// This node's cluster address when it is not in --peers (a node added to a running
    /// cluster with `sluice cluster add-node`)
    #[arg(long, env = "SLUICE_CLUSTER_ADDR")]
    pub cluster_addr: Option<String>,
    /// Replicas of topics created without a replication factor (Kafka's
    /// default.replication.factor; also `[cluster] default-replication-factor`) [default: 1]
    #[arg(long, env = "SLUICE_DEFAULT_REPLICATION_FACTOR")]
    pub default_replication_factor: Option<i16>,
    /// Growth in bytes of a partition's Raft log that triggers its compaction (a follower
    /// that needs compacted entries is sent a snapshot; also `[cluster]
    /// replica-log-compact-bytes`) [default: 32 MiB]
    #[arg(long, env = "SLUICE_REPLICA_LOG_COMPACT_BYTES")]
    pub replica_log_compact_bytes: Option<u64>,
    /// Number of shards (one executor and one broker id each) [default: all cores]
    #[arg(long, env = "SLUICE_SHARDS")]
    pub shards: Option<usize>,
    /// CPUs to pin shards to, e.g. 0,1 [default: 0..shards when shards <= cores]
    #[arg(long, env = "SLUICE_CPUS", value_delimiter = ',')]
    pub cpus: Option<Vec<usize>>,
    /// Create topics on first Metadata/Produce [default: true]
    #[arg(long, env = "SLUICE_AUTO_CREATE_TOPICS")]
    pub auto_create_topics: Option<bool>,
    /// Partitions of auto-created topics (Kafka's num.partitions) [default: 1]
    #[arg(long, env = "SLUICE_NUM_PARTITIONS")]
    pub num_partitions: Option<i32>,
    /// Segment size in bytes [default: 1 GiB]
    #[arg(long, env = "SLUICE_SEGMENT_BYTES")]
    pub segment_bytes: Option<u64>,
    /// group-commit[:DELAY_US] | interval:MS | never (never is unsafe: for benchmarks) [default: group-commit]
    #[arg(long, env = "SLUICE_FLUSH_POLICY")]
    pub flush_policy: Option<String>,
    /// Largest RecordBatch accepted (Kafka's message.max.bytes)
    #[arg(long, env = "SLUICE_MESSAGE_MAX_BYTES")]
    pub message_max_bytes: Option<u32>,
    /// Admin HTTP endpoint for /metrics, /health, /ready (port 0: ephemeral) [default: 127.0.0.1:9644]
    #[arg(long, env = "SLUICE_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Bearer token the admin endpoint requires (Authorization: Bearer TOKEN; 401 without it)
    #[arg(long, env = "SLUICE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// File holding the admin endpoint's bearer token (trailing newline ignored)
    #[arg(long, env = "SLUICE_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// PEM certificate chain that makes the admin endpoint HTTPS (with --admin-tls-key)
    #[arg(long, env = "SLUICE_ADMIN_TLS_CERT")]
    pub admin_tls_cert: Option<PathBuf>,
    /// PEM private key of the admin endpoint's certificate
    #[arg(long, env = "SLUICE_ADMIN_TLS_KEY")]
    pub admin_tls_key: Option<PathBuf>,
    /// Security protocol of the --listen listener: PLAINTEXT or SASL_PLAINTEXT (shorthand for one --listener) [default: PLAINTEXT]
    #[arg(long, env = "SLUICE_SECURITY_PROTOCOL")]
    pub security_protocol: Option<String>,
    /// A client listener, PROTOCOL://host:port with PROTOCOL one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL; repeatable; replaces --listen and --security-protocol. Shard i serves each on PORT+i
    #[arg(long = "listener", env = "SLUICE_LISTENERS", value_delimiter = ',')]
    pub listeners: Vec<String>,
    /// PEM certificate chain of the SSL and SASL_SSL listeners (reread on SIGHUP)
    #[arg(long, env = "SLUICE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the SSL and SASL_SSL listeners (reread on SIGHUP)
    #[arg(long, env = "SLUICE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates that sign client certificates (for --tls-client-auth)
    #[arg(long, env = "SLUICE_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificates: none, requested or required (Kafka's ssl.client.auth); a certificate's subject becomes the principal User:<DN> [default: none]
    #[arg(long, env = "SLUICE_TLS_CLIENT_AUTH")]
    pub tls_client_auth: Option<String>,
    /// SASL mechanisms offered on SASL listeners (Kafka's sasl.enabled.mechanisms) [default: SCRAM-SHA-256,SCRAM-SHA-512,PLAIN]
    #[arg(long, env = "SLUICE_SASL_ENABLED_MECHANISMS")]
    pub sasl_enabled_mechanisms: Option<String>,
    /// KIP-368: an authenticated connection must re-authenticate within this time or is closed on its next request; 0 = never (Kafka's connections.max.reauth.ms) [default: 0]
    #[arg(long, env = "SLUICE_SASL_SESSION_LIFETIME_MS")]
    pub sasl_session_lifetime_ms: Option<i64>,
    /// Kafka's group.min.session.timeout.ms [default: 1000]
    #[arg(long, env = "SLUICE_GROUP_MIN_SESSION_TIMEOUT_MS")]
    pub group_min_session_timeout_ms: Option<i32>,
    /// Kafka's group.initial.rebalance.delay.ms [default: 3000]
    #[arg(long, env = "SLUICE_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    pub group_initial_rebalance_delay_ms: Option<i64>,
    /// Offsets of a group empty this long are deleted (Kafka's offsets.retention.minutes, in ms) [default: 7 days]
    #[arg(long, env = "SLUICE_OFFSETS_RETENTION_MS")]
    pub offsets_retention_ms: Option<i64>,
    /// KIP-848 group.consumer.session.timeout.ms [default: 45000]
    #[arg(long, env = "SLUICE_GROUP_CONSUMER_SESSION_TIMEOUT_MS")]
    pub group_consumer_session_timeout_ms: Option<i32>,
    /// KIP-848 group.consumer.heartbeat.interval.ms [default: 5000]
    #[arg(long, env = "SLUICE_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS")]
    pub group_consumer_heartbeat_interval_ms: Option<i32>,
    /// Share groups: default share.record.lock.duration.ms, how long an acquired record stays locked (Kafka's group.share.record.lock.duration.ms) [default: 30000]
    #[arg(long, env = "SLUICE_SHARE_RECORD_LOCK_DURATION_MS")]
    pub share_record_lock_duration_ms: Option<i64>,
    /// Share groups: default share.delivery.count.limit, deliveries before a record is archived (Kafka's group.share.delivery.count.limit) [default: 5]
    #[arg(long, env = "SLUICE_SHARE_DELIVERY_COUNT_LIMIT")]
    pub share_delivery_count_limit: Option<i16>,
    /// Share groups: default share.session.timeout.ms, a member silent this long is removed (Kafka's group.share.session.timeout.ms) [default: 45000]
    #[arg(long, env = "SLUICE_SHARE_SESSION_TIMEOUT_MS")]
    pub share_session_timeout_ms: Option<i64>,
    /// Share groups: default share.heartbeat.interval.ms (Kafka's group.share.heartbeat.interval.ms) [default: 5000]
    #[arg(long, env = "SLUICE_SHARE_HEARTBEAT_INTERVAL_MS")]
    pub share_heartbeat_interval_ms: Option<i32>,
    /// Share groups: most records in flight per share-partition (Kafka's group.share.partition.max.record.locks) [default: 2000]
    #[arg(long, env = "SLUICE_SHARE_PARTITION_MAX_RECORD_LOCKS")]
    pub share_partition_max_record_locks: Option<usize>,
    /// Share groups: most share sessions per shard (Kafka's group.share.max.share.sessions, per broker) [default: 2000]
    #[arg(long, env = "SLUICE_SHARE_MAX_SHARE_SESSIONS")]
    pub share_max_share_sessions: Option<usize>,
    /// Authorizer: none (every request allowed) or acl (Kafka ACLs; see `sluice acl`) [default: none]
    #[arg(long, env = "SLUICE_AUTHORIZER")]
    pub authorizer: Option<String>,
    /// Principals the ACL authorizer always allows, e.g. "User:admin;User:ops" (Kafka's super.users)
    #[arg(long, env = "SLUICE_SUPER_USERS")]
    pub super_users: Option<String>,
    /// With the ACL authorizer, allow a resource no ACL covers (Kafka's allow.everyone.if.no.acl.found) [default: false]
    #[arg(long, env = "SLUICE_ALLOW_EVERYONE_IF_NO_ACL_FOUND")]
    pub allow_everyone_if_no_acl_found: Option<bool>,
    /// Log filter, e.g. info or sluice=debug [default: info]
    #[arg(long, env = "SLUICE_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Log lines on stderr: text (coloured only on a terminal) or json (one object per line)
    #[arg(long, env = "SLUICE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; ANSI colours only when stderr is a terminal and NO_COLOR is unset.
    Text,
    /// One JSON object per line (tracing-subscriber's format), for log shippers.
    Json,
}

pub fn run(args: ServeArgs) -> ExitCode {
    init_logging(&args.log_level, args.log_format);
    // Errors go through the logger too, so that with --log-format json every stderr line
    // is JSON.
    let config = match resolve(args) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match crate::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ crate::server::ServerError::Panicked) => {
            tracing::error!("error: {e}");
            ExitCode::from(crate::server::panic_policy::PANIC_EXIT_CODE)
        }
        Err(e) => {
            tracing::error!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr; stdout carries only the machine-readable ready line.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => {
            // Colour codes are noise in a file or journald; https://no-color.org says a
            // non-empty NO_COLOR turns them off even on a terminal.
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            builder
                .with_ansi(std::io::stderr().is_terminal() && !no_color)
                .try_init()
        }
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The configuration `sluice serve FLAGS...` would run with (environment and config file
/// included), for running a broker in-process (`server::local_shard`).
pub fn config_from_flags(flags: &[&str]) -> Result<BrokerConfig, ConfigError> {
    use clap::{Args, FromArgMatches};
    let invalid = |e: clap::Error| ConfigError::Invalid {
        key: "arguments",
        reason: e.to_string(),
    };
    let matches = ServeArgs::augment_args(clap::Command::new("serve"))
        .try_get_matches_from(std::iter::once("serve").chain(flags.iter().copied()))
        .map_err(invalid)?;
    resolve(ServeArgs::from_arg_matches(&matches).map_err(invalid)?)
}

/// Merges flags/env over the file over defaults, and validates the result.
pub fn resolve(args: ServeArgs) -> Result<BrokerConfig, ConfigError> {
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let group = resolve_group(&args, &file)?;
    let (security_protocol, sasl) = resolve_security(&args, &file)?;
    let authorizer = resolve_authorizer(&args, &file)?;
    let mut share = resolve_share(&args, &file)?;
    // A KIP-848 group's own configs default to the broker's (Kafka's group.consumer.*).
    share.group_defaults.consumer_session_timeout_ms = group.consumer_session_timeout_ms;
    share.group_defaults.consumer_heartbeat_interval_ms = group.consumer_heartbeat_interval_ms;
    let cores = config::default_shard_count();
    let shard_count = args.shards.or(file.shards).unwrap_or(cores);
    if shard_count == 0 || shard_count > 1024 {
        return Err(ConfigError::Invalid {
            key: "shards",
            reason: format!("{shard_count} is not between 1 and 1024"),
        });
    }
    let cpus = match args.cpus.clone().or(file.cpus.clone()) {
        Some(list) if list.len() < shard_count => {
            return Err(ConfigError::Invalid {
                key: "cpus",
                reason: format!("{} cpus listed for {shard_count} shards", list.len()),
            })
        }
        Some(list) => list,
        None if shard_count <= cores => (0..shard_count).collect(),
        None => Vec::new(),
    };
    let num_partitions = args.num_partitions.or(file.num_partitions).unwrap_or(1);
    if !(1..=100_000).contains(&num_partitions) {
        return Err(ConfigError::Invalid {
            key: "num-partitions",
            reason: format!("{num_partitions} is not between 1 and 100000"),
        });
    }
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9092)));
    if listen.port() != 0 && usize::from(listen.port()) + shard_count > usize::from(u16::MAX) {
        return Err(ConfigError::Invalid {
            key: "listen",
            reason: format!("ports {}+{shard_count} run past 65535", listen.port()),
        });
    }
    let mut log = LogConfig::default();
    if let Some(bytes) = args.segment_bytes.or(file.segment_bytes) {
        if bytes < 64 * 1024 {
            return Err(ConfigError::Invalid {
                key: "segment-bytes",
                reason: format!("{bytes} is below the 64 KiB minimum"),
            });
        }
        log.segment_bytes = bytes;
    }
    if let Some(ms) = file.segment_ms {
        log.segment_ms = ms;
    }
    if let Some(ms) = file.retention_ms {
        log.retention_ms = (ms >= 0).then_some(ms);
    }
    if let Some(bytes) = file.retention_bytes {
        log.retention_bytes = u64::try_from(bytes).ok();
    }
    if let Some(policy) = args
        .flush_policy
        .as_deref()
        .or(file.flush_policy.as_deref())
    {
        log.flush = config::parse_flush_policy(policy)?;
    }
    if let Some(bytes) = args.message_max_bytes.or(file.message_max_bytes) {
        log.max_message_bytes = bytes;
    }
    let advertised_host = args
        .advertised_host
        .clone()
        .or(file.advertised_host.clone())
        .unwrap_or_else(|| listen.ip().to_string());
    let listeners = resolve_listeners(
        &args,
        &file,
        security_protocol,
        listen,
        &advertised_host,
        shard_count,
    )?;
    let tls = resolve_tls(&args, &file, &listeners)?;
    let admin_token = resolve_admin_token(&args, &file)?;
    let admin_tls = match (
        args.admin_tls_cert.clone().or(file.admin_tls_cert.clone()),
        args.admin_tls_key.clone().or(file.admin_tls_key.clone()),
    ) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(TlsSettings {
            cert,
            key,
            ca: None,
            client_auth: ClientAuth::None,
        }),
        _ => {
            return Err(ConfigError::Invalid {
                key: "admin-tls-cert",
                reason: "--admin-tls-cert and --admin-tls-key go together".to_owned(),
            })
        }
    };
    let (listen, security_protocol) = (listeners[0].listen, listeners[0].protocol);
    let data_dir = args
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("./data"));
    // Absolute once, here: shards open files relative to it from their own threads, and
    // logs and the ready line should name the real place.
    let data_dir = std::path::absolute(&data_dir).map_err(|e| ConfigError::Invalid {
        key: "data-dir",
        reason: format!("{}: {e}", data_dir.display()),
    })?;
    if let Some(write_bytes) = probed_write_bytes(&data_dir)? {
        log.write_bytes_max = write_bytes;
    }
    let cluster_file = file.cluster.unwrap_or_default();
    let default_replication_factor = args
        .default_replication_factor
        .or(cluster_file.default_replication_factor)
        .unwrap_or(1);
    if default_replication_factor < 1 {
        return Err(ConfigError::Invalid {
            key: "default-replication-factor",
            reason: format!("{default_replication_factor} is not at least 1"),
        });
    }
    let replica_log_compact_bytes = args
        .replica_log_compact_bytes
        .or(cluster_file.replica_log_compact_bytes)
        .unwrap_or(crate::constants::RAFT_LOG_COMPACT_BYTES);
    if replica_log_compact_bytes == 0 {
        return Err(ConfigError::Invalid {
            key: "replica-log-compact-bytes",
            reason: "0 is not at least 1".to_owned(),
        });
    }
    let cluster = match (
        args.node_id.or(cluster_file.node_id),
        args.peers.or(cluster_file.peers),
    ) {
        (None, None) => None,
        (Some(node_id), Some(peers)) => {
            let own = args.cluster_addr.or(cluster_file.cluster_addr);
            Some(
                crate::cluster::PeerList::parse_with(node_id, &peers, own.as_deref()).map_err(
                    |e| ConfigError::Invalid {
                        key: "peers",
                        reason: e.to_string(),
                    },
                )?,
            )
        }
        _ => {
            return Err(ConfigError::Invalid {
                key: "node-id",
                reason: "--node-id and --peers are given together or not at all".to_owned(),
            })
        }
    };
    Ok(BrokerConfig {
        cluster,
        group,
        share,
        data_dir,
        listen,
        advertised_host,
        shard_count,
        cpus,
        auto_create_topics: args
            .auto_create_topics
            .or(file.auto_create_topics)
            .unwrap_or(true),
        num_partitions,
        default_replication_factor,
        replica_log_compact_bytes,
        log,
        cluster_id: file
            .cluster_id
            .unwrap_or_else(|| "sluice-cluster".to_owned()),
        admin_listen: args
            .admin_listen
            .or(file.admin_listen)
            .unwrap_or_else(|| SocketAddr::from(config::ADMIN_LISTEN_DEFAULT)),
        admin_token,
        admin_tls,
        security_protocol,
        listeners,
        tls,
        sasl,
        authorizer,
    })
}

/// The admin endpoint's bearer token: `--admin-token`, else the file's contents.
fn resolve_admin_token(args: &ServeArgs, file: &ConfigFile) -> Result<Option<String>, ConfigError> {
    if let Some(token) = &args.admin_token {
        return Ok(Some(token.clone()));
    }
    let Some(path) = args
        .admin_token_file
        .clone()
        .or(file.admin_token_file.clone())
    else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Invalid {
        key: "admin-token-file",
        reason: format!("{}: {e}", path.display()),
    })?;
    let token = text.trim().to_owned();
    if token.is_empty() {
        return Err(ConfigError::Invalid {
            key: "admin-token-file",
            reason: format!("{} is empty", path.display()),
        });
    }
    Ok(Some(token))
}

/// The `--listener` list, or the one listener `--listen` and `--security-protocol` describe.
fn resolve_listeners(
    args: &ServeArgs,
    file: &ConfigFile,
    security_protocol: SecurityProtocol,
    listen: SocketAddr,
    advertised_host: &str,
    shard_count: usize,
) -> Result<Vec<config::ListenerConfig>, ConfigError> {
    let texts: Vec<String> = if args.listeners.is_empty() {
        file.listener.clone().unwrap_or_default()
    } else {
        args.listeners.clone()
    };
    // Each listener names its own protocol: a --security-protocol beside them would be
    // ignored, so it is refused rather than leaving the operator to guess which applies.
    if !texts.is_empty() && (args.security_protocol.is_some() || file.security_protocol.is_some()) {
        return Err(ConfigError::Invalid {
            key: "security_protocol",
            reason: "cannot be combined with listeners; give the protocol in each --listener \
                     (e.g. SASL_SSL://0.0.0.0:9094)"
                .to_owned(),
        });
    }
    if texts.is_empty() {
        return Ok(vec![config::ListenerConfig {
            protocol: security_protocol,
            listen,
            advertised_host: advertised_host.to_owned(),
        }]);
    }
    let explicit_host = args
        .advertised_host
        .clone()
        .or(file.advertised_host.clone());
    let mut listeners: Vec<config::ListenerConfig> = Vec::with_capacity(texts.len());
    for text in &texts {
        let (protocol, listen, host) = config::parse_listener(text)?;
        if listen.port() != 0 && usize::from(listen.port()) + shard_count > usize::from(u16::MAX) {
            return Err(ConfigError::Invalid {
                key: "listener",
                reason: format!(
                    "{text}: ports {}+{shard_count} run past 65535",
                    listen.port()
                ),
            });
        }
        if listeners
            .iter()
            .any(|l| l.listen == listen && listen.port() != 0)
        {
            return Err(ConfigError::Invalid {
                key: "listener",
                reason: format!("{text}: address listed twice"),
            });
        }
        listeners.push(config::ListenerConfig {
            protocol,
            listen,
            advertised_host: explicit_host.clone().unwrap_or(host),
        });
    }
    Ok(listeners)
}

/// The TLS certificate settings; required exactly when a listener uses TLS.
fn resolve_tls(
    args: &ServeArgs,
    file: &ConfigFile,
    listeners: &[config::ListenerConfig],
) -> Result<Option<TlsSettings>, ConfigError> {
    let cert = args.tls_cert.clone().or(file.tls_cert.clone());
    let key = args.tls_key.clone().or(file.tls_key.clone());
    let ca = args.tls_ca.clone().or(file.tls_ca.clone());
    let client_auth = match args
        .tls_client_auth
        .as_deref()
        .or(file.tls_client_auth.as_deref())
    {
        None => ClientAuth::None,
        Some(name) => ClientAuth::parse(name).ok_or_else(|| ConfigError::Invalid {
            key: "tls-client-auth",
            reason: format!("{name:?} is not none, requested or required"),
        })?,
    };
    if !listeners.iter().any(|l| l.protocol.uses_tls()) {
        return Ok(None);
    }
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsSettings {
            cert,
            key,
            ca,
            client_auth,
        })),
        _ => Err(ConfigError::Invalid {
            key: "tls-cert",
            reason: "an SSL or SASL_SSL listener needs --tls-cert and --tls-key".to_owned(),
        }),
    }
}

/// The ACL authorizer's settings: flags and env over the file; off by default.
fn resolve_authorizer(
    args: &ServeArgs,
    file: &ConfigFile,
) -> Result<crate::security::acl::AuthorizerConfig, ConfigError> {
    let enabled = match args.authorizer.as_deref().or(file.authorizer.as_deref()) {
        None | Some("none") => false,
        Some("acl") => true,
        Some(other) => {
            return Err(ConfigError::Invalid {
                key: "authorizer",
                reason: format!("'{other}' is not one of none, acl"),
            })
        }
    };
    let super_users = args
        .super_users
        .as_deref()
        .or(file.super_users.as_deref())
        .map(crate::security::acl::AuthorizerConfig::parse_super_users)
        .transpose()
        .map_err(|reason| ConfigError::Invalid {
            key: "super-users",
            reason,
        })?
        .unwrap_or_default();
    Ok(crate::security::acl::AuthorizerConfig {
        enabled,
        super_users,
        allow_everyone_if_no_acl_found: args
            .allow_everyone_if_no_acl_found
            .or(file.allow_everyone_if_no_acl_found)
            .unwrap_or(false),
    })
}

/// The listener's security protocol and the SASL settings: flags and env over the file.
fn resolve_security(
    args: &ServeArgs,
    file: &ConfigFile,
) -> Result<(SecurityProtocol, SaslConfig), ConfigError> {
    let protocol = match args
        .security_protocol
        .as_deref()
        .or(file.security_protocol.as_deref())
    {
        None => SecurityProtocol::Plaintext,
        Some(name) => match SecurityProtocol::parse(name) {
            Some(p) if !p.uses_tls() => p,
            _ => {
                return Err(ConfigError::Invalid {
                    key: "security-protocol",
                    reason: format!("{name:?} is not PLAINTEXT or SASL_PLAINTEXT (TLS listeners: --listener SSL://host:port or SASL_SSL://host:port)"),
                })
            }
        },
    };
    let mut sasl = SaslConfig::default();
    if let Some(text) = args
        .sasl_enabled_mechanisms
        .as_deref()
        .or(file.sasl_enabled_mechanisms.as_deref())
    {
        sasl.mechanisms = config::parse_sasl_mechanisms(text)?;
    }
    if let Some(ms) = args
        .sasl_session_lifetime_ms
        .or(file.sasl_session_lifetime_ms)
    {
        if ms < 0 {
            return Err(ConfigError::Invalid {
                key: "sasl-session-lifetime-ms",
                reason: format!("{ms} is negative"),
            });
        }
        sasl.session_lifetime_ms = ms;
    }
    Ok((protocol, sasl))
}

/// Group coordinator settings: flags and env over the file over defaults.
fn resolve_group(
    args: &ServeArgs,
    file: &ConfigFile,
) -> Result<crate::group::GroupConfig, ConfigError> {
    let positive = |key: &'static str, value: i64| {
        if value > 0 {
            Ok(value)
        } else {
            Err(ConfigError::Invalid {
                key,
                reason: format!("{value} must be positive"),
            })
        }
    };
    let mut group = crate::group::GroupConfig::default();
    if let Some(ms) = args
        .group_min_session_timeout_ms
        .or(file.group_min_session_timeout_ms)
    {
        positive("group-min-session-timeout-ms", i64::from(ms))?;
        group.session_timeout_ms_min = ms;
    }
    if let Some(ms) = args
        .group_initial_rebalance_delay_ms
        .or(file.group_initial_rebalance_delay_ms)
    {
        if ms < 0 {
            return Err(ConfigError::Invalid {
                key: "group-initial-rebalance-delay-ms",
                reason: format!("{ms} is negative"),
            });
        }
        group.initial_rebalance_delay_ms = ms;
    }
    if let Some(ms) = args.offsets_retention_ms.or(file.offsets_retention_ms) {
        group.offsets_retention_ms = positive("offsets-retention-ms", ms)?;
    }
    if let Some(ms) = args
        .group_consumer_session_timeout_ms
        .or(file.group_consumer_session_timeout_ms)
    {
        positive("group-consumer-session-timeout-ms", i64::from(ms))?;
        group.consumer_session_timeout_ms = ms;
    }
    if let Some(ms) = args
        .group_consumer_heartbeat_interval_ms
        .or(file.group_consumer_heartbeat_interval_ms)
    {
        positive("group-consumer-heartbeat-interval-ms", i64::from(ms))?;
        group.consumer_heartbeat_interval_ms = ms;
    }
    if group.consumer_heartbeat_interval_ms >= group.consumer_session_timeout_ms {
        return Err(ConfigError::Invalid {
            key: "group-consumer-heartbeat-interval-ms",
            reason: format!(
                "{} must be below the session timeout {}",
                group.consumer_heartbeat_interval_ms, group.consumer_session_timeout_ms
            ),
        });
    }
    Ok(group)
}

/// Share-group settings: flags and env over the file over defaults. Group defaults are
/// checked against the same ranges as a group's own overrides.
fn resolve_share(args: &ServeArgs, file: &ConfigFile) -> Result<ShareBrokerConfig, ConfigError> {
    let mut share = ShareBrokerConfig::default();
    let defaults = &mut share.group_defaults;
    let mut set = |key: &'static str, name: &str, value: Option<String>| match value {
        Some(value) => defaults
            .set(name, &value)
            .map_err(|e| ConfigError::Invalid {
                key,
                reason: e.to_string(),
            }),
        None => Ok(()),
    };
    set(
        "share-record-lock-duration-ms",
        share_config::LOCK_DURATION_MS,
        args.share_record_lock_duration_ms
            .or(file.share_record_lock_duration_ms)
            .map(|v| v.to_string()),
    )?;
    set(
        "share-delivery-count-limit",
        share_config::DELIVERY_COUNT_LIMIT,
        args.share_delivery_count_limit
            .or(file.share_delivery_count_limit)
            .map(|v| v.to_string()),
    )?;
    set(
        "share-session-timeout-ms",
        share_config::SESSION_TIMEOUT_MS,
        args.share_session_timeout_ms
            .or(file.share_session_timeout_ms)
            .map(|v| v.to_string()),
    )?;
    set(
        "share-heartbeat-interval-ms",
        share_config::HEARTBEAT_INTERVAL_MS,
        args.share_heartbeat_interval_ms
            .or(file.share_heartbeat_interval_ms)
            .map(|v| v.to_string()),
    )?;
    if i64::from(defaults.heartbeat_interval_ms) >= defaults.session_timeout_ms {
        return Err(ConfigError::Invalid {
            key: "share-heartbeat-interval-ms",
            reason: format!(
                "{} must be below the session timeout {}",
                defaults.heartbeat_interval_ms, defaults.session_timeout_ms
            ),
        });
    }
    let in_range = |key: &'static str, value: usize, max: usize| {
        if (1..=max).contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::Invalid {
                key,
                reason: format!("{value} is not between 1 and {max}"),
            })
        }
    };
    if let Some(locks) = args
        .share_partition_max_record_locks
        .or(file.share_partition_max_record_locks)
    {
        share.partition_record_locks_max =
            in_range("share-partition-max-record-locks", locks, 100_000)?;
    }
    if let Some(sessions) = args
        .share_max_share_sessions
        .or(file.share_max_share_sessions)
    {
        share.sessions_max = in_range("share-max-share-sessions", sessions, 1_000_000)?;
    }
    Ok(share)
}

/// The best O_DIRECT write size `sluice tune --probe-disk` measured for this data dir, if it
/// has been run. A file that exists but cannot be read is an error, not a silent default.
fn probed_write_bytes(data_dir: &std::path::Path) -> Result<Option<usize>, ConfigError> {
    let path = data_dir.join("io-properties.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConfigError::Invalid {
                key: "io-properties.toml",
                reason: format!("{}: {e}", path.display()),
            })
        }
    };
    let properties: super::tune::disk_probe::IoProperties =
        toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            key: "io-properties.toml",
            reason: format!("{}: {e}", path.display()),
        })?;
    // Below one block or above 64 MiB is not a measurement to trust.
    if !(crate::constants::DMA_ALIGNMENT..=64 << 20).contains(&properties.write_bytes) {
        return Err(ConfigError::Invalid {
            key: "io-properties.toml",
            reason: format!("write-bytes {} is out of range", properties.write_bytes),
        });
    }
    Ok(Some(properties.write_bytes))
}
