//! The crash-consistency checker. An idempotent acks=all producer sends uniquely numbered
//! messages to many partitions while the broker is SIGKILLed at random moments and
//! restarted. Afterwards a verifier reads every partition and checks that every
//! acknowledged message is present exactly once, at the offset it was acknowledged with,
//! in send order within its partition, and that nothing that was never sent appears.
//!
//! CI runs a few cycles; `SLUICE_CRASH_CYCLES=20 cargo test --release --test
//! crash_kill9_cycles_keep_every_acknowledged_message -- --nocapture` is the long mode.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    assign, consumer, create_topic, producer, topic_name, Broker, BrokerOptions, CLIENT_TIMEOUT,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};

const PARTITIONS_COUNT: i32 = 8;
const CYCLES_DEFAULT: usize = 3;

/// A deterministic, seedable spread of kill moments (no rand dependency needed).
fn next_delay_ms(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    200 + (*state >> 33) % 800
}

#[test]
fn crash_kill9_cycles_keep_every_acknowledged_message() {
    let cycles: usize = std::env::var("SLUICE_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CYCLES_DEFAULT);
    let mut broker = Broker::start_with(BrokerOptions {
        fixed_ports: true,
        ..BrokerOptions::default()
    });
    let topic = topic_name("crash");
    create_topic(broker.bootstrap(), &topic, PARTITIONS_COUNT);

    // The producer runs on its own thread for the whole test, across every crash.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let bootstrap = broker.bootstrap().to_owned();
    let producer_thread = {
        let (stop, sent, topic) = (Arc::clone(&stop), Arc::clone(&sent), topic.clone());
        thread::spawn(move || {
            let producer = producer(
                &bootstrap,
                &[
                    ("enable.idempotence", "true"),
                    ("message.timeout.ms", "120000"),
                    ("linger.ms", "2"),
                ],
            );
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let key = n.to_string();
                let value = format!("crash-{n}");
                let partition = (n % PARTITIONS_COUNT as usize) as i32;
                let record = BaseRecord::with_opaque_to(&topic, Box::new(n))
                    .key(key.as_bytes())
                    .payload(value.as_bytes())
                    .partition(partition);
                match producer.send(record) {
                    Ok(()) => {
                        n += 1;
                        sent.store(n, Ordering::Relaxed);
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        producer.poll(Duration::from_millis(5));
                    }
                    Err((error, _)) => panic!("send {n}: {error}"),
                }
                if n.is_multiple_of(256) {
                    producer.poll(Duration::from_millis(0));
                    // Keep the rate modest so each cycle has a bounded amount of work.
                    thread::sleep(Duration::from_millis(1));
                }
            }
            producer
                .flush(Duration::from_secs(120))
                .expect("final flush");
            producer.poll(Duration::from_millis(100));
            let deliveries = producer.context().deliveries.lock().expect("lock").clone();
            (n, deliveries)
        })
    };

    let mut seed = 0x5eed_u64;
    for cycle in 0..cycles {
        thread::sleep(Duration::from_millis(next_delay_ms(&mut seed)));
        let before = sent.load(Ordering::Relaxed);
        broker.kill();
        eprintln!("cycle {cycle}: SIGKILL after {before} messages sent");
        broker.restart();
    }
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (sent_count, deliveries) = producer_thread.join().expect("producer thread");

    let acked: HashMap<usize, (i32, i64)> = deliveries
        .iter()
        .filter(|d| d.error.is_none())
        .map(|d| (d.id, (d.partition, d.offset)))
        .collect();
    let failed = deliveries.iter().filter(|d| d.error.is_some()).count();
    assert!(
        acked.len() > 1000,
        "too little was acknowledged to prove anything: {} of {sent_count}",
        acked.len()
    );

    // Read every partition up to its high watermark.
    let reader: BaseConsumer = consumer(broker.bootstrap(), &[]);
    let starts: Vec<(i32, i64)> = (0..PARTITIONS_COUNT).map(|p| (p, 0)).collect();
    assign(&reader, &topic, &starts);
    let mut ends = HashMap::new();
    for partition in 0..PARTITIONS_COUNT {
        let (_, high) = reader
            .fetch_watermarks(&topic, partition, CLIENT_TIMEOUT)
            .expect("watermarks");
        ends.insert(partition, high);
    }
    let total: i64 = ends.values().sum();
    let mut seen: HashMap<usize, (i32, i64)> = HashMap::new();
    let mut last_in_partition: HashMap<i32, usize> = HashMap::new();
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut read = 0i64;
    while read < total {
        assert!(Instant::now() < deadline, "read {read} of {total} records");
        let Some(result) = reader.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = result.expect("fetch");
        read += 1;
        let value = std::str::from_utf8(message.payload().unwrap_or_default()).expect("utf8");
        let n: usize = value
            .strip_prefix("crash-")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("a record that was never produced: {value:?}"));
        assert!(
            n < sent_count,
            "record {n} was never sent ({sent_count} sent)"
        );
        let partition = message.partition();
        assert_eq!(
            n % PARTITIONS_COUNT as usize,
            partition as usize,
            "record {n} in the wrong partition"
        );
        if let Some(&previous) = last_in_partition.get(&partition) {
            assert!(
                previous < n,
                "partition {partition}: {n} after {previous} (reordered or duplicated)"
            );
        }
        last_in_partition.insert(partition, n);
        let previous = seen.insert(n, (partition, message.offset()));
        assert!(
            previous.is_none(),
            "record {n} appears twice: {previous:?} and offset {}",
            message.offset()
        );
    }
    let mut missing = Vec::new();
    for (n, at) in &acked {
        match seen.get(n) {
            Some(found) => assert_eq!(
                found, at,
                "record {n} acknowledged at {at:?} but stored at {found:?}"
            ),
            None => missing.push(*n),
        }
    }
    missing.sort_unstable();
    assert!(
        missing.is_empty(),
        "{} acknowledged records are lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    eprintln!(
        "{cycles} kill -9 cycles: {sent_count} sent, {} acknowledged, {failed} failed, {} stored, all verified",
        acked.len(),
        seen.len()
    );
}
