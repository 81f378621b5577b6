//! `sluice share-group list|describe|reset|delete-offsets|delete` against a share group
//! that confluent-kafka's ShareConsumer made progress in: start offset, lag and in-flight
//! records per partition; resets and deletion refused while a member is alive; a reset
//! after it left delivers the records again; a deleted group stays deleted across a
//! kill -9 while another group's state survives it. ListGroups is also checked through
//! the python AdminClient.

use crate::common;
use crate::share_support;

use std::collections::BTreeSet;
use std::path::Path;

use common::cli::{refused, sluice, stdout};
use common::{create_topic, produce_all, producer, topic_name, Broker, TestRecord, CLIENT_TIMEOUT};
use kafka_protocol::messages::ListGroupsRequest;
use kafka_protocol::protocol::StrBytes;
use sluice::client::{Cluster, ConnectionConfig};

const PARTITIONS_COUNT: i32 = 2;
/// Records per partition the first member accepts.
const FIRST_COUNT: i64 = 10;
/// Records per partition produced after it left.
const LATER_COUNT: i64 = 5;

fn produce_per_partition(bootstrap: &str, topic: &str, first: i64, count: i64) {
    let records: Vec<TestRecord> = (0..PARTITIONS_COUNT)
        .flat_map(|p| {
            (first..first + count)
                .map(move |i| TestRecord::new(format!("k{i}"), format!("v{i}")).partition(p))
        })
        .collect();
    produce_all(&producer(bootstrap, &[]), topic, &records);
}

/// Runs the `admin-consume` scenario and returns its deliveries as (partition, offset).
fn consume_all(bootstrap: &str, topic: &str, group: &str, count: i64) -> Vec<(i32, i64)> {
    let result = tempfile::NamedTempFile::new().expect("result file");
    let path = result.path().to_str().expect("utf-8 path");
    share_support::run_scenario(
        "admin-consume",
        bootstrap,
        &[topic, group, &count.to_string(), path],
    );
    let text = std::fs::read_to_string(result.path()).expect("read deliveries");
    serde_json::from_str(&text).expect("deliveries as JSON")
}

/// Every offset of `0..end` on every partition, once.
fn every_offset_below(end: i64) -> Vec<(i32, i64)> {
    (0..PARTITIONS_COUNT)
        .flat_map(|p| (0..end).map(move |o| (p, o)))
        .collect()
}

/// The describe rows of `topic`: (partition, start, log end, lag, in flight).
fn rows(described: &str, topic: &str) -> Vec<(i32, String, String, String, String)> {
    described
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            match cells.as_slice() {
                [t, p, start, end, lag, in_flight] if *t == topic => Some((
                    p.parse().ok()?,
                    start.to_string(),
                    end.to_string(),
                    lag.to_string(),
                    in_flight.to_string(),
                )),
                _ => None,
            }
        })
        .collect()
}

fn expect_rows(described: &str, topic: &str, start: i64, end: i64, in_flight: &str) {
    let expected: Vec<_> = (0..PARTITIONS_COUNT)
        .map(|p| {
            (
                p,
                start.to_string(),
                end.to_string(),
                (end - start).to_string(),
                in_flight.to_owned(),
            )
        })
        .collect();
    assert_eq!(rows(described, topic), expected, "{described}");
}

fn listed_share_groups(bootstrap: &str) -> BTreeSet<String> {
    stdout(&sluice(&["share-group", "list"], bootstrap))
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next().map(str::to_owned))
        .collect()
}

/// ListGroups (v5) on every broker with these state and type filters: the ids listed.
fn listed_with_filters(bootstrap: &str, states: &[&str], types: &[&str]) -> BTreeSet<String> {
    let names = |names: &[&str]| {
        names
            .iter()
            .map(|n| StrBytes::from_string(n.to_string()))
            .collect()
    };
    let request = ListGroupsRequest::default()
        .with_states_filter(names(states))
        .with_types_filter(names(types));
    let mut cluster = Cluster::connect(bootstrap, ConnectionConfig::default()).expect("connect");
    cluster
        .refresh_metadata(Some(&[]), false)
        .expect("metadata");
    let node_ids: Vec<i32> = cluster.brokers().map(|b| b.node_id).collect();
    let mut listed = BTreeSet::new();
    for node_id in node_ids {
        let connection = cluster.broker_connection(node_id).expect("connection");
        let (response, version) = connection.send(&request).expect("ListGroups");
        assert_eq!(version, 5, "the filters need ListGroups v5");
        listed.extend(response.groups.iter().map(|g| g.group_id.0.to_string()));
    }
    listed
}

fn wait_for_file(path: &Path) {
    common::wait_until("the share member to hold records", CLIENT_TIMEOUT, || {
        path.exists()
    });
}

