//! Per-topic settings: the Kafka config names sluice understands, their validation, and
//! how they turn into a `LogConfig`.

use std::collections::BTreeMap;

use super::kafka_topic_configs;
use crate::log::{CleanupPolicy, FlushPolicy, LogConfig};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct InvalidTopicConfig {
    pub key: String,
    pub reason: String,
}

/// Config names accepted on topics. `flush.policy` is sluice's own; the rest are Kafka's.
pub const TOPIC_CONFIG_KEYS: &[&str] = &[
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "max.message.bytes",
    "message.timestamp.type",
    "compression.type",
    "delete.retention.ms",
    "min.compaction.lag.ms",
    "flush.policy",
];

/// Topic configs whose value is a comma-separated list, the only ones IncrementalAlterConfigs
/// may APPEND to or SUBTRACT from (as in Kafka).
const LIST_CONFIG_KEYS: &[&str] = &["cleanup.policy"];

/// Parses a `cleanup.policy` list: `delete`, `compact` or both, in any order.
fn parse_cleanup_policy(value: &str) -> Option<CleanupPolicy> {
    let mut policy = CleanupPolicy {
        delete: false,
        compact: false,
    };
    for item in value.split(',').map(str::trim) {
        match item {
            "delete" => policy.delete = true,
            "compact" => policy.compact = true,
            _ => return None,
        }
    }
    (policy.delete || policy.compact).then_some(policy)
}

fn cleanup_policy_value(policy: CleanupPolicy) -> &'static str {
    match (policy.compact, policy.delete) {
        (true, true) => "compact,delete",
        (true, false) => "compact",
        _ => "delete",
    }
}

/// IncrementalAlterConfigs APPEND (`append = true`) or SUBTRACT of the comma-separated
/// `items` to the list config `key`, whose value is now `current` (the override, or the
/// broker default). Returns the new value. Kafka refuses both on configs that are not lists.
pub fn edit_list(
    key: &str,
    current: &str,
    items: &str,
    append: bool,
) -> Result<String, InvalidTopicConfig> {
    if !LIST_CONFIG_KEYS.contains(&key) {
        let verb = if append { "append" } else { "subtract" };
        return Err(InvalidTopicConfig {
            key: key.to_owned(),
            reason: format!("config value {verb} is not allowed: {key} is not a list"),
        });
    }
    let mut list: Vec<&str> = current
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    for item in items.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if append {
            if !list.contains(&item) {
                list.push(item);
            }
        } else {
            list.retain(|kept| *kept != item);
        }
    }
    Ok(list.join(","))
}

/// The RecordBatch attributes codec of a fixed `compression.type` (not `producer`).
fn compression_codec(name: &str) -> Option<i16> {
    let codec = COMPRESSION_CODECS.iter().position(|&known| known == name)?;
    i16::try_from(codec).ok()
}

fn compression_name(codec: Option<i16>) -> &'static str {
    codec
        .and_then(|codec| COMPRESSION_CODECS.get(usize::try_from(codec).ok()?))
        .copied()
        .unwrap_or("producer")
}

/// `compression.type` values by the codec number a RecordBatch's attributes carry.
const COMPRESSION_CODECS: &[&str] = &["uncompressed", "gzip", "snappy", "lz4", "zstd"];

/// A topic's explicit overrides, by Kafka config name. Absent keys take the broker defaults.
pub type TopicOverrides = BTreeMap<String, String>;

/// Applies `overrides` on top of the broker's `defaults`, rejecting unknown keys and bad values.
pub fn log_config(
    defaults: &LogConfig,
    overrides: &TopicOverrides,
) -> Result<LogConfig, InvalidTopicConfig> {
    let mut config = defaults.clone();
    for (key, value) in overrides {
        let invalid = |reason: &str| InvalidTopicConfig {
            key: key.clone(),
            reason: format!("{reason}: {value:?}"),
        };
        let int = || {
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| invalid("not an integer"))
        };
        match key.as_str() {
            "cleanup.policy" => {
                config.cleanup = parse_cleanup_policy(value)
                    .ok_or_else(|| invalid("must be a list of delete and compact"))?;
            }
            "delete.retention.ms" => {
                config.delete_retention_ms = Some(int()?)
                    .filter(|&ms| ms >= 0)
                    .ok_or_else(|| invalid("must not be negative"))?;
            }
            "min.compaction.lag.ms" => {
                config.min_compaction_lag_ms = Some(int()?)
                    .filter(|&ms| ms >= 0)
                    .ok_or_else(|| invalid("must not be negative"))?;
            }
            "compression.type" => {
                config.compression = match value.as_str() {
                    "producer" => None,
                    name => Some(
                        compression_codec(name).ok_or_else(|| invalid("not a compression type"))?,
                    ),
                };
            }
            "retention.ms" => {
                let ms = int()?;
                config.retention_ms = (ms >= 0).then_some(ms);
            }
            "retention.bytes" => {
                let bytes = int()?;
                config.retention_bytes = u64::try_from(bytes).ok();
            }
            "segment.bytes" => {
                let bytes = int()?;
                config.segment_bytes = u64::try_from(bytes)
                    .ok()
                    .filter(|&b| b >= 64 * 1024)
                    .ok_or_else(|| invalid("must be at least 65536"))?;
            }
            "segment.ms" => {
                config.segment_ms = u64::try_from(int()?)
                    .ok()
                    .filter(|&ms| ms > 0)
                    .ok_or_else(|| invalid("must be positive"))?;
            }
            "max.message.bytes" => {
                config.max_message_bytes = u32::try_from(int()?)
                    .ok()
                    .filter(|&b| b > 0)
                    .ok_or_else(|| invalid("must be positive"))?;
            }
            "message.timestamp.type" => {
                config.log_append_time = match value.as_str() {
                    "CreateTime" => false,
                    "LogAppendTime" => true,
                    _ => return Err(invalid("must be CreateTime or LogAppendTime")),
                };
            }
            "flush.policy" => {
                config.flush = crate::config::parse_flush_policy(value)
                    .map_err(|e| invalid(&e.to_string()))?;
            }
            _ => match kafka_topic_configs::check(key, value) {
                Some(Ok(())) => {}
                Some(Err(reason)) => return Err(invalid(reason)),
                None => {
                    return Err(InvalidTopicConfig {
                        key: key.clone(),
                        reason: "unknown topic config".to_owned(),
                    })
                }
            },
        }
    }
    Ok(config)
}

