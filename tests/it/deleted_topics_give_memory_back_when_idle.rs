//! After a benchmark's topics are deleted, an idle broker gives the memory they used back to
//! the kernel: its RSS falls back near what it was before the benchmark. Before, ~0.5 GB
//! stayed resident for good: the shards' request-frame pools kept the buffers the deleted
//! partitions' tail caches returned, and jemalloc, asked by nobody, never purged what was
//! freed.
//!
//! The load is `sluice bench` (1 MiB produce requests, so the frame pool is used) for a fixed
//! time; the test asserts on memory only: RSS grew by at least `GROWTH_BYTES_MIN` (else the
//! scenario proves nothing), then falls to within `IDLE_EXCESS_BYTES_MAX` of the starting RSS
//! before a generous deadline.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Broker, BrokerOptions};

const TOPICS: [&str; 4] = ["rss-a", "rss-b", "rss-c", "rss-d"];
/// The benchmark must have grown RSS by this much for the test to mean anything.
const GROWTH_BYTES_MIN: u64 = 128 << 20;
/// How far above its starting RSS the idle broker may stay.
const IDLE_EXCESS_BYTES_MAX: u64 = 96 << 20;
/// Only turns a broker that never gives memory back into a readable failure.
const RELEASE_DEADLINE: Duration = Duration::from_secs(120);

/// About 1 GB in 1 MiB produce requests on the debug build of the development machine.
const BENCH_FLAGS: &str = "--partitions 4 --message-size 1000 --producers 2 --consumers 0 \
                           --warmup-secs 0 --duration-secs 3 -q";

fn bench(bootstrap: &str, topic: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["bench", "--bootstrap", bootstrap, "--topic", topic])
        .args(BENCH_FLAGS.split(' '))
        .output()
        .expect("run sluice bench");
    assert!(
        output.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn deleted_topics_give_memory_back_when_idle() {
    let broker = Broker::start_with(BrokerOptions {
        segment_bytes: 64 << 20,
        ..BrokerOptions::default()
    });
    let start_rss = broker.rss_bytes();
    for topic in TOPICS {
        bench(broker.bootstrap(), topic);
    }
    let loaded_rss = broker.rss_bytes();
    eprintln!(
        "RSS: {} MiB at start, {} MiB after the benchmark",
        start_rss >> 20,
        loaded_rss >> 20
    );
    assert!(
        loaded_rss >= start_rss + GROWTH_BYTES_MIN,
        "the benchmark grew RSS only from {start_rss} to {loaded_rss} bytes"
    );

    for topic in TOPICS {
        let output = common::cli::sluice(&["topic", "delete", topic], broker.bootstrap());
        common::cli::stdout(&output);
    }

    let deadline = Instant::now() + RELEASE_DEADLINE;
    let bound = start_rss + IDLE_EXCESS_BYTES_MAX;
    let mut rss = broker.rss_bytes();
    while rss > bound && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        rss = broker.rss_bytes();
    }
    eprintln!("RSS: {} MiB once idle", rss >> 20);
    assert!(
        rss <= bound,
        "idle RSS {} MiB after deleting every topic; started at {} MiB, was {} MiB loaded",
        rss >> 20,
        start_rss >> 20,
        loaded_rss >> 20
    );
}
