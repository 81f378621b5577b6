//! Kafka RecordBatch v2 framing as the log uses it: header fields, validation, offset
//! rewriting. The layout itself is `crate::protocol::batch_layout`.

use super::error::LogError;
pub(crate) use crate::protocol::batch_layout::{
    read_varint, ATTRIBUTE_CONTROL, ATTRIBUTE_DELETE_HORIZON, COMPRESSION_MASK, HEADER_BYTES,
    LOG_OVERHEAD,
};
use crate::protocol::batch_layout::{
    ATTRIBUTE_LOG_APPEND_TIME, OFFSET_ATTRIBUTES, OFFSET_BASE_SEQUENCE, OFFSET_BASE_TIMESTAMP,
    OFFSET_CRC, OFFSET_CRC_START, OFFSET_EPOCH, OFFSET_LAST_OFFSET_DELTA, OFFSET_LENGTH,
    OFFSET_MAGIC, OFFSET_MAX_TIMESTAMP, OFFSET_PRODUCER_EPOCH, OFFSET_PRODUCER_ID,
    OFFSET_RECORDS_COUNT,
};
/// The broker-set fields (baseOffset, batchLength, partitionLeaderEpoch) end here. The CRC
/// does not cover them, so the log patches copies of these bytes and never the producer's.
pub(crate) const BROKER_FIELDS_END: usize = 16;

/// The header fields the log uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub base_offset: i64,
    /// Whole batch size including the 12-byte log overhead.
    pub size_bytes: usize,
    pub last_offset_delta: i32,
    pub max_timestamp: i64,
    pub attributes: i16,
    pub base_timestamp: i64,
    pub records_count: i32,
    /// -1 when the producer is not idempotent.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl BatchHeader {
    pub(crate) fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
}

fn i32_at(buf: &[u8], at: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(b)
}

