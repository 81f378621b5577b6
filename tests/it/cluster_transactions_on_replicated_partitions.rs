//! Transactions on replicated partitions (issue 17): with three real nodes and a topic of 3
//! partitions, replication factor 3, a transactional rdkafka producer commits a transaction
//! over every partition, aborts a second, and commits a third after the node leading
//! partition 0 is killed with SIGKILL. That node is also the transaction's coordinator:
//! transaction state is a replicated partition of `__transaction_state`, so another node
//! takes the transactional id over with its producer id, epoch and ended transactions.
//! Markers are entries of each partition's Raft group, so every replica stores them at the
//! same offsets: a read_committed consumer on a survivor sees the two committed
//! transactions and nothing of the aborted one, and, once the killed node is back and leads
//! partition 0 again (the preferred leader takes it back), so does a read_committed
//! consumer reading that node's copy. A marker kept on one replica only would leave the
//! aborted records visible there, or shift the offsets of what follows.

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::producer::Producer;

use crate::cluster_support::{
    agreed_leaders, registered_clients, settle_internal_topic, start_cluster, try_create_topic_via,
    wait_for_agreed_leaders, CLUSTER_TIMEOUT,
};
use crate::common::{self, assign, topic_name, wait_until, Broker, TestProducer};
use crate::txn_support::{
    consume_to_end_markers, coordinator_id, send, transactional_producer, values_on,
    write_end_markers,
};

const PARTITIONS: i32 = 3;

fn values(what: &str, partition: i32) -> Vec<String> {
    (0..3).map(|i| format!("{what}-{partition}-{i}")).collect()
}

fn send_everywhere(producer: &TestProducer, topic: &str, what: &str) {
    for partition in 0..PARTITIONS {
        send(producer, topic, partition, &values(what, partition));
    }
}

/// What read_committed sees of every partition, reading through `node`.
fn read_committed_through(node: &Broker, topic: &str) -> Vec<Vec<String>> {
    let reader = common::consumer(node.bootstrap(), &[("isolation.level", "read_committed")]);
    let starts: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    assign(&reader, topic, &starts);
    let seen = consume_to_end_markers(&reader, PARTITIONS);
    (0..PARTITIONS).map(|p| values_on(&seen, p)).collect()
}

#[test]
fn cluster_transactions_on_replicated_partitions() {
    let mut nodes = start_cluster(&[]);
    let clients = registered_clients(&nodes);
    let topic = topic_name("replicated-txn");
    try_create_topic_via(
        &nodes[0],
        &NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(3)),
    )
    .expect("create the replicated topic");
    let leaders = wait_for_agreed_leaders(&clients, &topic, PARTITIONS);
    let victim_node = leaders[0] / 1000;
    let victim = usize::try_from(victim_node - 1).expect("node index");

    // A transactional id coordinated by the node to be killed (leaders settled first, so
    // the coordinator stays there until the kill).
    settle_internal_topic(&nodes, &clients, 1);
    let transactional_id = (0..)
        .map(|i| format!("{}-{i}", topic_name("rtxn")))
        .find(|id| coordinator_id(&nodes[0], id, 1) / 1000 == victim_node)
        .expect("some id is coordinated by partition 0's leader");
    let survivor = (0..nodes.len())
        .find(|i| *i != victim)
        .expect("another node");
    let producer = transactional_producer(nodes[survivor].bootstrap(), &transactional_id);

    producer.begin_transaction().expect("begin");
    send_everywhere(&producer, &topic, "committed");
    producer
        .commit_transaction(CLUSTER_TIMEOUT)
        .expect("a transaction over replicated partitions commits");

    producer.begin_transaction().expect("begin");
    send_everywhere(&producer, &topic, "aborted");
    producer
        .abort_transaction(CLUSTER_TIMEOUT)
        .expect("a transaction over replicated partitions aborts");

    // The leader of partition 0, coordinator of the transaction, dies: the next transaction
    // runs with a new coordinator, and its marker goes to partition 0's new leader.
    nodes[victim].kill();
    producer.begin_transaction().expect("begin");
    send_everywhere(&producer, &topic, "after-kill");
    producer
        .commit_transaction(CLUSTER_TIMEOUT)
        .expect("a transaction commits with its first coordinator and partition 0's leader dead");
    write_end_markers(&producer, &topic, PARTITIONS);

    let expected: Vec<Vec<String>> = (0..PARTITIONS)
        .map(|p| {
            let mut all = values("committed", p);
            all.extend(values("after-kill", p));
            all
        })
        .collect();
    assert_eq!(
        read_committed_through(&nodes[survivor], &topic),
        expected,
        "read_committed on the survivors: both committed transactions, nothing aborted"
    );

    // The killed node comes back, catches up and leads partition 0 again: its copy holds
    // the same markers at the same offsets.
    nodes[victim].restart();
    let clients = registered_clients(&nodes);
    wait_until(
        "the killed node to lead partition 0 again",
        CLUSTER_TIMEOUT,
        || agreed_leaders(&clients, &topic, PARTITIONS).is_some_and(|now| now[0] == leaders[0]),
    );
    assert_eq!(
        read_committed_through(&nodes[victim], &topic),
        expected,
        "read_committed on the killed node's copy, once it leads again"
    );
}
