//! Shared by the ACL scenarios: a broker with the ACL authorizer on, `sluice acl`, and
//! one-record produce attempts whose outcome the scenario checks.
//!
//! Until SASL lands every client is `User:ANONYMOUS`, so the brokers run with
//! `--allow-everyone-if-no-acl-found true`: resources nobody wrote ACLs for (the cluster,
//! so `sluice acl` itself) stay open, and a scenario closes a topic or group by giving it an
//! ACL for someone else.
#![allow(dead_code)]

use std::time::Duration;

use super::common::{self, cli, Broker, BrokerOptions, TestRecord};

/// The principal every test client is on a PLAINTEXT listener.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

pub fn broker_options(extra_args: &[&str]) -> BrokerOptions {
    let mut args = vec![
        "--authorizer",
        "acl",
        "--allow-everyone-if-no-acl-found",
        "true",
    ];
    args.extend_from_slice(extra_args);
    BrokerOptions {
        extra_args: args.into_iter().map(str::to_owned).collect(),
        ..BrokerOptions::default()
    }
}

pub fn start_broker(extra_args: &[&str]) -> Broker {
    Broker::start_with(broker_options(extra_args))
}

/// `sluice acl ARGS`, which must succeed; its stdout.
pub fn acl(bootstrap: &str, args: &[&str]) -> String {
    let mut full = vec!["acl"];
    full.extend_from_slice(args);
    cli::stdout(&cli::sluice(&full, bootstrap))
}

/// Produces one record with rdkafka; `None` when acknowledged, else the delivery error.
pub fn produce_one(bootstrap: &str, topic: &str) -> Option<String> {
    let producer = common::producer(bootstrap, &[("message.timeout.ms", "20000")]);
    let deliveries = common::try_produce_all(&producer, topic, &[TestRecord::new("k", "v")]);
    deliveries.into_iter().next().and_then(|d| d.error)
}

/// Produces one line with kcat; its stderr, and whether it exited 0.
pub fn kcat_produce_one(bootstrap: &str, topic: &str) -> (bool, String) {
    let input = common::write_lines(std::iter::once("from-kcat".to_owned()));
    let output = common::run_kcat(
        &[
            "-P",
            "-b",
            bootstrap,
            "-t",
            topic,
            "-X",
            "message.timeout.ms=20000",
        ],
        Some(input.path()),
        Duration::from_secs(60),
    );
    (output.status.success(), output.stderr)
}

/// `sluice acl add --allow-principal PRINCIPAL --operation OPERATION RESOURCE...`; its stdout.
pub fn allow(bootstrap: &str, principal: &str, operation: &str, resource: &[&str]) -> String {
    let mut args = vec!["add", "--allow-principal", principal];
    args.extend_from_slice(&["--operation", operation]);
    args.extend_from_slice(resource);
    acl(bootstrap, &args)
}

/// Runs a python3 snippet (pip confluent-kafka) with `args`; its trimmed stdout.
pub fn python(script: &str, args: &[&str]) -> String {
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
