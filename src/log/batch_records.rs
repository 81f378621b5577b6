//! The records inside a batch: each record's timestamp (baseTimestamp + varlong
//! timestampDelta), offset (baseOffset + varint offsetDelta), key and value. Read for the
//! one batch a timestamp lookup lands on, by the log cleaner, and on append only for
//! compacted topics (every record needs a key); never on the fetch path. Compressed
//! batches are decompressed with a bound on their size (`DECOMPRESSED_BATCH_BYTES_MAX`)
//! and recompressed with the kafka-protocol codecs.
//!
//! Record layout (v2): length varint, attributes i8, timestampDelta varlong, offsetDelta
//! varint, then key, value and headers (skipped via the length).

use bytes::Bytes;
use bytes::BytesMut;
use std::io::Read;

use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use crate::constants::DECOMPRESSED_BATCH_BYTES_MAX;
use crate::protocol::batch_layout;

use super::batch::{self, HEADER_BYTES};
use super::error::LogError;

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
    with_records(batch, |data| {
        scan_records(
            data,
            fields.records_count,
            fields.base_offset,
            fields.base_timestamp,
            ts,
            offset_min,
        )
    })
}

/// Calls `f` with the records section of `batch` (one whole batch of at least
/// `HEADER_BYTES`), decompressed if the batch is compressed.
pub(crate) fn with_records<T>(
    batch: &Bytes,
    f: impl FnOnce(&[u8]) -> Result<T, &'static str>,
) -> Result<T, &'static str> {
    let records = batch.slice(HEADER_BYTES..);
    match batch::header_fields(batch).attributes & ATTRIBUTES_COMPRESSION_MASK {
        0 => f(&records),
        codec => decompress_and(codec, records, f),
    }
}

/// One stored record, borrowed from its (decompressed) records section.
pub(crate) struct RecordView<'a> {
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    /// `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// A null value: a tombstone in a compacted topic.
    pub value_is_null: bool,
    /// The whole record, length prefix included.
    pub raw: &'a [u8],
    /// The record from its key length on (key, value, headers).
    pub body: &'a [u8],
    pub attributes: u8,
}

/// Parses every record of a records section. The count is the batch header's, so it is
/// not trusted for allocation: the records are collected as they parse.
pub(crate) fn parse_records(
    mut data: &[u8],
    count: i32,
) -> Result<Vec<RecordView<'_>>, &'static str> {
    let mut records = Vec::new();
    for _ in 0..count {
        let before = data;
        let length = read_varint(&mut data)?;
        let length = usize::try_from(length).map_err(|_| "negative record length")?;
        if length > data.len() {
            return Err("record length past the batch");
        }
        let prefix_len = before.len() - data.len();
        let raw = &before[..prefix_len + length];
        let (mut record, rest) = data.split_at(length);
        data = rest;
        let Some((&attributes, tail)) = record.split_first() else {
            return Err("empty record");
        };
        record = tail;
        let timestamp_delta = read_varint(&mut record)?;
        let offset_delta =
            i32::try_from(read_varint(&mut record)?).map_err(|_| "offset delta overflow")?;
        let body = record;
        let key = read_bytes(&mut record)?;
        let value = read_bytes(&mut record)?;
        records.push(RecordView {
            timestamp_delta,
            offset_delta,
            key,
            value_is_null: value.is_none(),
            raw,
            body,
            attributes,
        });
    }
    if !data.is_empty() {
        return Err("bytes after the last record");
    }
    Ok(records)
}

/// A varint-length-prefixed byte string; length -1 is null.
fn read_bytes<'a>(data: &mut &'a [u8]) -> Result<Option<&'a [u8]>, &'static str> {
    let length = read_varint(data)?;
    if length < 0 {
        return Ok(None);
    }
    let length = usize::try_from(length).map_err(|_| "field length overflow")?;
    if length > data.len() {
        return Err("field length past the record");
    }
    let (field, rest) = data.split_at(length);
    *data = rest;
    Ok(Some(field))
}