#[test]
fn share_group_cli_describes_resets_and_deletes() {
    if !share_support::share_client_available() {
        return;
    }
    let mut broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("share-admin");
    let group = topic_name("share-admin-group");
    create_topic(&bootstrap, &topic, PARTITIONS_COUNT);
    produce_per_partition(&bootstrap, &topic, 0, FIRST_COUNT);

    // Progress: the first member accepts everything, then leaves.
    let first = consume_all(&bootstrap, &topic, &group, FIRST_COUNT * 2);
    assert_eq!(first, every_offset_below(FIRST_COUNT));
    produce_per_partition(&bootstrap, &topic, FIRST_COUNT, LATER_COUNT);
    let end = FIRST_COUNT + LATER_COUNT;

    assert!(listed_share_groups(&bootstrap).contains(&group));
    let groups = stdout(&sluice(&["group", "list"], &bootstrap));
    assert!(
        groups
            .lines()
            .any(|l| l.starts_with(&format!("{group}\tshare\tEmpty\t"))),
        "ListGroups v5 gives type share:\n{groups}"
    );
    share_support::run_scenario("admin-list", &bootstrap, &[&group]);
    for (states, types, listed) in [
        (&["empty"][..], &["SHARE"][..], true),
        (&["Stable"][..], &[][..], false),
        (&[][..], &["consumer", "classic"][..], false),
    ] {
        assert_eq!(
            listed_with_filters(&bootstrap, states, types).contains(&group),
            listed,
            "states {states:?}, types {types:?}"
        );
    }
    // DescribeGroups is for classic groups: Kafka answers GROUP_ID_NOT_FOUND, shown as Dead.
    let classic = stdout(&sluice(&["group", "describe", &group], &bootstrap));
    assert!(classic.contains("State: Dead"), "{classic}");
    let described = stdout(&sluice(&["share-group", "describe", &group], &bootstrap));
    assert!(described.contains("State: Empty"), "{described}");
    expect_rows(&described, &topic, FIRST_COUNT, end, "0");

    // A live member holding records: resets and deletion are refused.
    let dir = tempfile::tempdir().expect("temp dir");
    let (ready, stop) = (dir.path().join("ready"), dir.path().join("stop"));
    let holder = share_support::spawn_scenario(
        "admin-hold",
        &bootstrap,
        &[
            &topic,
            &group,
            ready.to_str().expect("utf-8 path"),
            stop.to_str().expect("utf-8 path"),
        ],
    );
    wait_for_file(&ready);
    let described = stdout(&sluice(&["share-group", "describe", &group], &bootstrap));
    assert!(described.contains("Members: 1"), "{described}");
    let held: usize = rows(&described, &topic)
        .iter()
        .map(|(_, start, _, _, in_flight)| {
            assert_eq!(start, &FIRST_COUNT.to_string(), "{described}");
            in_flight.parse::<usize>().unwrap_or(0)
        })
        .sum();
    assert!(held >= 1, "the held records are in flight:\n{described}");
    let reset = ["share-group", "reset", &group, "--to-earliest"];
    assert!(refused(&reset, &bootstrap).contains("has active members"));
    let delete = ["share-group", "delete", &group];
    assert!(refused(&delete, &bootstrap).contains("has active members"));
    std::fs::write(&stop, b"").expect("write stop file");
    holder.finish();

    // Once it left, a reset moves the start offsets and everything is delivered again.
    common::wait_until("the share group to empty", CLIENT_TIMEOUT, || {
        stdout(&sluice(&["share-group", "describe", &group], &bootstrap)).contains("State: Empty")
    });
    let reset_out = stdout(&sluice(&reset, &bootstrap));
    for p in 0..PARTITIONS_COUNT {
        assert!(
            reset_out.contains(&format!("{topic}\t{p}\t0\n")),
            "{reset_out}"
        );
    }
    let described = stdout(&sluice(&["share-group", "describe", &group], &bootstrap));
    expect_rows(&described, &topic, 0, end, "0");
    let again = consume_all(&bootstrap, &topic, &group, end * 2);
    assert_eq!(again, every_offset_below(end), "every record once more");

    let to_offset = [
        "share-group",
        "reset",
        &group,
        "--topic",
        &topic,
        "--to-offset",
        "12",
    ];
    stdout(&sluice(&to_offset, &bootstrap));
    let described = stdout(&sluice(&["share-group", "describe", &group], &bootstrap));
    expect_rows(&described, &topic, 12, end, "0");

    // Readable refusals of bad input.
    let missing = topic_name("no-such-group");
    assert!(refused(&["share-group", "describe", &missing], &bootstrap).contains("does not exist"));
    let no_topic = topic_name("no-such-topic");
    let stderr = refused(
        &[
            "share-group",
            "reset",
            &group,
            "--topic",
            &no_topic,
            "--to-latest",
        ],
        &bootstrap,
    );
    assert!(
        stderr.contains(&no_topic) && stderr.contains("does not exist"),
        "{stderr}"
    );

    // Another group with state, then the deletion of the first (which still has state);
    // after a kill -9 only the other one is back, with its start offsets.
    let kept = topic_name("share-admin-kept");
    assert_eq!(
        consume_all(&bootstrap, &topic, &kept, end * 2),
        every_offset_below(end)
    );
    stdout(&sluice(&delete, &bootstrap));
    let listed = listed_share_groups(&bootstrap);
    assert!(
        !listed.contains(&group) && listed.contains(&kept),
        "{listed:?}"
    );
    broker.kill();
    broker.restart();
    let bootstrap = broker.bootstrap().to_owned();
    let listed = listed_share_groups(&bootstrap);
    assert!(
        !listed.contains(&group),
        "deleted group came back: {listed:?}"
    );
    assert!(
        listed.contains(&kept),
        "the kept group is known after a restart: {listed:?}"
    );
    assert!(refused(&["share-group", "describe", &group], &bootstrap).contains("does not exist"));
    let described = stdout(&sluice(&["share-group", "describe", &kept], &bootstrap));
    expect_rows(&described, &topic, end, end, "0");

    // DeleteShareGroupOffsets forgets the topic's state; a second time there is none.
    let delete_offsets = ["share-group", "delete-offsets", &kept, "--topic", &topic];
    stdout(&sluice(&delete_offsets, &bootstrap));
    let described = stdout(&sluice(&["share-group", "describe", &kept], &bootstrap));
    assert!(rows(&described, &topic).is_empty(), "{described}");
    assert!(refused(&delete_offsets, &bootstrap).contains("no offset information"));
}
