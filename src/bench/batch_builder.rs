//! Builds Kafka RecordBatch v2 bytes by hand, straight into one per-partition buffer.
//!
//! A partition's buffer holds `[sealed batch][sealed batch]...[open batch]`. Sealing writes the
//! open batch's header (and CRC32C) in place, so taking every sealed batch for a produce
//! request is one `split_to` with no copy. Only compression rewrites the records section.
//!
//! Each record's value starts with the message's intended send time (nanoseconds on the
//! bench's monotonic clock, little-endian u64), which the consumer reads back for end-to-end
//! latency; the rest of the value is filler.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::Compressor;

use super::error::BenchError;
pub use crate::protocol::batch_layout::HEADER_BYTES;
use crate::protocol::batch_layout::{
    put_varint, read_varint, varint_len, OFFSET_CRC, OFFSET_CRC_START, OFFSET_LENGTH,
};

/// The intended-send-time stamp at the start of every value.
pub const STAMP_BYTES: usize = 8;

/// Kafka's compression codecs (the low 3 bits of a batch's attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn attribute(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    pub fn from_attribute(attributes: i16) -> Option<Compression> {
        match attributes & 0x7 {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// What the producer remembers about a sealed batch until its acknowledgement.
#[derive(Debug, Clone, Copy)]
pub struct BatchMeta {
    pub record_count: u32,
    /// Bytes of message values (the payload the workload asked for), not wire bytes.
    pub payload_bytes: u64,
    pub first_intended_ns: u64,
    pub last_intended_ns: u64,
}

/// The producer a transactional batch belongs to. Each partition's batches carry consecutive
/// sequence numbers from 0, counted in records, so the broker can tell a gap or a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// Attribute bit of a batch written inside a transaction.
const TRANSACTIONAL_ATTRIBUTE: i16 = 0x10;

/// One partition's buffer of sealed batches plus the open one.
pub struct PartitionBuffer {
    buf: BytesMut,
    /// `buf[..sealed_bytes]` are complete batches.
    sealed_bytes: usize,
    sealed: Vec<BatchMeta>,
    open: Option<OpenBatch>,
    /// Set for a transactional producer; plain batches carry no producer (-1).
    producer: Option<BatchProducer>,
    /// Base sequence of the next sealed batch (transactional only).
    sequence_next: i32,
}

struct OpenBatch {
    record_count: u32,
    payload_bytes: u64,
    first_intended_ns: u64,
    last_intended_ns: u64,
    base_timestamp_ms: i64,
}

impl Default for PartitionBuffer {
    fn default() -> Self {
        PartitionBuffer::new()
    }
}

impl PartitionBuffer {
    pub fn new() -> PartitionBuffer {
        PartitionBuffer {
            buf: BytesMut::new(),
            sealed_bytes: 0,
            sealed: Vec::new(),
            open: None,
            producer: None,
            sequence_next: 0,
        }
    }

    /// Marks every batch sealed from now on as transactional for `producer`.
    pub fn set_transactional(&mut self, producer: BatchProducer) {
        self.producer = Some(producer);
        self.sequence_next = 0;
    }

    /// Bytes of the open batch so far (0 when none is open).
    pub fn open_bytes(&self) -> usize {
        self.buf.len() - self.sealed_bytes
    }

    /// Intended send time of the open batch's first message.
    pub fn open_since_ns(&self) -> Option<u64> {
        self.open.as_ref().map(|o| o.first_intended_ns)
    }

    /// Appends one record to the open batch, opening one if needed. `filler` is the value
    /// after the stamp; `timestamp_ms` is wall-clock time (brokers index and expire by it).
    pub fn push(
        &mut self,
        key: Option<&[u8]>,
        filler: &[u8],
        intended_ns: u64,
        timestamp_ms: i64,
        batch_bytes_hint: usize,
    ) {
        let open = self.open.get_or_insert(OpenBatch {
            record_count: 0,
            payload_bytes: 0,
            first_intended_ns: intended_ns,
            last_intended_ns: intended_ns,
            base_timestamp_ms: timestamp_ms,
        });
        if open.record_count == 0 {
            if self.buf.capacity() - self.buf.len() < batch_bytes_hint + HEADER_BYTES {
                self.buf.reserve(batch_bytes_hint + HEADER_BYTES);
            }
            self.buf.put_bytes(0, HEADER_BYTES);
        }
        let offset_delta = open.record_count as i64;
        let value_len = STAMP_BYTES + filler.len();
        let key_len = key.map_or(-1, |k| k.len() as i64);
        let body_len = 1
            + varint_len(0)
            + varint_len(offset_delta)
            + varint_len(key_len)
            + key.map_or(0, <[u8]>::len)
            + varint_len(value_len as i64)
            + value_len
            + varint_len(0);
        let buf = &mut self.buf;
        put_varint(buf, body_len as i64);
        buf.put_u8(0); // attributes
        put_varint(buf, 0); // timestamp delta
        put_varint(buf, offset_delta);
        put_varint(buf, key_len);
        if let Some(key) = key {
            buf.put_slice(key);
        }
        put_varint(buf, value_len as i64);
        buf.put_u64_le(intended_ns);
        buf.put_slice(filler);
        put_varint(buf, 0); // headers
        open.record_count += 1;
        open.payload_bytes += value_len as u64;
        open.last_intended_ns = intended_ns;
    }

    /// Finishes the open batch, if any: header, compression, CRC32C.
    pub fn seal(&mut self, compression: Compression) -> Result<(), BenchError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        if compression != Compression::None {
            let mut batch = self.buf.split_off(self.sealed_bytes);
            let records = batch.split_off(HEADER_BYTES);
            compress(compression, &records, &mut batch)?;
            self.buf.unsplit(batch);
        }
        let batch = &mut self.buf[self.sealed_bytes..];
        let length = i32::try_from(batch.len() - 12).map_err(|_| BenchError::Encode {
            what: "record batch",
            reason: "batch larger than 2 GiB".to_owned(),
        })?;
        let count = open.record_count as i32;
        let mut header = &mut batch[..HEADER_BYTES];
        header.put_i64(0); // base offset, set by the broker
        header.put_i32(length);
        header.put_i32(-1); // partition leader epoch
        header.put_i8(2); // magic
        header.put_u32(0); // crc, below
        let (attributes, producer_id, producer_epoch, base_sequence) = match self.producer {
            Some(p) => {
                let base_sequence = self.sequence_next;
                // Kafka wraps sequences past i32::MAX back to 0.
                self.sequence_next = match base_sequence.checked_add(count) {
                    Some(next) => next,
                    None => count - (i32::MAX - base_sequence) - 1,
                };
                let attributes = compression.attribute() | TRANSACTIONAL_ATTRIBUTE;
                (attributes, p.producer_id, p.producer_epoch, base_sequence)
            }
            None => (compression.attribute(), -1, -1, -1),
        };
        header.put_i16(attributes);
        header.put_i32(count - 1); // last offset delta
        header.put_i64(open.base_timestamp_ms);
        header.put_i64(open.base_timestamp_ms);
        header.put_i64(producer_id);
        header.put_i16(producer_epoch);
        header.put_i32(base_sequence);
        header.put_i32(count);
        debug_assert_eq!(OFFSET_LENGTH, 8);
        let crc = crc32c::crc32c(&batch[OFFSET_CRC_START..]);
        batch[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        self.sealed_bytes = self.buf.len();
        self.sealed.push(BatchMeta {
            record_count: open.record_count,
            payload_bytes: open.payload_bytes,
            first_intended_ns: open.first_intended_ns,
            last_intended_ns: open.last_intended_ns,
        });
        Ok(())
    }

    /// Whether a sealed batch waits to be taken.
    pub fn has_sealed(&self) -> bool {
        self.sealed_bytes > 0
    }

    /// Takes the oldest sealed batch only: Kafka takes one batch per partition and request
    /// from an idempotent or transactional producer.
    pub fn take_first_sealed(&mut self) -> Option<(Bytes, BatchMeta)> {
        if self.sealed_bytes == 0 {
            return None;
        }
        let mut length = [0u8; 4];
        length.copy_from_slice(&self.buf[OFFSET_LENGTH..OFFSET_LENGTH + 4]);
        // seal() wrote this length; it covers everything after the length field.
        let batch_bytes = OFFSET_LENGTH + 4 + u32::from_be_bytes(length) as usize;
        assert!(batch_bytes <= self.sealed_bytes, "sealed batch length");
        let records = self.buf.split_to(batch_bytes).freeze();
        self.sealed_bytes -= batch_bytes;
        let meta = self.sealed.remove(0);
        Some((records, meta))
    }

    /// Takes every sealed batch: the record set for one partition of a produce request.
    pub fn take_sealed(&mut self) -> Option<(Bytes, Vec<BatchMeta>)> {
        if self.sealed_bytes == 0 {
            return None;
        }
        let records = self.buf.split_to(self.sealed_bytes).freeze();
        self.sealed_bytes = 0;
        Some((records, std::mem::take(&mut self.sealed)))
    }
}

fn compress(
    compression: Compression,
    records: &[u8],
    out: &mut BytesMut,
) -> Result<(), BenchError> {
    use kafka_protocol::compression as c;
    let copy = |tmp: &mut BytesMut| {
        tmp.extend_from_slice(records);
        Ok(())
    };
    let result = match compression {
        Compression::None => {
            out.extend_from_slice(records);
            Ok(())
        }
        Compression::Gzip => <c::Gzip as Compressor<BytesMut>>::compress(out, copy),
        Compression::Snappy => <c::Snappy as Compressor<BytesMut>>::compress(out, copy),
        Compression::Lz4 => <c::Lz4 as Compressor<BytesMut>>::compress(out, copy),
        Compression::Zstd => <c::Zstd as Compressor<BytesMut>>::compress(out, copy),
    };
    result.map_err(|e| BenchError::Encode {
        what: "compressed records",
        reason: e.to_string(),
    })
}

/// Reads a zigzag varint from `buf` at `*pos`, advancing it; `None` if truncated or too long.
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut rest = buf.get(*pos..)?;
    let before = rest.len();
    let value = read_varint(&mut rest)?;
    *pos += before - rest.len();
    Some(value)
}

