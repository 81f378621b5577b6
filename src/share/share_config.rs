//! Share-group settings: broker defaults (Kafka's `group.share.*` broker configs, set with
//! `sluice serve` flags) and per-group overrides set with IncrementalAlterConfigs on a GROUP
//! resource.
//!
//! | group config                         | broker default (`sluice serve` flag)                 |
//! |--------------------------------------|------------------------------------------------------|
//! | `share.record.lock.duration.ms`      | 30000 (`--share-record-lock-duration-ms`)            |
//! | `share.delivery.count.limit`         | 5 (`--share-delivery-count-limit`)                   |
//! | `share.auto.offset.reset`            | latest                                               |
//! | `share.session.timeout.ms`           | 45000 (`--share-session-timeout-ms`)                 |
//! | `share.heartbeat.interval.ms`        | 5000 (`--share-heartbeat-interval-ms`)               |
//! | `errors.deadletterqueue.topic.name`  | none: rejected and over-limit records are dropped    |
//! | `consumer.session.timeout.ms`        | 45000 (`--group-consumer-session-timeout-ms`)        |
//! | `consumer.heartbeat.interval.ms`     | 5000 (`--group-consumer-heartbeat-interval-ms`)      |
//!
//! The two `consumer.*` configs are Kafka's KIP-848 consumer-group configs: they live here
//! because this is where group configs are stored and spread, and the consumer-group
//! coordinator reads them on each heartbeat. As in Kafka, a group's value must lie within
//! the broker's bounds, which sluice fixes at Kafka's defaults
//! (`group.consumer.{min,max}.session.timeout.ms` 45000..=60000,
//! `group.consumer.{min,max}.heartbeat.interval.ms` 5000..=15000).
//!
//! Two limits are broker-wide only ([`ShareBrokerConfig`]): records in flight per
//! share-partition (`--share-partition-max-record-locks`, Kafka's
//! `group.share.partition.max.record.locks`) and share sessions per shard
//! (`--share-max-share-sessions`, Kafka's `group.share.max.share.sessions`, per broker).
//!
//! The dead-letter setting follows KIP-1191's name. Overrides are stored one JSON file per
//! group in `<data dir>/.share/groups/`, written by the group's coordinator shard, and read
//! by every shard at start-up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::io::dma_file;

use super::ShareError;

pub const LOCK_DURATION_MS: &str = "share.record.lock.duration.ms";
pub const DELIVERY_COUNT_LIMIT: &str = "share.delivery.count.limit";
pub const AUTO_OFFSET_RESET: &str = "share.auto.offset.reset";
pub const SESSION_TIMEOUT_MS: &str = "share.session.timeout.ms";
pub const HEARTBEAT_INTERVAL_MS: &str = "share.heartbeat.interval.ms";
pub const DEAD_LETTER_TOPIC: &str = "errors.deadletterqueue.topic.name";
pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";

/// Kafka's default `group.consumer.min.session.timeout.ms`..=`max`.
const CONSUMER_SESSION_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<i32> = 45_000..=60_000;
/// Kafka's default `group.consumer.min.heartbeat.interval.ms`..=`max`.
const CONSUMER_HEARTBEAT_INTERVAL_MS_RANGE: std::ops::RangeInclusive<i32> = 5_000..=15_000;

/// Every group config sluice knows, in describe order.
pub const GROUP_CONFIG_NAMES: &[&str] = &[
    LOCK_DURATION_MS,
    DELIVERY_COUNT_LIMIT,
    AUTO_OFFSET_RESET,
    SESSION_TIMEOUT_MS,
    HEARTBEAT_INTERVAL_MS,
    DEAD_LETTER_TOPIC,
    CONSUMER_SESSION_TIMEOUT_MS,
    CONSUMER_HEARTBEAT_INTERVAL_MS,
];

/// Default of the most records a share-partition keeps in flight (Kafka's
/// `group.share.partition.max.record.locks`).
pub const PARTITION_RECORD_LOCKS_DEFAULT: usize = 2_000;
/// Default of the most share sessions one shard holds (Kafka's
/// `group.share.max.share.sessions`; each shard is a broker).
pub const SHARE_SESSIONS_DEFAULT: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOffsetReset {
    Earliest,
    Latest,
}

