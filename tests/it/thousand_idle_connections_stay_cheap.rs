//! 1000 idle connections (500 per shard; half of them answered one ApiVersions first, half
//! never sent a byte) cost the broker little memory and do not slow a well-behaved producer;
//! new connections are still accepted and answered, and closing them all leaves it healthy.

use crate::common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::raw::{round_trip, Cursor, Reply};
use common::{Broker, HealthyClient};

const CONNECTIONS_COUNT: usize = 1000;
/// Generous: a connection should cost a few KiB of task state and socket buffers.
const RSS_GROWTH_MAX: u64 = 128 * 1024 * 1024;

#[test]
fn thousand_idle_connections_stay_cheap() {
    let mut broker = Broker::start();
    let healthy = HealthyClient::start(&broker);
    std::thread::sleep(Duration::from_secs(1));
    let rss_before = broker.rss_bytes();
    let addresses: Vec<String> = broker
        .ready_line()
        .brokers
        .iter()
        .map(|(_, a)| a.clone())
        .collect();
    let started = Instant::now();
    let mut idle = Vec::with_capacity(CONNECTIONS_COUNT);
    for i in 0..CONNECTIONS_COUNT {
        let address = &addresses[i % addresses.len()];
        let mut stream = TcpStream::connect(address)
            .unwrap_or_else(|e| panic!("connection #{i} to {address}: {e}"));
        if i % 2 == 0 {
            match round_trip(&mut stream, 18, 0, i as i32, &[], Duration::from_secs(10)) {
                Reply::Frame(body) => assert_eq!(Cursor::new(&body).i32(), i as i32),
                other => panic!("connection #{i}: ApiVersions got {other:?}"),
            }
        }
        idle.push(stream);
    }
    eprintln!(
        "{CONNECTIONS_COUNT} connections opened in {:?}",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_secs(3));
    let rss_with = broker.rss_bytes();
    for address in &addresses {
        let mut stream = TcpStream::connect(address).expect("connect beside the idle ones");
        match round_trip(&mut stream, 18, 0, 7, &[], Duration::from_secs(5)) {
            Reply::Frame(body) => assert_eq!(Cursor::new(&body).i32(), 7),
            other => panic!("{address}: ApiVersions beside 1000 idle connections got {other:?}"),
        }
    }
    // An idle connection that used the protocol is still usable afterwards.
    match round_trip(&mut idle[0], 18, 0, 8, &[], Duration::from_secs(5)) {
        Reply::Frame(body) => assert_eq!(Cursor::new(&body).i32(), 8),
        other => panic!("idle connection #0 reused: {other:?}"),
    }
    healthy.finish(Duration::from_secs(5));
    eprintln!(
        "broker RSS {} MiB before, {} MiB with {CONNECTIONS_COUNT} idle connections",
        rss_before >> 20,
        rss_with >> 20
    );
    assert!(
        rss_with.saturating_sub(rss_before) <= RSS_GROWTH_MAX,
        "{CONNECTIONS_COUNT} idle connections grew the broker's RSS from {} MiB to {} MiB",
        rss_before >> 20,
        rss_with >> 20
    );
    drop(idle);
    std::thread::sleep(Duration::from_millis(500));
    broker.assert_alive();
    broker.stop_graceful();
}
