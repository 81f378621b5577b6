//! The produce path's CPU work on record batches, through the public log API:
//! `PartitionLog::append` validates each RecordBatch v2 (magic, lengths, CRC32C over the
//! batch), assigns offsets in place, and queues it for the segment writer. Only `append`
//! is timed; letting the writer drain between rounds is not. Raw CRC32C over the same bytes
//! is the baseline: validation cannot be faster than that.
//!
//! Small by default (CI: `cargo test --benches` runs each case once);
//! `SLUICE_BENCH_SIZE=large` uses 1000 × 100 B and 1 MiB batches.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice::log::testing::make_batch;
use sluice::log::{FlushPolicy, LogConfig, PartitionLog};

// The broker's allocator (src/main.rs), so the benches measure what it does.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Appends timed per round before the writer is allowed to drain.
const ROUND: u64 = 32;

fn large() -> bool {
    std::env::var("SLUICE_BENCH_SIZE").as_deref() == Ok("large")
}

/// `(name, record set)`: the record set of one partition of one produce request.
fn record_sets() -> Vec<(String, Vec<u8>)> {
    let (records, payload) = if large() {
        (1000, 100_000)
    } else {
        (100, 10_000)
    };
    let mut sets = vec![(
        format!("1x{records}rec"),
        make_batch(records, payload, 1_700_000_000_000),
    )];
    // Many small batches in one record set: offset assignment per batch dominates more.
    let mut many = Vec::new();
    for _ in 0..16 {
        many.extend_from_slice(&make_batch(10, 1_000, 1_700_000_000_000));
    }
    sets.push(("16x10rec".to_owned(), many));
    if large() {
        sets.push(("1x1MiB".to_owned(), make_batch(1, (1 << 20) - 61, 0)));
    }
    sets
}

fn data_dir() -> tempfile::TempDir {
    let base = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&base).expect("bench dir");
    tempfile::tempdir_in(base).expect("tempdir")
}

fn time_appends(set: &[u8], iterations: u64) -> Duration {
    let tmp = data_dir();
    let path = tmp.path().join("validate-0");
    let set = set.to_vec();
    sluice::io::block_on_local(async move {
        let config = LogConfig {
            flush: FlushPolicy::Never,
            retention_ms: None,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(path, config).await.expect("open");
        let mut elapsed = Duration::ZERO;
        let mut done = 0;
        while done < iterations {
            let n = ROUND.min(iterations - done);
            // Uniquely owned buffers, as the server hands them over (offsets rewritten in place).
            let inputs: Vec<Bytes> = (0..n).map(|_| Bytes::from(set.clone())).collect();
            let start = Instant::now();
            let mut last = 0;
            for records in inputs {
                last = log.append(records, 0).expect("append").last_offset;
            }
            elapsed += start.elapsed();
            log.wait_durable(last).await.expect("written");
            done += n;
        }
        log.delete().await.expect("delete");
        elapsed
    })
}

fn bench_validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_validate");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(2));
    for (name, set) in record_sets() {
        group.throughput(Throughput::Bytes(set.len() as u64));
        group.bench_with_input(BenchmarkId::new("crc32c_only", &name), &set, |b, set| {
            b.iter(|| crc32c::crc32c(&set[21..]))
        });
        group.bench_with_input(
            BenchmarkId::new("append_validate_assign", &name),
            &set,
            |b, set| b.iter_custom(|iterations| time_appends(set, iterations)),
        );
    }
    group.finish();
}

criterion_group!(benches, bench_validate);
criterion_main!(benches);
