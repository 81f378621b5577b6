//! Per-topic settings: the Kafka config names sluice understands, their validation, and
//! how they turn into a `LogConfig`.

use std::collections::BTreeMap;

use crate::log::{FlushPolicy, LogConfig};

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
    "flush.policy",
];

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
                if value != "delete" {
                    return Err(invalid("only cleanup.policy=delete is supported"));
                }
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
                if value != "CreateTime" {
                    return Err(invalid("only CreateTime is supported"));
                }
            }
            "flush.policy" => {
                config.flush = crate::config::parse_flush_policy(value)
                    .map_err(|e| invalid(&e.to_string()))?;
            }
            _ => {
                return Err(InvalidTopicConfig {
                    key: key.clone(),
                    reason: "unknown topic config".to_owned(),
                })
            }
        }
    }
    Ok(config)
}

/// The effective value of every topic config, for DescribeConfigs.
pub fn describe(config: &LogConfig) -> Vec<(&'static str, String)> {
    let flush = match config.flush {
        FlushPolicy::GroupCommit { delay_us, .. } => format!("group-commit:{delay_us}"),
        FlushPolicy::IntervalMs(ms) => format!("interval:{ms}"),
        FlushPolicy::Never => "never".to_owned(),
    };
    vec![
        ("cleanup.policy", "delete".to_owned()),
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
        ("message.timestamp.type", "CreateTime".to_owned()),
        ("flush.policy", flush),
    ]
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
    fn bad_values_are_refused() {
        let defaults = LogConfig::default();
        for (key, value) in [("segment.bytes", "12"), ("retention.ms", "soon")] {
            let overrides = TopicOverrides::from([(key.to_owned(), value.to_owned())]);
            assert!(log_config(&defaults, &overrides).is_err(), "{key}={value}");
        }
    }
}
