//! Kafka 4.1 topic configs that sluice accepts, validates, stores and describes but does not
//! act on (Kafka's `LogConfig` definitions, minus the ones `topic_config` gives behaviour).
//!
//! Admin clients and test suites set these on topics as a matter of course (`flush.ms`,
//! `min.insync.replicas`, ...). Refusing them as unknown breaks those tools; Kafka checks
//! each value's type and range and answers INVALID_CONFIG for a bad one, so sluice does the
//! same and keeps the value, so that DescribeConfigs reads back what was set. Why each has
//! no effect: one replica and no leader election (`min.insync.replicas`,
//! `unclean.leader.election.enable`, the throttled-replica lists), fsync by sluice's own
//! flush policy (`flush.ms`, `flush.messages`), a fixed sparse index and segment layout
//! (`index.interval.bytes`, `segment.index.bytes`, `segment.jitter.ms`, `preallocate`,
//! `file.delete.delay.ms`), a cleaner that cleans every sealed segment
//! (`min.cleanable.dirty.ratio`, `max.compaction.lag.ms`), no timestamp bounds on produce,
//! batches stored as the producer compressed them (the codec levels), and no tiered storage.

/// What a config's value must be, as Kafka's `ConfigDef` type and validator.
#[derive(Debug, Clone, Copy)]
enum ValueKind {
    /// A 64-bit integer no smaller than `min`.
    Long {
        min: i64,
    },
    /// A 32-bit integer in `min..=max`; `also` is one more value allowed outside it.
    Int {
        min: i32,
        max: i32,
        also: i32,
    },
    Bool,
    /// A floating-point number in 0..=1.
    Ratio,
    /// Kafka's throttled-replica list: empty, `*`, or `partition:broker` pairs.
    ReplicaList,
}

/// One config with its Kafka default, as DescribeConfigs shows it.
struct KafkaTopicConfig {
    name: &'static str,
    default: &'static str,
    kind: ValueKind,
}

const fn long(name: &'static str, default: &'static str, min: i64) -> KafkaTopicConfig {
    KafkaTopicConfig {
        name,
        default,
        kind: ValueKind::Long { min },
    }
}

const fn int(name: &'static str, default: &'static str, min: i32, max: i32) -> KafkaTopicConfig {
    KafkaTopicConfig {
        name,
        default,
        kind: ValueKind::Int {
            min,
            max,
            also: min,
        },
    }
}

const fn boolean(name: &'static str, default: &'static str) -> KafkaTopicConfig {
    KafkaTopicConfig {
        name,
        default,
        kind: ValueKind::Bool,
    }
}

const LONG_MAX: &str = "9223372036854775807";

/// Kafka's `LogConfig` topic configs sluice stores without effect, with Kafka's defaults.
const STORED_WITHOUT_EFFECT: &[KafkaTopicConfig] = &[
    long("segment.jitter.ms", "0", 0),
    int("segment.index.bytes", "10485760", 4, i32::MAX),
    long("flush.messages", LONG_MAX, 1),
    long("flush.ms", LONG_MAX, 0),
    int("index.interval.bytes", "4096", 0, i32::MAX),
    long("file.delete.delay.ms", "60000", 0),
    long("max.compaction.lag.ms", LONG_MAX, 1),
    KafkaTopicConfig {
        name: "min.cleanable.dirty.ratio",
        default: "0.5",
        kind: ValueKind::Ratio,
    },
    boolean("unclean.leader.election.enable", "false"),
    int("min.insync.replicas", "1", 1, i32::MAX),
    KafkaTopicConfig {
        name: "compression.gzip.level",
        default: "-1",
        kind: ValueKind::Int {
            min: 1,
            max: 9,
            also: -1,
        },
    },
    int("compression.lz4.level", "9", 1, 17),
    int("compression.zstd.level", "3", -131_072, 22),
    boolean("preallocate", "false"),
    long("message.timestamp.before.max.ms", LONG_MAX, 0),
    long("message.timestamp.after.max.ms", "3600000", 0),
    KafkaTopicConfig {
        name: "leader.replication.throttled.replicas",
        default: "",
        kind: ValueKind::ReplicaList,
    },
    KafkaTopicConfig {
        name: "follower.replication.throttled.replicas",
        default: "",
        kind: ValueKind::ReplicaList,
    },
    boolean("remote.storage.enable", "false"),
    long("local.retention.ms", "-2", -2),
    long("local.retention.bytes", "-2", -2),
    boolean("remote.log.copy.disable", "false"),
    boolean("remote.log.delete.on.disable", "false"),
];

