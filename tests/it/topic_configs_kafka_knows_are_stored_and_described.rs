//! Topic configs Kafka 4.1 knows but sluice has no behaviour for (`flush.ms`,
//! `min.insync.replicas`, a fixed `compression.type`, ...) are accepted by CreateTopics,
//! AlterConfigs and IncrementalAlterConfigs as Kafka accepts them (librdkafka's 0081_admin
//! sets them), stored and described; a value of the wrong type or range, and a name Kafka
//! does not know, are INVALID_CONFIG.

use crate::common;

use std::time::Duration;

use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    alter_configs_request, AlterConfigsRequest, IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;
use sluice::client::{Cluster, ConnectionConfig};

use common::{topic_name, Broker};

const RESOURCE_TOPIC: i8 = 2;
const SET: i8 = 0;
const INVALID_CONFIG: i16 = 40;

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

fn options() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(Duration::from_secs(10)))
}

/// (value, source) of every config of `topic`.
fn described(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Vec<(String, Option<String>, String)> {
    let results = futures_lite::future::block_on(
        admin.describe_configs([&ResourceSpecifier::Topic(topic)], &options()),
    )
    .expect("DescribeConfigs");
    let resource = results
        .into_iter()
        .next()
        .expect("one resource")
        .expect("described");
    resource
        .entries
        .into_iter()
        .map(|e| (e.name, e.value, format!("{:?}", e.source)))
        .collect()
}

fn value_of(entries: &[(String, Option<String>, String)], name: &str) -> (Option<String>, String) {
    let (_, value, source) = entries
        .iter()
        .find(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("{name} is described"));
    (value.clone(), source.clone())
}

fn set(value: &str) -> (Option<String>, String) {
    (
        Some(value.to_owned()),
        format!("{:?}", ConfigSource::DynamicTopic),
    )
}

#[test]
fn topic_configs_kafka_knows_are_stored_and_described() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    let admin = admin(&bootstrap);

    // CreateTopics, as 0081_admin creates its topics.
    let topic = topic_name("kafka-configs");
    let bad_topic = topic_name("kafka-configs-bad");
    let created = NewTopic::new(&topic, 1, TopicReplication::Fixed(1))
        .set("compression.type", "lz4")
        .set("delete.retention.ms", "900")
        .set("flush.messages", "1000");
    let unknown =
        NewTopic::new(&bad_topic, 1, TopicReplication::Fixed(1)).set("dummy.doesntexist", "broker");
    let results =
        futures_lite::future::block_on(admin.create_topics([&created, &unknown], &options()))
            .expect("CreateTopics");
    assert_eq!(results[0], Ok(topic.clone()));
    assert_eq!(
        results[1],
        Err((bad_topic.clone(), RDKafkaErrorCode::InvalidConfig))
    );
    let entries = described(&admin, &topic);
    assert_eq!(value_of(&entries, "compression.type"), set("lz4"));
    assert_eq!(value_of(&entries, "flush.messages"), set("1000"));
    assert_eq!(
        value_of(&entries, "flush.ms"),
        (
            Some("9223372036854775807".to_owned()),
            format!("{:?}", ConfigSource::Default)
        )
    );

    // AlterConfigs replaces the topic's overrides, as 0081's resource #0.
    let alter = AlterConfig::new(ResourceSpecifier::Topic(&topic))
        .set("compression.type", "gzip")
        .set("flush.ms", "12345678");
    let results = futures_lite::future::block_on(admin.alter_configs([&alter], &options()))
        .expect("AlterConfigs");
    assert!(results[0].is_ok(), "{results:?}");
    let entries = described(&admin, &topic);
    assert_eq!(value_of(&entries, "compression.type"), set("gzip"));
    assert_eq!(value_of(&entries, "flush.ms"), set("12345678"));
    assert_eq!(
        value_of(&entries, "flush.messages").1,
        format!("{:?}", ConfigSource::Default)
    );

    // Values are checked as Kafka's ConfigDef checks them. (The rdkafka crate drops
    // AlterConfigs' per-resource errors, so this one goes raw.)
    let mut cluster = Cluster::connect(&bootstrap, ConnectionConfig::default()).expect("connect");
    let connection = cluster.any_connection();
    let request = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_string(topic.clone()))
            .with_configs(vec![alter_configs_request::AlterableConfig::default()
                .with_name(StrBytes::from_static_str("flush.ms"))
                .with_value(Some(StrBytes::from_static_str("-5")))]),
    ]);
    let response = connection
        .send_version(&request, 2, Duration::ZERO)
        .expect("AlterConfigs");
    assert_eq!(response.responses[0].error_code, INVALID_CONFIG);

    // IncrementalAlterConfigs SET.
    let mut incremental = |name: &str, value: &str| {
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(StrBytes::from_string(topic.clone()))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_string(name.to_owned()))
                    .with_config_operation(SET)
                    .with_value(Some(StrBytes::from_string(value.to_owned())))]),
        ]);
        connection
            .send_version(&request, 1, Duration::ZERO)
            .expect("IncrementalAlterConfigs")
            .responses[0]
            .error_code
    };
    for (name, value) in [
        ("min.insync.replicas", "2"),
        ("unclean.leader.election.enable", "true"),
        ("min.cleanable.dirty.ratio", "0.1"),
        ("segment.jitter.ms", "100"),
        ("message.timestamp.after.max.ms", "1000"),
    ] {
        assert_eq!(incremental(name, value), 0, "{name}={value}");
    }
    for (name, value) in [
        ("min.insync.replicas", "0"),
        ("preallocate", "maybe"),
        ("min.cleanable.dirty.ratio", "2"),
        ("compression.type", "brotli"),
        ("dummy.doesntexist", "1"),
    ] {
        assert_eq!(incremental(name, value), INVALID_CONFIG, "{name}={value}");
    }
    let entries = described(&admin, &topic);
    assert_eq!(value_of(&entries, "min.insync.replicas"), set("2"));
    assert_eq!(
        value_of(&entries, "unclean.leader.election.enable"),
        set("true")
    );
    assert_eq!(value_of(&entries, "min.cleanable.dirty.ratio"), set("0.1"));
    assert_eq!(value_of(&entries, "flush.ms"), set("12345678"));
    assert_eq!(value_of(&entries, "compression.type"), set("gzip"));
}
