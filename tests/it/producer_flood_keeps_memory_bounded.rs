//! A producer flood: four connections (two per shard, acks=0 and acks=1) pipeline 1 MiB
//! produce requests as fast as loopback allows and never read an answer, for a bounded time
//! and volume. The broker bounds request bytes read but not yet answered (64 MiB per
//! connection, 512 MiB per shard) and must not queue more than that for the disk either: its
//! RSS stays within the shards' budgets plus slack, and a well-behaved producer keeps being
//! acknowledged within a bound.

use crate::common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::raw::{frame, produce_v3_body, record_batch};
use common::{create_topic, leader_address, topic_name, Broker, BrokerOptions, HealthyClient};

const FLOOD_SECONDS: u64 = 12;
/// Per connection, so the disk use stays bounded too.
const FLOOD_BYTES_MAX: u64 = 768 << 20;
const SHARD_INFLIGHT_BYTES_MAX: u64 = 512 << 20;
const SLACK_BYTES: u64 = 256 << 20;

#[test]
fn producer_flood_keeps_memory_bounded() {
    let broker = Broker::start_with(BrokerOptions {
        segment_bytes: 64 << 20,
        num_partitions: 2,
        ..BrokerOptions::default()
    });
    let topic = topic_name("flood");
    create_topic(broker.bootstrap(), &topic, 2);
    let leaders = [
        leader_address(&broker, &topic, 0),
        leader_address(&broker, &topic, 1),
    ];
    let healthy = HealthyClient::start(&broker);
    thread::sleep(Duration::from_secs(1));
    let rss_before = broker.rss_bytes();

    let stop = Arc::new(AtomicBool::new(false));
    let sent_bytes = Arc::new(AtomicU64::new(0));
    let value = vec![b'f'; (1 << 20) - 200];
    let batch = record_batch(&[value.as_slice()], 1, false);
    let mut flooders = Vec::new();
    for (partition, leader) in leaders.iter().enumerate() {
        for acks in [0i16, 1] {
            let request = frame(
                0,
                3,
                1,
                &produce_v3_body(&topic, partition as i32, acks, &batch),
            );
            let mut stream = TcpStream::connect(leader).expect("connect flooder");
            stream
                .set_write_timeout(Some(Duration::from_millis(200)))
                .expect("write timeout");
            let (stop, sent_bytes) = (stop.clone(), sent_bytes.clone());
            flooders.push(thread::spawn(move || {
                let mut mine = 0u64;
                while mine < FLOOD_BYTES_MAX && !stop.load(Ordering::Relaxed) {
                    let mut at = 0;
                    while at < request.len() {
                        if stop.load(Ordering::Relaxed) {
                            return stream;
                        }
                        match stream.write(&request[at..]) {
                            Ok(n) => at += n,
                            Err(_) => continue,
                        }
                    }
                    mine += request.len() as u64;
                    sent_bytes.fetch_add(request.len() as u64, Ordering::Relaxed);
                }
                stream
            }));
        }
    }
    let started = Instant::now();
    let mut rss_max = rss_before;
    while started.elapsed() < Duration::from_secs(FLOOD_SECONDS) {
        rss_max = rss_max.max(broker.rss_bytes());
        thread::sleep(Duration::from_millis(25));
    }
    stop.store(true, Ordering::Relaxed);
    let streams: Vec<TcpStream> = flooders
        .into_iter()
        .map(|f| f.join().expect("flooder"))
        .collect();
    // Keep measuring while what was read drains to disk.
    let drain = Instant::now();
    while drain.elapsed() < Duration::from_secs(3) {
        rss_max = rss_max.max(broker.rss_bytes());
        thread::sleep(Duration::from_millis(25));
    }
    drop(streams);
    let sent = sent_bytes.load(Ordering::Relaxed);
    eprintln!(
        "flood: {} MiB written in {:?}; broker RSS {} MiB before, {} MiB at most",
        sent >> 20,
        started.elapsed(),
        rss_before >> 20,
        rss_max >> 20
    );
    let shards = broker.ready_line().brokers.len() as u64;
    let bound = shards * SHARD_INFLIGHT_BYTES_MAX + SLACK_BYTES;
    healthy.finish(Duration::from_secs(15));
    assert!(
        rss_max.saturating_sub(rss_before) <= bound,
        "a producer flood grew the broker's RSS from {} MiB to {} MiB (bound +{} MiB = {shards} \
         shards x 512 MiB + {} MiB)",
        rss_before >> 20,
        rss_max >> 20,
        bound >> 20,
        SLACK_BYTES >> 20
    );
}