/// The value `key` has on a topic with `overrides`: its override, else the broker default
/// (empty for a key sluice does not know, which `log_config` then refuses).
pub fn effective_value(defaults: &LogConfig, overrides: &TopicOverrides, key: &str) -> String {
    if let Some(value) = overrides.get(key) {
        return value.clone();
    }
    describe(defaults)
        .into_iter()
        .find(|(name, _)| *name == key)
        .map(|(_, value)| value)
        .unwrap_or_default()
}

/// The effective value of every topic config, for DescribeConfigs.
pub fn describe(config: &LogConfig) -> Vec<(&'static str, String)> {
    let flush = match config.flush {
        FlushPolicy::GroupCommit { delay_us, .. } => format!("group-commit:{delay_us}"),
        FlushPolicy::IntervalMs(ms) => format!("interval:{ms}"),
        FlushPolicy::Never => "never".to_owned(),
    };
    vec![
        (
            "cleanup.policy",
            cleanup_policy_value(config.cleanup).to_owned(),
        ),
        (
            "retention.ms",
            config.retention_ms.unwrap_or(-1).to_string(),
        ),
        (
            "retention.bytes",
            config
                .retention_bytes
                .and_then(|b| i64::try_from(b).ok())
                .unwrap_or(-1)
                .to_string(),
        ),
        ("segment.bytes", config.segment_bytes.to_string()),
        ("segment.ms", config.segment_ms.to_string()),
        ("max.message.bytes", config.max_message_bytes.to_string()),
        (
            "message.timestamp.type",
            if config.log_append_time {
                "LogAppendTime"
            } else {
                "CreateTime"
            }
            .to_owned(),
        ),
        (
            "compression.type",
            compression_name(config.compression).to_owned(),
        ),
        (
            "delete.retention.ms",
            config.delete_retention_ms.to_string(),
        ),
        (
            "min.compaction.lag.ms",
            config.min_compaction_lag_ms.to_string(),
        ),
        ("flush.policy", flush),
    ]
    .into_iter()
    .chain(kafka_topic_configs::defaults().map(|(key, value)| (key, value.to_owned())))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_and_unknown_keys_are_refused() {
        let defaults = LogConfig::default();
        let mut overrides = TopicOverrides::new();
        overrides.insert("retention.ms".into(), "1000".into());
        let config = log_config(&defaults, &overrides).expect("valid");
        assert_eq!(config.retention_ms, Some(1000));
        overrides.insert("no.such.key".into(), "1".into());
        assert!(log_config(&defaults, &overrides).is_err());
    }

    #[test]
    fn compression_type_names_map_to_codecs_and_back() {
        let defaults = LogConfig::default();
        assert_eq!(defaults.compression, None);
        for (name, codec) in [
            ("producer", None),
            ("uncompressed", Some(0)),
            ("gzip", Some(1)),
            ("snappy", Some(2)),
            ("lz4", Some(3)),
            ("zstd", Some(4)),
        ] {
            let overrides = TopicOverrides::from([("compression.type".into(), name.into())]);
            let config = log_config(&defaults, &overrides).expect("valid");
            assert_eq!(config.compression, codec, "{name}");
            assert_eq!(
                effective_value(&config, &TopicOverrides::new(), "compression.type"),
                name
            );
        }
        let overrides = TopicOverrides::from([("compression.type".into(), "brotli".into())]);
        assert!(log_config(&defaults, &overrides).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        let defaults = LogConfig::default();
        for (key, value) in [("segment.bytes", "12"), ("retention.ms", "soon")] {
            let overrides = TopicOverrides::from([(key.to_owned(), value.to_owned())]);
            assert!(log_config(&defaults, &overrides).is_err(), "{key}={value}");
        }
    }

    #[test]
    fn cleanup_policy_lists_parse_and_edit() {
        let defaults = LogConfig::default();
        for (value, compact, delete) in [
            ("compact", true, false),
            ("compact,delete", true, true),
            ("delete, compact", true, true),
            ("delete", false, true),
        ] {
            let overrides = TopicOverrides::from([("cleanup.policy".into(), value.into())]);
            let config = log_config(&defaults, &overrides).expect(value);
            assert_eq!(
                (config.cleanup.compact, config.cleanup.delete),
                (compact, delete),
                "{value}"
            );
        }
        for bad in ["", "compacted", "delete,,x"] {
            let overrides = TopicOverrides::from([("cleanup.policy".into(), bad.into())]);
            assert!(log_config(&defaults, &overrides).is_err(), "{bad:?}");
        }
        let edit = |current, items, append| edit_list("cleanup.policy", current, items, append);
        assert_eq!(
            edit("delete", "compact", true).as_deref(),
            Ok("delete,compact")
        );
        assert_eq!(
            edit("delete,compact", "compact", true).as_deref(),
            Ok("delete,compact")
        );
        assert_eq!(
            edit("delete,compact", "delete", false).as_deref(),
            Ok("compact")
        );
        assert!(edit_list("retention.ms", "1", "2", true).is_err());
    }
}
