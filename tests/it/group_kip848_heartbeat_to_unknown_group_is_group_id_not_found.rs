//! A KIP-848 ConsumerGroupHeartbeat with a non-zero member epoch for a group the coordinator
//! does not know is answered GROUP_ID_NOT_FOUND, as Kafka answers it (only a join, epoch 0,
//! creates a consumer group); the client then rejoins instead of treating its member as
//! fenced.

use crate::common;

use std::time::Duration;

use kafka_protocol::messages::ConsumerGroupHeartbeatRequest;
use kafka_protocol::protocol::StrBytes;
use sluice::client::group_admin::GroupAdmin;
use sluice::client::{Cluster, ConnectionConfig};

use common::{topic_name, Broker};

const GROUP_ID_NOT_FOUND: i16 = 69;

#[test]
fn group_kip848_heartbeat_to_unknown_group_is_group_id_not_found() {
    let broker = Broker::start();
    let cluster =
        Cluster::connect(broker.bootstrap(), ConnectionConfig::default()).expect("connect");
    let mut admin = GroupAdmin::new(cluster);
    let group = topic_name("never-joined");
    let (_, connection) = admin.coordinator(&group).expect("coordinator");
    for epoch in [5, -1] {
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(StrBytes::from_string(group.clone()).into())
            .with_member_id(StrBytes::from_static_str("member-from-before"))
            .with_member_epoch(epoch)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(Vec::new()));
        let response = connection
            .send_version(&request, 0, Duration::ZERO)
            .expect("ConsumerGroupHeartbeat");
        assert_eq!(response.error_code, GROUP_ID_NOT_FOUND, "epoch {epoch}");
    }
}
