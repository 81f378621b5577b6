//! Kafka's RecordBatch v2 layout, in one place for everything that reads or writes batches
//! (the log, share state, metrics, the client and `sluice bench`): where each header field
//! sits, the attribute bits, and the zigzag varints of the records.
//!
//! Header (big-endian): baseOffset i64 @0, batchLength i32 @8 (bytes after this field),
//! partitionLeaderEpoch i32 @12, magic i8 @16, crc u32 @17 (CRC32C of bytes @21..end),
//! attributes i16 @21, lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35,
//! producerId i64 @43, producerEpoch i16 @51, baseSequence i32 @53, recordsCount i32 @57.

use bytes::BufMut;

/// Bytes before `batchLength` counts: baseOffset + batchLength.
pub const LOG_OVERHEAD: usize = 12;
/// Size of a v2 batch header; the records start here.
pub const HEADER_BYTES: usize = 61;
pub const OFFSET_LENGTH: usize = 8;
pub const OFFSET_EPOCH: usize = 12;
pub const OFFSET_MAGIC: usize = 16;
pub const OFFSET_CRC: usize = 17;
/// The CRC covers the batch from here to its end.
pub const OFFSET_CRC_START: usize = 21;
pub const OFFSET_ATTRIBUTES: usize = 21;
pub const OFFSET_LAST_OFFSET_DELTA: usize = 23;
pub const OFFSET_BASE_TIMESTAMP: usize = 27;
pub const OFFSET_MAX_TIMESTAMP: usize = 35;
pub const OFFSET_PRODUCER_ID: usize = 43;
pub const OFFSET_PRODUCER_EPOCH: usize = 51;
pub const OFFSET_BASE_SEQUENCE: usize = 53;
pub const OFFSET_RECORDS_COUNT: usize = 57;

const _: () = assert!(OFFSET_LENGTH + 4 == LOG_OVERHEAD);
const _: () = assert!(OFFSET_RECORDS_COUNT + 4 == HEADER_BYTES);

/// Low bits of `attributes`: the compression codec (0 = none).
pub const COMPRESSION_MASK: i16 = 0x07;
/// `attributes` bit of a batch whose timestamp is the broker's (LogAppendTime).
pub const ATTRIBUTE_LOG_APPEND_TIME: i16 = 1 << 3;
/// `attributes` bit of a control batch (a transaction marker).
pub const ATTRIBUTE_CONTROL: i16 = 1 << 5;
/// `attributes` bit saying baseTimestamp holds the batch's delete horizon (KIP-534): the
/// time after which the log cleaner may remove its tombstones.
pub const ATTRIBUTE_DELETE_HORIZON: i16 = 1 << 6;

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Bytes the zigzag varint of `value` takes.
pub fn varint_len(value: i64) -> usize {
    let mut z = zigzag(value);
    let mut len = 1;
    while z >= 0x80 {
        z >>= 7;
        len += 1;
    }
    len
}

/// Appends the zigzag varint of `value`.
pub fn put_varint(out: &mut impl BufMut, value: i64) {
    let mut z = zigzag(value);
    while z >= 0x80 {
        out.put_u8((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.put_u8(z as u8);
}

/// A zigzag varint/varlong (at most 10 bytes), advancing `buf`; `None` if truncated or
/// too long.
pub fn read_varint(buf: &mut &[u8]) -> Option<i64> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_their_length() {
        for value in [
            0,
            -1,
            1,
            63,
            -64,
            64,
            300,
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
            let mut read = out.as_slice();
            assert_eq!(read_varint(&mut read), Some(value));
            assert!(read.is_empty());
        }
    }
}
