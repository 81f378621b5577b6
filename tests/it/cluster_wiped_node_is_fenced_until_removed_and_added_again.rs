//! A node that loses its whole data dir, `raft/` included, while the cluster runs (issue 17,
//! fifth slice): the metadata leader keeps running (before, its openraft stopped the process
//! on a follower whose log went backwards); the wiped node refuses to take part ("fenced")
//! instead of voting and acknowledging with an empty log. `sluice cluster remove-node`
//! (through a follower, which passes it to the leader) takes it out; with two voters left,
//! topics are still created and produced to, and a removal that would leave too few voters
//! answering is refused; `sluice cluster add-node` adds it back as a learner, which catches
//! up and is promoted: it knows every topic and is registered again.

use std::time::Instant;

use rdkafka::admin::{NewTopic, TopicReplication};

use crate::cluster_support::{
    all_broker_ids, broker_ids, cluster_addrs, cluster_cli, cluster_status, cluster_voters,
    create_topic_via, metadata_client, metadata_leader, registered_clients, start_cluster,
    topic_names, try_create_topic_via, wipe, CLUSTER_TIMEOUT, NODES,
};
use crate::common::{produce_all, producer, topic_name, wait_until, TestRecord};

fn field(status: &Option<serde_json::Value>, name: &str) -> serde_json::Value {
    status
        .as_ref()
        .map_or(serde_json::Value::Null, |s| s[name].clone())
}

fn stdout_of(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "sluice cluster failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn cluster_wiped_node_is_fenced_until_removed_and_added_again() {
    let mut nodes = start_cluster(&[]);
    let addrs = cluster_addrs(&nodes);
    registered_clients(&nodes);
    let before = topic_name("before-wipe");
    create_topic_via(&nodes[0], &before, 3);

    wait_until("a metadata leader", CLUSTER_TIMEOUT, || {
        metadata_leader(&addrs).is_some()
    });
    let leader_id = metadata_leader(&addrs).expect("a leader");
    let leader = usize::try_from(leader_id - 1).expect("ids are 1..=3");
    // Node 3 unless it leads: the point is a wiped follower under a running leader.
    let wiped = if leader == 2 { 1 } else { 2 };
    let other = (0..NODES)
        .find(|i| *i != leader && *i != wiped)
        .expect("a third node");
    let wiped_id = (wiped + 1).to_string();

    nodes[wiped].kill();
    wipe(&nodes[wiped]);
    nodes[wiped].restart();
    let restarted = Instant::now();

    // The leader reaches the wiped node (it replicates to every voter): the wiped node refuses,
    // or, as before this slice, the leader's process goes down on the log that went backwards.
    wait_until(
        "the leader to have tried the wiped node",
        CLUSTER_TIMEOUT,
        || {
            let reached = field(&cluster_status(&addrs[wiped]), "refused")
                .as_u64()
                .is_some_and(|n| n > 0);
            reached || cluster_status(&addrs[leader]).is_none()
        },
    );
    nodes[leader].assert_alive();
    eprintln!(
        "the wiped node refused the leader {:?} after its ready line",
        restarted.elapsed()
    );
    let status = cluster_status(&addrs[wiped]);
    assert_eq!(
        field(&status, "fenced"),
        true,
        "the wiped node is fenced: {status:?}"
    );
    assert!(
        nodes[wiped].stderr().contains("remove-node"),
        "the wiped node tells the operator what to do:\n{}",
        nodes[wiped].stderr()
    );
    // The two others still commit.
    let during = topic_name("while-fenced");
    create_topic_via(&nodes[leader], &during, 2);
    nodes[leader].assert_alive();
    nodes[other].assert_alive();

    // Re-adding a voter is refused: it must be removed first.
    let member = format!("{}@{}", wiped_id, addrs[wiped]);
    let refused = cluster_cli(&["add-node", &member], &addrs[other]);
    assert!(!refused.status.success(), "add-node of a voter is refused");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("already a voter"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // remove-node through the node that does not lead: it passes the request to the leader.
    let removing = Instant::now();
    let removed = stdout_of(&cluster_cli(&["remove-node", &wiped_id], &addrs[other]));
    eprintln!("remove-node answered in {:?}", removing.elapsed());
    assert!(removed.contains("no longer a member"), "{removed}");
    let mut remaining = vec![leader_id, (other + 1) as u64];
    remaining.sort_unstable();
    assert_eq!(
        cluster_voters(&addrs[leader])
            .into_iter()
            .collect::<Vec<_>>(),
        remaining
    );

    // Two voters: creating topics and producing still work; the removed node's brokers are no
    // longer listed and get no new partitions.
    let after = topic_name("after-remove");
    create_topic_via(&nodes[other], &after, 4);
    let client = metadata_client(&nodes[other]);
    let listed = broker_ids(&client);
    assert!(
        listed.iter().all(|b| (b / 1000) as usize != wiped + 1),
        "the removed node's brokers are not listed: {listed:?}"
    );
    let records: Vec<TestRecord> = (0..4)
        .map(|p| TestRecord::new(format!("k{p}"), format!("v{p}")).partition(p))
        .collect();
    let writer = producer(nodes[other].bootstrap(), &[]);
    produce_all(&writer, &after, &records);

    // With one of the two voters down, removing the other would leave a group that cannot
    // commit: refused, and nothing changes.
    nodes[other].kill();
    let refused = cluster_cli(&["remove-node", &(other + 1).to_string()], &addrs[leader]);
    assert!(
        !refused.status.success(),
        "a removal that loses quorum is refused"
    );
    let reason = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(reason.contains("refusing to remove"), "{reason}");
    nodes[other].restart();
    assert_eq!(
        cluster_voters(&addrs[leader])
            .into_iter()
            .collect::<Vec<_>>(),
        remaining
    );

    // add-node: the wiped node is a learner, catches up, and is promoted to voter.
    let adding = Instant::now();
    let added = stdout_of(&cluster_cli(&["add-node", &member], &addrs[other]));
    eprintln!("add-node answered in {:?}", adding.elapsed());
    assert!(added.contains("is a voter"), "{added}");
    wait_until("every node to count three voters", CLUSTER_TIMEOUT, || {
        addrs.iter().all(|a| cluster_voters(a).len() == NODES)
    });
    let status = cluster_status(&addrs[wiped]);
    assert_eq!(field(&status, "fenced"), false, "{status:?}");

    // It knows every topic, and every node lists every node's brokers again.
    let rejoined = metadata_client(&nodes[wiped]);
    wait_until(
        "the re-added node to know every topic",
        CLUSTER_TIMEOUT,
        || {
            let names = topic_names(&rejoined);
            [&before, &during, &after]
                .iter()
                .all(|t| names.contains(*t))
        },
    );
    eprintln!(
        "the re-added node listed every topic {:?} after add-node was sent",
        adding.elapsed()
    );
    registered_clients(&nodes);
    assert_eq!(broker_ids(&rejoined), all_broker_ids());
    // And takes part: a topic created through it commits.
    let last = NewTopic::new("after-rejoin", 3, TopicReplication::Fixed(1));
    assert_eq!(try_create_topic_via(&nodes[wiped], &last), Ok(()));
    for node in &mut nodes {
        node.assert_alive();
    }
}
