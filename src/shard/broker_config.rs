//! Dynamic broker configs: the overrides AlterConfigs and IncrementalAlterConfigs set on a
//! BROKER resource, either for one broker id or (resource name "") as the cluster default.
//!
//! Kafka lets only the configs in its `DynamicBrokerConfig` change at runtime; everything
//! else is read-only once the broker runs. sluice keeps the same list so that tools which
//! tune a Kafka broker (librdkafka's admin tests, `kafka-configs --alter --entity-type
//! brokers`) get Kafka's answers. The overrides live in the catalog, so they are persisted
//! and spread to every shard like topic configs.

use super::control::ConfigOp;
use super::topic_config::{self, TopicOverrides};
use crate::log::LogConfig;

/// The broker configs Kafka 4 updates dynamically (listener, SSL and SASL reconfigurables,
/// log cleaner, thread pools, `log.*` topic defaults, connection quotas, producer state,
/// remote log manager, replication throttles, metric reporters and config providers).
const DYNAMIC_CONFIGS: &[&str] = &[
    // Listeners and their security.
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "ssl.protocol",
    "ssl.provider",
    "ssl.cipher.suites",
    "ssl.enabled.protocols",
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.endpoint.identification.algorithm",
    "ssl.secure.random.implementation",
    "ssl.client.auth",
    "ssl.engine.factory.class",
    "sasl.jaas.config",
    "sasl.enabled.mechanisms",
    "sasl.kerberos.service.name",
    "sasl.kerberos.kinit.cmd",
    "sasl.kerberos.ticket.renew.window.factor",
    "sasl.kerberos.ticket.renew.jitter",
    "sasl.kerberos.min.time.before.relogin",
    "sasl.kerberos.principal.to.local.rules",
    "sasl.login.refresh.window.factor",
    "sasl.login.refresh.window.jitter",
    "sasl.login.refresh.min.period.seconds",
    "sasl.login.refresh.buffer.seconds",
    // Log cleaner.
    "log.cleaner.threads",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.backoff.ms",
    // Defaults of topic configs (Kafka's DynamicLogConfig).
    "log.segment.bytes",
    "log.roll.ms",
    "log.roll.hours",
    "log.roll.jitter.ms",
    "log.roll.jitter.hours",
    "log.index.size.max.bytes",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.retention.bytes",
    "log.retention.ms",
    "log.retention.minutes",
    "log.retention.hours",
    "message.max.bytes",
    "log.index.interval.bytes",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.max.compaction.lag.ms",
    "log.segment.delete.delay.ms",
    "log.cleaner.min.cleanable.ratio",
    "log.cleanup.policy",
    "unclean.leader.election.enable",
    "min.insync.replicas",
    "compression.type",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "log.preallocate",
    "log.message.timestamp.type",
    "log.message.timestamp.before.max.ms",
    "log.message.timestamp.after.max.ms",
    "log.local.retention.ms",
    "log.local.retention.bytes",
    // Thread pools.
    "num.io.threads",
    "num.network.threads",
    "num.replica.fetchers",
    "num.recovery.threads.per.data.dir",
    "background.threads",
    // Connection quotas.
    "max.connections",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "max.connection.creation.rate",
    // Producer state.
    "producer.id.expiration.ms",
    "transaction.partition.verification.enable",
    // Remote log manager.
    "remote.log.index.file.cache.total.size.bytes",
    "remote.log.manager.copy.max.bytes.per.second",
    "remote.log.manager.fetch.max.bytes.per.second",
    "remote.log.manager.copier.thread.pool.size",
    "remote.log.manager.expiration.thread.pool.size",
    "remote.log.reader.threads",
    "remote.fetch.max.wait.ms",
    "remote.list.offsets.request.timeout.ms",
    // Replication quotas (Kafka's DynamicConfig.Broker).
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
    "replica.alter.log.dirs.io.max.bytes.per.second",
    "metric.reporters",
    "config.providers",
];

/// Dynamic configs whose value is a comma-separated list (APPEND and SUBTRACT apply).
const LIST_CONFIGS: &[&str] = &[
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "ssl.cipher.suites",
    "ssl.enabled.protocols",
    "sasl.enabled.mechanisms",
    "sasl.kerberos.principal.to.local.rules",
    "log.cleanup.policy",
    "metric.reporters",
    "config.providers",
];

/// Whether Kafka would update `name` at runtime. A `listener.name.<listener>.` prefix
/// scopes a listener config to one listener, as in Kafka.
pub fn is_dynamic(name: &str) -> bool {
    let base = name
        .strip_prefix("listener.name.")
        .and_then(|rest| rest.split_once('.'))
        .map_or(name, |(_, config)| config);
    DYNAMIC_CONFIGS.contains(&base)
}

/// Refuses overrides Kafka refuses: read-only (or unknown) names, in Kafka's wording,
/// and numbers that do not parse where that is cheap to tell.
pub fn validate(overrides: &TopicOverrides) -> Result<(), String> {
    let fixed: Vec<&str> = overrides
        .keys()
        .map(String::as_str)
        .filter(|name| !is_dynamic(name))
        .collect();
    if !fixed.is_empty() {
        return Err(format!(
            "Cannot update these configs dynamically: Set({})",
            fixed.join(", ")
        ));
    }
    for (name, value) in overrides {
        let numeric = [
            ".ms",
            ".bytes",
            ".threads",
            ".hours",
            ".minutes",
            ".messages",
        ]
        .iter()
        .any(|suffix| name.ends_with(suffix))
            || name.ends_with("relogin")
            || name.ends_with("per.second");
        if numeric && value.trim().parse::<i64>().is_err() {
            return Err(format!(
                "Invalid value {value} for configuration {name}: Not a number of type LONG"
            ));
        }
    }
    Ok(())
}

