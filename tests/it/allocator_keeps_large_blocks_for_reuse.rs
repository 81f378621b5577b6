//! The `sluice` binary starts jemalloc with `oversize_threshold:0` (src/main.rs), so buffers
//! of 8 MiB and more, such as a catching-up consumer's cold reads, are reused instead of
//! being handed back to the kernel the moment they are freed. The setting is a symbol that
//! jemalloc looks up by name: if the allocator crate's symbol prefix changed, it would stop
//! applying without any error, and only a catch-up benchmark would notice. jemalloc's
//! `confirm_conf` option makes it print each configuration source it read, and which values
//! it set, to stderr at start-up.

use std::process::Command;

#[test]
fn allocator_keeps_large_blocks_for_reuse() {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "confirm_conf:true")
        .output()
        .expect("run sluice --version");
    assert!(output.status.success(), "sluice --version failed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let from_symbol = stderr
        .lines()
        .find(|line| line.contains("global variable malloc_conf)"))
        .unwrap_or_else(|| panic!("jemalloc did not report its malloc_conf symbol:\n{stderr}"));
    assert!(
        from_symbol.ends_with("\"oversize_threshold:0\""),
        "the binary's malloc_conf is not applied: {from_symbol}"
    );
    assert!(
        stderr
            .lines()
            .any(|line| line.ends_with("Set conf value: oversize_threshold:0")),
        "jemalloc did not set oversize_threshold:\n{stderr}"
    );
}
