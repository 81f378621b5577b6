//! Runs the `sluice` binary's client commands against a test broker.

use std::process::{Command, Output};

/// `sluice ARGS --bootstrap BOOTSTRAP`, run to completion.
pub fn sluice(args: &[&str], bootstrap: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .args(["--bootstrap", bootstrap])
        .output()
        .expect("run sluice")
}

/// The stdout of a command that must have succeeded.
pub fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "sluice failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command that must fail and returns its stderr.
pub fn refused(args: &[&str], bootstrap: &str) -> String {
    let output = sluice(args, bootstrap);
    assert!(
        !output.status.success(),
        "sluice {args:?} should have failed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}
