//! Request decoding as the broker does it for every frame: read the length-prefixed frame
//! (`protocol::frame::read_frame`), parse the header prefix and full header, then decode the
//! body with the codec. Produce requests of 1, 16 and 256 partitions (one ~10 KiB batch
//! each) and a 256-partition Fetch request.
//!
//! Small inputs by default (runs in CI: `cargo test --benches` runs each bench once);
//! `SLUICE_BENCH_SIZE=large` adds the 256-partition produce case and larger batches.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::{ApiKey, BrokerId, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use sluice::log::testing::make_batch;
use sluice::protocol::frame::read_frame;
use sluice::protocol::request::{decode_body, decode_header, HeaderPrefix};

// The broker's allocator (src/main.rs), so the benches measure what it does.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;

fn large() -> bool {
    std::env::var("SLUICE_BENCH_SIZE").as_deref() == Ok("large")
}

/// A size-prefixed request frame as a client sends it.
fn frame<T: Encodable>(api_key: ApiKey, version: i16, body: &T) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("bench")));
    let header_version = api_key.request_header_version(version);
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header.encode(&mut buf, header_version).expect("header");
    body.encode(&mut buf, version).expect("body");
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.freeze()
}

fn produce_frame(partitions: i32, records: i32, payload_bytes: usize) -> Bytes {
    let batch = Bytes::from(make_batch(records, payload_bytes, 1_700_000_000_000));
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("bench-topic")))
            .with_partition_data(
                (0..partitions)
                    .map(|p| {
                        PartitionProduceData::default()
                            .with_index(p)
                            .with_records(Some(batch.clone()))
                    })
                    .collect(),
            )]);
    frame(ApiKey::Produce, PRODUCE_VERSION, &request)
}

fn fetch_frame(partitions: i32) -> Bytes {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("bench-topic")))
            .with_partitions(
                (0..partitions)
                    .map(|p| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(1_000_000)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )]);
    frame(ApiKey::Fetch, FETCH_VERSION, &request)
}

/// What the connection and dispatcher do with one frame before the handler runs.
fn decode<T: kafka_protocol::protocol::Decodable>(wire: &Bytes, api_key: ApiKey) -> T {
    let mut reader = futures_lite::io::Cursor::new(wire.clone());
    let mut body = futures_lite::future::block_on(read_frame(&mut reader, 100 << 20))
        .expect("frame")
        .expect("not eof");
    let prefix = HeaderPrefix::parse(&body).expect("prefix");
    decode_header(api_key, prefix.api_version, &mut body).expect("header");
    decode_body::<T>("bench", prefix.api_version, &mut body).expect("body")
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_decode");
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(2));
    let (records, payload) = if large() {
        (1000, 100_000)
    } else {
        (100, 10_000)
    };
    let mut partition_counts = vec![1, 16];
    if large() {
        partition_counts.push(256);
    }
    for partitions in partition_counts {
        let wire = produce_frame(partitions, records, payload);
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("produce", format!("{partitions}p")),
            &wire,
            |b, wire| {
                b.iter(|| {
                    let request: ProduceRequest = decode(wire, ApiKey::Produce);
                    assert_eq!(
                        request.topic_data[0].partition_data.len(),
                        partitions as usize
                    );
                    request
                })
            },
        );
    }
    let wire = fetch_frame(256);
    group.throughput(Throughput::Elements(256));
    group.bench_with_input(BenchmarkId::new("fetch", "256p"), &wire, |b, wire| {
        b.iter(|| {
            let request: FetchRequest = decode(wire, ApiKey::Fetch);
            assert_eq!(request.topics[0].partitions.len(), 256);
            request
        })
    });
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
