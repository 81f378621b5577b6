//! A ConsumerGroupHeartbeat joining with a `SubscribedTopicRegex` that does not compile gets
//! INVALID_REGULAR_EXPRESSION, as Kafka answers, and leaves no member behind; the same join
//! with a valid regex is accepted.

use crate::common;

use std::time::Duration;

use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, GroupId,
};
use kafka_protocol::protocol::StrBytes;
use sluice::client::{Connection, ConnectionConfig};

use common::{topic_name, Broker, BrokerOptions};

const NONE: i16 = 0;
const INVALID_REGULAR_EXPRESSION: i16 = 128;

fn join(connection: &mut Connection, group: &str, regex: &str) -> ConsumerGroupHeartbeatResponse {
    let text = |s: &str| StrBytes::from_string(s.to_owned());
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_member_id(text(&uuid::Uuid::new_v4().to_string()))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(Vec::new()))
        .with_subscribed_topic_regex(Some(text(regex)))
        .with_topic_partitions(Some(Vec::new()));
    connection
        .send_version(&request, 1, Duration::ZERO)
        .expect("ConsumerGroupHeartbeat v1 answered")
}

#[test]
fn group_kip848_invalid_regex_is_refused() {
    // One shard coordinates every group.
    let broker = Broker::start_with(BrokerOptions {
        shards_count: 1,
        ..BrokerOptions::default()
    });
    let group = topic_name("regex-group");
    let mut connection =
        Connection::connect(broker.bootstrap(), &ConnectionConfig::default()).expect("connect");

    let refused = join(&mut connection, &group, "^orders-(unclosed");
    assert_eq!(
        refused.error_code, INVALID_REGULAR_EXPRESSION,
        "{refused:?}"
    );
    assert_eq!(refused.member_epoch, 0);

    let accepted = join(&mut connection, &group, "^orders-.*");
    assert_eq!(accepted.error_code, NONE, "{accepted:?}");
    assert!(accepted.member_epoch > 0, "{accepted:?}");
}
