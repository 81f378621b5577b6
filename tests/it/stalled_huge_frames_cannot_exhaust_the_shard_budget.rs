//! Eight connections per shard each announce a 64 MiB frame (legal: under FRAME_BYTES_MAX),
//! send 4 bytes of its body and stall. The broker reserves a frame's whole size from the
//! per-connection (64 MiB) and per-shard (512 MiB) request-byte budgets before it reads the
//! body, so 8 x 64 MiB is the shard's entire budget. 64 bytes of traffic per shard must not be
//! able to take a shard away from everyone else: a well-behaved producer on the same shards
//! must keep being acknowledged promptly and ApiVersions must still be answered.

use crate::common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::raw::{round_trip, Cursor, Reply};
use common::{Broker, HealthyClient};

/// CONNECTION_INFLIGHT_BYTES_MAX, and SHARD_INFLIGHT_BYTES_MAX / STALLERS_PER_SHARD.
const ANNOUNCED_BYTES: i32 = 64 * 1024 * 1024;
const STALLERS_PER_SHARD: usize = 8;

#[test]
fn stalled_huge_frames_cannot_exhaust_the_shard_budget() {
    let broker = Broker::start();
    let healthy = HealthyClient::start(&broker);
    let mut stallers = Vec::new();
    for (_, address) in broker.ready_line().brokers.clone() {
        for _ in 0..STALLERS_PER_SHARD {
            let mut stream = TcpStream::connect(&address).expect("connect staller");
            let mut bytes = ANNOUNCED_BYTES.to_be_bytes().to_vec();
            bytes.extend_from_slice(&[0, 0, 0, 3]); // Produce v3, then nothing more
            stream.write_all(&bytes).expect("write");
            stallers.push(stream);
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut failures = Vec::new();
    for (_, address) in &broker.ready_line().brokers {
        let mut stream = TcpStream::connect(address).expect("connect");
        match round_trip(&mut stream, 18, 0, 3, &[], Duration::from_secs(10)) {
            Reply::Frame(body) if Cursor::new(&body).i32() == 3 => {}
            other => failures.push(format!(
                "{address}: ApiVersions beside {} stalled 64 MiB frames got {other:?} \
                 (the shard's request-byte budget is held by bytes that never arrive)",
                STALLERS_PER_SHARD
            )),
        }
    }
    let healthy = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        healthy.finish(Duration::from_secs(10))
    }));
    if let Err(panic) = healthy {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        failures.push(format!("well-behaved producer: {message}"));
    }
    drop(stallers);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
