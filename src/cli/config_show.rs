//! `sluice config show`: the configuration `sluice serve` would run with, given the same
//! flags, environment and config file, with where each value came from.
//!
//! The output is valid TOML (a usable `--config` file) with the source as a comment:
//! `flag`, `env` (`SLUICE_*`), `file` (the `--config` file) or `default`.

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use super::serve::{self, ServeArgs};
use crate::config::{BrokerConfig, ConfigError, ConfigFile};
use crate::log::FlushPolicy;

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print the effective `serve` configuration and the source of each value
    /// (takes the same flags as `serve`).
    Show(ServeArgs),
}

pub fn run(_args: ConfigArgs) -> ExitCode {
    // Parse again to keep the ArgMatches: only they know whether a value came from a flag,
    // the environment or clap's default.
    let matches = super::Cli::command().get_matches();
    let Some(show) = matches
        .subcommand_matches("config")
        .and_then(|m| m.subcommand_matches("show"))
    else {
        eprintln!("error: expected `sluice config show`");
        return ExitCode::from(2);
    };
    match show_text(show) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Where one value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Flag,
    Env,
    File,
    Default,
    /// Computed from other values (e.g. the advertised host from the listen address).
    Derived,
    /// Measured by `sluice tune --probe-disk` (`<data-dir>/io-properties.toml`).
    Probe,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::File => "file",
            Source::Default => "default",
            Source::Derived => "default (derived)",
            Source::Probe => "probe (io-properties.toml)",
        }
    }
}

/// Renders the effective configuration for `serve` flags parsed into `matches`.
pub fn show_text(matches: &ArgMatches) -> Result<String, ConfigError> {
    let args = ServeArgs::from_arg_matches(matches).map_err(|e| ConfigError::Invalid {
        key: "arguments",
        reason: e.to_string(),
    })?;
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let log_level = args.log_level.clone();
    let log_format = args.log_format;
    let config_path = args.config.clone();
    let config = serve::resolve(args)?;
    Ok(render(
        matches,
        &file,
        config_path.as_deref(),
        &config,
        &log_level,
        log_format,
    ))
}