/// The effective settings of one share group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareGroupConfig {
    pub lock_duration_ms: i64,
    pub delivery_count_limit: i16,
    pub auto_offset_reset: AutoOffsetReset,
    pub session_timeout_ms: i64,
    pub heartbeat_interval_ms: i32,
    pub dead_letter_topic: Option<String>,
    /// A KIP-848 consumer group's member session timeout.
    pub consumer_session_timeout_ms: i32,
    /// A KIP-848 consumer group's heartbeat interval.
    pub consumer_heartbeat_interval_ms: i32,
}

impl Default for ShareGroupConfig {
    fn default() -> ShareGroupConfig {
        ShareGroupConfig {
            lock_duration_ms: 30_000,
            delivery_count_limit: 5,
            auto_offset_reset: AutoOffsetReset::Latest,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            dead_letter_topic: None,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
        }
    }
}

/// A group's overrides, by config name.
pub type GroupOverrides = BTreeMap<String, String>;

/// Broker-wide share settings, from `sluice serve` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareBrokerConfig {
    /// Every group's settings unless the group overrides them.
    pub group_defaults: ShareGroupConfig,
    /// Most records a share-partition keeps in flight.
    pub partition_record_locks_max: usize,
    /// Most share sessions one shard holds.
    pub sessions_max: usize,
}

impl Default for ShareBrokerConfig {
    fn default() -> ShareBrokerConfig {
        ShareBrokerConfig {
            group_defaults: ShareGroupConfig::default(),
            partition_record_locks_max: PARTITION_RECORD_LOCKS_DEFAULT,
            sessions_max: SHARE_SESSIONS_DEFAULT,
        }
    }
}

impl ShareGroupConfig {
    /// These defaults with a group's overrides applied (overrides were validated when set).
    pub fn with_overrides(&self, overrides: &GroupOverrides) -> ShareGroupConfig {
        let mut config = self.clone();
        for (name, value) in overrides {
            if let Err(e) = config.set(name, value) {
                tracing::warn!(%name, %value, error = %e, "ignoring a stored group config");
            }
        }
        config
    }

    /// Applies one setting, checking its value.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ShareError> {
        let invalid = || ShareError::InvalidConfig(format!("{name}={value}"));
        match name {
            LOCK_DURATION_MS => {
                let v: i64 = value.parse().map_err(|_| invalid())?;
                if !(100..=3_600_000).contains(&v) {
                    return Err(invalid());
                }
                self.lock_duration_ms = v;
            }
            DELIVERY_COUNT_LIMIT => {
                let v: i16 = value.parse().map_err(|_| invalid())?;
                if !(1..=100).contains(&v) {
                    return Err(invalid());
                }
                self.delivery_count_limit = v;
            }
            AUTO_OFFSET_RESET => {
                self.auto_offset_reset = match value {
                    "earliest" => AutoOffsetReset::Earliest,
                    "latest" => AutoOffsetReset::Latest,
                    _ => return Err(invalid()),
                };
            }
            SESSION_TIMEOUT_MS => {
                let v: i64 = value.parse().map_err(|_| invalid())?;
                if !(1_000..=3_600_000).contains(&v) {
                    return Err(invalid());
                }
                self.session_timeout_ms = v;
            }
            HEARTBEAT_INTERVAL_MS => {
                let v: i32 = value.parse().map_err(|_| invalid())?;
                if !(100..=600_000).contains(&v) {
                    return Err(invalid());
                }
                self.heartbeat_interval_ms = v;
            }
            DEAD_LETTER_TOPIC => {
                self.dead_letter_topic = (!value.is_empty()).then(|| value.to_owned());
            }
            CONSUMER_SESSION_TIMEOUT_MS => {
                let v: i32 = value.parse().map_err(|_| invalid())?;
                if !CONSUMER_SESSION_TIMEOUT_MS_RANGE.contains(&v) {
                    return Err(invalid());
                }
                self.consumer_session_timeout_ms = v;
            }
            CONSUMER_HEARTBEAT_INTERVAL_MS => {
                let v: i32 = value.parse().map_err(|_| invalid())?;
                if !CONSUMER_HEARTBEAT_INTERVAL_MS_RANGE.contains(&v) {
                    return Err(invalid());
                }
                self.consumer_heartbeat_interval_ms = v;
            }
            _ => {
                return Err(ShareError::InvalidConfig(format!(
                    "unknown group config {name}"
                )))
            }
        }
        Ok(())
    }

    /// `(name, value)` of every setting, for DescribeConfigs.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            (LOCK_DURATION_MS, self.lock_duration_ms.to_string()),
            (DELIVERY_COUNT_LIMIT, self.delivery_count_limit.to_string()),
            (
                AUTO_OFFSET_RESET,
                match self.auto_offset_reset {
                    AutoOffsetReset::Earliest => "earliest",
                    AutoOffsetReset::Latest => "latest",
                }
                .to_owned(),
            ),
            (SESSION_TIMEOUT_MS, self.session_timeout_ms.to_string()),
            (
                HEARTBEAT_INTERVAL_MS,
                self.heartbeat_interval_ms.to_string(),
            ),
            (
                DEAD_LETTER_TOPIC,
                self.dead_letter_topic.clone().unwrap_or_default(),
            ),
            (
                CONSUMER_SESSION_TIMEOUT_MS,
                self.consumer_session_timeout_ms.to_string(),
            ),
            (
                CONSUMER_HEARTBEAT_INTERVAL_MS,
                self.consumer_heartbeat_interval_ms.to_string(),
            ),
        ]
    }
}

