//! A node whose data dir is wiped rejoins and the cluster keeps RF=3 (issue 17, second
//! done-criterion), with three real nodes whose partition Raft logs compact after 64 KiB:
//! a topic of 4 partitions, replication factor 3, takes enough acknowledged records that
//! every leader compacted its Raft log past the start. A follower node is killed and its data
//! dir wiped; it restarts fenced, is removed and added again (`sluice cluster remove-node` /
//! `add-node`), and its replicas, starting from nothing, need entries no leader has any
//! more: each installs a snapshot, copying the batches from the leader's partition log.
//! Every partition's leader then reports both followers caught up, the wiped node's copy of
//! each partition holds the first and the last record, and with one of the two other nodes
//! killed the wiped node and the remaining one still acknowledge writes (they are a
//! majority) and serve every acknowledged record, once and in order.

use rdkafka::admin::{NewTopic, TopicReplication};

use crate::cluster_support::{
    agreed_leaders, cluster_addrs, cluster_cli, cluster_status, cluster_voters,
    consumed_by_partition, dir_contains, leads_with_followers_caught_up, metadata_leader,
    produce_until_acknowledged, records_by_partition, registered_clients, start_cluster,
    try_create_topic_via, wait_for_agreed_leaders, wipe, written_by_partition, CLUSTER_TIMEOUT,
    NODES,
};
use crate::common::{assign, consume_count, consumer, topic_name, wait_until, Broker};

const PARTITIONS: i32 = 4;
/// Enough records (of ~1 KiB) per partition that the Raft log grows past the compaction
/// threshold several times.
const PER_PARTITION: usize = 400;
const COMPACT_BYTES: &str = "65536";

#[test]
fn cluster_wiped_node_rejoins_its_replicated_partitions() {
    let mut nodes = start_cluster(&["--replica-log-compact-bytes", COMPACT_BYTES]);
    let addrs = cluster_addrs(&nodes);
    let clients = registered_clients(&nodes);
    let topic = topic_name("rejoin");
    try_create_topic_via(
        &nodes[0],
        &NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(3)),
    )
    .expect("create the replicated topic");
    let all = nodes
        .iter()
        .map(Broker::bootstrap)
        .collect::<Vec<_>>()
        .join(",");
    let before = padded(records_by_partition(
        "before-wipe",
        PARTITIONS,
        PER_PARTITION,
    ));
    produce_until_acknowledged(&all, &topic, &before);

    // The wiped node: one that leads neither the metadata group nor partition 0, so the
    // point is a follower that lost everything under running leaders.
    wait_until("a metadata leader", CLUSTER_TIMEOUT, || {
        metadata_leader(&addrs).is_some()
    });
    let meta_leader = metadata_leader(&addrs).expect("a leader");
    let leaders = wait_for_agreed_leaders(&clients, &topic, PARTITIONS);
    let p0_leader = u64::try_from(leaders[0] / 1000).expect("node id");
    let wiped = (1..=NODES as u64)
        .find(|n| *n != meta_leader && *n != p0_leader)
        .map(|n| usize::try_from(n - 1).expect("index"))
        .unwrap_or(NODES - 1);
    let wiped_id = (wiped + 1).to_string();
    let other = (0..NODES).find(|i| *i != wiped).expect("another node");
    eprintln!("node {wiped_id} will be wiped");

    nodes[wiped].kill();
    wipe(&nodes[wiped]);
    nodes[wiped].restart();
    // Fenced until it is removed and added again (the metadata group's rule for a member
    // that lost its log).
    let removed = cluster_cli(&["remove-node", &wiped_id], &addrs[other]);
    assert!(
        removed.status.success(),
        "remove-node: {}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let member = format!("{wiped_id}@{}", addrs[wiped]);
    let added = cluster_cli(&["add-node", &member], &addrs[other]);
    assert!(
        added.status.success(),
        "add-node: {}",
        String::from_utf8_lossy(&added.stderr)
    );
    wait_until("every node to count three voters", CLUSTER_TIMEOUT, || {
        addrs.iter().all(|a| cluster_voters(a).len() == NODES)
    });

    // The wiped node's copy of each partition holds its first and last record again (a
    // leader's status alone would not do: until its next append is refused, it still counts
    // what the node acknowledged before the wipe).
    let written = written_by_partition(&before);
    for (partition, values) in &written {
        let dir = nodes[wiped].data_dir().join(format!("{topic}-{partition}"));
        for value in [values.first(), values.last()].into_iter().flatten() {
            let deadline = std::time::Instant::now() + CLUSTER_TIMEOUT;
            while !dir_contains(&dir, value) {
                if std::time::Instant::now() > deadline {
                    let log = nodes[wiped].stderr();
                    panic!(
                        "the wiped node's copy of partition {partition} lacks {} after \
                         {CLUSTER_TIMEOUT:?}; its log ends:\n{}",
                        String::from_utf8_lossy(&value[..30]),
                        &log[log.len().saturating_sub(6000)..]
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
    // Every partition's leader has both followers, the wiped node included, caught up.
    let clients = registered_clients(&nodes);
    wait_until(
        "every partition's followers caught up, the wiped node's included",
        CLUSTER_TIMEOUT,
        || {
            agreed_leaders(&clients, &topic, PARTITIONS).is_some_and(|leaders| {
                leaders.iter().zip(0..).all(|(leader, p)| {
                    let node = u64::try_from(leader / 1000).expect("node id");
                    let index = usize::try_from(node - 1).expect("index");
                    cluster_status(&addrs[index])
                        .is_some_and(|s| leads_with_followers_caught_up(&s, &topic, p, node, 2))
                })
            })
        },
    );
    let log = nodes[wiped].stderr();
    assert!(
        log.contains("installing a snapshot"),
        "the wiped node caught up from snapshots (the leaders compacted their Raft logs):\n{}",
        &log[log.len().saturating_sub(3000)..]
    );

    // RF=3 kept: with another node down, the wiped node makes the majority.
    let down = (0..NODES).find(|i| *i != wiped).expect("a node to kill");
    nodes[down].kill();
    let survivors = (0..NODES)
        .filter(|i| *i != down)
        .map(|i| nodes[i].bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    let after = padded(records_by_partition("after-rejoin", PARTITIONS, 20));
    produce_until_acknowledged(&survivors, &topic, &after);
    let mut expected = written;
    for (partition, values) in written_by_partition(&after) {
        expected.entry(partition).or_default().extend(values);
    }
    let total: usize = expected.values().map(Vec::len).sum();
    let reader = consumer(&survivors, &[]);
    let starts: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    assign(&reader, &topic, &starts);
    let read = consumed_by_partition(&consume_count(&reader, total, CLUSTER_TIMEOUT));
    assert!(
        read == expected,
        "every acknowledged record, once and in order, from the wiped node and one other \
         ({} read, {total} acknowledged)",
        read.values().map(Vec::len).sum::<usize>()
    );
    nodes[wiped].assert_alive();
}

/// The records with ~1 KiB values, so a few hundred grow a Raft log past the threshold.
fn padded(records: Vec<crate::common::TestRecord>) -> Vec<crate::common::TestRecord> {
    records
        .into_iter()
        .map(|mut r| {
            if let Some(value) = r.value.as_mut() {
                value.resize(1024, b'.');
            }
            r
        })
        .collect()
}
