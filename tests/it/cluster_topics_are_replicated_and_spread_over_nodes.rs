//! Three sluice nodes with `--peers` share one replicated catalog (issue 17, second slice):
//! a topic created through node 1 is known to node 3 with its partitions spread over all
//! three nodes; an rdkafka producer that only knows node 1 writes to every partition and a
//! consumer that only knows node 2 reads every record back (each partition lives on one node;
//! the clients follow Metadata and NOT_LEADER_OR_FOLLOWER to it); a consumer group member
//! on node 3 commits offsets that every node's clients read back (one coordinator per group
//! across the cluster); a topic created while a node is down is known to that node once it
//! restarts.

use std::collections::BTreeSet;
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Offset;

use crate::cluster_support::{
    commit_each, committed_each, create_topic_via, metadata_client, registered_clients,
    start_cluster, CLUSTER_TIMEOUT, NODES,
};
use crate::common::{
    assign, consume_count, consumer, produce_all, producer, topic_leaders, topic_name, wait_until,
    TestRecord,
};

/// The node (broker id / 1000) leading each partition, as `client`'s node reports it.
fn partition_nodes(client: &BaseConsumer, topic: &str) -> Option<Vec<i32>> {
    let leaders = topic_leaders(client, topic).ok()?;
    Some(leaders.iter().map(|(_, leader)| leader / 1000).collect())
}

#[test]
fn cluster_topics_are_replicated_and_spread_over_nodes() {
    let started = Instant::now();
    let mut nodes = start_cluster(&[]);

    // Every node registers its listeners through Raft; each node's Metadata lists all of them.
    let clients = registered_clients(&nodes);
    eprintln!(
        "all {NODES} nodes registered and listed everywhere {:?} after the first start",
        started.elapsed()
    );

    // A topic created through node 1 is known to node 3, spread over all three nodes.
    let topic = topic_name("spread");
    let partitions = 6;
    create_topic_via(&nodes[0], &topic, partitions);
    let created = Instant::now();
    wait_until("node 3 to know the new topic", CLUSTER_TIMEOUT, || {
        partition_nodes(&clients[2], &topic).is_some_and(|n| n.len() == partitions as usize)
    });
    eprintln!(
        "topic visible from node 3 {:?} after CreateTopics answered on node 1",
        created.elapsed()
    );
    let placed = partition_nodes(&clients[2], &topic).expect("placement");
    let used: BTreeSet<i32> = placed.iter().copied().collect();
    assert_eq!(
        used,
        (1..=NODES as i32).collect(),
        "partitions are spread over every node: {placed:?}"
    );
    // Node 2 may apply the metadata record after node 3 did: wait for it, then compare.
    for client in &clients {
        wait_until("every node to know the new topic", CLUSTER_TIMEOUT, || {
            partition_nodes(client, &topic).is_some()
        });
        assert_eq!(
            partition_nodes(client, &topic).as_ref(),
            Some(&placed),
            "every node reports the same placement"
        );
    }

    // A producer that only knows node 1 writes to every partition; a consumer that only
    // knows node 2 reads every record back.
    let records: Vec<TestRecord> = (0..partitions)
        .flat_map(|p| {
            (0..5).map(move |i| {
                TestRecord::new(format!("k{p}-{i}"), format!("v{p}-{i}")).partition(p)
            })
        })
        .collect();
    let writer = producer(nodes[0].bootstrap(), &[]);
    let deliveries = produce_all(&writer, &topic, &records);
    for delivery in &deliveries {
        assert_eq!(delivery.error, None, "delivery {delivery:?}");
    }
    let reader = consumer(nodes[1].bootstrap(), &[]);
    let starts: Vec<(i32, i64)> = (0..partitions).map(|p| (p, 0)).collect();
    assign(&reader, &topic, &starts);
    let consumed = consume_count(&reader, records.len(), CLUSTER_TIMEOUT);
    let read: BTreeSet<(i32, Vec<u8>)> = consumed
        .iter()
        .map(|c| (c.partition, c.value.clone().unwrap_or_default()))
        .collect();
    let written: BTreeSet<(i32, Vec<u8>)> = records
        .iter()
        .map(|r| {
            (
                r.partition.unwrap_or(-1),
                r.value.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(consumed.len(), records.len(), "no record twice");
    assert_eq!(
        read, written,
        "every record is read back from its partition"
    );

    // A consumer group works across nodes: every node names the same coordinator, so a
    // member bootstrapped on node 3 commits offsets that a client of node 1 reads back.
    let group = topic_name("cluster-group");
    let member = consumer(
        nodes[2].bootstrap(),
        &[("group.id", &group), ("auto.offset.reset", "earliest")],
    );
    member.subscribe(&[&topic]).expect("subscribe");
    let joined = consume_count(&member, records.len(), CLUSTER_TIMEOUT);
    assert_eq!(
        joined.len(),
        records.len(),
        "the group member reads everything"
    );
    // The helper's consumers store no offsets themselves: commit the end of each partition.
    commit_each(&member, &topic, partitions, 5);
    // A fresh client of each node asks that node first: all of them must find the offsets.
    for (i, node) in nodes.iter().enumerate() {
        let checker = consumer(node.bootstrap(), &[("group.id", &group)]);
        assert_eq!(
            committed_each(&checker, &topic, partitions),
            vec![Offset::Offset(5); partitions as usize],
            "offsets committed through node 3, read through node {}",
            i + 1
        );
    }

    // Node 3 is down while a topic is created; after a restart it knows the topic.
    nodes[2].kill();
    let later = topic_name("while-down");
    create_topic_via(&nodes[0], &later, 3);
    nodes[2].restart();
    let restarted = Instant::now();
    let client = metadata_client(&nodes[2]);
    wait_until(
        "the restarted node to know the topic created while it was down",
        CLUSTER_TIMEOUT,
        || partition_nodes(&client, &later).is_some_and(|n| n.len() == 3),
    );
    eprintln!(
        "restarted node knew the new topic {:?} after its ready line",
        restarted.elapsed()
    );
    let catalog = std::fs::read_to_string(nodes[2].data_dir().join("catalog.toml"))
        .expect("node 3's catalog file");
    assert!(
        catalog.contains(&later),
        "node 3 persisted the topic it missed"
    );
}