/// Indexes (within the batch) of the records of `batch` that have no key: a compacted
/// topic cannot hold them (Kafka's LogValidator refuses them with INVALID_RECORD).
pub(crate) fn keyless_records(batch: &Bytes) -> Result<Vec<i32>, &'static str> {
    let count = batch::header_fields(batch).records_count;
    with_records(batch, |data| {
        Ok(parse_records(data, count)?
            .iter()
            .zip(0..)
            .filter(|(record, _)| record.key.is_none())
            .map(|(_, index)| index)
            .collect())
    })
}

/// Refuses a record set holding records without a key, for a compacted log: every keyless
/// record's index within the record set is reported.
pub(crate) fn refuse_keyless(
    records: &Bytes,
    headers: &[(usize, batch::BatchHeader)],
) -> Result<(), LogError> {
    let mut keyless = Vec::new();
    let mut first_index = 0i32;
    for (position, header) in headers {
        let whole = records.slice(*position..*position + header.size_bytes);
        let found = keyless_records(&whole).map_err(|reason| LogError::InvalidRecord { reason })?;
        keyless.extend(found.into_iter().map(|i| first_index.saturating_add(i)));
        first_index = first_index.saturating_add(header.records_count);
    }
    if keyless.is_empty() {
        Ok(())
    } else {
        Err(LogError::KeylessRecords {
            record_indexes: keyless,
        })
    }
}

/// `batch` (one whole batch, validated) with its records compressed with `codec` instead
/// (0 = uncompressed), as Kafka's LogValidator rewrites a batch whose codec is not the
/// topic's `compression.type`. The records are kept byte for byte (offset and timestamp
/// deltas, keys, values, headers) and so are the header's producer fields, sequence,
/// timestamps and transactional/control bits; only the codec bits, the length and the CRC
/// change. Decompression is bounded by `DECOMPRESSED_BATCH_BYTES_MAX`.
pub(crate) fn recompress(batch: &Bytes, codec: i16) -> Result<Bytes, &'static str> {
    let fields = batch::header_fields(batch);
    with_records(batch, |records| {
        // A compressed batch's records were never walked; the rewrite must hold exactly
        // the records its header claims, numbered 0..count (Kafka checks the same).
        batch::check_uncompressed_records(records, fields.records_count)?;
        let attributes = (fields.attributes & !ATTRIBUTES_COMPRESSION_MASK) | codec;
        let rebuilt = |records: &[u8]| {
            batch::rebuild(
                batch,
                attributes,
                fields.base_timestamp,
                fields.records_count,
                records,
            )
        };
        Ok(match codec {
            0 => rebuilt(records),
            _ => rebuilt(&compress(codec, records)?),
        })
    })
}

/// The record set `records` (its batches at `headers`) with every batch whose codec is not
/// `codec` recompressed; `None` when every batch already uses it, so it is stored as sent.
pub(crate) fn recompress_record_set(
    records: &Bytes,
    headers: &[(usize, batch::BatchHeader)],
    codec: i16,
) -> Result<Option<Bytes>, LogError> {
    if headers
        .iter()
        .all(|(_, header)| header.attributes & ATTRIBUTES_COMPRESSION_MASK == codec)
    {
        return Ok(None);
    }
    let mut out = BytesMut::new();
    for (position, header) in headers {
        let whole = records.slice(*position..*position + header.size_bytes);
        if header.attributes & ATTRIBUTES_COMPRESSION_MASK == codec {
            out.extend_from_slice(&whole);
        } else {
            let rewritten =
                recompress(&whole, codec).map_err(|reason| LogError::InvalidRecord { reason })?;
            out.extend_from_slice(&rewritten);
        }
    }
    Ok(Some(out.freeze()))
}

