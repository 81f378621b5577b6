//! Three sluice processes with `--peers` form one metadata Raft group (issue 17, first slice):
//! they agree on a leader; after `kill -9` of the leader the other two elect a new one; the
//! killed node restarts from its data dir and catches up with the log the others committed
//! meanwhile. A node without `--peers` creates no Raft state at all.

use std::time::Duration;

use serde_json::Value;

use crate::common::{free_port_range, wait_until, Broker, BrokerOptions};

/// Generous: elections take about a second; a loaded CI host may take far longer.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// `sluice cluster status` of the node whose cluster port is `addr`, or None if unreachable.
fn status(addr: &str) -> Option<Value> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["cluster", "status", "--node", addr])
        .output()
        .expect("run sluice cluster status");
    if !output.status.success() {
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}

/// The leader every node in `addrs` names, if they all name the same one.
fn agreed_leader(addrs: &[&str]) -> Option<u64> {
    let leaders: Vec<Option<u64>> = addrs
        .iter()
        .map(|addr| status(addr).and_then(|s| s["leader"].as_u64()))
        .collect();
    let first = leaders[0]?;
    leaders.iter().all(|l| *l == Some(first)).then_some(first)
}

fn applied_index(addr: &str) -> u64 {
    status(addr)
        .and_then(|s| s["applied_index"].as_u64())
        .unwrap_or(0)
}

#[test]
fn cluster_metadata_raft_fails_over_and_catches_up() {
    let base = free_port_range(3);
    let addrs: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", base + i)).collect();
    let peers = (0..3)
        .map(|i| format!("{}@{}", i + 1, addrs[i]))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<Broker> = (0..3)
        .map(|i| {
            Broker::start_with(BrokerOptions {
                fixed_ports: true,
                extra_args: vec![
                    "--node-id".into(),
                    (i + 1).to_string(),
                    "--peers".into(),
                    peers.clone(),
                ],
                ..BrokerOptions::default()
            })
        })
        .collect();
    let all: Vec<&str> = addrs.iter().map(String::as_str).collect();

    wait_until("three nodes to agree on a leader", ELECTION_TIMEOUT, || {
        agreed_leader(&all).is_some()
    });
    let leader = agreed_leader(&all).expect("a leader");
    let first = status(all[0]).expect("status");
    assert_eq!(
        first["nodes"].as_object().map(|n| n.len()),
        Some(3),
        "every node is a voter: {first}"
    );
    let term_before = first["term"].as_u64().expect("term");

    // kill -9 the leader: the other two elect a new leader in a later term.
    let leader_index = usize::try_from(leader - 1).expect("node ids are 1..=3");
    nodes[leader_index].kill();
    let survivors: Vec<&str> = (0..3)
        .filter(|i| *i != leader_index)
        .map(|i| all[i])
        .collect();
    wait_until(
        "the survivors to elect a new leader",
        ELECTION_TIMEOUT,
        || agreed_leader(&survivors).is_some_and(|l| l != leader),
    );
    let after = status(survivors[0]).expect("status");
    assert!(
        after["term"].as_u64().expect("term") > term_before,
        "a new leader means a new term: {after}"
    );
    // The new leader's first entry (a blank one) is committed by the two survivors.
    let committed = applied_index(survivors[0]);
    assert!(committed > 0, "the survivors commit: {after}");

    // The killed node restarts from its data dir, follows the new leader and catches up.
    nodes[leader_index].restart();
    wait_until("the restarted node to catch up", ELECTION_TIMEOUT, || {
        agreed_leader(&all).is_some() && applied_index(all[leader_index]) >= committed
    });
}

#[test]
fn single_node_without_peers_has_no_raft_state() {
    let broker = Broker::start();
    assert!(
        !broker.data_dir().join("raft").exists(),
        "a single node keeps today's data dir layout"
    );
}
