//! A fourth node joins a running three-node cluster (issue 17, fifth slice): started with the
//! cluster's `--peers` (the initial members) and its own `--cluster-addr`, it is not a member
//! and takes no part until `sluice cluster add-node` makes it a learner, which catches up and
//! is promoted. It then knows every topic, is listed as brokers, gets partitions of new topics
//! and serves them; a group's or transactional id's coordinator, its internal partition's
//! leader, is named alike by node 1 and node 4.
//! A restarted initial node follows the committed membership, not its `--peers`.

use std::collections::BTreeSet;

use rdkafka::consumer::BaseConsumer;

use crate::cluster_support::{
    broker_ids, cluster_addrs, cluster_cli, cluster_status, cluster_voters as voters,
    create_topic_via, find_coordinator, metadata_client, registered_clients, settle_internal_topic,
    start_cluster, topic_names, CLUSTER_TIMEOUT, SHARDS_PER_NODE,
};
use crate::common::{
    free_port_range, produce_all, producer, topic_leaders, topic_name, wait_until, Broker,
    BrokerOptions, TestRecord,
};

fn partition_nodes(client: &BaseConsumer, topic: &str) -> BTreeSet<i32> {
    topic_leaders(client, topic)
        .map(|l| l.iter().map(|(_, leader)| leader / 1000).collect())
        .unwrap_or_default()
}

#[test]
fn cluster_new_node_is_added_at_runtime_and_coordinators_stay() {
    let mut nodes = start_cluster(&[]);
    let addrs = cluster_addrs(&nodes);
    registered_clients(&nodes);
    let before = topic_name("before-join");
    create_topic_via(&nodes[0], &before, 3);

    let peers = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}@{a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let fourth_addr = format!("127.0.0.1:{}", free_port_range(1));
    let fourth = Broker::start_with(BrokerOptions {
        shards_count: SHARDS_PER_NODE,
        fixed_ports: true,
        extra_args: vec![
            "--node-id".into(),
            "4".into(),
            "--peers".into(),
            peers,
            "--cluster-addr".into(),
            fourth_addr.clone(),
        ],
        ..BrokerOptions::default()
    });

    // Not a member yet: the others do not count it, and it is not fenced (nothing to lose).
    wait_until("node 4 to answer its status", CLUSTER_TIMEOUT, || {
        cluster_status(&fourth_addr).is_some()
    });
    let status = cluster_status(&fourth_addr).expect("status");
    assert_eq!(status["fenced"], false, "{status}");
    assert_eq!(voters(&addrs[0]), BTreeSet::from([1, 2, 3]));

    let added = cluster_cli(&["add-node", &format!("4@{fourth_addr}")], &addrs[1]);
    assert!(
        added.status.success(),
        "add-node: {}",
        String::from_utf8_lossy(&added.stderr)
    );
    wait_until("every node to count four voters", CLUSTER_TIMEOUT, || {
        addrs
            .iter()
            .chain([&fourth_addr])
            .all(|a| voters(a) == BTreeSet::from([1, 2, 3, 4]))
    });

    // Node 4 knows the topic made before it joined and lists every node's brokers.
    let client = metadata_client(&fourth);
    wait_until("node 4 to know the earlier topic", CLUSTER_TIMEOUT, || {
        topic_names(&client).contains(&before)
    });
    let expected: BTreeSet<i32> = (1..=4)
        .flat_map(|n| (0..SHARDS_PER_NODE as i32).map(move |s| n * 1000 + s))
        .collect();
    wait_until(
        "node 1 and node 4 to list four nodes",
        CLUSTER_TIMEOUT,
        || broker_ids(&client) == expected && broker_ids(&metadata_client(&nodes[0])) == expected,
    );

    // A new topic's partitions go to node 4 too, and it serves them.
    let after = topic_name("after-join");
    create_topic_via(&fourth, &after, 8);
    wait_until("node 4 to know the new topic", CLUSTER_TIMEOUT, || {
        partition_nodes(&client, &after).len() == 4
    });
    let records: Vec<TestRecord> = (0..8)
        .map(|p| TestRecord::new(format!("k{p}"), format!("v{p}")).partition(p))
        .collect();
    produce_all(&producer(fourth.bootstrap(), &[]), &after, &records);

    // A group's or transactional id's coordinator is its internal partition's leader (the
    // internal topics, created now, may place replicas on node 4 too): once the leaders
    // settle, node 1 and node 4 name the same one.
    let clients = [metadata_client(&nodes[0]), metadata_client(&fourth)];
    for key_type in [0, 1] {
        settle_internal_topic(&nodes, &clients, key_type);
    }
    // Node 4 names the preferred leader of a partition it has no replica of; an election
    // under load can move a leader away for a moment (the hand-back returns it), so the two
    // views are compared until they agree.
    for key in ["orders", "payments", "g-1", "g-2", "txn-a", "txn-b"] {
        for key_type in [0, 1] {
            wait_until(
                &format!("node 1 and node 4 to name one coordinator of {key} ({key_type})"),
                CLUSTER_TIMEOUT,
                || {
                    find_coordinator(nodes[0].bootstrap(), key, key_type)
                        == find_coordinator(fourth.bootstrap(), key, key_type)
                },
            );
        }
    }

    // Node 1 restarts with its old --peers (three nodes) and follows the committed four.
    nodes[0].kill();
    nodes[0].restart();
    wait_until(
        "restarted node 1 to count four voters",
        CLUSTER_TIMEOUT,
        || voters(&addrs[0]) == BTreeSet::from([1, 2, 3, 4]),
    );
    for node in &mut nodes {
        node.assert_alive();
    }
}
