//! `sluice bench --transactions` writes its records in transactions and commits them: a
//! read_committed consumer then sees exactly the records the bench reports as committed, no
//! record is left outside a committed transaction, and every transaction left a commit marker
//! in the partitions it wrote.

use crate::common;

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use common::{cli, Consumed, CLIENT_TIMEOUT};

const PARTITIONS: i32 = 3;
const MESSAGE_BYTES: usize = 100;
const TRANSACTION_RECORDS: u64 = 200;

#[test]
fn bench_transactions_are_committed_and_read_committed_sees_them() {
    let broker = common::Broker::start();
    let topic = common::topic_name("bench-txn");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let json_path = out_dir.path().join("report.json");
    let partitions = PARTITIONS.to_string();
    let message_bytes = MESSAGE_BYTES.to_string();
    let transaction_records = TRANSACTION_RECORDS.to_string();
    let json_arg = json_path.to_string_lossy().into_owned();
    let output = cli::sluice(
        &[
            "bench",
            "--topic",
            &topic,
            "--partitions",
            &partitions,
            "--message-size",
            &message_bytes,
            "--transactions",
            "--transaction-records",
            &transaction_records,
            "--acks",
            "all",
            "--max-in-flight",
            "5",
            "--consumers",
            "0",
            "--rate",
            "4000",
            "--warmup-secs",
            "0",
            "--duration-secs",
            "2",
            "--quiet",
            "--json",
            &json_arg,
        ],
        broker.bootstrap(),
    );
    cli::stdout(&output);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("read report")).expect("json");
    let committed_msgs = report["committed_msgs"].as_u64().expect("committed_msgs");
    let committed_transactions = report["committed_transactions"]
        .as_u64()
        .expect("committed_transactions");
    assert!(
        committed_transactions >= 2,
        "expected several transactions, got {committed_transactions} ({committed_msgs} msgs)"
    );
    // Every transaction but the last (committed when the run stopped) is full.
    assert!(committed_msgs > (committed_transactions - 1) * TRANSACTION_RECORDS);
    assert!(committed_msgs <= committed_transactions * TRANSACTION_RECORDS);

    let (read_committed, seen) =
        read_from_start(broker.bootstrap(), &topic, "read_committed", committed_msgs);
    assert_eq!(seen.len() as u64, committed_msgs, "read_committed count");
    assert!(seen
        .iter()
        .all(|r| r.value.as_ref().map(Vec::len) == Some(MESSAGE_BYTES)));
    // Nothing uncommitted is left behind either (the last transaction was committed too).
    let (_, all) = read_from_start(
        broker.bootstrap(),
        &topic,
        "read_uncommitted",
        committed_msgs,
    );
    assert_eq!(all.len() as u64, committed_msgs, "read_uncommitted count");

    // The offsets past the records are the commit markers: at least one per transaction, at
    // most one per transaction and partition.
    let mut high_watermarks_total = 0u64;
    for partition in 0..PARTITIONS {
        let (_, high) = read_committed
            .fetch_watermarks(&topic, partition, CLIENT_TIMEOUT)
            .expect("watermarks");
        high_watermarks_total += u64::try_from(high).expect("non-negative high watermark");
    }
    let markers = high_watermarks_total - committed_msgs;
    assert!(
        (committed_transactions..=committed_transactions * PARTITIONS as u64).contains(&markers),
        "{markers} control records for {committed_transactions} transactions"
    );
}

/// Reads every partition from offset 0 at `isolation_level` until `count` records arrived
/// (and briefly after, to catch extras).
fn read_from_start(
    bootstrap: &str,
    topic: &str,
    isolation_level: &str,
    count: u64,
) -> (BaseConsumer, Vec<Consumed>) {
    let consumer = common::consumer(bootstrap, &[("isolation.level", isolation_level)]);
    let starts: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    common::assign(&consumer, topic, &starts);
    let seen = common::consume_count(&consumer, count as usize, Duration::from_secs(30));
    (consumer, seen)
}
