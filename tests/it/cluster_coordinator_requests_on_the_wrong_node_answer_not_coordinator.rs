//! In a cluster every group and transactional id has one coordinator node (issue 17, third
//! slice; a group's is the leader of its `__consumer_offsets` partition, a transactional
//! id's the node its hash picks): FindCoordinator names it on every node, and a group, share-group or transaction
//! request sent straight to another node answers NOT_COORDINATOR (16), as Kafka's brokers
//! do, so the client looks the coordinator up again instead of splitting the group between
//! two nodes' local coordinators. An rdkafka consumer group bootstrapped on a node that does
//! not coordinate it still joins, consumes and commits; ListGroups lists the group on its
//! coordinator only.

use std::time::Duration;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, DescribeGroupsRequest, GroupId, HeartbeatRequest,
    InitProducerIdRequest, JoinGroupRequest, ListGroupsRequest, OffsetFetchRequest,
    ShareGroupHeartbeatRequest, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Offset;
use sluice::client::{Connection, ConnectionConfig};

use crate::cluster_support::{
    commit_each, committed_each, create_topic_via, find_coordinator, registered_clients,
    settle_internal_topic, start_cluster, try_create_topic_via, CLUSTER_TIMEOUT, NODES,
};
use crate::common::{
    consume_count, consumer, produce_all, producer, topic_name, try_produce_all, wait_until,
    Broker, TestRecord,
};

const NOT_COORDINATOR: i16 = 16;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn connect(addr: &str) -> Connection {
    Connection::connect(addr, &ConnectionConfig::default()).expect("connect")
}

/// The error code of each group / transaction API at `addr`, by name, for `key` (used as
/// the group id and the transactional id alike).
fn coordinator_answers(addr: &str, key: &str, topic: &str) -> Vec<(&'static str, i16)> {
    let mut c = connect(addr);
    let group = GroupId(text(key));
    let join = JoinGroupRequest::default()
        .with_group_id(group.clone())
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(text("m-1"))
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(text("range"))
            .with_metadata(Default::default())]);
    let join = c.send_version(&join, 5, Duration::ZERO).expect("JoinGroup");
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(group.clone())
        .with_generation_id(1)
        .with_member_id(text("m-1"));
    let heartbeat = c
        .send_version(&heartbeat, 1, Duration::ZERO)
        .expect("Heartbeat");
    let fetch = OffsetFetchRequest::default()
        .with_group_id(group.clone())
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(text(topic)))
            .with_partition_indexes(vec![0])]));
    let fetch = c
        .send_version(&fetch, 3, Duration::ZERO)
        .expect("OffsetFetch");
    let describe = DescribeGroupsRequest::default().with_groups(vec![group.clone()]);
    let describe = c
        .send_version(&describe, 1, Duration::ZERO)
        .expect("DescribeGroups");
    let consumer_heartbeat = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group.clone())
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(10_000)
        .with_subscribed_topic_names(Some(vec![TopicName(text(topic))]));
    let consumer_heartbeat = c
        .send_version(&consumer_heartbeat, 0, Duration::ZERO)
        .expect("ConsumerGroupHeartbeat");
    let share_heartbeat = ShareGroupHeartbeatRequest::default()
        .with_group_id(group)
        .with_member_id(text("share-member-1"))
        .with_member_epoch(0)
        .with_subscribed_topic_names(Some(vec![TopicName(text(topic))]));
    let share_heartbeat = c
        .send_version(&share_heartbeat, 1, Duration::ZERO)
        .expect("ShareGroupHeartbeat");
    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(text(key))))
        .with_transaction_timeout_ms(60_000);
    let init = c
        .send_version(&init, 1, Duration::ZERO)
        .expect("InitProducerId");
    vec![
        ("JoinGroup", join.error_code),
        ("Heartbeat", heartbeat.error_code),
        ("OffsetFetch", fetch.error_code),
        ("DescribeGroups", describe.groups[0].error_code),
        ("ConsumerGroupHeartbeat", consumer_heartbeat.error_code),
        ("ShareGroupHeartbeat", share_heartbeat.error_code),
        ("InitProducerId", init.error_code),
    ]
}

