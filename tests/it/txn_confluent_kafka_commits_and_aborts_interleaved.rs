//! confluent-kafka (pip, librdkafka 2.16): a transactional producer commits and aborts in
//! turn; a read_committed consumer sees exactly the committed records in order, a
//! read_uncommitted one every record and no control record (tests/python/txn_interleaved.py).

use crate::common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

#[test]
fn confluent_kafka_commits_and_aborts_interleaved() {
    let available = Command::new("python3")
        .args(["-c", "from confluent_kafka import Producer"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing = (!available).then(|| {
        "python3 with confluent-kafka is required (pip install 'confluent-kafka==2.16.*')".into()
    });
    if !common::prerequisite::require(missing) {
        return;
    }
    let broker = common::Broker::start();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/txn_interleaved.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(broker.bootstrap())
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "scenario failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