fn i16_at(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

fn i64_at(buf: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(b)
}

/// Total size of the batch starting at `buf[0]`, from its length field, if at least
/// `LOG_OVERHEAD` bytes are present. Negative or undersized lengths return `Some(0)`.
pub(crate) fn framed_size(buf: &[u8]) -> Option<usize> {
    if buf.len() < LOG_OVERHEAD {
        return None;
    }
    let length = i32_at(buf, OFFSET_LENGTH);
    match usize::try_from(length) {
        Ok(length) if length >= HEADER_BYTES - LOG_OVERHEAD => Some(LOG_OVERHEAD + length),
        _ => Some(0),
    }
}

/// Parses the header of the complete batch in `buf[..size]` without checking the CRC.
/// `buf` must hold at least `HEADER_BYTES`.
pub(crate) fn header(buf: &[u8], size_bytes: usize) -> BatchHeader {
    BatchHeader {
        base_offset: i64_at(buf, 0),
        size_bytes,
        last_offset_delta: i32_at(buf, OFFSET_LAST_OFFSET_DELTA),
        max_timestamp: i64_at(buf, OFFSET_MAX_TIMESTAMP),
        attributes: i16_at(buf, OFFSET_ATTRIBUTES),
        base_timestamp: i64_at(buf, OFFSET_BASE_TIMESTAMP),
        records_count: i32_at(buf, OFFSET_RECORDS_COUNT),
        producer_id: i64_at(buf, OFFSET_PRODUCER_ID),
        producer_epoch: i16_at(buf, OFFSET_PRODUCER_EPOCH),
        base_sequence: i32_at(buf, OFFSET_BASE_SEQUENCE),
    }
}

/// All header fields of the whole batch in `batch` (at least `HEADER_BYTES` long).
pub(crate) fn header_fields(batch: &[u8]) -> BatchHeader {
    header(batch, batch.len())
}

/// A cheap check that `batch` starts a RecordBatch v2 where one is expected (reads of
/// segment data, whose CRCs were checked at append or by recovery).
pub(crate) fn is_v2_batch(batch: &[u8]) -> bool {
    batch.len() >= HEADER_BYTES && batch[OFFSET_MAGIC] == 2
}

pub(crate) fn crc_matches(batch: &[u8]) -> bool {
    let stored = u32::from_be_bytes([
        batch[OFFSET_CRC],
        batch[OFFSET_CRC + 1],
        batch[OFFSET_CRC + 2],
        batch[OFFSET_CRC + 3],
    ]);
    crc32c::crc32c(&batch[OFFSET_CRC_START..]) == stored
}

/// Validates the batch at the start of `buf` (a producer's record set from byte `position`).
pub(crate) fn validate(
    buf: &[u8],
    position: usize,
    max_message_bytes: u32,
) -> Result<BatchHeader, LogError> {
    let corrupt = |reason| LogError::CorruptMessage { position, reason };
    let size = match framed_size(buf) {
        None => return Err(corrupt("truncated batch header")),
        Some(0) => return Err(corrupt("batch length too small")),
        Some(size) => size,
    };
    if buf.len() < HEADER_BYTES {
        return Err(corrupt("truncated batch header"));
    }
    if buf[OFFSET_MAGIC] != 2 {
        return Err(LogError::InvalidRecord {
            reason: "unsupported magic (only RecordBatch v2 is accepted)",
        });
    }
    if size > buf.len() {
        return Err(corrupt("batch length exceeds the record set"));
    }
    if size > max_message_bytes as usize {
        return Err(LogError::MessageTooLarge {
            size,
            max: max_message_bytes,
        });
    }
    let batch = &buf[..size];
    if !crc_matches(batch) {
        return Err(corrupt("CRC32C mismatch"));
    }
    let header = header(batch, size);
    if header.last_offset_delta < 0 {
        return Err(LogError::InvalidRecord {
            reason: "negative lastOffsetDelta",
        });
    }
    // Producers always number a batch's records 0..count, so the last delta is count - 1.
    // Anything else would let a batch claim offsets it does not hold.
    if header.records_count < 1 || header.last_offset_delta != header.records_count - 1 {
        return Err(LogError::InvalidRecord {
            reason: "record count does not match lastOffsetDelta",
        });
    }
    if header.attributes & COMPRESSION_MASK == 0 {
        check_uncompressed_records(&batch[HEADER_BYTES..], header.records_count)
            .map_err(|reason| LogError::InvalidRecord { reason })?;
    }
    Ok(header)
}

/// A batch with the header of `original` (base offset, lastOffsetDelta, maxTimestamp and
/// producer fields kept) but the given attributes, baseTimestamp and records, with its
/// length and CRC recomputed. `records` is the records section as stored (compressed if the
/// attributes say so).
pub(crate) fn rebuild(
    original: &[u8],
    attributes: i16,
    base_timestamp: i64,
    records_count: i32,
    records: &[u8],
) -> bytes::Bytes {
    let mut out = Vec::with_capacity(HEADER_BYTES + records.len());
    out.extend_from_slice(&original[..HEADER_BYTES]);
    out.extend_from_slice(records);
    let length =
        i32::try_from(out.len() - LOG_OVERHEAD).expect("a rebuilt batch is smaller than 2 GiB");
    out[8..12].copy_from_slice(&length.to_be_bytes());
    out[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    out[OFFSET_BASE_TIMESTAMP..OFFSET_BASE_TIMESTAMP + 8]
        .copy_from_slice(&base_timestamp.to_be_bytes());
    out[OFFSET_RECORDS_COUNT..OFFSET_RECORDS_COUNT + 4]
        .copy_from_slice(&records_count.to_be_bytes());
    let crc = crc32c::crc32c(&out[OFFSET_CRC_START..]);
    out[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    bytes::Bytes::from(out)
}

/// Walks the records of an uncompressed batch: exactly `count` length-prefixed records
/// that fill the batch, the i-th with offsetDelta i. Compressed batches are stored as sent
/// and not inflated here; their header fields were checked above.
pub(crate) fn check_uncompressed_records(
    mut records: &[u8],
    count: i32,
) -> Result<(), &'static str> {
    for index in 0..count {
        let length = read_varint(&mut records).ok_or("truncated record length")?;
        let length = usize::try_from(length).map_err(|_| "negative record length")?;
        if length > records.len() {
            return Err("record length runs past the batch");
        }
        let (mut record, rest) = records.split_at(length);
        records = rest;
        // attributes (1 byte), timestampDelta (varlong), offsetDelta (varint)
        record = record.get(1..).ok_or("truncated record")?;
        read_varint(&mut record).ok_or("truncated record timestamp")?;
        let offset_delta = read_varint(&mut record).ok_or("truncated record offset")?;
        if offset_delta != i64::from(index) {
            return Err("record offsetDelta out of sequence");
        }
    }
    if !records.is_empty() {
        return Err("bytes after the last record");
    }
    Ok(())
}

/// Outcome of looking for a stored batch during recovery or reads.
pub(crate) enum Scan {
    /// A complete, CRC-valid batch with the expected base offset.
    Batch(BatchHeader),
    /// Need `0` = more than is present of header; otherwise the total size needed.
    Incomplete(usize),
    /// Zeroed space, garbage, a CRC mismatch or an unexpected offset: the end of valid data.
    End,
}

/// Checks the stored batch at the start of `buf`, expected to carry `expected_offset`
/// (`None` to accept any base offset).
pub(crate) fn scan(buf: &[u8], expected_offset: Option<i64>) -> Scan {
    let size = match framed_size(buf) {
        None => return Scan::Incomplete(LOG_OVERHEAD),
        Some(0) => return Scan::End,
        Some(size) => size,
    };
    if buf.len() < size {
        if buf.len() >= HEADER_BYTES && buf[OFFSET_MAGIC] != 2 {
            return Scan::End;
        }
        return Scan::Incomplete(size);
    }
    let batch = &buf[..size];
    if batch[OFFSET_MAGIC] != 2 || !crc_matches(batch) {
        return Scan::End;
    }
    let header = header(batch, size);
    if header.last_offset_delta < 0 {
        return Scan::End;
    }
    if let Some(expected) = expected_offset {
        if header.base_offset != expected {
            return Scan::End;
        }
    }
    Scan::Batch(header)
}

/// The fields LogAppendTime rewrites (attributes, maxTimestamp, and so the CRC) end here.
pub(crate) const LOG_APPEND_TIME_FIELDS_END: usize = OFFSET_PRODUCER_ID;

/// Stamps the batch made of `head` (its first `LOG_APPEND_TIME_FIELDS_END` bytes) and `tail`
/// (the rest, unchanged) with the broker's time, as Kafka does for LogAppendTime: the
/// timestamp-type bit set, maxTimestamp = `now_ms`, the CRC recomputed. The records keep
/// their own timestamps; consumers give every record the batch's maxTimestamp.
pub(crate) fn stamp_log_append_time(head: &mut [u8], tail: &[u8], now_ms: i64) {
    let attributes = i16_at(head, OFFSET_ATTRIBUTES) | ATTRIBUTE_LOG_APPEND_TIME;
    head[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    head[OFFSET_MAX_TIMESTAMP..OFFSET_MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&head[OFFSET_CRC_START..LOG_APPEND_TIME_FIELDS_END]),
        tail,
    );
    head[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Sets baseOffset and partitionLeaderEpoch (outside the CRC's range) in the first
/// `BROKER_FIELDS_END` bytes of a batch.
pub(crate) fn assign_offset(batch: &mut [u8], base_offset: i64) {
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[OFFSET_EPOCH..OFFSET_EPOCH + 4].copy_from_slice(&0i32.to_be_bytes());
}

/// Base offset, last offset and max timestamp of each whole batch in `data` (stops at the
/// first incomplete one). No CRC check: for data already validated.
pub(crate) fn batch_offsets(data: &[u8]) -> Vec<(i64, i64, i64)> {
    let mut out = Vec::new();
    let mut p = 0;
    while p + HEADER_BYTES <= data.len() {
        let size = match framed_size(&data[p..]) {
            Some(size) if size > 0 && p + size <= data.len() => size,
            _ => break,
        };
        let h = header(&data[p..], size);
        out.push((h.base_offset, h.last_offset(), h.max_timestamp));
        p += size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_and_rejects() {
        let batch = super::super::testing::make_batch(3, 100, 1000);
        let h = validate(&batch, 0, 1 << 20).expect("valid");
        assert_eq!(h.size_bytes, batch.len());
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.max_timestamp, 1002);
        let mut bad = batch.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            validate(&bad, 0, 1 << 20),
            Err(LogError::CorruptMessage { .. })
        ));
        let mut magic = batch.clone();
        magic[OFFSET_MAGIC] = 1;
        assert!(matches!(
            validate(&magic, 0, 1 << 20),
            Err(LogError::InvalidRecord { .. })
        ));
        assert!(matches!(
            validate(&batch, 0, 100),
            Err(LogError::MessageTooLarge { .. })
        ));
        assert!(matches!(
            validate(&batch[..batch.len() - 1], 0, 1 << 20),
            Err(LogError::CorruptMessage { .. })
        ));
        let mut moved = batch.clone();
        assign_offset(&mut moved, 77);
        assert!(matches!(scan(&moved, Some(77)), Scan::Batch(h) if h.base_offset == 77));
        assert!(matches!(scan(&moved, Some(78)), Scan::End));
        assert!(matches!(scan(&[0u8; 64], None), Scan::End));
    }
}
