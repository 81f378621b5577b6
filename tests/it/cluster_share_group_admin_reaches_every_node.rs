//! Share-group administration in a cluster (issue 17): a share group's share-partitions
//! live with the leaders of their partitions, spread over the nodes, while the group's
//! coordinator is one node. With three nodes and a topic of three partitions (RF 3, leaders
//! on more than one node), a ShareConsumer accepts every record; `sluice share-group
//! describe` then lists every partition with its start offset, `delete-offsets` forgets the
//! topic's state on every node, and the group reads every record again. Kept to the
//! coordinator's node, describe would miss the partitions led elsewhere, and their records
//! would not come back.

use std::collections::BTreeSet;

use rdkafka::admin::{NewTopic, TopicReplication};

use crate::cluster_support::{
    produce_until_acknowledged, records_by_partition, registered_clients, settle_internal_topic,
    start_cluster, try_create_topic_via, wait_for_agreed_leaders,
};
use crate::common::cli::{sluice, stdout};
use crate::common::topic_name;
use crate::share_support;

const PARTITIONS: i32 = 3;
const PER_PARTITION: i64 = 10;

/// Runs the `admin-consume` scenario; its deliveries as (partition, offset), sorted.
fn consume_all(bootstrap: &str, topic: &str, group: &str) -> Vec<(i32, i64)> {
    let result = tempfile::NamedTempFile::new().expect("result file");
    let path = result.path().to_str().expect("utf-8 path");
    let count = (i64::from(PARTITIONS) * PER_PARTITION).to_string();
    share_support::run_scenario("admin-consume", bootstrap, &[topic, group, &count, path]);
    let text = std::fs::read_to_string(result.path()).expect("read deliveries");
    serde_json::from_str(&text).expect("deliveries as JSON")
}

fn every_record() -> Vec<(i32, i64)> {
    (0..PARTITIONS)
        .flat_map(|p| (0..PER_PARTITION).map(move |o| (p, o)))
        .collect()
}

/// The describe rows of `topic`: (partition, start offset).
fn starts(described: &str, topic: &str) -> Vec<(i32, i64)> {
    described
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            match cells.as_slice() {
                [t, p, start, ..] if *t == topic => Some((p.parse().ok()?, start.parse().ok()?)),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn cluster_share_group_admin_reaches_every_node() {
    if !share_support::share_client_available() {
        return;
    }
    let nodes = start_cluster(&[]);
    let clients = registered_clients(&nodes);
    let topic = topic_name("cluster-share-admin");
    try_create_topic_via(
        &nodes[0],
        &NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(3)),
    )
    .expect("create the replicated topic");
    let leaders = wait_for_agreed_leaders(&clients, &topic, PARTITIONS);
    let leader_nodes: BTreeSet<i32> = leaders.iter().map(|l| l / 1000).collect();
    assert!(leader_nodes.len() > 1, "leaders on one node: {leaders:?}");
    let per_partition = usize::try_from(PER_PARTITION).expect("small");
    let records = records_by_partition("share-admin", PARTITIONS, per_partition);
    let bootstrap = nodes[0].bootstrap().to_owned();
    produce_until_acknowledged(&bootstrap, &topic, &records);

    // The group's membership is its coordinator's alone: no coordinator may move meanwhile.
    settle_internal_topic(&nodes, &clients, 0);
    let group = topic_name("cluster-share-admin-group");
    assert_eq!(consume_all(&bootstrap, &topic, &group), every_record());
    let describe = ["share-group", "describe", &group];
    let described = stdout(&sluice(&describe, &bootstrap));
    let expected: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, PER_PARTITION)).collect();
    assert_eq!(starts(&described, &topic), expected, "{described}");

    let delete_offsets = ["share-group", "delete-offsets", &group, "--topic", &topic];
    stdout(&sluice(&delete_offsets, &bootstrap));
    let described = stdout(&sluice(&describe, &bootstrap));
    assert!(starts(&described, &topic).is_empty(), "{described}");
    assert_eq!(
        consume_all(&bootstrap, &topic, &group),
        every_record(),
        "every record again, from every partition's leader"
    );
}
