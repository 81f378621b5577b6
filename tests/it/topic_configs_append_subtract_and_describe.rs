//! Topic configs as Kafka 4 clients set them: IncrementalAlterConfigs APPEND and SUBTRACT
//! edit the list config `cleanup.policy` and are refused (INVALID_CONFIG) on other configs;
//! DescribeConfigs shows the compaction configs with their sources; `compression.type` takes
//! only codec names; `max.message.bytes` bounds produced batches.

use crate::common;

use std::time::Duration;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;
use sluice::client::{Cluster, Connection, ConnectionConfig};

use common::{create_topic, producer, topic_name, try_produce_all, Broker, TestRecord};

const RESOURCE_TOPIC: i8 = 2;
const SET: i8 = 0;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;
const INVALID_CONFIG: i16 = 40;
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// One IncrementalAlterConfigs operation on `topic`; returns its error code.
fn alter(connection: &mut Connection, topic: &str, name: &str, op: i8, value: &str) -> i16 {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(text(topic))
            .with_configs(vec![AlterableConfig::default()
                .with_name(text(name))
                .with_config_operation(op)
                .with_value(Some(text(value)))]),
    ]);
    let response = connection
        .send_version(&request, 1, Duration::ZERO)
        .expect("IncrementalAlterConfigs");
    response.responses[0].error_code
}

/// (value, source) of `name` on `topic`.
fn describe(connection: &mut Connection, topic: &str, name: &str) -> (String, i8) {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(text(topic))
            .with_configuration_keys(Some(vec![text(name)]))]);
    let response = connection
        .send_version(&request, 4, Duration::ZERO)
        .expect("DescribeConfigs");
    let result = &response.results[0];
    assert_eq!(result.error_code, 0, "{result:?}");
    let config = result.configs.first().expect("the config is described");
    let value = config
        .value
        .as_ref()
        .map(|v| v.to_string())
        .unwrap_or_default();
    (value, config.config_source)
}

#[test]
fn topic_configs_append_subtract_and_describe() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("configs");
    create_topic(&bootstrap, &topic, 1);
    let mut cluster = Cluster::connect(&bootstrap, ConnectionConfig::default()).expect("connect");
    let connection = cluster.any_connection();

    for (name, value) in [
        ("cleanup.policy", "delete"),
        ("delete.retention.ms", "86400000"),
        ("min.compaction.lag.ms", "0"),
        ("compression.type", "producer"),
    ] {
        assert_eq!(
            describe(connection, &topic, name),
            (value.to_owned(), SOURCE_DEFAULT),
            "{name}"
        );
    }

    assert_eq!(
        alter(connection, &topic, "cleanup.policy", APPEND, "compact"),
        0
    );
    assert_eq!(
        describe(connection, &topic, "cleanup.policy"),
        ("delete,compact".to_owned(), SOURCE_TOPIC)
    );
    assert_eq!(
        alter(connection, &topic, "cleanup.policy", SUBTRACT, "delete"),
        0
    );
    assert_eq!(
        describe(connection, &topic, "cleanup.policy"),
        ("compact".to_owned(), SOURCE_TOPIC)
    );
    assert_eq!(
        alter(connection, &topic, "retention.ms", APPEND, "5"),
        INVALID_CONFIG,
        "APPEND to a config that is not a list"
    );
    assert_eq!(
        alter(connection, &topic, "retention.ms", SUBTRACT, "5"),
        INVALID_CONFIG,
        "SUBTRACT from a config that is not a list"
    );
    assert_eq!(
        alter(connection, &topic, "compression.type", SET, "lz4"),
        0,
        "stored and described, as in Kafka (batches are still kept as sent)"
    );
    assert_eq!(
        alter(connection, &topic, "compression.type", SET, "brotli"),
        INVALID_CONFIG,
        "not a codec"
    );
    assert_eq!(
        alter(connection, &topic, "delete.retention.ms", SET, "1000"),
        0
    );
    assert_eq!(
        describe(connection, &topic, "delete.retention.ms"),
        ("1000".to_owned(), SOURCE_TOPIC)
    );

    // max.message.bytes: a batch above it is refused with MESSAGE_TOO_LARGE.
    assert_eq!(
        alter(connection, &topic, "max.message.bytes", SET, "2000"),
        0
    );
    let producer = producer(
        &bootstrap,
        &[("retries", "0"), ("compression.type", "none")],
    );
    // One at a time, so that each is a batch of its own.
    let small = try_produce_all(
        &producer,
        &topic,
        &[TestRecord::new("small", "x".repeat(100))],
    );
    assert_eq!(small[0].error, None, "a batch under the limit");
    let deliveries = try_produce_all(
        &producer,
        &topic,
        &[TestRecord::new("large", "x".repeat(5_000))],
    );
    let error = deliveries[0].error.as_deref().unwrap_or("delivered");
    assert!(
        error.contains("MessageSizeTooLarge") || error.contains("too large"),
        "{error}"
    );
}
