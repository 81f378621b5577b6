//! KIP-848, the heartbeats librdkafka sends when an application changes its subscription and
//! then unsubscribes and subscribes again at once (librdkafka's 0045_subscribe_many_updates),
//! answered field by field as the GroupMetadataManager of Kafka 4.0-4.2 answers them (4.3 may
//! put off computing the target assignment, KIP-1263):
//! - the subscription change is answered with the revocation right away: the assignment
//!   without the dropped topic, nothing of the new topic yet, and the old member epoch;
//! - the leave (epoch -1) echoes the member id and epoch, with no assignment and no
//!   heartbeat interval (Kafka's `consumerGroupLeave`);
//! - a join with epoch 0 and the same member id, straight after the leave, is a new member
//!   that gets the whole new subscription at a new epoch.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as Owned;
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice::client::connection::Connection;
use sluice::client::group_admin::GroupAdmin;
use sluice::client::{Cluster, ConnectionConfig};
use uuid::Uuid;

use common::{create_topic, topic_name, Broker};

const PARTITIONS_COUNT: i32 = 2;
const LEAVE_EPOCH: i32 = -1;

/// What an assignment holds, by topic index (0, 1, 2) and partition.
type Held = BTreeSet<(usize, i32)>;

struct Member<'a> {
    connection: &'a mut Connection,
    group: String,
    member_id: String,
    topic_ids: Vec<Uuid>,
}

impl Member<'_> {
    fn heartbeat(
        &mut self,
        request: ConsumerGroupHeartbeatRequest,
    ) -> ConsumerGroupHeartbeatResponse {
        let request = request
            .with_group_id(StrBytes::from_string(self.group.clone()).into())
            .with_member_id(StrBytes::from_string(self.member_id.clone()));
        let response = self
            .connection
            .send_version(&request, 1, Duration::ZERO)
            .expect("ConsumerGroupHeartbeat");
        assert_eq!(response.error_code, 0, "{response:?}");
        response
    }

    /// A full heartbeat, as a (re)joining member sends it.
    fn join(&mut self, topics: &[usize]) -> ConsumerGroupHeartbeatResponse {
        self.heartbeat(
            ConsumerGroupHeartbeatRequest::default()
                .with_member_epoch(0)
                .with_rebalance_timeout_ms(30_000)
                .with_subscribed_topic_names(Some(self.names(topics)))
                .with_topic_partitions(Some(Vec::new())),
        )
    }

    fn names(&self, topics: &[usize]) -> Vec<TopicName> {
        topics
            .iter()
            .map(|&t| StrBytes::from_string(format!("{}-{t}", self.group)).into())
            .collect()
    }

    fn held(&self, response: &ConsumerGroupHeartbeatResponse) -> Option<Held> {
        let assignment = response.assignment.as_ref()?;
        Some(
            assignment
                .topic_partitions
                .iter()
                .flat_map(|tp| {
                    let topic = self
                        .topic_ids
                        .iter()
                        .position(|id| *id == tp.topic_id)
                        .expect("assignment names a known topic id");
                    tp.partitions.iter().map(move |p| (topic, *p))
                })
                .collect(),
        )
    }

    fn owned(&self, held: &Held) -> Vec<Owned> {
        self.topic_ids
            .iter()
            .enumerate()
            .filter_map(|(t, id)| {
                let partitions: Vec<i32> = held
                    .iter()
                    .filter(|(ht, _)| *ht == t)
                    .map(|(_, p)| *p)
                    .collect();
                (!partitions.is_empty()).then(|| {
                    Owned::default()
                        .with_topic_id(*id)
                        .with_partitions(partitions)
                })
            })
            .collect()
    }
}

fn all_of(topics: &[usize]) -> Held {
    topics
        .iter()
        .flat_map(|&t| (0..PARTITIONS_COUNT).map(move |p| (t, p)))
        .collect()
}

#[test]
fn group_kip848_leave_mid_revocation_then_rejoin() {
    let broker = Broker::start();
    let group = topic_name("leave-mid-revocation");
    let mut cluster =
        Cluster::connect(broker.bootstrap(), ConnectionConfig::default()).expect("connect");
    let topic_ids: Vec<Uuid> = (0..3)
        .map(|t| {
            let name = format!("{group}-{t}");
            create_topic(broker.bootstrap(), &name, PARTITIONS_COUNT);
            cluster.topic(&name).expect("topic metadata").topic_id
        })
        .collect();
    let mut admin = GroupAdmin::new(cluster);
    let (_, connection) = admin.coordinator(&group).expect("coordinator");
    // librdkafka 2.12 makes up its member id (KIP-1082) and keeps it across a leave.
    let mut member = Member {
        connection,
        group: group.clone(),
        member_id: Uuid::new_v4().to_string(),
        topic_ids,
    };

    let joined = member.join(&[0, 1]);
    let first_epoch = joined.member_epoch;
    assert!(first_epoch > 0, "{joined:?}");
    let held = member.held(&joined).expect("a join gets its assignment");
    assert_eq!(held, all_of(&[0, 1]));
    let acked = member.heartbeat(
        ConsumerGroupHeartbeatRequest::default()
            .with_member_epoch(first_epoch)
            .with_topic_partitions(Some(member.owned(&held))),
    );
    assert_eq!(acked.member_epoch, first_epoch);
    assert_eq!(member.held(&acked), None, "nothing changed: no assignment");

    // The subscription moves from {0, 1} to {1, 2}. librdkafka sends only what changed.
    let moved = member.heartbeat(
        ConsumerGroupHeartbeatRequest::default()
            .with_member_epoch(first_epoch)
            .with_subscribed_topic_names(Some(member.names(&[1, 2]))),
    );
    assert_eq!(
        moved.member_epoch, first_epoch,
        "the epoch moves on only once topic 0 is revoked"
    );
    assert_eq!(member.held(&moved), Some(all_of(&[1])));

    // The application unsubscribes before it has revoked topic 0.
    let left =
        member.heartbeat(ConsumerGroupHeartbeatRequest::default().with_member_epoch(LEAVE_EPOCH));
    assert_eq!(left.member_id.as_deref(), Some(member.member_id.as_str()));
    assert_eq!(left.member_epoch, LEAVE_EPOCH);
    assert_eq!(left.heartbeat_interval_ms, 0);
    assert!(left.assignment.is_none(), "{left:?}");

    // ...and subscribes again at once, under the same member id.
    let rejoined = member.join(&[1, 2]);
    assert_eq!(
        rejoined.member_id.as_deref(),
        Some(member.member_id.as_str())
    );
    assert!(rejoined.member_epoch > first_epoch, "{rejoined:?}");
    assert!(rejoined.heartbeat_interval_ms > 0);
    assert_eq!(member.held(&rejoined), Some(all_of(&[1, 2])));
}