/// The dynamic broker configs sluice applies, as the topic configs they are defaults of.
/// The rest are stored and described only.
const TOPIC_DEFAULTS: &[(&str, &str)] = &[
    ("log.retention.ms", "retention.ms"),
    ("log.retention.bytes", "retention.bytes"),
    ("log.segment.bytes", "segment.bytes"),
    ("log.roll.ms", "segment.ms"),
    ("message.max.bytes", "max.message.bytes"),
    ("log.cleanup.policy", "cleanup.policy"),
    ("log.cleaner.delete.retention.ms", "delete.retention.ms"),
    ("log.cleaner.min.compaction.lag.ms", "min.compaction.lag.ms"),
];

/// Topic config defaults from the cluster-wide and this broker's dynamic overrides, the
/// broker's own winning (Kafka's precedence).
pub fn topic_defaults(cluster: &TopicOverrides, own: &TopicOverrides) -> TopicOverrides {
    TOPIC_DEFAULTS
        .iter()
        .filter_map(|(broker_key, topic_key)| {
            let value = own.get(*broker_key).or_else(|| cluster.get(*broker_key))?;
            Some(((*topic_key).to_owned(), value.clone()))
        })
        .collect()
}

/// Which dynamic broker config a topic without its own `topic_key` inherits from: `Some(true)`
/// this broker's, `Some(false)` the cluster default, `None` neither.
pub fn topic_default_origin(
    cluster: &TopicOverrides,
    own: &TopicOverrides,
    topic_key: &str,
) -> Option<bool> {
    let (broker_key, _) = TOPIC_DEFAULTS.iter().find(|(_, t)| *t == topic_key)?;
    if own.contains_key(*broker_key) {
        Some(true)
    } else {
        cluster.contains_key(*broker_key).then_some(false)
    }
}

/// The value `name` has where neither this broker nor the cluster default overrides it: for
/// a topic default, the broker's static topic default; `None` for the others, whose static
/// value sluice does not track.
pub fn static_value(defaults: &LogConfig, name: &str) -> Option<String> {
    let (_, topic_key) = TOPIC_DEFAULTS
        .iter()
        .find(|(broker_key, _)| *broker_key == name)?;
    Some(topic_config::effective_value(
        defaults,
        &TopicOverrides::new(),
        topic_key,
    ))
}

/// `current` after IncrementalAlterConfigs `ops`. APPEND and SUBTRACT start from the value in
/// force, as in Kafka: `current`'s, else `inherited(name)` (the cluster default, then the
/// static value), so APPEND `compact` to an unset `log.cleanup.policy` gives
/// `delete,compact`, not `compact`.
pub fn edit(
    mut current: TopicOverrides,
    ops: Vec<ConfigOp>,
    inherited: impl Fn(&str) -> Option<String>,
) -> Result<TopicOverrides, String> {
    for op in ops {
        if let ConfigOp::Append(name, _) | ConfigOp::Subtract(name, _) = &op {
            if !current.contains_key(name) {
                if let Some(value) = inherited(name) {
                    current.insert(name.clone(), value);
                }
            }
        }
        match op {
            ConfigOp::Set(name, value) => {
                current.insert(name, value);
            }
            ConfigOp::Delete(name) => {
                current.remove(&name);
            }
            ConfigOp::Append(name, items) | ConfigOp::Subtract(name, items)
                if !LIST_CONFIGS.contains(&name.as_str()) =>
            {
                return Err(format!(
                    "{name}: config value append or subtract is not allowed: not a list ({items})"
                ));
            }
            ConfigOp::Append(name, items) => {
                let mut list = split(current.get(&name));
                for item in items.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    if !list.iter().any(|have| have == item) {
                        list.push(item.to_owned());
                    }
                }
                current.insert(name, list.join(","));
            }
            ConfigOp::Subtract(name, items) => {
                let gone: Vec<&str> = items.split(',').map(str::trim).collect();
                let list: Vec<String> = split(current.get(&name))
                    .into_iter()
                    .filter(|have| !gone.contains(&have.as_str()))
                    .collect();
                current.insert(name, list.join(","));
            }
        }
    }
    Ok(current)
}

fn split(value: Option<&String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kerberos_relogin_is_dynamic_and_broker_id_is_not() {
        let ok = TopicOverrides::from([(
            "sasl.kerberos.min.time.before.relogin".into(),
            "58000".into(),
        )]);
        assert_eq!(validate(&ok), Ok(()));
        let fixed = TopicOverrides::from([("broker.id".into(), "3".into())]);
        assert_eq!(
            validate(&fixed),
            Err("Cannot update these configs dynamically: Set(broker.id)".to_owned())
        );
        assert!(is_dynamic("listener.name.plain.ssl.keystore.location"));
    }

    #[test]
    fn append_and_subtract_start_from_the_value_in_force() {
        let defaults = LogConfig::default();
        let inherited = |name: &str| static_value(&defaults, name);
        let appended = edit(
            TopicOverrides::new(),
            vec![ConfigOp::Append(
                "log.cleanup.policy".into(),
                "compact".into(),
            )],
            inherited,
        )
        .expect("append");
        assert_eq!(appended["log.cleanup.policy"], "delete,compact");
        let subtracted = edit(
            appended,
            vec![ConfigOp::Subtract(
                "log.cleanup.policy".into(),
                "compact".into(),
            )],
            inherited,
        )
        .expect("subtract");
        assert_eq!(subtracted["log.cleanup.policy"], "delete");
    }

    #[test]
    fn numbers_are_checked() {
        let bad = TopicOverrides::from([("log.retention.ms".into(), "soon".into())]);
        assert!(validate(&bad).is_err());
    }
}
