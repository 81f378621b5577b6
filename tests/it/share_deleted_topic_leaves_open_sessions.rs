//! A topic deleted while a member's share session covers it, over the raw protocol: the
//! deleted topic's partition leaves the session (an incremental ShareFetch does not answer
//! UNKNOWN_TOPIC_ID for it, which a client that keeps fetching would spin on) and the
//! member's described assignment; DescribeShareGroupOffsets leaves the deleted topic out,
//! or answers UNKNOWN_TOPIC_OR_PARTITION when asked for it, as Kafka does; and the topic
//! created again under the same name is a new partition: the member's next heartbeat assigns it under its new id, and its records, at
//! offsets 0.., are acquired afresh, although the deleted topic's share state had its records
//! held past them.

use crate::common;
use crate::share_support;

use kafka_protocol::messages::ShareGroupHeartbeatResponse;
use share_support::share_protocol::{
    acquired_offsets, cluster, describe, describe_offsets, group_from_earliest,
    join_on_coordinator, partition_errors, FetchPart, ShareMember, NONE,
};
use sluice::client::Admin;
use uuid::Uuid;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// Long enough that nothing in this test is released by a lock timeout.
const LOCK_MS: &str = "3600000";

#[test]
fn share_deleted_topic_leaves_open_sessions() {
    let broker = common::Broker::start_with(common::BrokerOptions {
        extra_args: vec!["--share-record-lock-duration-ms".into(), LOCK_MS.into()],
        // Nothing may bring the deleted topic back but the test's own CreateTopics.
        auto_create_topics: false,
        ..common::BrokerOptions::default()
    });
    let topic = common::topic_name("share-deleted");
    common::create_topic(broker.bootstrap(), &topic, 1);
    share_support::produce_to_partition_0(broker.bootstrap(), &topic, 3);

    let mut cluster = cluster(broker.bootstrap());
    let old_id = cluster.topic(&topic).expect("topic metadata").topic_id;
    let group = group_from_earliest(cluster.any_connection(), "deleted");
    let member = ShareMember::new(&group, "member-a");
    let (coordinator_id, joined) = join_on_coordinator(&mut cluster, &member, &[&topic]);
    let assigned = |response: &ShareGroupHeartbeatResponse| -> Vec<Uuid> {
        let assignment = response.assignment.as_ref();
        assignment.map_or_else(Vec::new, |a| {
            a.topic_partitions.iter().map(|t| t.topic_id).collect()
        })
    };
    assert_eq!(assigned(&joined), [old_id]);
    let (leader_id, leader) = cluster.leader_connection(&topic, 0).expect("leader");
    let response = member.fetch(leader, 0, &[FetchPart::new(old_id, 0)], 5_000);
    assert_eq!(response.error_code, NONE, "{response:?}");
    assert_eq!(acquired_offsets(&response), vec![(0, 1), (1, 1), (2, 1)]);

    Admin::new(share_support::share_protocol::cluster(broker.bootstrap()))
        .delete_topic(&topic)
        .expect("DeleteTopics");

    // The session goes on without the deleted partition: nothing to answer for it.
    let leader = cluster.broker_connection(leader_id).expect("leader");
    let response = member.fetch(leader, 1, &[], 0);
    assert_eq!(response.error_code, NONE, "{response:?}");
    assert_eq!(partition_errors(&response), vec![], "{response:?}");
    let coordinator = cluster
        .broker_connection(coordinator_id)
        .expect("coordinator");
    let described = describe(coordinator, &group);
    let described_topics: Vec<_> = described
        .members
        .iter()
        .flat_map(|m| m.assignment.topic_partitions.iter())
        .collect();
    assert!(described_topics.is_empty(), "{described:?}");
    let all = describe_offsets(coordinator, &group, None);
    assert_eq!(all.error_code, NONE, "{all:?}");
    assert!(all.topics.is_empty(), "{all:?}");
    let named = describe_offsets(coordinator, &group, Some(&[(topic.as_str(), &[0])]));
    let errors: Vec<(i32, i16)> = named
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(errors, [(0, UNKNOWN_TOPIC_OR_PARTITION)], "{named:?}");

    common::create_topic(broker.bootstrap(), &topic, 1);
    share_support::produce_to_partition_0(broker.bootstrap(), &topic, 2);
    cluster.invalidate_topic(&topic);
    let new_id = cluster.topic(&topic).expect("topic metadata").topic_id;
    assert_ne!(new_id, old_id);
    let coordinator = cluster
        .broker_connection(coordinator_id)
        .expect("coordinator");
    let heartbeat = member.heartbeat(coordinator, joined.member_epoch, &[]);
    assert_eq!(heartbeat.error_code, NONE, "{heartbeat:?}");
    assert_eq!(assigned(&heartbeat), [new_id], "{heartbeat:?}");
    let (new_leader_id, leader) = cluster.leader_connection(&topic, 0).expect("leader");
    // Partitions are placed by topic name, so the same shard leads the new topic.
    assert_eq!(new_leader_id, leader_id);
    let response = member.fetch(leader, 2, &[FetchPart::new(new_id, 0)], 5_000);
    assert_eq!(response.error_code, NONE, "{response:?}");
    assert_eq!(partition_errors(&response), vec![(0, NONE, NONE)]);
    assert_eq!(acquired_offsets(&response), vec![(0, 1), (1, 1)]);
    let coordinator = cluster
        .broker_connection(coordinator_id)
        .expect("coordinator");
    let all = describe_offsets(coordinator, &group, None);
    let starts: Vec<(String, i32, i64)> = all
        .topics
        .iter()
        .flat_map(|t| {
            let name = t.topic_name.0.to_string();
            t.partitions
                .iter()
                .map(move |p| (name.clone(), p.partition_index, p.start_offset))
        })
        .collect();
    assert_eq!(starts, [(topic.clone(), 0, 0)], "{all:?}");
}
