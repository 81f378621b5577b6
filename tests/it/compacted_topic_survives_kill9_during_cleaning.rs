//! kill -9 while the log cleaner is rewriting segments loses nothing it must keep: after a
//! restart every key's newest acknowledged record is there at its offset, every record read
//! is the one acknowledged at that offset, and cleaning then completes.

use crate::common;
use crate::compaction_support;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{produce_all, producer, topic_name, wait_until, Broker, BrokerOptions, TestRecord};
use compaction_support::{
    acknowledged, check_against_acknowledged, create_topic_with_configs, read_all, Acknowledged,
};

const KEYS: usize = 200;
const ROUNDS: usize = 25;
const CYCLES: usize = 2;

/// Whether the cleaner has output in flight: a `.cleaned` file next to the segments.
fn cleaning(partition_dir: &Path) -> bool {
    std::fs::read_dir(partition_dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().ends_with(".cleaned"))
    })
}

#[test]
fn compacted_topic_survives_kill9_during_cleaning() {
    let mut broker = Broker::start_with(BrokerOptions {
        fixed_ports: true,
        ..BrokerOptions::default()
    });
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("compacted-kill");
    create_topic_with_configs(
        &bootstrap,
        &topic,
        &[("cleanup.policy", "compact"), ("segment.bytes", "65536")],
    );
    let partition_dir = broker.data_dir().join(format!("{topic}-0"));
    let mut acked = Acknowledged::new();
    let mut caught_mid_clean = 0;
    for cycle in 0..CYCLES {
        let mut records = Vec::new();
        for round in 0..ROUNDS {
            for key in 0..KEYS {
                records.push(TestRecord::new(
                    format!("key-{key}"),
                    format!("cycle {cycle} round {round} key {key} {}", "x".repeat(250)),
                ));
            }
        }
        // Small batches: segments roll only between batches.
        let producer = producer(&bootstrap, &[("batch.num.messages", "20")]);
        let deliveries = produce_all(&producer, &topic, &records);
        acked.extend(acknowledged(&records, &deliveries));
        drop(producer);
        // Kill the moment cleaner output shows up (or after a while if it never does).
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cleaning(&partition_dir) && Instant::now() < deadline {
            std::thread::yield_now();
        }
        if cleaning(&partition_dir) {
            caught_mid_clean += 1;
        }
        broker.kill();
        broker.restart();
        let consumed = read_all(&bootstrap, &topic);
        check_against_acknowledged(&consumed, &acked);
        wait_until(
            "cleaning to finish after the restart",
            Duration::from_secs(60),
            || check_against_acknowledged(&read_all(&bootstrap, &topic), &acked) <= KEYS,
        );
    }
    eprintln!(
        "{caught_mid_clean} of {CYCLES} kills landed while a cleaned segment was being written"
    );
}
