//! A share-group member that stops heartbeating is removed from the group once the share
//! session timeout (`--share-session-timeout-ms`) passes: ShareGroupDescribe no longer lists
//! it, while a member that keeps heartbeating stays. Its share sessions go too, on every
//! shard, also on those that do not coordinate the group: its next ShareFetch there gets
//! SHARE_SESSION_NOT_FOUND.

use crate::common;
use crate::share_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::BrokerOptions;
use share_support::share_protocol::{
    cluster, describe, join_on_coordinator, FetchPart, ShareMember, NONE, SHARE_SESSION_NOT_FOUND,
};

const PARTITIONS_COUNT: i32 = 4;
/// The share session timeout. Long enough that the member that keeps heartbeating (every
/// 200 ms) survives a stall of several seconds on a loaded CI machine, short enough that
/// the silent member's expiry is seen quickly.
const SESSION_TIMEOUT_MS: &str = "5000";
/// Generous: only turns a hang into a failure.
const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn share_silent_member_expires_with_its_sessions() {
    let broker = common::Broker::start_with(BrokerOptions {
        extra_args: vec![
            "--share-session-timeout-ms".into(),
            SESSION_TIMEOUT_MS.into(),
            "--share-heartbeat-interval-ms".into(),
            "200".into(),
        ],
        ..BrokerOptions::default()
    });
    let topic = common::topic_name("share-expiry");
    common::create_topic(broker.bootstrap(), &topic, PARTITIONS_COUNT);
    let mut cluster = cluster(broker.bootstrap());
    let metadata = cluster.topic(&topic).expect("topic metadata");
    // The partitions of each shard, so the silent member has a session on every shard.
    let mut by_leader: BTreeMap<i32, Vec<FetchPart>> = BTreeMap::new();
    for p in &metadata.partitions {
        by_leader
            .entry(p.leader_id)
            .or_default()
            .push(FetchPart::new(metadata.topic_id, p.partition));
    }
    assert_eq!(
        by_leader.len(),
        2,
        "both shards lead a partition: {by_leader:?}"
    );

    let group = common::topic_name("expiry");
    let silent = ShareMember::new(&group, "member-silent");
    let alive = ShareMember::new(&group, "member-alive");

    // The silent member opens a share session on each shard and uses it once, before it
    // joins: however slow the machine, its sessions exist before it can expire.
    let mut next_epochs: BTreeMap<i32, i32> = BTreeMap::new();
    for (leader, parts) in &by_leader {
        let connection = cluster
            .broker_connection(*leader)
            .expect("leader connection");
        for epoch in [0, 1] {
            let response = silent.fetch(connection, epoch, parts, 0);
            assert_eq!(response.error_code, NONE, "leader {leader}: {response:?}");
        }
        next_epochs.insert(*leader, 2);
    }
    let (coordinator, joined) = join_on_coordinator(&mut cluster, &silent, &[&topic]);
    assert!(joined.assignment.is_some(), "{joined:?}");
    let (_, joined) = join_on_coordinator(&mut cluster, &alive, &[&topic]);
    let mut alive_epoch = joined.member_epoch;

    // From now on only `alive` heartbeats; `silent` must disappear from the group.
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < DEADLINE,
            "the silent member was never removed"
        );
        let connection = cluster.broker_connection(coordinator).expect("coordinator");
        let response = alive.heartbeat(connection, alive_epoch, &[]);
        assert_eq!(response.error_code, NONE, "alive member: {response:?}");
        alive_epoch = response.member_epoch;
        let described = describe(connection, &group);
        assert_eq!(described.error_code, NONE, "{described:?}");
        let members: Vec<String> = described
            .members
            .iter()
            .map(|m| m.member_id.to_string())
            .collect();
        assert!(members.contains(&alive.member_id), "{members:?}");
        if !members.contains(&silent.member_id) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // Its sessions are dropped on every shard. Dropping them on the other shard is a
    // message away, so a fetch may still find the session once or twice; each success
    // moves the epoch on.
    for (leader, parts) in &by_leader {
        let connection = cluster
            .broker_connection(*leader)
            .expect("leader connection");
        let mut epoch = next_epochs[leader];
        let start = Instant::now();
        loop {
            assert!(
                start.elapsed() < DEADLINE,
                "leader {leader} kept the silent member's session"
            );
            let response = silent.fetch(connection, epoch, parts, 0);
            match response.error_code {
                SHARE_SESSION_NOT_FOUND => break,
                NONE => epoch += 1,
                other => panic!("leader {leader}: unexpected error {other}: {response:?}"),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
