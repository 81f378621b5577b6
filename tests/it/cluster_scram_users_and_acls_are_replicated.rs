//! SCRAM credentials and ACLs are cluster state (issue 17, third slice): replicated through
//! the metadata Raft group like topics, so a user created through node 1 authenticates on
//! node 3 and an ACL created through node 2 is enforced on node 1, also after those nodes
//! restart. The first administrator is bootstrapped the documented way: `sluice user add
//! --data-dir` on one stopped node (that node's alone), then added again through that node
//! online, which replicates it.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaRespErr;

use crate::cluster_support::{start_cluster, CLUSTER_TIMEOUT};
use crate::common::{cli, consumer, topic_name, wait_until, Broker};
use crate::sasl_support::{add_user_offline, sasl_settings};

const MECHANISM: &str = "SCRAM-SHA-512";
const ADMIN: (&str, &str) = ("admin", "admin-secret");
const ALICE: (&str, &str) = ("alice", "alice-secret");

/// A client of `node` alone, authenticated as `user`.
fn client_as(node: &Broker, (user, password): (&str, &str)) -> BaseConsumer {
    let mut settings = sasl_settings(MECHANISM, user, password);
    settings.push(("topic.metadata.refresh.interval.ms", "-1"));
    consumer(node.bootstrap(), &settings)
}

/// Whether `user` authenticates on `node` (a Metadata request succeeds).
fn authenticates(node: &Broker, user: (&str, &str)) -> bool {
    client_as(node, user)
        .fetch_metadata(None, std::time::Duration::from_secs(5))
        .is_ok()
}

/// The error Metadata answers `user` on `node` for `topic`, if the request got through.
fn topic_error(node: &Broker, user: (&str, &str), topic: &str) -> Option<RDKafkaRespErr> {
    let metadata = client_as(node, user)
        .fetch_metadata(Some(topic), std::time::Duration::from_secs(5))
        .ok()?;
    metadata.topics().first()?.error()
}

/// `ARGS` with the administrator's SASL login.
fn admin_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut full = args.to_vec();
    full.extend_from_slice(&[
        "--sasl-mechanism",
        MECHANISM,
        "--sasl-username",
        ADMIN.0,
        "--sasl-password",
        ADMIN.1,
    ]);
    full
}

/// `sluice ARGS` through `node` as the administrator, retried until it succeeds (a new
/// cluster may still be electing its metadata leader: NOT_CONTROLLER).
fn as_admin(node: &Broker, args: &[&str]) {
    let full = admin_args(args);
    wait_until(
        &format!("sluice {args:?} to succeed"),
        CLUSTER_TIMEOUT,
        || cli::sluice(&full, node.bootstrap()).status.success(),
    );
}

#[test]
fn cluster_scram_users_and_acls_are_replicated() {
    let mut nodes = start_cluster(&[
        "--security-protocol",
        "SASL_PLAINTEXT",
        "--authorizer",
        "acl",
        // The cluster resource stays open to authenticated users; topics close by ACL.
        "--allow-everyone-if-no-acl-found",
        "true",
    ]);
    nodes[0].stop_graceful();
    add_user_offline(&nodes[0], ADMIN.0, ADMIN.1);
    nodes[0].restart();
    assert!(
        !authenticates(&nodes[2], ADMIN),
        "an offline-added user is node 1's alone"
    );
    as_admin(&nodes[0], &["user", "add", ADMIN.0, "--password", ADMIN.1]);
    assert!(!authenticates(&nodes[2], ALICE), "alice does not exist yet");
    as_admin(&nodes[0], &["user", "add", ALICE.0, "--password", ALICE.1]);
    let created = std::time::Instant::now();
    wait_until(
        "alice, created through node 1, to authenticate on node 3",
        CLUSTER_TIMEOUT,
        || authenticates(&nodes[2], ALICE),
    );
    eprintln!(
        "alice authenticated on node 3 {:?} after `sluice user add` answered on node 1",
        created.elapsed()
    );

    // An ACL created through node 2 (by the replicated administrator) denies on node 1.
    let topic = topic_name("guarded");
    wait_until("alice to see the topic on node 1", CLUSTER_TIMEOUT, || {
        authenticates(&nodes[0], ALICE)
            && topic_error(&nodes[0], ALICE, &topic)
                != Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
    });
    let principal = format!("User:{}", ALICE.0);
    as_admin(
        &nodes[1],
        &[
            "acl",
            "add",
            "--deny-principal",
            &principal,
            "--operation",
            "describe",
            "--topic",
            &topic,
        ],
    );
    let denied = || {
        topic_error(&nodes[0], ALICE, &topic)
            == Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
    };
    let acl_created = std::time::Instant::now();
    wait_until("node 1 to deny alice the topic", CLUSTER_TIMEOUT, denied);
    eprintln!(
        "node 1 denied alice {:?} after `sluice acl add` answered on node 2",
        acl_created.elapsed()
    );

    // Both survive restarts: node 3 killed, node 1 stopped, each started again.
    nodes[2].kill();
    nodes[2].restart();
    wait_until(
        "alice to authenticate on node 3 after its restart",
        CLUSTER_TIMEOUT,
        || authenticates(&nodes[2], ALICE),
    );
    nodes[0].stop_graceful();
    nodes[0].restart();
    let denied = || {
        topic_error(&nodes[0], ALICE, &topic)
            == Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
    };
    wait_until(
        "node 1 to deny alice the topic after its restart",
        CLUSTER_TIMEOUT,
        denied,
    );
    for node in &nodes {
        let users = cli::stdout(&cli::sluice(
            &admin_args(&["user", "list"]),
            node.bootstrap(),
        ));
        assert!(users.contains(ALICE.0), "every node lists alice: {users}");
    }
}
