//! CreateAcls, DescribeAcls and DeleteAcls answer pip confluent-kafka's AdminClient as a
//! Kafka 4.x broker does: created ACLs are described (MATCH filters included) and deleted,
//! bad ACLs get INVALID_REQUEST, a broker without an authorizer SECURITY_DISABLED, and a
//! principal without ALTER/DESCRIBE on the cluster CLUSTER_AUTHORIZATION_FAILED.
//! The client script is tests/python/acl_admin_round_trip.py.

use crate::acl_support;
use crate::common;
use crate::share_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn acl_apis_answer_the_admin_client_as_kafka_does() {
    // confluent-kafka 2.16 is the same prerequisite as for the share-group scenarios.
    if !share_support::share_client_available() {
        return;
    }
    let with_authorizer = acl_support::start_broker(&[]);
    let without_authorizer = common::Broker::start();
    // Nothing is open to ANONYMOUS when no ACL says so, the cluster included.
    let closed = common::Broker::start_with(common::BrokerOptions {
        extra_args: vec!["--authorizer".to_owned(), "acl".to_owned()],
        ..common::BrokerOptions::default()
    });

    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/acl_admin_round_trip.py");
    let stdout = tempfile::NamedTempFile::new().expect("stdout file");
    let stderr = tempfile::NamedTempFile::new().expect("stderr file");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(with_authorizer.bootstrap())
        .arg(without_authorizer.bootstrap())
        .arg(closed.bootstrap())
        .stdout(stdout.reopen().expect("reopen stdout"))
        .stderr(stderr.reopen().expect("reopen stderr"))
        .spawn()
        .expect("start python3");
    let status = common::wait_child(&mut child, SCRIPT_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = std::fs::read_to_string(stdout.path()).unwrap_or_default();
    let err = std::fs::read_to_string(stderr.path()).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "acl_admin_round_trip.py failed ({status:?}):\n{out}\n{err}"
    );
    eprintln!("{out}");
}
