//! `--security-protocol` describes the one `--listen` listener; beside `--listener` flags,
//! which each name their own protocol, it would be ignored. The broker refuses to start
//! and says why, instead of serving a protocol the operator did not mean.

use std::process::Command;

#[test]
fn security_protocol_with_listeners_is_a_readable_startup_error() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--shards", "1", "--data-dir"])
        .arg(data_dir.path())
        .args([
            "--listener",
            "PLAINTEXT://127.0.0.1:0",
            "--security-protocol",
            "SASL_PLAINTEXT",
        ])
        .env_remove("SLUICE_LISTENERS")
        .output()
        .expect("run sluice serve");
    assert!(
        !output.status.success(),
        "serve must refuse the combination"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot be combined with listeners"),
        "stderr: {stderr}"
    );
}
