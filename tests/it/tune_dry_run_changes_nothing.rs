//! `sluice tune` without `--apply` reports every check and changes nothing: each file it
//! reports on reads the same before and after, no finding says changed or failed, and two
//! runs report the same. `--probe-disk` measures a scratch file with O_DIRECT writes and
//! writes io-properties.toml.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn tune(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("tune")
        .args(args)
        .env_remove("SLUICE_DATA_DIR")
        .output()
        .expect("run sluice tune")
}

fn findings(data_dir: &Path) -> Vec<serde_json::Value> {
    let output = tune(&["--json", "--data-dir", &data_dir.display().to_string()]);
    assert!(
        output.status.success(),
        "dry run exits 0: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON findings")
}

fn snapshot(findings: &[serde_json::Value]) -> BTreeMap<String, Option<String>> {
    findings
        .iter()
        .filter_map(|f| f["path"].as_str())
        .map(|p| (p.to_string(), std::fs::read_to_string(p).ok()))
        .collect()
}

#[test]
fn tune_dry_run_changes_nothing() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let first = findings(data_dir.path());
    let before = snapshot(&first);
    let second = findings(data_dir.path());
    let after = snapshot(&second);
    assert_eq!(before, after, "a dry run writes nothing");
    assert_eq!(first.len(), second.len());

    let names: Vec<&str> = first.iter().filter_map(|f| f["name"].as_str()).collect();
    for expected in [
        "vm.swappiness",
        "vm.dirty_ratio",
        "vm.dirty_background_ratio",
        "net.core.somaxconn",
        "net.core.rmem_max",
        "net.ipv4.tcp_wmem",
        "net.core.busy_poll",
        "fs.aio-max-nr",
        "memlock limit",
        "transparent hugepages",
    ] {
        assert!(names.contains(&expected), "{expected} checked: {names:?}");
    }
    assert!(
        names.iter().any(|n| n.contains("governor")),
        "CPU governor checked"
    );
    assert!(
        names.iter().any(|n| n.contains("irq")),
        "IRQ affinity checked"
    );
    for finding in &first {
        let status = finding["status"].as_str().expect("status");
        assert!(
            ["ok", "would-change", "unavailable", "advice"].contains(&status),
            "dry run status {status}: {finding}"
        );
        assert!(
            finding["why"].as_str().is_some_and(|w| !w.is_empty()),
            "{finding}"
        );
        if status == "would-change" {
            assert!(
                finding["wanted"].is_string(),
                "a change says what to: {finding}"
            );
        }
    }

    let human = tune(&["--data-dir", &data_dir.path().display().to_string()]);
    assert!(human.status.success());
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("dry run, nothing changed"), "{text}");
}

#[test]
fn tune_probe_disk_writes_io_properties() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output_path = dir.path().join("io-properties.toml");
    let output = tune(&[
        "--probe-disk",
        &dir.path().display().to_string(),
        "--probe-file-bytes",
        &(16u64 << 20).to_string(),
        "--probe-ms",
        "20",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let no_direct_io = stderr.contains("O_DIRECT writes are not supported");
    if !crate::common::prerequisite::require(
        no_direct_io.then(|| format!("the temp dir's filesystem has no O_DIRECT ({stderr})")),
    ) {
        return;
    }
    assert!(output.status.success(), "probe exits 0: {stderr}");
    let text = std::fs::read_to_string(&output_path).expect("io-properties.toml written");
    let properties: toml::Value = toml::from_str(&text).expect("valid TOML");
    let write_bytes = properties["write-bytes"].as_integer().expect("write-bytes");
    let depth = properties["write-queue-depth"]
        .as_integer()
        .expect("write-queue-depth");
    assert!(
        write_bytes >= 4096 && write_bytes % 4096 == 0,
        "{write_bytes}"
    );
    assert!((1..=32).contains(&depth), "{depth}");
    assert!(properties["write-bandwidth-bytes-per-second"].as_integer() > Some(0));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "only io-properties.toml remains: {leftovers:?}"
    );
}
