//! Share groups on a replicated partition (issue 17): with three real nodes and a topic of
//! one partition, replication factor 3, confluent-kafka's ShareConsumer acknowledges half of
//! 200 records and holds some acquired under a 120 s lock; then the partition's leader is
//! killed with SIGKILL. The group's delivery state is a change in the partition's own Raft
//! group, so the new leader has it: no acknowledged record is delivered again, the held
//! records come back at once (their locks were the dead leader's), and none is lost. The
//! group's configs (earliest reset, the long lock) were set through whichever node the
//! admin client picked and hold on every node: they are cluster metadata. Once the killed
//! node is back and leads the partition again (the preferred leader takes it back), its copy
//! has the acknowledgements made while it was down: new records are delivered and nothing
//! acknowledged comes back. A state kept by each leader alone would start the new leader
//! with no state for the group, and deliver nothing produced before its first fetch.

use rdkafka::admin::{NewTopic, TopicReplication};

use crate::cluster_support::{
    agreed_leaders, registered_clients, settle_internal_topic, start_cluster, try_create_topic_via,
    wait_for_agreed_leaders, CLUSTER_TIMEOUT,
};
use crate::common::{topic_name, wait_until};
use crate::share_support;

#[test]
fn cluster_share_group_state_survives_a_leader_kill() {
    if !share_support::share_client_available() {
        return;
    }
    let mut nodes = start_cluster(&[]);
    let clients = registered_clients(&nodes);
    let topic = topic_name("replicated-share");
    try_create_topic_via(
        &nodes[0],
        &NewTopic::new(&topic, 1, TopicReplication::Fixed(3)),
    )
    .expect("create the replicated topic");
    let leaders = wait_for_agreed_leaders(&clients, &topic, 1);
    let victim = usize::try_from(leaders[0] / 1000 - 1).expect("node index");
    let survivor = (0..nodes.len())
        .find(|i| *i != victim)
        .expect("another node");

    // No group coordinator moves but with the kill.
    settle_internal_topic(&nodes, &clients, 0);
    let state = tempfile::NamedTempFile::new().expect("state file");
    let state_path = state.path().to_str().expect("utf-8 path").to_owned();
    share_support::run_scenario(
        "crash-before",
        nodes[victim].bootstrap(),
        &[&state_path, &topic],
    );
    nodes[victim].kill();
    share_support::run_scenario(
        "crash-after",
        nodes[survivor].bootstrap(),
        &[&state_path, "cluster"],
    );

    nodes[victim].restart();
    let clients = registered_clients(&nodes);
    wait_until(
        "the killed node to lead the partition again",
        CLUSTER_TIMEOUT,
        || agreed_leaders(&clients, &topic, 1).is_some_and(|now| now[0] == leaders[0]),
    );
    share_support::run_scenario("crash-return", nodes[victim].bootstrap(), &[&state_path]);
}
