//! Shared by the `compression.type` tests: raw Produce v3 of hand-built batches to a
//! partition's leader, and the stored batches read back by a raw Fetch.

#![allow(dead_code)]

use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, TimestampType};
use sluice::log::testing::encode_batch;

use crate::common::raw::{self, BatchHeader, Reply};
use crate::common::{leader_address, Broker};

/// A batch of `values` (keys `k0`, `k1`, ...) from producer `producer_id` (-1: not
/// idempotent) at sequence 0, epoch 0.
pub fn batch(compression: Compression, values: &[&[u8]], producer_id: i64) -> Bytes {
    let idempotent = producer_id >= 0;
    let records: Vec<Record> = values
        .iter()
        .zip(0..)
        .map(|(value, i)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: if idempotent { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            // Consecutive sequences keep the encoder from splitting the batch.
            sequence: i,
            timestamp: 1_000 + i64::from(i),
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::copy_from_slice(value)),
            headers: Default::default(),
        })
        .collect();
    encode_batch(&records, compression)
}

/// A connection to the shard leading partition 0 of `topic`.
pub fn leader(broker: &Broker, topic: &str) -> TcpStream {
    TcpStream::connect(leader_address(broker, topic, 0)).expect("connect to the leader")
}

/// Produces `batch` to partition 0 with acks=all: (error code, base offset).
pub fn produce(stream: &mut TcpStream, topic: &str, batch: &[u8]) -> (i16, i64) {
    let body = raw::produce_v3_body(topic, 0, -1, batch);
    let reply = raw::round_trip(stream, 0, 3, 31, &body, Duration::from_secs(30));
    let Reply::Frame(frame) = reply else {
        panic!("Produce v3 got no response: {reply:?}");
    };
    raw::parse_produce_v3_response(&frame, 31)
}

/// The headers of the batches stored in partition 0, as a raw Fetch returns them.
pub fn stored(stream: &mut TcpStream, topic: &str) -> Vec<BatchHeader> {
    let (error_code, _, batches) = raw::fetch_batch_headers(stream, topic, 0, 0, 1 << 20);
    assert_eq!(error_code, 0, "Fetch error");
    batches
}

/// Every record stored in partition 0, decoded from a raw Fetch (any codec, whatever the
/// test's librdkafka was built with).
pub fn stored_records(stream: &mut TcpStream, topic: &str) -> Vec<Record> {
    let (error_code, _, records) = raw::fetch_record_set(stream, topic, 0, 0, 1 << 20);
    assert_eq!(error_code, 0, "Fetch error");
    let mut records = Bytes::from(records);
    RecordBatchDecoder::decode_all(&mut records)
        .expect("stored batches decode")
        .into_iter()
        .flat_map(|set| set.records)
        .collect()
}
