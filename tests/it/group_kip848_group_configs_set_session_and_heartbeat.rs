//! KIP-848 group configs: IncrementalAlterConfigs on a GROUP resource sets
//! `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms` (librdkafka's
//! 0081_admin sets the first), checked against Kafka's default broker bounds (INVALID_CONFIG
//! outside them), described as DYNAMIC_GROUP_CONFIG, and used by the group: its members are
//! told the group's heartbeat interval.

use crate::common;

use std::time::Duration;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;
use sluice::client::group_admin::GroupAdmin;
use sluice::client::{Cluster, ConnectionConfig};

use common::{create_topic, topic_name, Broker};

const RESOURCE_GROUP: i8 = 32;
const SET: i8 = 0;
const INVALID_CONFIG: i16 = 40;
const SOURCE_GROUP: i8 = 8;
const SESSION_TIMEOUT: &str = "consumer.session.timeout.ms";
const HEARTBEAT_INTERVAL: &str = "consumer.heartbeat.interval.ms";

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

#[test]
fn group_kip848_group_configs_set_session_and_heartbeat() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("group-configs");
    create_topic(&bootstrap, &topic, 1);
    let group = topic_name("configured-group");
    let cluster = Cluster::connect(&bootstrap, ConnectionConfig::default()).expect("connect");
    let mut admin = GroupAdmin::new(cluster);

    let mut alter = |name: &str, value: &str| {
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(RESOURCE_GROUP)
                .with_resource_name(text(&group))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(text(name))
                    .with_config_operation(SET)
                    .with_value(Some(text(value)))]),
        ]);
        admin
            .cluster()
            .any_connection()
            .send_version(&request, 1, Duration::ZERO)
            .expect("IncrementalAlterConfigs")
            .responses[0]
            .error_code
    };
    assert_eq!(alter(SESSION_TIMEOUT, "50000"), 0);
    assert_eq!(alter(HEARTBEAT_INTERVAL, "6000"), 0);
    for (name, value) in [
        (SESSION_TIMEOUT, "1000"),
        (SESSION_TIMEOUT, "600000"),
        (HEARTBEAT_INTERVAL, "100"),
        (HEARTBEAT_INTERVAL, "soon"),
    ] {
        assert_eq!(alter(name, value), INVALID_CONFIG, "{name}={value}");
    }

    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_GROUP)
            .with_resource_name(text(&group))
            .with_configuration_keys(Some(vec![text(SESSION_TIMEOUT), text(HEARTBEAT_INTERVAL)]))]);
    let response = admin
        .cluster()
        .any_connection()
        .send_version(&request, 4, Duration::ZERO)
        .expect("DescribeConfigs");
    let described: Vec<(String, String, i8)> = response.results[0]
        .configs
        .iter()
        .map(|c| {
            let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
            (c.name.to_string(), value, c.config_source)
        })
        .collect();
    assert_eq!(
        described,
        vec![
            (SESSION_TIMEOUT.to_owned(), "50000".to_owned(), SOURCE_GROUP),
            (
                HEARTBEAT_INTERVAL.to_owned(),
                "6000".to_owned(),
                SOURCE_GROUP
            ),
        ]
    );

    // A member joining the group is told the group's heartbeat interval.
    let (_, connection) = admin.coordinator(&group).expect("coordinator");
    let join = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(text(&group).into())
        .with_member_id(text("member-1"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![text(&topic).into()]))
        .with_topic_partitions(Some(Vec::new()));
    let response = connection
        .send_version(&join, 1, Duration::ZERO)
        .expect("ConsumerGroupHeartbeat");
    assert_eq!(response.error_code, 0, "{response:?}");
    assert_eq!(response.heartbeat_interval_ms, 6000);
}
