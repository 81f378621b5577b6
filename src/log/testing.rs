//! Helpers for tests and benchmarks: synthetic RecordBatch v2 bytes. Not for production use.

/// A CRC-valid RecordBatch v2 with `record_count` records (offset deltas `0..n`),
/// `payload_bytes` of filler standing in for the records section, and timestamps
/// `timestamp .. timestamp + record_count - 1`. The log never parses records, so the
/// filler needs no record structure.
pub fn make_batch(record_count: i32, payload_bytes: usize, timestamp: i64) -> Vec<u8> {
    let record_count = record_count.max(1);
    let size = 61 + payload_bytes;
    let mut b = Vec::with_capacity(size);
    b.extend_from_slice(&0i64.to_be_bytes()); // baseOffset
    b.extend_from_slice(&((size - 12) as i32).to_be_bytes()); // batchLength
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
    b.push(2); // magic
    b.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
    b.extend_from_slice(&0i16.to_be_bytes()); // attributes
    b.extend_from_slice(&(record_count - 1).to_be_bytes()); // lastOffsetDelta
    b.extend_from_slice(&timestamp.to_be_bytes()); // baseTimestamp
    b.extend_from_slice(&(timestamp + i64::from(record_count) - 1).to_be_bytes()); // maxTimestamp
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producerId
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producerEpoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // baseSequence
    b.extend_from_slice(&record_count.to_be_bytes()); // recordsCount
    for i in 0..payload_bytes {
        // Never all zeros, so zeroed preallocated space cannot look like a batch.
        b.push((i as u8).wrapping_mul(31).wrapping_add(7) | 1);
    }
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Base offset, last offset and max timestamp of each batch in `data` (whole batches).
pub fn batch_offsets(data: &[u8]) -> Vec<(i64, i64, i64)> {
    super::batch::batch_offsets(data)
}