fn groups_dir(data_dir: &Path) -> PathBuf {
    data_dir
        .join(super::share_state_store::SHARE_DIR)
        .join("groups")
}

/// File names are the hex of the group id, so any group id is a safe name.
fn group_file(data_dir: &Path, group: &str) -> PathBuf {
    let hex: String = group.bytes().map(|b| format!("{b:02x}")).collect();
    groups_dir(data_dir).join(format!("{hex}.json"))
}

fn group_from_file_name(name: &str) -> Option<String> {
    let hex = name.strip_suffix(".json")?;
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Every group's stored overrides.
pub fn load_overrides(data_dir: &Path) -> Result<BTreeMap<String, GroupOverrides>, ShareError> {
    let dir = groups_dir(data_dir);
    let names = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect::<Vec<_>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(ShareError::Storage(format!("listing {dir:?}: {e}"))),
    };
    let mut all = BTreeMap::new();
    for name in names {
        let Some(group) = group_from_file_name(&name) else {
            continue;
        };
        let path = dir.join(&name);
        let text = std::fs::read(&path)
            .map_err(|e| ShareError::Storage(format!("reading {path:?}: {e}")))?;
        let overrides: GroupOverrides = serde_json::from_slice(&text)
            .map_err(|e| ShareError::Storage(format!("parsing {path:?}: {e}")))?;
        all.insert(group, overrides);
    }
    Ok(all)
}

/// Writes a group's overrides durably (io's atomic write: temp file, fsync, rename, fsync
/// dir); an empty map removes the file, durably too.
pub async fn store_overrides(
    data_dir: &Path,
    group: &str,
    overrides: &GroupOverrides,
) -> Result<(), ShareError> {
    let dir = groups_dir(data_dir);
    let fail = |what: &str, e: std::io::Error| ShareError::Storage(format!("{what} {dir:?}: {e}"));
    dma_file::prepare_dir(&dir)
        .await
        .map_err(|e| fail("creating", e))?;
    let path = group_file(data_dir, group);
    if overrides.is_empty() {
        return dma_file::remove_file_durably(&path)
            .await
            .map_err(|e| fail("removing from", e));
    }
    let text = serde_json::to_vec(overrides)
        .map_err(|e| ShareError::Storage(format!("encoding group config: {e}")))?;
    dma_file::write_file_atomic(&path, &text)
        .await
        .map_err(|e| fail("writing into", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_round_trip_through_file_names() {
        for group in ["orders", "a/b", "ünï"] {
            let path = group_file(Path::new("/x"), group);
            let name = path.file_name().and_then(|n| n.to_str()).expect("utf-8");
            assert_eq!(group_from_file_name(name).as_deref(), Some(group));
        }
    }

    #[test]
    fn values_are_checked() {
        let mut config = ShareGroupConfig::default();
        assert!(config.set(LOCK_DURATION_MS, "2000").is_ok());
        assert_eq!(config.lock_duration_ms, 2000);
        assert!(config.set(LOCK_DURATION_MS, "x").is_err());
        assert!(config.set(AUTO_OFFSET_RESET, "middle").is_err());
        assert!(config.set("nope", "1").is_err());
        assert!(config.set(CONSUMER_SESSION_TIMEOUT_MS, "50000").is_ok());
        assert_eq!(config.consumer_session_timeout_ms, 50_000);
        assert!(config.set(CONSUMER_SESSION_TIMEOUT_MS, "6000").is_err());
        assert!(config.set(CONSUMER_HEARTBEAT_INTERVAL_MS, "16000").is_err());
    }
}