/// The group ids ListGroups (v2) names at `addr`.
fn listed_groups(addr: &str) -> Vec<String> {
    let listed = connect(addr)
        .send_version(&ListGroupsRequest::default(), 2, Duration::ZERO)
        .expect("ListGroups");
    assert_eq!(listed.error_code, 0, "ListGroups at {addr}");
    listed
        .groups
        .iter()
        .map(|g| g.group_id.to_string())
        .collect()
}

#[test]
fn cluster_coordinator_requests_on_the_wrong_node_answer_not_coordinator() {
    let nodes = start_cluster(&[]);
    let clients = registered_clients(&nodes);
    // Groups' coordinators are the offsets partitions' leaders: pin them first.
    settle_internal_topic(&nodes, &clients, 0);
    settle_internal_topic(&nodes, &clients, 1);
    // The internal topics are the brokers': a client can neither create nor write one.
    for internal in ["__consumer_offsets", "__transaction_state"] {
        assert_eq!(
            try_create_topic_via(
                &nodes[0],
                &NewTopic::new(internal, 1, TopicReplication::Fixed(1))
            ),
            Err(RDKafkaErrorCode::InvalidTopic),
            "CreateTopics {internal}"
        );
        let written = try_produce_all(
            &producer(nodes[0].bootstrap(), &[]),
            internal,
            &[TestRecord::new("k", "v").partition(0)],
        );
        assert!(
            written[0]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("InvalidTopic")),
            "Produce to {internal}: {:?}",
            written[0]
        );
    }
    let topic = topic_name("coordinated");
    let partitions = 3;
    create_topic_via(&nodes[0], &topic, partitions);
    let records: Vec<TestRecord> = (0..partitions)
        .map(|p| TestRecord::new(format!("k{p}"), format!("v{p}")).partition(p))
        .collect();
    for delivery in produce_all(&producer(nodes[0].bootstrap(), &[]), &topic, &records) {
        assert_eq!(delivery.error, None, "delivery {delivery:?}");
    }

    // The checks of one round hold while the leaders stay put; an election under load can
    // move one in the middle, so a round that fails is run again (with a new group, after
    // the leaders settle) when the coordinators it looked up changed meanwhile. A broker
    // that answers wrongly fails every round.
    let mut attempt = 0;
    let (group, coordinator) = loop {
        match coordinator_round(&nodes, &topic, attempt) {
            Ok(found) => break found,
            Err(failure) if attempt < 2 => {
                eprintln!("round {attempt}: {failure}; settling and retrying");
                settle_internal_topic(&nodes, &clients, 0);
                settle_internal_topic(&nodes, &clients, 1);
                attempt += 1;
            }
            Err(failure) => panic!("{failure}"),
        }
    };

    // A consumer group bootstrapped on a node that does not coordinate it works: rdkafka
    // asks FindCoordinator and goes to the coordinator.
    let home = coordinator / 1000;
    let wrong = nodes
        .iter()
        .enumerate()
        .find(|(i, _)| *i as i32 + 1 != home)
        .map(|(_, node)| node)
        .expect("a node that is not the coordinator");
    let rdkafka_group = format!("{group}-rdkafka");
    let member = consumer(
        wrong.bootstrap(),
        &[
            ("group.id", &rdkafka_group),
            ("auto.offset.reset", "earliest"),
        ],
    );
    member.subscribe(&[&topic]).expect("subscribe");
    let consumed = consume_count(&member, records.len(), CLUSTER_TIMEOUT);
    assert_eq!(consumed.len(), records.len(), "the member reads everything");
    commit_each(&member, &topic, partitions, 1);
    assert_eq!(
        committed_each(&member, &topic, partitions),
        vec![Offset::Offset(1); partitions as usize],
        "offsets committed through the coordinator"
    );

    // ListGroups: each group on its coordinator's broker, nowhere else (the raw
    // ConsumerGroupHeartbeat above made `group` a consumer group on its coordinator). The
    // coordinator is looked up again: an election may have moved it since, and the raw
    // group (no member heartbeats any more, no offsets) then is listed nowhere.
    let listed_by = |name: &str| -> Vec<i32> {
        let mut brokers = Vec::new();
        for node in &nodes {
            for (broker, addr) in &node.ready_line().brokers {
                if listed_groups(addr).iter().any(|g| g == name) {
                    brokers.push(*broker);
                }
            }
        }
        brokers
    };
    let raw_listed = listed_by(&group);
    let now = find_coordinator(nodes[0].bootstrap(), &group, 0);
    assert!(
        raw_listed == vec![coordinator] || (now != coordinator && raw_listed.is_empty()),
        "brokers listing {group}: {raw_listed:?} (coordinator {coordinator}, now {now})"
    );
    wait_until(
        "the rdkafka group listed by its coordinator only",
        CLUSTER_TIMEOUT,
        || {
            listed_by(&rdkafka_group)
                == vec![find_coordinator(nodes[0].bootstrap(), &rdkafka_group, 0)]
        },
    );
    assert_eq!(nodes.len(), NODES);
}

