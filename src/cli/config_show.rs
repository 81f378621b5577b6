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
    let log = &config.log;
    let share = &config.share;
    let rows: Vec<(&str, String, Source)> = vec![
        (
            "data-dir",
            quoted(&config.data_dir.display().to_string()),
            source("data_dir", file.data_dir.is_some(), false),
        ),
        (
            "listen",
            quoted(&config.listen.to_string()),
            source("listen", file.listen.is_some(), false),
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
            "security-protocol",
            quoted(config.security_protocol.name()),
            source("security_protocol", file.security_protocol.is_some(), false),
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
}
