//! A dynamic `message.max.bytes` set for the whole cluster (BROKER resource "") becomes the
//! `max.message.bytes` default of topics without their own, including topics that already
//! exist: a larger batch gets MESSAGE_TOO_LARGE, and the topic describes the limit as
//! DYNAMIC_DEFAULT_BROKER_CONFIG, as on Kafka.

use crate::common;

use std::time::Duration;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;
use sluice::client::{Cluster, ConnectionConfig};

use common::{create_topic, producer, topic_name, try_produce_all, Broker, TestRecord};

const RESOURCE_BROKER: i8 = 4;
const RESOURCE_TOPIC: i8 = 2;
const SET: i8 = 0;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;

#[test]
fn broker_message_max_bytes_bounds_existing_topics() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("bounded");
    create_topic(&bootstrap, &topic, 2);
    let producer = producer(
        &bootstrap,
        &[("retries", "0"), ("compression.type", "none")],
    );
    let large = [TestRecord::new("large", "x".repeat(5_000))];
    assert_eq!(
        try_produce_all(&producer, &topic, &large)[0].error,
        None,
        "under the static 1 MB default"
    );

    let mut cluster = Cluster::connect(&bootstrap, ConnectionConfig::default()).expect("connect");
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(RESOURCE_BROKER)
            .with_resource_name(StrBytes::from_static_str(""))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_static_str("message.max.bytes"))
                .with_config_operation(SET)
                .with_value(Some(StrBytes::from_static_str("2000")))]),
    ]);
    let response = cluster
        .any_connection()
        .send_version(&request, 1, Duration::ZERO)
        .expect("IncrementalAlterConfigs");
    assert_eq!(response.responses[0].error_code, 0, "{response:?}");
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_string(topic.clone()))
            .with_configuration_keys(Some(vec![StrBytes::from_static_str("max.message.bytes")]))]);
    let described = cluster
        .any_connection()
        .send_version(&request, 4, Duration::ZERO)
        .expect("DescribeConfigs");
    let config = &described.results[0].configs[0];
    assert_eq!(
        (config.value.as_deref(), config.config_source),
        (Some("2000"), SOURCE_DYNAMIC_DEFAULT_BROKER),
        "the topic shows where its limit comes from"
    );

    let small = try_produce_all(
        &producer,
        &topic,
        &[TestRecord::new("small", "x".repeat(100))],
    );
    assert_eq!(small[0].error, None, "a batch under the new limit");
    let deliveries = try_produce_all(&producer, &topic, &large);
    let error = deliveries[0].error.as_deref().unwrap_or("delivered");
    assert!(
        error.contains("MessageSizeTooLarge") || error.contains("too large"),
        "{error}"
    );
}
