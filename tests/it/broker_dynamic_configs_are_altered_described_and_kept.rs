//! Dynamic broker configs as Kafka 4 takes them: AlterConfigs and IncrementalAlterConfigs on
//! a BROKER resource ("0", or "" for the cluster default) accept the configs Kafka updates at
//! runtime, refuse read-only ones and unknown broker ids with INVALID_REQUEST, show in
//! DescribeConfigs as DYNAMIC_BROKER_CONFIG / DYNAMIC_DEFAULT_BROKER_CONFIG, and survive a
//! restart (even a SIGKILL).

use crate::common;

use std::time::Duration;

use kafka_protocol::messages::alter_configs_request::{
    AlterConfigsResource as ReplaceResource, AlterableConfig as ReplaceConfig,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;
use sluice::client::{Cluster, Connection, ConnectionConfig};

use common::Broker;

const RESOURCE_BROKER: i8 = 4;
const SET: i8 = 0;
const INVALID_REQUEST: i16 = 42;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const RELOGIN: &str = "sasl.kerberos.min.time.before.relogin";
const RETENTION: &str = "log.retention.ms";

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// One IncrementalAlterConfigs SET on broker resource `broker`: (error code, message).
fn set(connection: &mut Connection, broker: &str, name: &str, value: &str) -> (i16, String) {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(RESOURCE_BROKER)
            .with_resource_name(text(broker))
            .with_configs(vec![AlterableConfig::default()
                .with_name(text(name))
                .with_config_operation(SET)
                .with_value(Some(text(value)))]),
    ]);
    let response = connection
        .send_version(&request, 1, Duration::ZERO)
        .expect("IncrementalAlterConfigs");
    let result = &response.responses[0];
    let message = result.error_message.as_deref().unwrap_or("").to_owned();
    (result.error_code, message)
}

/// AlterConfigs (replacing every dynamic config of `broker`): the error code.
fn replace(connection: &mut Connection, broker: &str, configs: &[(&str, &str)]) -> i16 {
    let request = AlterConfigsRequest::default().with_resources(vec![ReplaceResource::default()
        .with_resource_type(RESOURCE_BROKER)
        .with_resource_name(text(broker))
        .with_configs(
            configs
                .iter()
                .map(|(name, value)| {
                    ReplaceConfig::default()
                        .with_name(text(name))
                        .with_value(Some(text(value)))
                })
                .collect(),
        )]);
    let response = connection
        .send_version(&request, 2, Duration::ZERO)
        .expect("AlterConfigs");
    response.responses[0].error_code
}

/// (value, source, read-only) of `name` on broker resource `broker`, if described.
fn describe(connection: &mut Connection, broker: &str, name: &str) -> Option<(String, i8, bool)> {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_BROKER)
            .with_resource_name(text(broker))
            .with_configuration_keys(Some(vec![text(name)]))]);
    let response = connection
        .send_version(&request, 4, Duration::ZERO)
        .expect("DescribeConfigs");
    let result = &response.results[0];
    assert_eq!(result.error_code, 0, "{result:?}");
    result.configs.first().map(|config| {
        let value = config.value.as_deref().unwrap_or("").to_owned();
        (value, config.config_source, config.read_only)
    })
}

fn check_described(connection: &mut Connection) {
    assert_eq!(
        describe(connection, "0", RELOGIN),
        Some(("58000".to_owned(), SOURCE_DYNAMIC_BROKER, false))
    );
    assert_eq!(
        describe(connection, "0", RETENTION),
        Some(("3600000".to_owned(), SOURCE_DYNAMIC_DEFAULT_BROKER, false)),
        "the cluster default shows on every broker"
    );
    assert_eq!(
        describe(connection, "", RETENTION),
        Some(("3600000".to_owned(), SOURCE_DYNAMIC_DEFAULT_BROKER, false))
    );
    assert_eq!(
        describe(connection, "", RELOGIN),
        None,
        "a per-broker override is not a cluster default"
    );
}

#[test]
fn broker_dynamic_configs_are_altered_described_and_kept() {
    let mut broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    {
        let mut cluster =
            Cluster::connect(&bootstrap, ConnectionConfig::default()).expect("connect");
        let connection = cluster.any_connection();

        // librdkafka's 0081_admin sets exactly this one.
        assert_eq!(set(connection, "0", RELOGIN, "58000"), (0, String::new()));
        assert_eq!(replace(connection, "", &[(RETENTION, "3600000")]), 0);
        check_described(connection);

        let (error, message) = set(connection, "0", "broker.id", "7");
        assert_eq!(error, INVALID_REQUEST, "a read-only config");
        assert_eq!(
            message,
            "Cannot update these configs dynamically: Set(broker.id)"
        );
        assert_eq!(
            set(connection, "0", RETENTION, "soon").0,
            INVALID_REQUEST,
            "not a number"
        );
        let (error, message) = set(connection, "99", RELOGIN, "58000");
        assert_eq!(error, INVALID_REQUEST, "an unknown broker id");
        assert!(message.contains("Unexpected broker id"), "{message}");
        assert_eq!(
            set(connection, "zero", RELOGIN, "58000").0,
            INVALID_REQUEST,
            "not a broker id"
        );
        check_described(connection);
    }

    // SIGKILL: an acknowledged override was already on disk.
    broker.kill();
    broker.restart();
    let bootstrap = broker.bootstrap().to_owned();
    let mut cluster = Cluster::connect(&bootstrap, ConnectionConfig::default()).expect("connect");
    check_described(cluster.any_connection());
}
