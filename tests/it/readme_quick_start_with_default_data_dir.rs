//! The README's quick start: `sluice serve` with its default data dir (`./data`, relative to
//! the working directory), then `kcat -P -t logs` and `kcat -C -t logs` round-trip lines; the
//! data lands in `./data` and survives a restart. (Ephemeral ports stand in for 9092.)

use crate::common;

use std::time::Duration;

use common::{run_kcat, write_lines, Broker, BrokerOptions};

const KCAT_TIMEOUT: Duration = Duration::from_secs(60);

fn consume_logs(broker: &Broker) -> Vec<String> {
    let consumed = run_kcat(
        &["-b", broker.bootstrap(), "-C", "-t", "logs", "-e", "-q"],
        None,
        KCAT_TIMEOUT,
    );
    assert!(
        consumed.status.success(),
        "kcat -C exited {}: {}",
        consumed.status,
        consumed.stderr
    );
    String::from_utf8_lossy(&consumed.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn readme_quick_start_with_default_data_dir() {
    let mut broker = Broker::start_with(BrokerOptions {
        default_data_dir: true,
        fixed_ports: true,
        ..BrokerOptions::default()
    });
    let lines: Vec<String> = (0..1000).map(|i| format!("log line {i}")).collect();
    let input = write_lines(lines.iter().cloned());
    let produced = run_kcat(
        &["-b", broker.bootstrap(), "-P", "-t", "logs"],
        Some(input.path()),
        KCAT_TIMEOUT,
    );
    assert!(
        produced.status.success() && !produced.stderr.contains("ERROR"),
        "kcat -P exited {}: {}",
        produced.status,
        produced.stderr
    );
    assert_eq!(consume_logs(&broker), lines, "kcat -C after kcat -P");
    assert!(
        broker.data_dir().join("data").is_dir(),
        "the default data dir is ./data"
    );

    broker.stop_graceful();
    broker.restart();
    assert_eq!(consume_logs(&broker), lines, "kcat -C after a restart");
}
