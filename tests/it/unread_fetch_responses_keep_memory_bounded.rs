//! Consumers that never read their sockets: four connections each pipeline thousands of
//! Fetch requests for 8 MiB from offset 0 of a 32 MiB partition and never read a byte of the
//! answers. The broker must stop reading their requests once their answers back up (bounded
//! queue per connection) instead of building every answer in memory: its RSS stays within a
//! bound, and a well-behaved producer and a fresh consumer keep being served.

use crate::common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::raw::{
    fetch_batch_headers, frame, parse_produce_v3_response, produce_v3_body, record_batch,
    round_trip, Reply,
};
use common::{create_topic, leader_address, topic_name, Broker, HealthyClient};

const VALUE_BYTES: usize = 256 * 1024;
const BATCHES_COUNT: usize = 128; // 32 MiB
const READERS_COUNT: usize = 4;
const REQUESTS_PER_READER: usize = 20_000;
const FETCH_MAX_BYTES: i32 = 8 << 20;
/// 64 queued requests and one 8 MiB answer in flight per connection, plus slack.
const RSS_GROWTH_MAX: u64 = 384 * 1024 * 1024;

fn fetch_request(topic: &str, correlation_id: i32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(-1i32).to_be_bytes()); // replica id
    body.extend_from_slice(&0i32.to_be_bytes()); // max wait ms
    body.extend_from_slice(&1i32.to_be_bytes()); // min bytes
    body.extend_from_slice(&FETCH_MAX_BYTES.to_be_bytes());
    body.push(0);
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&0i32.to_be_bytes()); // partition
    body.extend_from_slice(&0i64.to_be_bytes()); // offset
    body.extend_from_slice(&FETCH_MAX_BYTES.to_be_bytes());
    frame(1, 4, correlation_id, &body)
}

#[test]
fn unread_fetch_responses_keep_memory_bounded() {
    let broker = Broker::start();
    let topic = topic_name("unread-fetch");
    create_topic(broker.bootstrap(), &topic, 1);
    let leader = leader_address(&broker, &topic, 0);
    let mut stream = TcpStream::connect(&leader).expect("connect");
    let value = vec![b'v'; VALUE_BYTES];
    for i in 0..BATCHES_COUNT {
        let batch = record_batch(&[value.as_slice()], i as i64, false);
        let body = produce_v3_body(&topic, 0, -1, &batch);
        let Reply::Frame(reply) =
            round_trip(&mut stream, 0, 3, i as i32, &body, Duration::from_secs(30))
        else {
            panic!("produce #{i} unanswered");
        };
        assert_eq!(
            parse_produce_v3_response(&reply, i as i32).0,
            0,
            "produce #{i}"
        );
    }
    let healthy = HealthyClient::start(&broker);
    std::thread::sleep(Duration::from_secs(1));
    let rss_before = broker.rss_bytes();

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    let mut sockets = Vec::new();
    for _ in 0..READERS_COUNT {
        let mut stream = TcpStream::connect(&leader).expect("connect non-reader");
        stream
            .set_write_timeout(Some(Duration::from_millis(200)))
            .expect("write timeout");
        sockets.push(stream.try_clone().expect("clone"));
        let (topic, stop, written) = (topic.clone(), stop.clone(), written.clone());
        readers.push(thread::spawn(move || {
            for i in 0..REQUESTS_PER_READER {
                let request = fetch_request(&topic, i as i32);
                let mut sent = 0;
                while sent < request.len() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    match stream.write(&request[sent..]) {
                        Ok(n) => sent += n,
                        Err(_) => continue, // blocked: the broker stopped reading, as it should
                    }
                }
                written.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    let mut rss_max = rss_before;
    while started.elapsed() < Duration::from_secs(12) {
        rss_max = rss_max.max(broker.rss_bytes());
        thread::sleep(Duration::from_millis(50));
    }
    // Others are still served: a fresh Fetch of the same partition on a new connection.
    let mut fresh = TcpStream::connect(&leader).expect("connect fresh consumer");
    let fetch_started = Instant::now();
    let (code, high_watermark, batches) = fetch_batch_headers(&mut fresh, &topic, 0, 0, 1 << 20);
    let fetch_took = fetch_started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().expect("writer thread");
    }
    drop(sockets);
    eprintln!(
        "{} Fetch requests written unread; broker RSS {} MiB before, {} MiB at most; fresh fetch took {fetch_took:?}",
        written.load(Ordering::Relaxed),
        rss_before >> 20,
        rss_max >> 20
    );
    assert_eq!(code, 0, "fresh Fetch error code");
    assert_eq!(high_watermark, BATCHES_COUNT as i64);
    assert!(!batches.is_empty(), "fresh Fetch returned no batch");
    assert!(
        fetch_took < Duration::from_secs(5),
        "fresh Fetch took {fetch_took:?}"
    );
    healthy.finish(Duration::from_secs(10));
    assert!(
        rss_max.saturating_sub(rss_before) <= RSS_GROWTH_MAX,
        "unread Fetch answers grew the broker's RSS from {} MiB to {} MiB (bound +{} MiB)",
        rss_before >> 20,
        rss_max >> 20,
        RSS_GROWTH_MAX >> 20
    );
}
