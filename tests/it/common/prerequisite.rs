//! What a test does when a tool it needs (python3 with confluent-kafka, root for a loop
//! mount, a filesystem with O_DIRECT) is missing on this machine.
//!
//! Stable Rust cannot mark a test ignored at run time, and returning early would report a
//! test that checked nothing as passed. So by default a missing prerequisite fails the test
//! with what to install. Setting `SLUICE_TESTS_SKIP_MISSING=1` lets it skip instead: the test
//! returns early and prints a `SKIPPED` line past the test harness's output capture, so the
//! run's output still names every scenario that did not run.

use std::io::Write;

/// The variable that turns a missing prerequisite from a failure into a skip.
pub const SKIP_MISSING_ENV: &str = "SLUICE_TESTS_SKIP_MISSING";

/// Whether the calling test may go on: true when `missing` is `None`. Otherwise panics with
/// the reason, unless [`SKIP_MISSING_ENV`] is set, in which case it prints the skip and
/// returns false (and the test must return at once).
pub fn require(missing: Option<String>) -> bool {
    let Some(reason) = missing else {
        return true;
    };
    // The test harness names each test's thread after the test.
    let current = std::thread::current();
    let test = current.name().unwrap_or("this test");
    let skipping = std::env::var_os(SKIP_MISSING_ENV).is_some_and(|v| !v.is_empty() && v != "0");
    assert!(
        skipping,
        "{test} cannot run here: {reason} (set {SKIP_MISSING_ENV}=1 to skip it instead)"
    );
    // Written to the process's stderr directly: the harness captures `eprintln!` output of
    // passing tests, and a skip must stay visible.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
    false
}
