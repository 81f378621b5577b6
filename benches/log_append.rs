//! Append throughput of `PartitionLog` under each flush policy, and read throughput: tailing
//! (recent batches served from memory) and cold (O_DIRECT reads of segment files after a
//! reopen, so nothing is cached).
//!
//! `SLUICE_BENCH_SIZE=large` runs the real sizes (1000 × 100 B records per batch and 1 MiB
//! batches, 256 MiB per iteration); the default small size keeps CI runs short so the bench
//! never rots. Tailing reads always cover 8 MiB, which fits the log's in-memory tail.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sluice::log::testing::make_batch;
use sluice::log::{FlushPolicy, LogConfig, PartitionLog};

// The broker's allocator (src/main.rs), so the benches measure what it does.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

struct Size {
    bytes_per_iteration: usize,
}

fn size() -> Size {
    match std::env::var("SLUICE_BENCH_SIZE").as_deref() {
        Ok("large") => Size {
            bytes_per_iteration: 256 << 20,
        },
        _ => Size {
            bytes_per_iteration: 8 << 20,
        },
    }
}

fn data_dir() -> tempfile::TempDir {
    let base = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&base).expect("bench dir");
    tempfile::tempdir_in(base).expect("tempdir")
}

/// Appends `batch` until `total` bytes were appended, waiting for durability of the last one.
fn run(policy: FlushPolicy, batch: &Bytes, total: usize, iterations: u64) -> Duration {
    let tmp = data_dir();
    let path = tmp.path().join("bench-0");
    let batch = batch.clone();
    sluice::io::block_on_local(async move {
        let config = LogConfig {
            flush: policy,
            retention_ms: None,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(path, config).await.expect("open");
        let mut elapsed = Duration::ZERO;
        for _ in 0..iterations {
            let start = Instant::now();
            let mut appended = 0;
            let mut last = 0;
            while appended < total {
                // Keep the queue bounded the way a server's in-flight limits would.
                if log.log_end_offset() - log.high_watermark() > 64 * 1000 {
                    log.wait_durable(log.high_watermark())
                        .await
                        .expect("durable");
                }
                last = log.append(batch.clone(), 0).expect("append").last_offset;
                appended += batch.len();
                if matches!(policy, FlushPolicy::Never) && appended % (32 << 20) < batch.len() {
                    log.wait_durable(last).await.expect("written");
                }
            }
            log.wait_durable(last).await.expect("durable");
            elapsed += start.elapsed();
        }
        log.close().await.expect("close");
        elapsed
    })
}

fn bench_append(c: &mut Criterion) {
    let size = size();
    let small_records = Bytes::from(make_batch(1000, 1000 * 100, 0));
    let large_batch = Bytes::from(make_batch(1, (1 << 20) - 61, 0));
    let policies = [
        (
            "group_commit",
            FlushPolicy::GroupCommit {
                delay_us: 0,
                bytes_max: 8 << 20,
            },
        ),
        ("interval_100ms", FlushPolicy::IntervalMs(100)),
        ("never", FlushPolicy::Never),
    ];
    let mut group = c.benchmark_group("log_append");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(size.bytes_per_iteration as u64));
    for (name, policy) in policies {
        for (shape, batch) in [("1000x100B", &small_records), ("1MiB", &large_batch)] {
            let total = size.bytes_per_iteration;
            group.bench_function(format!("{name}/{shape}"), |b| {
                b.iter_custom(|iterations| run(policy, batch, total, iterations))
            });
        }
    }
    group.finish();
}

/// Bytes of the log read per tailing iteration: within the log's in-memory tail (16 MiB).
const TAIL_BYTES: usize = 8 << 20;
/// `max_bytes` of each read, as a consumer's fetch.max.bytes-sized fetch would ask.
const READ_BYTES_MAX: usize = 1 << 20;

/// Reads everything from offset 0 to the high watermark, `iterations` times; with `cold`
/// the log is closed and reopened first so every read goes to the segment files.
fn run_read(batch: &Bytes, total: usize, cold: bool, iterations: u64) -> Duration {
    let tmp = data_dir();
    let path = tmp.path().join("bench-0");
    let batch = batch.clone();
    sluice::io::block_on_local(async move {
        let config = LogConfig {
            flush: FlushPolicy::Never,
            retention_ms: None,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(path.clone(), config.clone())
            .await
            .expect("open");
        let mut appended = 0;
        let mut last = 0;
        while appended < total {
            last = log.append(batch.clone(), 0).expect("append").last_offset;
            appended += batch.len();
            if appended % (32 << 20) < batch.len() {
                log.wait_durable(last).await.expect("written");
            }
        }
        log.wait_durable(last).await.expect("written");
        if cold {
            log.close().await.expect("close");
            log = PartitionLog::open(path, config).await.expect("reopen");
        }
        let end = log.high_watermark();
        let records_per_batch = sluice::log::testing::batch_offsets(&batch)[0].1 + 1;
        let mut elapsed = Duration::ZERO;
        for _ in 0..iterations {
            let start = Instant::now();
            let mut offset = 0;
            let mut bytes = 0;
            while offset < end {
                let read = log.read(offset, READ_BYTES_MAX).await.expect("read");
                let len = read.bytes_len();
                // Every batch is a copy of `batch`: advance without parsing (or copying).
                offset += (len / batch.len()) as i64 * records_per_batch;
                bytes += len;
                black_box(read);
            }
            elapsed += start.elapsed();
            assert!(bytes >= total, "read back {bytes} of {total} bytes");
        }
        log.close().await.expect("close");
        elapsed
    })
}

fn bench_read(c: &mut Criterion) {
    let size = size();
    let small_records = Bytes::from(make_batch(1000, 1000 * 100, 0));
    let large_batch = Bytes::from(make_batch(1, (1 << 20) - 61, 0));
    let mut group = c.benchmark_group("log_read");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for (mode, cold, total) in [
        ("tail", false, TAIL_BYTES),
        ("cold", true, size.bytes_per_iteration),
    ] {
        group.throughput(Throughput::Bytes(total as u64));
        for (shape, batch) in [("1000x100B", &small_records), ("1MiB", &large_batch)] {
            group.bench_function(format!("{mode}/{shape}"), |b| {
                b.iter_custom(|iterations| run_read(batch, total, cold, iterations))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_append, bench_read);
criterion_main!(benches);
