//! Runs the share-group scenarios of tests/python/share_scenarios.py (pip confluent-kafka's
//! ShareConsumer, librdkafka 2.16) against a broker started by the Rust test.
#![allow(dead_code)]

pub mod share_protocol;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Longest a scenario may run.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(180);

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/share_scenarios.py")
}

/// Whether python3 with confluent-kafka >= 2.16 (the ShareConsumer) is installed; a missing
/// client fails the test unless skipping is allowed (see `common::prerequisite`).
pub fn share_client_available() -> bool {
    let probe = Command::new("python3")
        .args(["-c", "from confluent_kafka import ShareConsumer"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let available = probe.is_ok_and(|s| s.success());
    crate::common::prerequisite::require((!available).then(|| {
        "python3 with confluent-kafka 2.16 is required (pip install 'confluent-kafka==2.16.*')"
            .into()
    }))
}

/// Produces `count` records (keys `k0..`, values `v0..`) to partition 0 of `topic` and waits
/// for their acknowledgements, so they sit at offsets 0.. of an empty partition.
pub fn produce_to_partition_0(bootstrap: &str, topic: &str, count: i64) {
    let producer = crate::common::producer(bootstrap, &[]);
    let records: Vec<crate::common::TestRecord> = (0..count)
        .map(|i| crate::common::TestRecord::new(format!("k{i}"), format!("v{i}")).partition(0))
        .collect();
    crate::common::produce_all(&producer, topic, &records);
}

/// Runs one scenario to completion and panics with its output if it fails.
pub fn run_scenario(name: &str, bootstrap: &str, extra: &[&str]) {
    spawn_scenario(name, bootstrap, extra).finish();
}

/// A scenario running in the background while the test does something else.
pub struct RunningScenario {
    name: String,
    child: std::process::Child,
    stdout: tempfile::NamedTempFile,
    stderr: tempfile::NamedTempFile,
}

/// Starts one scenario; [`RunningScenario::finish`] waits for it.
pub fn spawn_scenario(name: &str, bootstrap: &str, extra: &[&str]) -> RunningScenario {
    let stdout = tempfile::NamedTempFile::new().expect("stdout file");
    let stderr = tempfile::NamedTempFile::new().expect("stderr file");
    let child = Command::new("python3")
        .arg(script())
        .arg(name)
        .arg(bootstrap)
        .args(extra)
        .stdout(stdout.reopen().expect("reopen stdout"))
        .stderr(stderr.reopen().expect("reopen stderr"))
        .spawn()
        .expect("start python3");
    RunningScenario {
        name: name.to_owned(),
        child,
        stdout,
        stderr,
    }
}

impl RunningScenario {
    /// Waits for the scenario to exit and panics with its output if it failed.
    pub fn finish(mut self) {
        let status = crate::common::wait_child(&mut self.child, SCENARIO_TIMEOUT);
        let out = std::fs::read_to_string(self.stdout.path()).unwrap_or_default();
        let err = std::fs::read_to_string(self.stderr.path()).unwrap_or_default();
        let name = &self.name;
        match status {
            Some(status) if status.success() => eprintln!("{out}"),
            Some(status) => panic!("scenario {name} failed ({status}):\n{out}\n{err}"),
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("scenario {name} timed out:\n{out}\n{err}");
            }
        }
    }
}