/// Picks a group coordinated by another node than node 1 and checks that every node names
/// the same coordinators for it, and that the group and transaction requests sent to the
/// same shard of each node answer NOT_COORDINATOR exactly off the coordinator's node.
/// `Err` describes the first disagreement; the coordinators are looked up again at the end,
/// so a caller can tell a leader that moved from a wrong answer.
fn coordinator_round(
    nodes: &[Broker],
    topic: &str,
    attempt: usize,
) -> Result<(String, i32), String> {
    // A group whose coordinator is not node 1, so that node 1 is a wrong node to ask.
    let group = (0..)
        .map(|i| format!("{}-{attempt}-{i}", topic_name("group")))
        .find(|g| find_coordinator(nodes[0].bootstrap(), g, 0) / 1000 != 1)
        .expect("some group is coordinated elsewhere");
    let coordinator = find_coordinator(nodes[0].bootstrap(), &group, 0);
    let (home, shard) = (coordinator / 1000, (coordinator % 1000) as usize);
    // Groups follow their offsets partition's leader, transactional ids their
    // `__transaction_state` partition's: the same id may have two coordinators (the two
    // partitions may be led by different nodes), each the same everywhere.
    let txn_coordinator = find_coordinator(nodes[0].bootstrap(), &group, 1);
    for node in nodes {
        let named = (
            find_coordinator(node.bootstrap(), &group, 0),
            find_coordinator(node.bootstrap(), &group, 1),
        );
        if named != (coordinator, txn_coordinator) {
            return Err(format!(
                "{} names coordinators {named:?} of {group}, node 1 {:?}",
                node.bootstrap(),
                (coordinator, txn_coordinator)
            ));
        }
    }

    // Each other node's shard of the same index (the one a single node would pick) refuses.
    // Transactional ids hash to the same shard index as group ids, on their own node.
    let txn_home = txn_coordinator / 1000;
    assert_eq!(
        (txn_coordinator % 1000) as usize,
        shard,
        "one shard index for both"
    );
    let mut failures = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let node_id = i as i32 + 1;
        let addr = &node.ready_line().brokers[shard].1;
        for (api, error) in coordinator_answers(addr, &group, topic) {
            let api_home = if api == "InitProducerId" {
                txn_home
            } else {
                home
            };
            if (node_id == api_home) == (error == NOT_COORDINATOR) {
                failures.push(format!("{api} on node {node_id} ({addr}): error {error}"));
            }
        }
    }
    let now = (
        find_coordinator(nodes[0].bootstrap(), &group, 0),
        find_coordinator(nodes[0].bootstrap(), &group, 1),
    );
    match failures.first() {
        Some(failure) if now != (coordinator, txn_coordinator) => Err(format!(
            "{failure}; the coordinators moved from {:?} to {now:?}",
            (coordinator, txn_coordinator)
        )),
        Some(failure) => panic!("{failure} (coordinators unchanged: {now:?})"),
        None => Ok((group, coordinator)),
    }
}