/// Calls `on_stamp` with the intended-send-time stamp of every record in an uncompressed
/// records section (the bytes after a batch header). Returns the number of records read.
pub fn for_each_stamp(records: &[u8], mut on_stamp: impl FnMut(u64)) -> usize {
    let mut pos = 0;
    let mut count = 0;
    while pos < records.len() {
        let Some(length) = get_varint(records, &mut pos) else {
            break;
        };
        let Ok(length) = usize::try_from(length) else {
            break;
        };
        let end = pos.saturating_add(length);
        if end > records.len() {
            break;
        }
        let mut p = pos + 1; // attributes
        let stamp = (|| {
            get_varint(records, &mut p)?; // timestamp delta
            get_varint(records, &mut p)?; // offset delta
            let key_len = get_varint(records, &mut p)?;
            if key_len > 0 {
                p = p.checked_add(usize::try_from(key_len).ok()?)?;
            }
            let value_len = get_varint(records, &mut p)?;
            if value_len < STAMP_BYTES as i64 || p + STAMP_BYTES > end {
                return None;
            }
            let mut stamp = [0u8; STAMP_BYTES];
            stamp.copy_from_slice(&records[p..p + STAMP_BYTES]);
            Some(u64::from_le_bytes(stamp))
        })();
        if let Some(stamp) = stamp {
            on_stamp(stamp);
        }
        count += 1;
        pos = end;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn built_batches_decode_with_the_reference_codec() {
        for compression in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let mut buffer = PartitionBuffer::new();
            let filler = vec![b'x'; 92];
            for i in 0..10u64 {
                let key = format!("k{i}");
                buffer.push(
                    Some(key.as_bytes()),
                    &filler,
                    1000 + i,
                    1_700_000_000_000,
                    4096,
                );
            }
            buffer.seal(compression).expect("seal");
            buffer.push(None, &filler, 2000, 1_700_000_000_000, 4096);
            buffer.seal(compression).expect("seal");
            let (mut records, metas) = buffer.take_sealed().expect("sealed");
            assert_eq!(metas.len(), 2);
            assert_eq!(metas[0].record_count, 10);
            assert_eq!(
                (metas[0].first_intended_ns, metas[0].last_intended_ns),
                (1000, 1009)
            );
            let sets = RecordBatchDecoder::decode_all(&mut records).expect("decodes");
            let all: Vec<_> = sets.iter().flat_map(|s| s.records.iter()).collect();
            assert_eq!(all.len(), 11);
            let value = all[3].value.as_ref().expect("value");
            assert_eq!(value.len(), 100);
            assert_eq!(u64::from_le_bytes(value[..8].try_into().expect("8")), 1003);
            assert_eq!(all[3].key.as_deref(), Some(&b"k3"[..]));
        }
    }

    #[test]
    fn transactional_batches_carry_the_producer_and_consecutive_sequences() {
        let mut buffer = PartitionBuffer::new();
        let producer = BatchProducer {
            producer_id: 4242,
            producer_epoch: 3,
        };
        buffer.set_transactional(producer);
        for (batch, records) in [3u64, 5].into_iter().enumerate() {
            for i in 0..records {
                buffer.push(None, &[1u8; 16], batch as u64 * 10 + i, 0, 1024);
            }
            buffer.seal(Compression::Lz4).expect("seal");
        }
        let (mut records, _) = buffer.take_sealed().expect("sealed");
        let sets = RecordBatchDecoder::decode_all(&mut records).expect("decodes");
        let batches: Vec<_> = sets.iter().flat_map(|s| s.records.first()).collect();
        assert_eq!(batches.len(), 2);
        for (record, base_sequence) in batches.iter().zip([0, 3]) {
            assert!(record.transactional);
            assert!(!record.control);
            assert_eq!(record.producer_id, 4242);
            assert_eq!(record.producer_epoch, 3);
            assert_eq!(record.sequence, base_sequence);
        }
    }

    #[test]
    fn first_sealed_batch_is_taken_alone() {
        let mut buffer = PartitionBuffer::new();
        for (batch, records) in [2u64, 3].into_iter().enumerate() {
            for i in 0..records {
                buffer.push(None, &[5u8; 12], batch as u64 * 10 + i, 0, 1024);
            }
            buffer.seal(Compression::None).expect("seal");
        }
        let mut firsts = Vec::new();
        while let Some((mut records, meta)) = buffer.take_first_sealed() {
            let sets = RecordBatchDecoder::decode_all(&mut records).expect("decodes");
            assert_eq!(sets.len(), 1, "one batch per take");
            assert_eq!(sets[0].records.len() as u32, meta.record_count);
            firsts.push(meta.first_intended_ns);
        }
        assert_eq!(firsts, vec![0, 10]);
        assert!(!buffer.has_sealed());
    }

    #[test]
    fn sequences_wrap_past_i32_max() {
        let mut buffer = PartitionBuffer::new();
        buffer.set_transactional(BatchProducer {
            producer_id: 1,
            producer_epoch: 0,
        });
        buffer.sequence_next = i32::MAX - 1;
        for i in 0..4u64 {
            buffer.push(None, &[0u8; 8], i, 0, 1024);
        }
        buffer.seal(Compression::None).expect("seal");
        // Sequences MAX-1, MAX, 0, 1: the next batch starts at 2.
        assert_eq!(buffer.sequence_next, 2);
    }

    #[test]
    fn stamps_are_read_back() {
        let mut buffer = PartitionBuffer::new();
        for i in 0..5u64 {
            buffer.push(None, &[7u8; 20], 40 + i, 0, 1024);
        }
        buffer.seal(Compression::None).expect("seal");
        let (records, _) = buffer.take_sealed().expect("sealed");
        let mut stamps = Vec::new();
        let n = for_each_stamp(&records[HEADER_BYTES..], |s| stamps.push(s));
        assert_eq!(n, 5);
        assert_eq!(stamps, vec![40, 41, 42, 43, 44]);
    }
}
