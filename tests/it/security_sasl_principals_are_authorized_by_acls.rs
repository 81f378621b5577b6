//! Authentication and authorization together: SASL logins become the principals ACLs name.
//! alice (SCRAM-SHA-512) may not write to a topic until the super user grants her WRITE on
//! it, and may not manage SCRAM users without ALTER on the cluster.

use crate::common;
use crate::sasl_support;

use std::process::{Command, Output};

use common::TestRecord;
use sasl_support::{sasl_broker, sasl_settings};

const MECHANISM: &str = "SCRAM-SHA-512";

/// `sluice ARGS` logged in as `user`.
fn sluice_as(bootstrap: &str, user: &str, password: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .args(["--bootstrap", bootstrap])
        .args(["--sasl-mechanism", MECHANISM, "--sasl-username", user])
        .args(["--sasl-password", password])
        .output()
        .expect("run sluice")
}

fn admin(bootstrap: &str, args: &[&str]) {
    let output = sluice_as(bootstrap, "admin", "admin-pw", args);
    assert!(
        output.status.success(),
        "sluice {args:?} as admin failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One record produced as alice: `None` when acknowledged, else the delivery error.
fn produce_as_alice(bootstrap: &str, topic: &str) -> Option<String> {
    let mut settings = sasl_settings(MECHANISM, "alice", "alice-pw");
    settings.push(("message.timeout.ms", "20000"));
    let producer = common::producer(bootstrap, &settings);
    let deliveries = common::try_produce_all(&producer, topic, &[TestRecord::new("k", "v")]);
    deliveries.into_iter().next().and_then(|d| d.error)
}

#[test]
fn sasl_principals_are_what_acls_grant_and_deny() {
    let broker = sasl_broker(
        &[("admin", "admin-pw"), ("alice", "alice-pw")],
        &[
            "--sasl-enabled-mechanisms",
            MECHANISM,
            "--authorizer",
            "acl",
            "--super-users",
            "User:admin",
        ],
    );
    let bootstrap = broker.bootstrap().to_owned();
    admin(
        &bootstrap,
        &["topic", "create", "orders", "--partitions", "1"],
    );

    let refused = produce_as_alice(&bootstrap, "orders");
    let refused = refused.expect("alice has no WRITE on orders: the produce must fail");
    assert!(
        refused.contains("TopicAuthorization") || refused.contains("authoriz"),
        "alice's produce failed for another reason: {refused}"
    );

    admin(
        &bootstrap,
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "write",
            "--topic",
            "orders",
        ],
    );
    assert_eq!(
        produce_as_alice(&bootstrap, "orders"),
        None,
        "alice was granted WRITE on orders"
    );

    let add_user = sluice_as(
        &bootstrap,
        "alice",
        "alice-pw",
        &["user", "add", "mallory", "--password", "mallory-pw"],
    );
    let stderr = String::from_utf8_lossy(&add_user.stderr);
    assert!(
        !add_user.status.success(),
        "alice has no ALTER on the cluster, yet added a user"
    );
    assert!(
        stderr.to_ascii_lowercase().contains("authoriz"),
        "refusal should say authorization failed: {stderr}"
    );
    admin(
        &bootstrap,
        &["user", "add", "mallory", "--password", "mallory-pw"],
    );
}
