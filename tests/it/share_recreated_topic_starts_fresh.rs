//! A share group reads topic T; T is deleted and created again under the same name while a
//! share consumer stays subscribed. The new topic's records all reach the consumers (its
//! share state is keyed by topic id, and the deleted topic's state is dropped with it, so
//! offsets 0.. of the new topic are not skipped as already acknowledged), no share fetch
//! fails on the deleted topic's closed log, DescribeShareGroupOffsets shows the new topic's
//! start offset, and after kill -9 and a restart the new topic's state is what comes back.

use crate::common;
use crate::share_support;

use common::cli::{sluice, stdout};

/// The `sluice share-group describe` row of partition 0 of `topic`: start offset, log end
/// offset, lag and in-flight count.
fn described_partition_0(bootstrap: &str, group: &str, topic: &str) -> Vec<String> {
    let described = stdout(&sluice(&["share-group", "describe", group], bootstrap));
    let row: Vec<String> = described
        .lines()
        .map(|line| line.split('\t').collect::<Vec<&str>>())
        .find(|cells| cells.first() == Some(&topic) && cells.get(1) == Some(&"0"))
        .unwrap_or_else(|| panic!("no row for {topic}-0:\n{described}"))
        .iter()
        .skip(2)
        .map(|cell| (*cell).to_owned())
        .collect();
    row
}

fn assert_no_failed_fetches(broker: &common::Broker) {
    let stderr = broker.stderr();
    assert!(
        !stderr.contains("share fetch failed"),
        "share fetches failed:\n{stderr}"
    );
}

#[test]
fn share_recreated_topic_starts_fresh() {
    if !share_support::share_client_available() {
        return;
    }
    let mut broker = common::Broker::start();
    let state_file = tempfile::NamedTempFile::new().expect("state file");
    let state_path = state_file.path().to_str().expect("utf-8 path").to_owned();
    share_support::run_scenario("recreate-before", broker.bootstrap(), &[&state_path]);
    assert_no_failed_fetches(&broker);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).expect("read state"))
            .expect("state as JSON");
    let (topic, group) = (
        state["topic"].as_str().expect("topic"),
        state["group"].as_str().expect("group"),
    );
    // The new topic's five records are acknowledged; nothing of the deleted topic's ten.
    assert_eq!(
        described_partition_0(broker.bootstrap(), group, topic),
        ["5", "5", "0", "0"]
    );

    broker.kill();
    broker.restart();
    share_support::run_scenario("recreate-after", broker.bootstrap(), &[&state_path]);
    assert_no_failed_fetches(&broker);
    assert_eq!(
        described_partition_0(broker.bootstrap(), group, topic),
        ["10", "10", "0", "0"]
    );
}
