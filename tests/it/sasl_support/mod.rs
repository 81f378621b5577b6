//! Helpers for the SASL tests: a broker on a SASL_PLAINTEXT listener with users made the way
//! an operator bootstraps them (`sluice user add --data-dir` while the broker is stopped),
//! client settings per mechanism, and a client context that keeps librdkafka's errors.
#![allow(dead_code)]

use std::process::Command;
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaError;

use crate::common::{Broker, BrokerOptions};

/// The mechanisms every SASL test runs through.
pub const MECHANISMS: [&str; 3] = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"];

/// A broker whose client listener is SASL_PLAINTEXT, with `users` (name, password) created
/// offline before it serves, plus `extra_args`.
pub fn sasl_broker(users: &[(&str, &str)], extra_args: &[&str]) -> Broker {
    let mut args = vec![
        "--security-protocol".to_owned(),
        "SASL_PLAINTEXT".to_owned(),
    ];
    args.extend(extra_args.iter().map(|a| (*a).to_owned()));
    let mut broker = Broker::start_with(BrokerOptions {
        extra_args: args,
        ..BrokerOptions::default()
    });
    broker.stop_graceful();
    for (name, password) in users {
        add_user_offline(&broker, name, password);
    }
    broker.restart();
    broker
}

/// `sluice user add NAME --password PASSWORD --data-dir DIR`, which must succeed.
pub fn add_user_offline(broker: &Broker, name: &str, password: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["user", "add", name, "--password", password, "--data-dir"])
        .arg(broker.data_dir())
        .output()
        .expect("run sluice user add");
    assert!(
        output.status.success(),
        "sluice user add failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// librdkafka settings to authenticate as `user` with `mechanism`.
pub fn sasl_settings<'a>(
    mechanism: &'a str,
    user: &'a str,
    password: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", mechanism),
        ("sasl.username", user),
        ("sasl.password", password),
    ]
}

/// Keeps every error librdkafka reports through its error callback.
#[derive(Clone, Default)]
pub struct ErrorRecorder {
    pub errors: Arc<Mutex<Vec<String>>>,
}

impl ErrorRecorder {
    pub fn seen(&self) -> Vec<String> {
        self.errors.lock().expect("errors lock").clone()
    }
}

impl ClientContext for ErrorRecorder {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors
            .lock()
            .expect("errors lock")
            .push(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for ErrorRecorder {}

/// A consumer with `settings` whose errors land in the returned recorder.
pub fn recording_consumer(
    bootstrap: &str,
    settings: &[(&str, &str)],
) -> (BaseConsumer<ErrorRecorder>, ErrorRecorder) {
    let recorder = ErrorRecorder::default();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "sasl-tests")
        .set("enable.auto.commit", "false");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    let consumer = config
        .create_with_context(recorder.clone())
        .expect("create consumer");
    (consumer, recorder)
}
