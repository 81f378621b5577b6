//! A panic in one shard ends the whole process with exit code 101, so systemd
//! (`Restart=on-failure`) starts it again, instead of leaving it serving with a dead shard;
//! `/health` answers 503 from the panic until the process is gone.
//!
//! The panic comes from the debug-build-only hook `SLUICE_TEST_PANIC_SHARD=1` (shard 1 panics
//! when it accepts a connection; release builds do not contain it), so the test chooses the
//! moment. The test kills nothing itself.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{free_port_range, wait_until, Broker, BrokerOptions};

/// The status code of `GET path` on the admin port, or `None` if nothing answered.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split(' ').nth(1)?.parse().ok()
}

#[test]
fn shard_panic_exits_the_process_nonzero() {
    let admin_port = free_port_range(1);
    let mut broker = Broker::start_with(BrokerOptions {
        shards_count: 2,
        extra_args: vec![
            "--admin-listen".to_owned(),
            format!("127.0.0.1:{admin_port}"),
        ],
        envs: vec![("SLUICE_TEST_PANIC_SHARD".to_owned(), "1".to_owned())],
        ..BrokerOptions::default()
    });
    assert_eq!(http_status(admin_port, "/health"), Some(200));
    let shard_1 = broker.ready_line().brokers[1].1.clone();

    let _connection = TcpStream::connect(&shard_1).expect("connect to shard 1");

    // The hook marks /health failed before it logs the panic, so from the log line on, the
    // admin port either answers 503 or is already closed with the process.
    wait_until("the panic to be logged", Duration::from_secs(60), || {
        broker.stderr().contains("panicked at")
    });
    let health = http_status(admin_port, "/health");
    assert!(
        matches!(health, None | Some(503)),
        "/health after the panic: {health:?}"
    );
    let status = broker
        .wait_exit(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("still running after a shard panicked:\n{}", broker.stderr()));
    assert_eq!(status.code(), Some(101), "exit status {status}");
    let stderr = broker.stderr();
    assert!(
        stderr.contains("thread 'shard-1-") && stderr.contains("test panic on accept"),
        "the panic is logged with its thread and message:\n{stderr}"
    );
    assert_eq!(http_status(admin_port, "/health"), None);
}
