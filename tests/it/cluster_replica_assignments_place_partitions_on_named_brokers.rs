//! Manual replica assignments in a cluster (issue 17, third slice) name cluster broker ids,
//! `node * 1000 + shard`: CreateTopics and CreatePartitions accept every registered node's
//! brokers, refuse ids no node has (a single node's `0`, `1`, … included) with
//! INVALID_REPLICA_ASSIGNMENT, and put each partition on the node and shard of the first
//! broker its assignment lists, which every node's Metadata names as its leader; records
//! produced there are read back.

use rdkafka::admin::{AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::consumer::BaseConsumer;
use rdkafka::types::RDKafkaErrorCode;

use crate::cluster_support::{
    admin_client, registered_clients, start_cluster, try_create_topic_via, CLUSTER_TIMEOUT,
};
use crate::common::{
    assign, consume_count, consumer, produce_all, producer, topic_leaders, topic_name, wait_until,
    TestRecord,
};

fn leaders(client: &BaseConsumer, topic: &str) -> Vec<i32> {
    topic_leaders(client, topic)
        .map(|l| l.iter().map(|(_, leader)| *leader).collect())
        .unwrap_or_default()
}

#[test]
fn cluster_replica_assignments_place_partitions_on_named_brokers() {
    let nodes = start_cluster(&[]);
    let clients = registered_clients(&nodes);

    for refused in [1, 4000] {
        let name = topic_name("misplaced");
        let assignment: &[&[i32]] = &[&[refused]];
        let new_topic = NewTopic::new(&name, 1, TopicReplication::Variable(assignment));
        assert_eq!(
            try_create_topic_via(&nodes[0], &new_topic),
            Err(RDKafkaErrorCode::InvalidReplicaAssignment),
            "broker {refused} is no broker of the cluster"
        );
    }

    let topic = topic_name("placed");
    let assignment: &[&[i32]] = &[&[3001], &[1000], &[2001]];
    let new_topic = NewTopic::new(&topic, 3, TopicReplication::Variable(assignment));
    try_create_topic_via(&nodes[0], &new_topic).expect("CreateTopics with cluster brokers");
    let expected = vec![3001, 1000, 2001];
    wait_until(
        "every node to name the assigned leaders",
        CLUSTER_TIMEOUT,
        || clients.iter().all(|c| leaders(c, &topic) == expected),
    );

    // A fourth partition placed on node 2's shard 0 by CreatePartitions through node 3.
    let admin = admin_client(&nodes[2]);
    let options = AdminOptions::new().operation_timeout(Some(CLUSTER_TIMEOUT));
    let grown = NewPartitions::new(&topic, 4).assign(&[&[2000]]);
    let results = futures_lite::future::block_on(admin.create_partitions([&grown], &options))
        .expect("CreatePartitions request");
    assert!(
        matches!(&results[..], [Ok(_)]),
        "CreatePartitions: {results:?}"
    );
    let misplaced = NewPartitions::new(&topic, 5).assign(&[&[0]]);
    let results = futures_lite::future::block_on(admin.create_partitions([&misplaced], &options))
        .expect("CreatePartitions request");
    assert!(
        matches!(
            &results[..],
            [Err((_, RDKafkaErrorCode::InvalidReplicaAssignment))]
        ),
        "CreatePartitions on broker 0: {results:?}"
    );
    let expected = vec![3001, 1000, 2001, 2000];
    wait_until(
        "every node to name the new partition's leader",
        CLUSTER_TIMEOUT,
        || clients.iter().all(|c| leaders(c, &topic) == expected),
    );

    // The partitions are served where they were put: produced through node 1, read back
    // through node 2.
    let records: Vec<TestRecord> = (0..4)
        .map(|p| TestRecord::new(format!("k{p}"), format!("v{p}")).partition(p))
        .collect();
    for delivery in produce_all(&producer(nodes[0].bootstrap(), &[]), &topic, &records) {
        assert_eq!(delivery.error, None, "delivery {delivery:?}");
    }
    let reader = consumer(nodes[1].bootstrap(), &[]);
    assign(&reader, &topic, &[(0, 0), (1, 0), (2, 0), (3, 0)]);
    let consumed = consume_count(&reader, records.len(), CLUSTER_TIMEOUT);
    let mut read: Vec<(i32, Vec<u8>)> = consumed
        .iter()
        .map(|c| (c.partition, c.value.clone().unwrap_or_default()))
        .collect();
    read.sort();
    let written: Vec<(i32, Vec<u8>)> = (0..4).map(|p| (p, format!("v{p}").into_bytes())).collect();
    assert_eq!(read, written);
    // Each partition's directory is on its node alone.
    for (p, node) in [(0, 2), (1, 0), (2, 1), (3, 1)] {
        for (i, other) in nodes.iter().enumerate() {
            let dir = other.data_dir().join(format!("{topic}-{p}"));
            assert_eq!(dir.is_dir(), i == node, "{dir:?}");
        }
    }
}
