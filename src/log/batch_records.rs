//! The records inside a stored batch, read only as far as ListOffsets by timestamp needs:
//! each record's timestamp (baseTimestamp + varlong timestampDelta) and offset (baseOffset +
//! varint offsetDelta). Compressed batches are decompressed with the codec crate's
//! decompressors; this is done for the one batch a timestamp lookup lands on, never on the
//! append or fetch paths.
//!
//! Record layout (v2): length varint, attributes i8, timestampDelta varlong, offsetDelta
//! varint, then key, value and headers (skipped via the length).

use bytes::Bytes;
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};

use super::batch::{self, HEADER_BYTES};

const ATTRIBUTES_COMPRESSION_MASK: i16 = 0x07;
const ATTRIBUTES_LOG_APPEND_TIME: i16 = 1 << 3;

/// The first record of `batch` (one whole stored batch, base offset set) whose timestamp is
/// `>= ts` and whose offset is `>= offset_min` (the log start offset, which DeleteRecords may
/// put inside a batch): `Ok(Some((offset, timestamp)))`, or `Ok(None)` if it has none. `Err`
/// when the records cannot be read (bad compression, garbage framing) — content the CRC
/// vouched for but the log never validated record by record.
pub(crate) fn first_record_at_or_after(
    batch: &Bytes,
    ts: i64,
    offset_min: i64,
) -> Result<Option<(i64, i64)>, &'static str> {
    if batch.len() < HEADER_BYTES {
        return Err("batch shorter than its header");
    }
    let fields = batch::header_fields(batch);
    if fields.attributes & ATTRIBUTES_LOG_APPEND_TIME != 0 {
        // Every record carries the batch's maxTimestamp.
        let first = fields.base_offset.max(offset_min);
        let found = fields.max_timestamp >= ts && first <= fields.last_offset();
        return Ok(found.then_some((first, fields.max_timestamp)));
    }
    let records = batch.slice(HEADER_BYTES..);
    let scan = |data: &[u8]| {
        scan_records(
            data,
            fields.records_count,
            fields.base_offset,
            fields.base_timestamp,
            ts,
            offset_min,
        )
    };
    match fields.attributes & ATTRIBUTES_COMPRESSION_MASK {
        0 => scan(&records),
        codec => decompress_and(codec, records, scan),
    }
}

fn decompress_and<F>(
    codec: i16,
    mut records: Bytes,
    scan: F,
) -> Result<Option<(i64, i64)>, &'static str>
where
    F: FnOnce(&[u8]) -> Result<Option<(i64, i64)>, &'static str>,
{
    // The codec crate's closures return its own error type; carry our result through `Ok`.
    let inner = |buf: &mut Bytes| Ok(scan(&buf[..]));
    let outcome = match codec {
        1 => <Gzip as Decompressor<Bytes>>::decompress(&mut records, inner),
        2 => <Snappy as Decompressor<Bytes>>::decompress(&mut records, inner),
        3 => <Lz4 as Decompressor<Bytes>>::decompress(&mut records, inner),
        4 => <Zstd as Decompressor<Bytes>>::decompress(&mut records, inner),
        _ => return Err("unknown compression codec"),
    };
    outcome.map_err(|_| "records do not decompress")?
}

fn scan_records(
    mut data: &[u8],
    records_count: i32,
    base_offset: i64,
    base_timestamp: i64,
    ts: i64,
    offset_min: i64,
) -> Result<Option<(i64, i64)>, &'static str> {
    for _ in 0..records_count {
        let length = read_varint(&mut data)?;
        let length = usize::try_from(length).map_err(|_| "negative record length")?;
        if length > data.len() {
            return Err("record length past the batch");
        }
        let (mut record, rest) = data.split_at(length);
        data = rest;
        let Some((_attributes, tail)) = record.split_first() else {
            return Err("empty record");
        };
        record = tail;
        let timestamp_delta = read_varint(&mut record)?;
        let offset_delta = read_varint(&mut record)?;
        let timestamp = base_timestamp.wrapping_add(timestamp_delta);
        let offset_delta = i32::try_from(offset_delta).map_err(|_| "offset delta overflow")?;
        let offset = base_offset + i64::from(offset_delta);
        if timestamp >= ts && offset >= offset_min {
            return Ok(Some((offset, timestamp)));
        }
    }
    Ok(None)
}

/// A zigzag varlong (at most 10 bytes), advancing `data`.
fn read_varint(data: &mut &[u8]) -> Result<i64, &'static str> {
    let mut value: u64 = 0;
    for (i, &byte) in data.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *data = &data[i + 1..];
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err("truncated or overlong varint")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testing::make_batch;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn encoded(compression: Compression, timestamps: &[i64], base_offset: i64) -> Bytes {
        let records: Vec<Record> = timestamps
            .iter()
            .enumerate()
            .map(|(i, &timestamp)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: base_offset + i as i64,
                sequence: i as i32,
                timestamp,
                key: None,
                value: Some(Bytes::from(vec![b'x'; 300])),
                headers: Default::default(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encode");
        buf.freeze()
    }

    #[test]
    fn finds_first_record_at_or_after_in_every_codec() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            // Timestamps need not rise: the first record at or after wins (Kafka).
            let batch = encoded(compression, &[100, 300, 200, 400], 50);
            let find = |ts| first_record_at_or_after(&batch, ts, 0).expect("readable");
            assert_eq!(find(0), Some((50, 100)), "{compression:?}");
            assert_eq!(find(101), Some((51, 300)), "{compression:?}");
            assert_eq!(find(300), Some((51, 300)), "{compression:?}");
            assert_eq!(find(301), Some((53, 400)), "{compression:?}");
            assert_eq!(find(401), None, "{compression:?}");
            // Records below the log start offset are gone, even inside a kept batch.
            let from_52 = first_record_at_or_after(&batch, 101, 52).expect("readable");
            assert_eq!(from_52, Some((52, 200)), "{compression:?}");
        }
    }

    #[test]
    fn synthetic_batches_have_real_records_and_garbage_is_an_error() {
        let batch = Bytes::from(make_batch(3, 100, 1000));
        assert_eq!(
            first_record_at_or_after(&batch, 1001, 0),
            Ok(Some((1, 1001)))
        );
        let mut filler = make_batch(3, 30, 1000);
        filler[61..].fill(0xff); // varints that never end
        let filler = Bytes::from(filler);
        assert!(first_record_at_or_after(&filler, 1001, 0).is_err());
        let mut gz = encoded(Compression::Gzip, &[1, 2], 0).to_vec();
        let n = gz.len();
        gz[n - 20..].fill(0x55);
        assert!(first_record_at_or_after(&Bytes::from(gz), 2, 0).is_err());
    }
}