/// `records` (an uncompressed records section) compressed with `codec` (attributes bits),
/// as a producer using that codec would have sent them.
pub(crate) fn compress(codec: i16, records: &[u8]) -> Result<BytesMut, &'static str> {
    let mut out = BytesMut::new();
    let fill = |buf: &mut BytesMut| {
        buf.extend_from_slice(records);
        Ok(())
    };
    let outcome = match codec {
        1 => <Gzip as Compressor<BytesMut>>::compress(&mut out, fill),
        2 => <Snappy as Compressor<BytesMut>>::compress(&mut out, fill),
        3 => <Lz4 as Compressor<BytesMut>>::compress(&mut out, fill),
        4 => <Zstd as Compressor<BytesMut>>::compress(&mut out, fill),
        _ => return Err("unknown compression codec"),
    };
    outcome.map_err(|_| "records do not compress")?;
    Ok(out)
}

/// Appends `value` as a zigzag varint (records' lengths and deltas).
pub(crate) fn write_varint(out: &mut Vec<u8>, value: i64) {
    batch_layout::put_varint(out, value);
}

fn decompress_and<T, F>(codec: i16, records: Bytes, scan: F) -> Result<T, &'static str>
where
    F: FnOnce(&[u8]) -> Result<T, &'static str>,
{
    scan(&decompress_bounded(
        codec,
        &records,
        DECOMPRESSED_BATCH_BYTES_MAX,
    )?)
}

/// The records section `data` compressed with `codec`, decompressed, refusing (before
/// allocating it) more than `limit` bytes of output: a small batch from the network can
/// claim gigabytes (the codec crates' own decompressors have no bound).
fn decompress_bounded(codec: i16, data: &[u8], limit: usize) -> Result<Vec<u8>, &'static str> {
    const TOO_LARGE: &str = "records decompress to more than the broker accepts";
    let bound = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::new();
    let read = match codec {
        1 => flate2::read::GzDecoder::new(data)
            .take(bound)
            .read_to_end(&mut out),
        2 => return snappy_decompress_bounded(data, limit),
        3 => lz4::Decoder::new(data).and_then(|d| d.take(bound).read_to_end(&mut out)),
        4 => {
            zstd::stream::read::Decoder::new(data).and_then(|d| d.take(bound).read_to_end(&mut out))
        }
        _ => return Err("unknown compression codec"),
    };
    read.map_err(|_| "records do not decompress")?;
    if out.len() > limit {
        return Err(TOO_LARGE);
    }
    Ok(out)
}

/// Kafka's snappy framing (snappy-java's): a 16-byte header starting with this magic, then
/// blocks of (u32 length, raw snappy); without the magic, one raw snappy block.
const SNAPPY_JAVA_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const SNAPPY_JAVA_HEADER_BYTES: usize = 16;