fn render(
    matches: &ArgMatches,
    file: &ConfigFile,
    config_path: Option<&std::path::Path>,
    config: &BrokerConfig,
    log_level: &str,
    log_format: serve::LogFormat,
) -> String {
    let source = |id: &str, in_file: bool, derived_default: bool| match matches
        .try_get_raw(id)
        .ok()
        .flatten()
        .and_then(|_| matches.value_source(id))
    {
        Some(ValueSource::CommandLine) => Source::Flag,
        Some(ValueSource::EnvVariable) => Source::Env,
        _ if in_file => Source::File,
        _ if derived_default => Source::Derived,
        _ => Source::Default,
    };
    let quoted = |s: &str| format!("{s:?}");
    let explicit_listeners = source("listeners", file.listener.is_some(), true) != Source::Derived;
    let log = &config.log;
    let share = &config.share;
    let mut rows: Vec<(&str, String, Source)> = vec![
        (
            "data-dir",
            quoted(&config.data_dir.display().to_string()),
            source("data_dir", file.data_dir.is_some(), false),
        ),
        (
            "listen",
            quoted(&config.listen.to_string()),
            // With explicit listeners serve listens first on the first of them.
            match source("listen", file.listen.is_some(), false) {
                Source::Default if explicit_listeners => Source::Derived,
                other => other,
            },
        ),
        (
            // Derived from --listen and --security-protocol it is a comment: serve refuses a
            // `listener` beside `security-protocol`, and the output must stay a usable file.
            if explicit_listeners {
                "listener"
            } else {
                "# listener"
            },
            format!(
                "[{}]",
                config
                    .listeners
                    .iter()
                    .map(|l| quoted(&format!("{}://{}", l.protocol.name(), l.listen)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            // Without --listener the one listener is --listen with --security-protocol.
            source("listeners", file.listener.is_some(), true),
        ),
        (
            "advertised-host",
            quoted(&config.advertised_host),
            source("advertised_host", file.advertised_host.is_some(), true),
        ),
        (
            "admin-listen",
            quoted(&config.admin_listen.to_string()),
            source("admin_listen", file.admin_listen.is_some(), false),
        ),
        (
            // Beside explicit listeners serve refuses it: shown as a comment, the first
            // listener's protocol.
            if explicit_listeners {
                "# security-protocol"
            } else {
                "security-protocol"
            },
            quoted(config.security_protocol.name()),
            if explicit_listeners {
                Source::Derived
            } else {
                source("security_protocol", file.security_protocol.is_some(), false)
            },
        ),
        (
            "sasl-enabled-mechanisms",
            quoted(
                &config
                    .sasl
                    .mechanisms
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            source(
                "sasl_enabled_mechanisms",
                file.sasl_enabled_mechanisms.is_some(),
                false,
            ),
        ),
        (
            "sasl-session-lifetime-ms",
            config.sasl.session_lifetime_ms.to_string(),
            source(
                "sasl_session_lifetime_ms",
                file.sasl_session_lifetime_ms.is_some(),
                false,
            ),
        ),
        (
            "shards",
            config.shard_count.to_string(),
            source("shards", file.shards.is_some(), true),
        ),
        (
            "cpus",
            format!("{:?}", config.cpus),
            source("cpus", file.cpus.is_some(), true),
        ),
        (
            "auto-create-topics",
            config.auto_create_topics.to_string(),
            source(
                "auto_create_topics",
                file.auto_create_topics.is_some(),
                false,
            ),
        ),
        (
            "num-partitions",
            config.num_partitions.to_string(),
            source("num_partitions", file.num_partitions.is_some(), false),
        ),
        (
            "segment-bytes",
            log.segment_bytes.to_string(),
            source("segment_bytes", file.segment_bytes.is_some(), false),
        ),
        (
            "segment-ms",
            log.segment_ms.to_string(),
            source("-", file.segment_ms.is_some(), false),
        ),
        (
            "retention-ms",
            log.retention_ms.unwrap_or(-1).to_string(),
            source("-", file.retention_ms.is_some(), false),
        ),
        (
            "retention-bytes",
            log.retention_bytes
                .and_then(|b| i64::try_from(b).ok())
                .unwrap_or(-1)
                .to_string(),
            source("-", file.retention_bytes.is_some(), false),
        ),
        (
            "flush-policy",
            quoted(&flush_policy_text(log.flush)),
            source("flush_policy", file.flush_policy.is_some(), false),
        ),
        (
            "message-max-bytes",
            log.max_message_bytes.to_string(),
            source("message_max_bytes", file.message_max_bytes.is_some(), false),
        ),
        (
            "cluster-id",
            quoted(&config.cluster_id),
            source("-", file.cluster_id.is_some(), false),
        ),
        (
            // Not a config key: only the disk probe sets it.
            "# write-bytes-max",
            log.write_bytes_max.to_string(),
            if config.data_dir.join("io-properties.toml").exists() {
                Source::Probe
            } else {
                Source::Default
            },
        ),
        (
            "group-min-session-timeout-ms",
            config.group.session_timeout_ms_min.to_string(),
            source(
                "group_min_session_timeout_ms",
                file.group_min_session_timeout_ms.is_some(),
                false,
            ),
        ),
        (
            "group-initial-rebalance-delay-ms",
            config.group.initial_rebalance_delay_ms.to_string(),
            source(
                "group_initial_rebalance_delay_ms",
                file.group_initial_rebalance_delay_ms.is_some(),
                false,
            ),
        ),
        (
            "offsets-retention-ms",
            config.group.offsets_retention_ms.to_string(),
            source(
                "offsets_retention_ms",
                file.offsets_retention_ms.is_some(),
                false,
            ),
        ),
        (
            "group-consumer-session-timeout-ms",
            config.group.consumer_session_timeout_ms.to_string(),
            source(
                "group_consumer_session_timeout_ms",
                file.group_consumer_session_timeout_ms.is_some(),
                false,
            ),
        ),
        (
            "group-consumer-heartbeat-interval-ms",
            config.group.consumer_heartbeat_interval_ms.to_string(),
            source(
                "group_consumer_heartbeat_interval_ms",
                file.group_consumer_heartbeat_interval_ms.is_some(),
                false,
            ),
        ),
        (
            "share-record-lock-duration-ms",
            share.group_defaults.lock_duration_ms.to_string(),
            source(
                "share_record_lock_duration_ms",
                file.share_record_lock_duration_ms.is_some(),
                false,
            ),
        ),
        (
            "share-delivery-count-limit",
            share.group_defaults.delivery_count_limit.to_string(),
            source(
                "share_delivery_count_limit",
                file.share_delivery_count_limit.is_some(),
                false,
            ),
        ),
        (
            "share-session-timeout-ms",
            share.group_defaults.session_timeout_ms.to_string(),
            source(
                "share_session_timeout_ms",
                file.share_session_timeout_ms.is_some(),
                false,
            ),
        ),
        (
            "share-heartbeat-interval-ms",
            share.group_defaults.heartbeat_interval_ms.to_string(),
            source(
                "share_heartbeat_interval_ms",
                file.share_heartbeat_interval_ms.is_some(),
                false,
            ),
        ),
        (
            "share-partition-max-record-locks",
            share.partition_record_locks_max.to_string(),
            source(
                "share_partition_max_record_locks",
                file.share_partition_max_record_locks.is_some(),
                false,
            ),
        ),
        (
            "share-max-share-sessions",
            share.sessions_max.to_string(),
            source(
                "share_max_share_sessions",
                file.share_max_share_sessions.is_some(),
                false,
            ),
        ),
    ];
    let admin_token_file = matches
        .try_get_one::<std::path::PathBuf>("admin_token_file")
        .ok()
        .flatten()
        .or(file.admin_token_file.as_ref());
    rows.extend(security_rows(
        config,
        file,
        &source,
        admin_token_file.map(|p| p.as_path()),
    ));
    let mut out = String::from(
        "# Effective `sluice serve` configuration. Precedence: flag > env (SLUICE_*) > file > default.\n",
    );
    match config_path {
        Some(path) => out.push_str(&format!("# config file: {}\n", path.display())),
        None => out.push_str("# config file: none\n"),
    }
    let width = rows
        .iter()
        .map(|(k, v, _)| k.len() + v.len() + 3)
        .max()
        .unwrap_or(0);
    for (key, value, source) in rows {
        let line = format!("{key} = {value}");
        out.push_str(&format!("{line:<width$}  # {}\n", source.name()));
    }
    // Not config-file keys: the log filter and format are flags or SLUICE_* only.
    let flag_or_env_source = |id: &str| match matches.value_source(id) {
        Some(ValueSource::CommandLine) => Source::Flag,
        Some(ValueSource::EnvVariable) => Source::Env,
        _ => Source::Default,
    };
    out.push_str(&format!(
        "# log-level = {log_level:?}  ({}; flag or env only)\n",
        flag_or_env_source("log_level").name()
    ));
    let log_format = match log_format {
        serve::LogFormat::Text => "text",
        serve::LogFormat::Json => "json",
    };
    out.push_str(&format!(
        "# log-format = {log_format:?}  ({}; flag or env only)\n",
        flag_or_env_source("log_format").name()
    ));
    out
}

/// The TLS, admin endpoint and authorizer rows. Paths and modes are shown; secrets never are
/// (the admin token appears only as whether one is set). Settings that are off appear as
/// comments, as TOML has no "unset".
fn security_rows<'a>(
    config: &BrokerConfig,
    file: &ConfigFile,
    source: &dyn Fn(&str, bool, bool) -> Source,
    admin_token_file: Option<&std::path::Path>,
) -> Vec<(&'a str, String, Source)> {
    let path = |p: &std::path::Path| format!("{:?}", p.display().to_string());
    let mut rows = Vec::new();
    match &config.tls {
        Some(tls) => {
            rows.push((
                "tls-cert",
                path(&tls.cert),
                source("tls_cert", file.tls_cert.is_some(), false),
            ));
            rows.push((
                "tls-key",
                path(&tls.key),
                source("tls_key", file.tls_key.is_some(), false),
            ));
            match &tls.ca {
                Some(ca) => rows.push((
                    "tls-ca",
                    path(ca),
                    source("tls_ca", file.tls_ca.is_some(), false),
                )),
                None => rows.push(("# tls-ca", "none".to_owned(), Source::Default)),
            }
            rows.push((
                "tls-client-auth",
                format!("{:?}", tls.client_auth.name()),
                source("tls_client_auth", file.tls_client_auth.is_some(), false),
            ));
        }
        None => rows.push((
            "# tls",
            "none (no SSL or SASL_SSL listener)".to_owned(),
            Source::Default,
        )),
    }
    match &config.admin_tls {
        Some(tls) => {
            rows.push((
                "admin-tls-cert",
                path(&tls.cert),
                source("admin_tls_cert", file.admin_tls_cert.is_some(), false),
            ));
            rows.push((
                "admin-tls-key",
                path(&tls.key),
                source("admin_tls_key", file.admin_tls_key.is_some(), false),
            ));
        }
        None => rows.push((
            "# admin-tls",
            "none (plain HTTP)".to_owned(),
            Source::Default,
        )),
    }
    let token_source = source("admin_token", false, false);
    rows.push(
        match (&config.admin_token, token_source, admin_token_file) {
            (None, _, _) => ("# admin-token", "none".to_owned(), Source::Default),
            (Some(_), Source::Flag | Source::Env, _) | (Some(_), _, None) => (
                "# admin-token",
                "set (value hidden)".to_owned(),
                token_source,
            ),
            (Some(_), _, Some(token_file)) => (
                "admin-token-file",
                path(token_file),
                source("admin_token_file", file.admin_token_file.is_some(), false),
            ),
        },
    );
    let acl = &config.authorizer;
    rows.push((
        "authorizer",
        format!("{:?}", if acl.enabled { "acl" } else { "none" }),
        source("authorizer", file.authorizer.is_some(), false),
    ));
    rows.push((
        "super-users",
        format!("{:?}", acl.super_users.join(";")),
        source("super_users", file.super_users.is_some(), false),
    ));
    rows.push((
        "allow-everyone-if-no-acl-found",
        acl.allow_everyone_if_no_acl_found.to_string(),
        source(
            "allow_everyone_if_no_acl_found",
            file.allow_everyone_if_no_acl_found.is_some(),
            false,
        ),
    ));
    rows
}

/// The `--flush-policy` spelling of a policy.
fn flush_policy_text(policy: FlushPolicy) -> String {
    match policy {
        FlushPolicy::GroupCommit { delay_us, .. } => format!("group-commit:{delay_us}"),
        FlushPolicy::IntervalMs(ms) => format!("interval:{ms}"),
        FlushPolicy::Never => "never".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Args;

    fn show(args: &[&str]) -> String {
        let command = ServeArgs::augment_args(clap::Command::new("show"));
        let matches = command
            .try_get_matches_from(std::iter::once("show").chain(args.iter().copied()))
            .expect("valid flags");
        show_text(&matches).expect("valid config")
    }

    fn line<'a>(text: &'a str, key: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} =")))
            .expect("key shown")
    }

    #[test]
    fn reports_flag_file_and_default_sources() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, "num-partitions = 6\nretention-ms = 1000\n").expect("write");
        let path_text = path.display().to_string();
        let text = show(&[
            "--config",
            &path_text,
            "--listen",
            "127.0.0.1:19999",
            "--num-partitions",
            "3",
            "--shards",
            "1",
            "--share-session-timeout-ms",
            "2000",
            "--share-heartbeat-interval-ms",
            "500",
        ]);
        // A flag beats the file; the file beats the default.
        let partitions = line(&text, "num-partitions");
        assert!(partitions.contains("= 3") && partitions.ends_with("# flag"));
        assert!(line(&text, "retention-ms").contains("= 1000"));
        assert!(line(&text, "retention-ms").ends_with("# file"));
        assert!(line(&text, "listen").ends_with("# flag"));
        assert!(line(&text, "segment-bytes").ends_with("# default"));
        assert!(line(&text, "advertised-host").contains("\"127.0.0.1\""));
        assert!(line(&text, "advertised-host").ends_with("# default (derived)"));
        assert!(line(&text, "share-session-timeout-ms").contains("= 2000"));
        assert!(line(&text, "share-session-timeout-ms").ends_with("# flag"));
        assert!(line(&text, "share-max-share-sessions").ends_with("# default"));
        assert!(text.contains("# log-format = \"text\"  (default; flag or env only)"));
        // The output is itself a valid config file.
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        toml::from_str::<ConfigFile>(&body).expect("output parses as a config file");
    }

    fn config_file_body(text: &str) -> String {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn shows_listeners_tls_and_admin_settings_but_never_the_token() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("sluice.toml");
        std::fs::write(&file, "tls-ca = \"/pki/ca.pem\"\n").expect("write");
        let file_text = file.display().to_string();
        let text = show(&[
            "--config",
            &file_text,
            "--listener",
            "SSL://127.0.0.1:19093",
            "--listener",
            "PLAINTEXT://127.0.0.1:19092",
            "--tls-cert",
            "/pki/server.pem",
            "--tls-key",
            "/pki/server.key",
            "--tls-client-auth",
            "requested",
            "--admin-token",
            "s3cret-token",
            "--admin-tls-cert",
            "/pki/admin.pem",
            "--admin-tls-key",
            "/pki/admin.key",
            "--authorizer",
            "acl",
            "--super-users",
            "User:admin",
            "--shards",
            "1",
        ]);
        let listener = line(&text, "listener");
        assert!(
            listener.starts_with(
                "listener = [\"SSL://127.0.0.1:19093\", \"PLAINTEXT://127.0.0.1:19092\"]"
            ) && listener.ends_with("# flag"),
            "{listener}"
        );
        assert!(line(&text, "tls-cert").contains("\"/pki/server.pem\""));
        assert!(line(&text, "tls-key").contains("\"/pki/server.key\""));
        assert!(line(&text, "tls-ca").contains("\"/pki/ca.pem\""));
        assert!(line(&text, "tls-ca").ends_with("# file"));
        assert!(line(&text, "tls-client-auth").contains("\"requested\""));
        assert!(line(&text, "admin-tls-cert").contains("\"/pki/admin.pem\""));
        assert!(line(&text, "authorizer").contains("\"acl\""));
        assert!(line(&text, "super-users").contains("\"User:admin\""));
        assert!(
            text.contains("# admin-token = set (value hidden)"),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "the admin token leaked:\n{text}");
        // Beside explicit listeners serve refuses security-protocol: it is only a comment.
        assert!(text.contains("# security-protocol = \"SSL\""), "{text}");

        // Used as the config file, the output gives serve the same settings.
        let shown = dir.path().join("shown.toml");
        std::fs::write(&shown, config_file_body(&text)).expect("write");
        let again = show(&["--config", &shown.display().to_string()]);
        let value = |text: &str, key: &str| {
            let line = line(text, key);
            line.split("  #")
                .next()
                .unwrap_or(line)
                .trim_end()
                .to_owned()
        };
        for key in [
            "listener",
            "tls-cert",
            "tls-key",
            "tls-ca",
            "tls-client-auth",
            "admin-tls-cert",
            "admin-tls-key",
            "authorizer",
            "super-users",
        ] {
            assert_eq!(value(&again, key), value(&text, key), "{key}");
            assert!(
                line(&again, key).ends_with("# file"),
                "{}",
                line(&again, key)
            );
        }
    }

    #[test]
    fn shows_the_derived_listener_and_no_tls_by_default() {
        let text = show(&["--listen", "127.0.0.1:19998", "--shards", "1"]);
        let listener = line(&text, "# listener");
        assert!(
            listener.contains("[\"PLAINTEXT://127.0.0.1:19998\"]")
                && listener.ends_with("# default (derived)"),
            "{listener}"
        );
        assert!(line(&text, "security-protocol").contains("\"PLAINTEXT\""));
        assert!(text.contains("# tls = none"), "{text}");
        assert!(text.contains("# admin-token = none"), "{text}");
        assert!(line(&text, "authorizer").contains("\"none\""));
        // The derived listener is a comment, so the file keeps `listen` and
        // `security-protocol`, which serve accepts together.
        toml::from_str::<ConfigFile>(&config_file_body(&text)).expect("output parses");
    }

    #[test]
    fn admin_token_from_a_file_shows_the_path_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let token = dir.path().join("token");
        std::fs::write(&token, "file-s3cret\n").expect("write");
        let token_text = token.display().to_string();
        let text = show(&["--admin-token-file", &token_text, "--shards", "1"]);
        assert!(line(&text, "admin-token-file").contains(&token_text));
        assert!(
            !text.contains("file-s3cret"),
            "the admin token leaked:\n{text}"
        );
    }
}
