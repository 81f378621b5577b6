//! Asked for authorized operations (KIP-430), DescribeTopics and DescribeCluster list every
//! operation of the resource type, as Kafka does without an authorizer, and none when not
//! asked. librdkafka's 0081 DescribeTopics/DescribeCluster sub-tests check exactly this.
//!
//! The client is pip confluent-kafka's AdminClient (tests/python/describe_authorized_operations.py),
//! since the `rdkafka` crate has no DescribeTopics or DescribeCluster.

use crate::common;
use crate::share_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn describe_topics_and_cluster_report_every_operation_when_asked() {
    // confluent-kafka 2.16 is the same prerequisite as for the share-group scenarios.
    if !share_support::share_client_available() {
        return;
    }
    let broker = common::Broker::start();
    let topic = common::topic_name("authorized-operations");
    common::create_topic(broker.bootstrap(), &topic, 1);

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python/describe_authorized_operations.py");
    let stdout = tempfile::NamedTempFile::new().expect("stdout file");
    let stderr = tempfile::NamedTempFile::new().expect("stderr file");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(broker.bootstrap())
        .arg(&topic)
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
        "describe_authorized_operations.py failed ({status:?}):\n{out}\n{err}"
    );
    eprintln!("{out}");
}
