//! Append throughput of one `PartitionLog` with and without the log cleaner compacting
//! another log on the same executor (one shard), as the broker runs it: in its own
//! low-share task queue (`spawn_background`, `LOG_CLEANER_SHARES`), with the shard's key
//! index (`LOG_CLEANER_OFFSET_MAP_BYTES`). The compacted log is kept busy: each round
//! rewrites every key (1000 keys, 100-byte values, small segments) and is then cleaned, so
//! the cleaner keeps reading, filtering and rewriting segments while the appends run.
//!
//! `SLUICE_BENCH_SIZE=large` appends 256 MiB per iteration; the default 8 MiB keeps CI short.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::records::Compression;
use sluice::constants::{LOG_CLEANER_OFFSET_MAP_BYTES, LOG_CLEANER_SHARES};
use sluice::log::testing::{keyed_batch, make_batch};
use sluice::log::{CleanupPolicy, FlushPolicy, LogConfig, OffsetMap, PartitionLog};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const KEYS: usize = 1000;
const KEYS_PER_BATCH: usize = 100;

fn bytes_per_iteration() -> usize {
    match std::env::var("SLUICE_BENCH_SIZE").as_deref() {
        Ok("large") => 256 << 20,
        _ => 8 << 20,
    }
}

fn data_dir() -> tempfile::TempDir {
    let base = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&base).expect("bench dir");
    tempfile::tempdir_in(base).expect("tempdir")
}

/// One round of writes to every key, as batches of `KEYS_PER_BATCH` records.
fn round(round: usize) -> Vec<Bytes> {
    let value = "v".repeat(100);
    (0..KEYS / KEYS_PER_BATCH)
        .map(|b| {
            let keys: Vec<String> = (0..KEYS_PER_BATCH)
                .map(|i| format!("key-{}", b * KEYS_PER_BATCH + i))
                .collect();
            let records: Vec<(Option<&str>, Option<&str>)> = keys
                .iter()
                .map(|k| (Some(k.as_str()), Some(value.as_str())))
                .collect();
            keyed_batch(Compression::None, &records, round as i64)
        })
        .collect()
}

/// The cleaner's workload: rounds of writes to a compacted log (`rounds`, over and over),
/// each followed by a pass. Counts the segments it rewrote into `rewritten`.
async fn keep_cleaning(log: PartitionLog, rounds: Vec<Vec<Bytes>>, rewritten: Rc<Cell<usize>>) {
    let mut map = OffsetMap::with_budget(LOG_CLEANER_OFFSET_MAP_BYTES);
    for batches in rounds.iter().cycle() {
        let summary = log.clean(0, &mut map).await.expect("clean");
        rewritten.set(rewritten.get() + summary.segments_rewritten);
        let mut last = 0;
        for batch in batches {
            last = log.append(batch.clone(), 0).expect("append").last_offset;
        }
        log.wait_durable(last).await.expect("written");
    }
}

/// Opens the compacted log with `rounds` written once, so that its first pass has work.
async fn compacted_log(dir: std::path::PathBuf, rounds: &[Vec<Bytes>]) -> PartitionLog {
    let log = PartitionLog::open(
        dir,
        LogConfig {
            segment_bytes: 256 << 10,
            flush: FlushPolicy::Never,
            retention_ms: None,
            cleanup: CleanupPolicy {
                delete: false,
                compact: true,
            },
            ..LogConfig::default()
        },
    )
    .await
    .expect("open");
    let mut last = 0;
    for batch in rounds.iter().flatten() {
        last = log.append(batch.clone(), 0).expect("append").last_offset;
    }
    log.wait_durable(last).await.expect("written");
    log
}

fn run(batch: &Bytes, total: usize, cleaning: bool, iterations: u64) -> Duration {
    let tmp = data_dir();
    let dir = tmp.path().to_path_buf();
    let batch = batch.clone();
    sluice::io::block_on_local(async move {
        let config = LogConfig {
            retention_ms: None,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(dir.join("appended-0"), config)
            .await
            .expect("open");
        let rewritten = Rc::new(Cell::new(0));
        let cleaner = if cleaning {
            let rounds: Vec<Vec<Bytes>> = (0..16).map(round).collect();
            let compacted = compacted_log(dir.join("compacted-0"), &rounds).await;
            Some(sluice::io::spawn_background(
                "log-cleaner",
                LOG_CLEANER_SHARES,
                keep_cleaning(compacted, rounds, Rc::clone(&rewritten)),
            ))
        } else {
            None
        };
        let mut elapsed = Duration::ZERO;
        for _ in 0..iterations {
            let start = Instant::now();
            let mut appended = 0;
            let mut last = 0;
            while appended < total {
                if log.log_end_offset() - log.high_watermark() > 64 * 1000 {
                    log.wait_durable(log.high_watermark())
                        .await
                        .expect("durable");
                }
                last = log.append(batch.clone(), 0).expect("append").last_offset;
                appended += batch.len();
            }
            log.wait_durable(last).await.expect("durable");
            elapsed += start.elapsed();
        }
        drop(cleaner);
        if cleaning {
            eprintln!(
                "cleaner rewrote {} segments during {iterations} iterations",
                rewritten.get()
            );
        }
        log.close().await.expect("close");
        elapsed
    })
}

fn bench_append_while_cleaning(c: &mut Criterion) {
    let total = bytes_per_iteration();
    let batch = Bytes::from(make_batch(1000, 1000 * 100, 0));
    let mut group = c.benchmark_group("log_append_while_cleaning");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(total as u64));
    for (name, cleaning) in [("idle", false), ("cleaning", true)] {
        group.bench_function(format!("group_commit/1000x100B/{name}"), |b| {
            b.iter_custom(|iterations| run(&batch, total, cleaning, iterations))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_append_while_cleaning);
criterion_main!(benches);