fn valid(kind: ValueKind, value: &str) -> Result<(), &'static str> {
    let value = value.trim();
    match kind {
        ValueKind::Long { min } => match value.parse::<i64>() {
            Ok(v) if v >= min => Ok(()),
            Ok(_) => Err("below the minimum"),
            Err(_) => Err("not a long"),
        },
        ValueKind::Int { min, max, also } => match value.parse::<i32>() {
            Ok(v) if (min..=max).contains(&v) || v == also => Ok(()),
            Ok(_) => Err("out of range"),
            Err(_) => Err("not an int"),
        },
        ValueKind::Bool => {
            if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") {
                Ok(())
            } else {
                Err("not a boolean")
            }
        }
        ValueKind::Ratio => match value.parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Ok(()),
            _ => Err("not a number between 0 and 1"),
        },
        ValueKind::ReplicaList => {
            let pairs_ok = value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .all(|item| {
                    item.split_once(':').is_some_and(|(partition, broker)| {
                        partition.trim().parse::<u32>().is_ok()
                            && broker.trim().parse::<u32>().is_ok()
                    })
                });
            if value == "*" || pairs_ok {
                Ok(())
            } else {
                Err("must be *, or a list of partition:broker pairs")
            }
        }
    }
}

/// Checks `value` for the stored-without-effect config `name`: `None` when sluice does not
/// know `name` at all, else whether the value is one Kafka accepts (the reason if not).
pub fn check(name: &str, value: &str) -> Option<Result<(), &'static str>> {
    STORED_WITHOUT_EFFECT
        .iter()
        .find(|config| config.name == name)
        .map(|config| valid(config.kind, value))
}

/// `(name, Kafka default)` of every stored-without-effect config, for DescribeConfigs.
pub fn defaults() -> impl Iterator<Item = (&'static str, &'static str)> {
    STORED_WITHOUT_EFFECT
        .iter()
        .map(|config| (config.name, config.default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_as_kafka_does() {
        for (name, value) in [
            ("flush.ms", "12345678"),
            ("flush.messages", "1"),
            ("min.insync.replicas", "2"),
            ("preallocate", "TRUE"),
            ("min.cleanable.dirty.ratio", "0.25"),
            ("compression.gzip.level", "-1"),
            ("compression.zstd.level", "-5"),
            ("leader.replication.throttled.replicas", "0:1,1:0"),
            ("follower.replication.throttled.replicas", "*"),
            ("local.retention.ms", "-2"),
        ] {
            assert_eq!(check(name, value), Some(Ok(())), "{name}={value}");
        }
        for (name, value) in [
            ("flush.ms", "-1"),
            ("flush.messages", "0"),
            ("min.insync.replicas", "0"),
            ("preallocate", "yes"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("compression.gzip.level", "0"),
            ("compression.lz4.level", "18"),
            ("leader.replication.throttled.replicas", "0-1"),
            ("index.interval.bytes", "lots"),
        ] {
            assert!(matches!(check(name, value), Some(Err(_))), "{name}={value}");
        }
        assert_eq!(check("dummy.doesntexist", "1"), None);
    }

    #[test]
    fn every_default_is_a_valid_value() {
        for (name, default) in defaults() {
            assert_eq!(check(name, default), Some(Ok(())), "{name}");
        }
    }
}
