//! Fetch response assembly: reading whole batches from a partition's in-memory tail
//! (`PartitionLog::read`) and encoding the response with the broker's piece-list encoder
//! (`protocol::fetch_response::encode`), next to the codec crate's encoder with records
//! copied into one buffer per partition (what the encoder avoids).
//!
//! Small by default (CI: `cargo test --benches` runs each case once);
//! `SLUICE_BENCH_SIZE=large` adds 256 partitions and 1 MiB per partition.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::{Encodable, StrBytes};
use sluice::log::testing::make_batch;
use sluice::log::{FlushPolicy, LogConfig, PartitionLog};
use sluice::protocol::fetch_response::{
    encode, FetchPartitionOut, FetchResponseOut, FetchTopicOut,
};

// The broker's allocator (src/main.rs), so the benches measure what it does.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const VERSION: i16 = 12;

fn large() -> bool {
    std::env::var("SLUICE_BENCH_SIZE").as_deref() == Ok("large")
}

fn response(partitions: i32, chunks: &[Bytes]) -> FetchResponseOut {
    FetchResponseOut {
        error_code: 0,
        session_id: 0,
        topics: vec![FetchTopicOut {
            name: "bench-topic".to_owned(),
            topic_id: uuid::Uuid::nil(),
            partitions: (0..partitions)
                .map(|p| FetchPartitionOut {
                    partition_index: p,
                    error_code: 0,
                    high_watermark: 1_000_000,
                    last_stable_offset: 1_000_000,
                    log_start_offset: 0,
                    aborted_transactions: None,
                    records: chunks.to_vec(),
                })
                .collect(),
        }],
    }
}

fn codec_response(partitions: i32, chunks: &[Bytes]) -> Bytes {
    let mut joined = BytesMut::new();
    for chunk in chunks {
        joined.extend_from_slice(chunk);
    }
    let records = joined.freeze();
    let response = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str("bench-topic")))
        .with_partitions(
            (0..partitions)
                .map(|p| {
                    PartitionData::default()
                        .with_partition_index(p)
                        .with_high_watermark(1_000_000)
                        .with_last_stable_offset(1_000_000)
                        .with_records(Some(records.clone()))
                })
                .collect(),
        )]);
    let mut buf = BytesMut::with_capacity(response.compute_size(VERSION).expect("size") + 16);
    response.encode(&mut buf, VERSION).expect("encode");
    buf.freeze()
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("fetch_assembly");
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(2));
    // Per partition: 16 small batches (tailing consumers), or one large chunk.
    let small: Vec<Bytes> = (0..16)
        .map(|_| Bytes::from(make_batch(10, 1_000, 0)))
        .collect();
    let big_bytes = if large() {
        (1 << 20) - 61
    } else {
        (64 << 10) - 61
    };
    let big = vec![Bytes::from(make_batch(100, big_bytes, 0))];
    let mut partition_counts = vec![1, 16];
    if large() {
        partition_counts.push(256);
    }
    for partitions in partition_counts {
        for (shape, chunks) in [("16x1KiB", &small), ("1xlarge", &big)] {
            let bytes: usize = chunks.iter().map(Bytes::len).sum::<usize>() * partitions as usize;
            group.throughput(Throughput::Bytes(bytes as u64));
            let id = format!("{partitions}p/{shape}");
            group.bench_with_input(BenchmarkId::new("pieces", &id), chunks, |b, chunks| {
                b.iter(|| encode(&response(partitions, chunks), VERSION, 7).expect("encode"))
            });
            group.bench_with_input(BenchmarkId::new("codec_copy", &id), chunks, |b, chunks| {
                b.iter(|| codec_response(partitions, chunks))
            });
        }
    }
    group.finish();
}

/// Reading the tail from the log's memory cache, then encoding: a tailing consumer's fetch.
fn bench_read_and_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("fetch_assembly");
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(2));
    let tmp = {
        let base = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
        std::fs::create_dir_all(&base).expect("bench dir");
        tempfile::tempdir_in(base).expect("tempdir")
    };
    let path = tmp.path().join("fetch-0");
    let batches = 64;
    sluice::io::block_on_local(async {
        let config = LogConfig {
            flush: FlushPolicy::Never,
            retention_ms: None,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(path, config).await.expect("open");
        let mut last = 0;
        for _ in 0..batches {
            last = log
                .append(Bytes::from(make_batch(10, 1_000, 0)), 0)
                .expect("append")
                .last_offset;
        }
        log.wait_durable(last).await.expect("written");
        let total: usize = log.read(0, usize::MAX).await.expect("read").bytes_len();
        group.throughput(Throughput::Bytes(total as u64));
        group.bench_function("read_tail_and_encode/64x1KiB", |b| {
            b.iter(|| {
                let read = futures_lite::future::block_on(log.read(0, 1 << 20)).expect("read");
                let response = FetchResponseOut {
                    error_code: 0,
                    session_id: 0,
                    topics: vec![FetchTopicOut {
                        name: "bench-topic".to_owned(),
                        topic_id: uuid::Uuid::nil(),
                        partitions: vec![FetchPartitionOut {
                            partition_index: 0,
                            error_code: 0,
                            high_watermark: read.high_watermark,
                            last_stable_offset: read.last_stable_offset,
                            log_start_offset: read.log_start_offset,
                            aborted_transactions: None,
                            records: read.chunks,
                        }],
                    }],
                };
                encode(&response, VERSION, 7).expect("encode")
            })
        });
        log.delete().await.expect("delete");
    });
    group.finish();
}

criterion_group!(benches, bench_encode, bench_read_and_encode);
criterion_main!(benches);