fn snappy_decompress_bounded(data: &[u8], limit: usize) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    let mut append = |block: &[u8]| {
        let len = snap::raw::decompress_len(block).map_err(|_| "records do not decompress")?;
        let start = out.len();
        if start.saturating_add(len) > limit {
            return Err("records decompress to more than the broker accepts");
        }
        out.resize(start + len, 0);
        snap::raw::Decoder::new()
            .decompress(block, &mut out[start..])
            .map_err(|_| "records do not decompress")?;
        Ok(())
    };
    if !data.starts_with(SNAPPY_JAVA_MAGIC) {
        append(data)?;
        return Ok(out);
    }
    let mut rest = data
        .get(SNAPPY_JAVA_HEADER_BYTES..)
        .ok_or("truncated snappy header")?;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_at_checked(4)
            .ok_or("truncated snappy block length")?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (block, tail) = tail.split_at_checked(len).ok_or("truncated snappy block")?;
        append(block)?;
        rest = tail;
    }
    Ok(out)
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
    batch_layout::read_varint(data).ok_or("truncated or overlong varint")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testing::{encode_batch, make_batch};
    use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, TimestampType};

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
        encode_batch(&records, compression)
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
    fn decompression_stops_at_the_limit() {
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let batch = encoded(compression, &[1, 2, 3, 4], 0);
            let codec = batch::header_fields(&batch).attributes & ATTRIBUTES_COMPRESSION_MASK;
            let records = &batch[HEADER_BYTES..];
            let whole = decompress_bounded(codec, records, 1 << 20).expect("decompresses");
            assert!(whole.len() > 1_000, "{compression:?}: four 300-byte values");
            assert!(
                decompress_bounded(codec, records, whole.len()).is_ok(),
                "{compression:?}: exactly at the limit"
            );
            assert!(
                decompress_bounded(codec, records, whole.len() - 1).is_err(),
                "{compression:?}: one byte over"
            );
        }
    }

    fn producer_batch(compression: Compression) -> Bytes {
        let records: Vec<Record> = (0..3)
            .map(|i| Record {
                transactional: true,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 4242,
                producer_epoch: 7,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: 10 + i as i32,
                timestamp: 1_000 + 5 * i,
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(vec![b'a' + i as u8; 200])),
                headers: [("h".into(), Some(Bytes::from_static(b"v")))]
                    .into_iter()
                    .collect(),
            })
            .collect();
        encode_batch(&records, compression)
    }

    fn decoded(batch: &Bytes) -> Vec<Record> {
        let mut data = batch.clone();
        let sets = RecordBatchDecoder::decode_all(&mut data).expect("decodes");
        sets.into_iter().flat_map(|set| set.records).collect()
    }

    #[test]
    fn recompression_keeps_records_and_producer_fields_in_every_codec() {
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        for from in codecs {
            let original = producer_batch(from);
            let before = batch::header_fields(&original);
            for to in 0..=4i16 {
                let rewritten = recompress(&original, to).expect("recompresses");
                let after = batch::header_fields(&rewritten);
                assert!(batch::crc_matches(&rewritten), "{from:?} -> {to}");
                assert_eq!(after.size_bytes, rewritten.len(), "{from:?} -> {to}");
                assert_eq!(after.attributes & ATTRIBUTES_COMPRESSION_MASK, to);
                assert_eq!(
                    after.attributes & !ATTRIBUTES_COMPRESSION_MASK,
                    before.attributes & !ATTRIBUTES_COMPRESSION_MASK,
                    "{from:?} -> {to}: transactional and timestamp-type bits"
                );
                assert_eq!(
                    (after.producer_id, after.producer_epoch, after.base_sequence),
                    (4242, 7, 10)
                );
                assert_eq!(
                    (after.base_timestamp, after.max_timestamp),
                    (before.base_timestamp, before.max_timestamp)
                );
                assert_eq!(after.last_offset_delta, 2);
                assert_eq!(decoded(&rewritten), decoded(&original), "{from:?} -> {to}");
                assert!(batch::validate(&rewritten, 0, u32::MAX).is_ok());
            }
        }
    }

    #[test]
    fn record_set_is_left_alone_when_every_batch_has_the_codec() {
        let first = producer_batch(Compression::Zstd);
        let second = encoded(Compression::None, &[1, 2], 0);
        let set = Bytes::from([first.as_ref(), second.as_ref()].concat());
        let headers = vec![
            (0, batch::header_fields(&first)),
            (first.len(), batch::header_fields(&second)),
        ];
        let only_first = &headers[..1];
        let first_only = set.slice(..first.len());
        assert!(matches!(
            recompress_record_set(&first_only, only_first, 4),
            Ok(None)
        ));
        let rewritten = recompress_record_set(&set, &headers, 4)
            .expect("recompresses")
            .expect("the uncompressed batch changes");
        assert!(
            rewritten.starts_with(&first),
            "a zstd batch is kept as sent"
        );
        let second_after = rewritten.slice(first.len()..);
        assert_eq!(
            batch::header_fields(&second_after).attributes & ATTRIBUTES_COMPRESSION_MASK,
            4
        );
        assert_eq!(decoded(&second_after), decoded(&second));
    }

    #[test]
    fn a_compressed_batch_holding_fewer_records_than_it_claims_is_refused() {
        let batch = producer_batch(Compression::Gzip);
        let fields = batch::header_fields(&batch);
        let inner = with_records(&batch, |records| Ok(records.to_vec())).expect("decompresses");
        let short = compress(1, &inner).expect("compresses");
        // Claim one more record than the compressed section holds.
        let lying = batch::rebuild(
            &batch,
            fields.attributes,
            fields.base_timestamp,
            fields.records_count + 1,
            &short,
        );
        assert!(recompress(&lying, 0).is_err());
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
