//! A transaction spans partitions on every node of a cluster (issue 17, fourth slice): a
//! transactional rdkafka producer bootstrapped on node 2 writes to partitions on all three
//! nodes and commits, and a read_committed consumer bootstrapped on node 3 sees every record;
//! a second transaction, aborted, is seen by none. The coordinator has each partition's node
//! write the marker (through the cluster port), and each partition's node asks the
//! coordinator's node whether a first transactional batch belongs to the transaction
//! (KIP-890). The transaction commits offsets of a group another node coordinates
//! (TxnOffsetCommit goes to the group's node, which stages them with the transaction's
//! node); the aborted one's offsets are dropped. A commit while a partition's node is down does not complete; once the node is
//! back the coordinator writes the rest of the markers and the retried commit succeeds.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use crate::cluster_support::{
    committed_each, create_topic_via, registered_clients, settle_internal_topic, start_cluster,
    CLUSTER_TIMEOUT, NODES,
};
use crate::common::{self, assign, topic_leaders, topic_name, Broker, TestProducer};
use crate::txn_support::{
    consume_to_end_markers, coordinator_id, send, transactional_producer, values_on,
    write_end_markers,
};

const PARTITIONS: i32 = 6;

/// The node (broker id / 1000) coordinating `key` (`key_type` 1: a transactional id, 0: a
/// group), as node 1 answers FindCoordinator.
fn coordinator_node(nodes: &[Broker], key: &str, key_type: i8) -> i32 {
    coordinator_id(&nodes[0], key, key_type) / 1000
}

/// Sends `what`'s records to every partition.
fn send_everywhere(producer: &TestProducer, topic: &str, what: &str) {
    for partition in 0..PARTITIONS {
        send(producer, topic, partition, &values(what, partition));
    }
}

fn values(what: &str, partition: i32) -> Vec<String> {
    (0..3).map(|i| format!("{what}-{partition}-{i}")).collect()
}

#[test]
fn cluster_transactions_span_partitions_on_every_node() {
    let mut nodes = start_cluster(&[]);
    let clients = registered_clients(&nodes);
    // Coordinators are internal partitions' leaders: pin them before picking ids by node.
    settle_internal_topic(&nodes, &clients, 0);
    settle_internal_topic(&nodes, &clients, 1);
    let topic = topic_name("txn-spread");
    create_topic_via(&nodes[0], &topic, PARTITIONS);
    common::wait_until("node 1 to know every partition", CLUSTER_TIMEOUT, || {
        topic_leaders(&clients[0], &topic).is_ok_and(|l| l.len() == PARTITIONS as usize)
    });
    let leaders = topic_leaders(&clients[0], &topic).expect("leaders");
    let on_node = |node: i32| -> Vec<i32> {
        let on = leaders.iter().filter(|(_, leader)| leader / 1000 == node);
        on.map(|(p, _)| *p).collect()
    };
    let used: BTreeSet<i32> = leaders.iter().map(|(_, leader)| leader / 1000).collect();
    assert_eq!(
        used.len(),
        NODES,
        "the partitions are on every node: {leaders:?}"
    );

    // A transactional id coordinated by node 1, so that node 3 can go down later without
    // taking the coordinator with it.
    let transactional_id = (0..)
        .map(|i| format!("{}-{i}", topic_name("spread-txn")))
        .find(|id| coordinator_node(&nodes, id, 1) == 1)
        .expect("some id hashes to node 1");
    let producer = transactional_producer(nodes[1].bootstrap(), &transactional_id);
    // A group coordinated by node 2: its offsets go with transactions node 1 coordinates.
    let group = (0..)
        .map(|i| format!("{}-{i}", topic_name("spread-group")))
        .find(|id| coordinator_node(&nodes, id, 0) == 2)
        .expect("some group hashes to node 2");
    // A member that never joins: generation -1, as a plain consumer's group metadata says.
    let member = common::consumer(nodes[2].bootstrap(), &[("group.id", &group)]);
    let metadata = member.group_metadata().expect("group metadata");
    let offsets_at = |offset: i64| {
        let mut offsets = TopicPartitionList::new();
        for partition in 0..PARTITIONS {
            offsets
                .add_partition_offset(&topic, partition, Offset::Offset(offset))
                .expect("offset");
        }
        offsets
    };

    // Committed across all three nodes, with offsets of a group another node coordinates.
    producer.begin_transaction().expect("begin");
    send_everywhere(&producer, &topic, "committed");
    producer
        .send_offsets_to_transaction(&offsets_at(3), &metadata, CLUSTER_TIMEOUT)
        .expect("TxnOffsetCommit to node 2 for a transaction of node 1");
    producer
        .commit_transaction(CLUSTER_TIMEOUT)
        .expect("a transaction over every node commits");

    // Aborted across all three nodes.
    producer.begin_transaction().expect("begin");
    send_everywhere(&producer, &topic, "aborted");
    producer
        .send_offsets_to_transaction(&offsets_at(6), &metadata, CLUSTER_TIMEOUT)
        .expect("TxnOffsetCommit of the transaction to abort");
    producer
        .abort_transaction(CLUSTER_TIMEOUT)
        .expect("a transaction over every node aborts");
    // The committed transaction's offsets, not the aborted one's, from every node's client
    // (OffsetFetch with require_stable: nothing is left pending).
    for (i, node) in nodes.iter().enumerate() {
        let checker = common::consumer(node.bootstrap(), &[("group.id", &group)]);
        assert_eq!(
            committed_each(&checker, &topic, PARTITIONS),
            vec![Offset::Offset(3); PARTITIONS as usize],
            "the group's offsets as node {} reads them",
            i + 1
        );
    }

    // A commit while node 3, which owns some of the partitions, is down cannot complete;
    // once node 3 is back, the coordinator writes the markers it missed.
    producer.begin_transaction().expect("begin");
    send_everywhere(&producer, &topic, "across-restart");
    nodes[2].kill();
    let while_down = producer.commit_transaction(Duration::from_secs(5));
    assert!(
        while_down.is_err(),
        "a commit cannot complete while node 3's partitions {:?} have no marker",
        on_node(3)
    );
    nodes[2].restart();
    producer
        .commit_transaction(CLUSTER_TIMEOUT)
        .expect("the retried commit completes once node 3 is back");
    write_end_markers(&producer, &topic, PARTITIONS);

    let starts: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let read_committed = common::consumer(
        nodes[2].bootstrap(),
        &[("isolation.level", "read_committed")],
    );
    assign(&read_committed, &topic, &starts);
    let seen = consume_to_end_markers(&read_committed, PARTITIONS);
    for partition in 0..PARTITIONS {
        let mut expected = values("committed", partition);
        expected.extend(values("across-restart", partition));
        assert_eq!(
            values_on(&seen, partition),
            expected,
            "read_committed sees the committed transactions on partition {partition} \
             and nothing of the aborted one"
        );
    }
}
