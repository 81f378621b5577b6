//! Helpers for tests and benchmarks: synthetic RecordBatch v2 bytes. Not for production use.

use crate::protocol::batch_layout::{
    put_varint, varint_len, HEADER_BYTES, LOG_OVERHEAD, OFFSET_CRC, OFFSET_CRC_START,
};

/// A CRC-valid, uncompressed RecordBatch v2 with `record_count` records (offset deltas
/// `0..n`, timestamps `timestamp .. timestamp + record_count - 1`) whose records section is
/// exactly `payload_bytes` long: real records (null key unless a 1–3 byte key is needed to hit
/// the size exactly, a filler value, no headers). When `payload_bytes` is too small to hold
/// `record_count` records (about 7 bytes each), the section is as small as they allow.
pub fn make_batch(record_count: i32, payload_bytes: usize, timestamp: i64) -> Vec<u8> {
    make_batch_with(record_count, payload_bytes, timestamp, ProducerFields::NONE)
}

/// The idempotent-producer fields of a batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerFields {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl ProducerFields {
    /// A batch from a producer without idempotence.
    pub const NONE: ProducerFields = ProducerFields {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
}

/// [`make_batch`] with the given producer id, epoch and base sequence.
pub fn make_batch_with(
    record_count: i32,
    payload_bytes: usize,
    timestamp: i64,
    producer: ProducerFields,
) -> Vec<u8> {
    let record_count = record_count.max(1);
    // The broker walks the records of uncompressed batches, so every batch made here must
    // hold real records: a payload too small for `record_count` of them grows to the
    // smallest size that fits.
    let (payload_bytes, records) = (payload_bytes..)
        .find_map(|bytes| records(record_count, bytes).map(|r| (bytes, r)))
        .unwrap_or_default();
    let size = HEADER_BYTES + payload_bytes;
    let mut b = Vec::with_capacity(size);
    b.extend_from_slice(&0i64.to_be_bytes()); // baseOffset
    b.extend_from_slice(&((size - LOG_OVERHEAD) as i32).to_be_bytes()); // batchLength
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
    b.push(2); // magic
    b.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
    b.extend_from_slice(&0i16.to_be_bytes()); // attributes
    b.extend_from_slice(&(record_count - 1).to_be_bytes()); // lastOffsetDelta
    b.extend_from_slice(&timestamp.to_be_bytes()); // baseTimestamp
    b.extend_from_slice(&(timestamp + i64::from(record_count) - 1).to_be_bytes()); // maxTimestamp
    b.extend_from_slice(&producer.producer_id.to_be_bytes());
    b.extend_from_slice(&producer.producer_epoch.to_be_bytes());
    b.extend_from_slice(&producer.base_sequence.to_be_bytes());
    b.extend_from_slice(&record_count.to_be_bytes()); // recordsCount
    b.extend_from_slice(&records);
    debug_assert_eq!(b.len(), size);
    let crc = crc32c::crc32c(&b[OFFSET_CRC_START..]);
    b[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// `count` records of `total_bytes` together, or `None` if they cannot be that size.
fn records(count: i32, total_bytes: usize) -> Option<Vec<u8>> {
    let count_usize = usize::try_from(count).ok()?;
    let each = total_bytes / count_usize;
    let extra = total_bytes % count_usize;
    let mut out = Vec::with_capacity(total_bytes);
    for i in 0..count {
        let target = each + usize::from((i as usize) < extra);
        out.extend_from_slice(&record_of_size(i, target)?);
    }
    Some(out)
}

/// A record with offset and timestamp delta `delta` encoding to exactly `target` bytes.
fn record_of_size(delta: i32, target: usize) -> Option<Vec<u8>> {
    for key_len in [None, Some(1usize), Some(2), Some(3)] {
        let low = target.saturating_sub(24);
        for value_len in (low..=target).rev() {
            if record_size(delta, key_len, value_len) == target {
                return Some(encode_record(delta, key_len, value_len));
            }
        }
    }
    None
}

fn record_body_size(delta: i32, key_len: Option<usize>, value_len: usize) -> usize {
    let key = key_len.map_or(varint_len(-1), |k| varint_len(k as i64) + k);
    1 + varint_len(i64::from(delta))
        + varint_len(i64::from(delta))
        + key
        + varint_len(value_len as i64)
        + value_len
        + varint_len(0)
}

fn record_size(delta: i32, key_len: Option<usize>, value_len: usize) -> usize {
    let body = record_body_size(delta, key_len, value_len);
    varint_len(body as i64) + body
}

fn encode_record(delta: i32, key_len: Option<usize>, value_len: usize) -> Vec<u8> {
    let body = record_body_size(delta, key_len, value_len);
    let mut r = Vec::with_capacity(body + 5);
    put_varint(&mut r, body as i64);
    r.push(0); // attributes
    put_varint(&mut r, i64::from(delta)); // timestampDelta
    put_varint(&mut r, i64::from(delta)); // offsetDelta
    match key_len {
        None => put_varint(&mut r, -1),
        Some(k) => {
            put_varint(&mut r, k as i64);
            r.extend(std::iter::repeat_n(b'k', k));
        }
    }
    put_varint(&mut r, value_len as i64);
    for i in 0..value_len {
        r.push((i as u8).wrapping_mul(31).wrapping_add(7) | 1);
    }
    put_varint(&mut r, 0); // headers
    r
}

/// Base offset, last offset and max timestamp of each batch in `data` (whole batches).
pub fn batch_offsets(data: &[u8]) -> Vec<(i64, i64, i64)> {
    super::batch::batch_offsets(data)
}

/// Concatenates the chunks of a read: whole batches back to back.
pub fn concat_chunks(chunks: &[bytes::Bytes]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunks.iter().map(bytes::Bytes::len).sum());
    for chunk in chunks {
        out.extend_from_slice(chunk);
    }
    out
}

/// A RecordBatch v2 of `records` as (key, value), `None` meaning null, the i-th record
/// stamped `timestamp + i`, encoded with `compression` by the kafka-protocol crate as a
/// producer would.
pub fn keyed_batch(
    compression: kafka_protocol::records::Compression,
    records: &[(Option<&str>, Option<&str>)],
    timestamp: i64,
) -> bytes::Bytes {
    use kafka_protocol::records::{Record, TimestampType};
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: timestamp + i as i64,
            key: key.map(|k| bytes::Bytes::from(k.to_owned())),
            value: value.map(|v| bytes::Bytes::from(v.to_owned())),
            headers: Default::default(),
        })
        .collect();
    encode_batch(&records, compression)
}

/// One RecordBatch v2 of `records`.
pub fn encode_batch(
    records: &[kafka_protocol::records::Record],
    compression: kafka_protocol::records::Compression,
) -> bytes::Bytes {
    use kafka_protocol::records::{RecordBatchEncoder, RecordEncodeOptions};
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("records of test sizes encode");
    buf.freeze()
}
