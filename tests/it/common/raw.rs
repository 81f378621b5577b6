//! Hand-rolled Kafka framing for tests that must send what no well-behaved client would
//! (garbage, oversized lengths, unknown API keys) or inspect stored batches byte for byte.
//! Only non-flexible request versions are encoded here; that keeps the encoder obviously right.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A request header v1 (api key, version, correlation id, nullable client id) plus `body`,
/// behind the 4-byte size prefix.
pub fn frame(api_key: i16, api_version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let client_id = b"sluice-tests";
    let mut payload = Vec::new();
    payload.extend_from_slice(&api_key.to_be_bytes());
    payload.extend_from_slice(&api_version.to_be_bytes());
    payload.extend_from_slice(&correlation_id.to_be_bytes());
    payload.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    payload.extend_from_slice(client_id);
    payload.extend_from_slice(body);
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&payload);
    out
}

/// What came back on a connection after a request.
#[derive(Debug)]
pub enum Reply {
    /// A whole response frame (without its size prefix).
    Frame(Vec<u8>),
    /// The broker closed the connection (EOF or reset).
    Closed,
    /// Nothing within the timeout: the connection is hanging.
    Silent,
}

/// Reads one response frame, or notices a close, waiting at most `timeout`.
pub fn read_reply(stream: &mut TcpStream, timeout: Duration) -> Reply {
    stream
        .set_read_timeout(Some(timeout))
        .expect("set read timeout");
    let mut size = [0u8; 4];
    if let Err(error) = stream.read_exact(&mut size) {
        return classify(error);
    }
    let size = i32::from_be_bytes(size);
    assert!(
        (4..=64 * 1024 * 1024).contains(&size),
        "response frame size {size} is not plausible"
    );
    let mut body = vec![0u8; size as usize];
    match stream.read_exact(&mut body) {
        Ok(()) => Reply::Frame(body),
        Err(error) => classify(error),
    }
}

fn classify(error: std::io::Error) -> Reply {
    match error.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Reply::Silent,
        _ => Reply::Closed,
    }
}

/// Sends one request and waits for its reply.
pub fn round_trip(
    stream: &mut TcpStream,
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    body: &[u8],
    timeout: Duration,
) -> Reply {
    stream
        .write_all(&frame(api_key, api_version, correlation_id, body))
        .expect("write request");
    read_reply(stream, timeout)
}

/// A cursor over a big-endian Kafka response.
pub struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, position: 0 }
    }

    pub fn take(&mut self, count: usize) -> &'a [u8] {
        let end = self.position.checked_add(count).expect("length overflow");
        assert!(
            end <= self.bytes.len(),
            "response truncated: want {count} bytes at {}, have {}",
            self.position,
            self.bytes.len()
        );
        let out = &self.bytes[self.position..end];
        self.position = end;
        out
    }

    pub fn i8(&mut self) -> i8 {
        self.take(1)[0] as i8
    }

    pub fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take(2).try_into().expect("2 bytes"))
    }

    pub fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().expect("4 bytes"))
    }

    pub fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take(8).try_into().expect("8 bytes"))
    }

    pub fn string(&mut self) -> String {
        let len = self.i16();
        assert!(len >= 0, "unexpected null string");
        String::from_utf8_lossy(self.take(len as usize)).into_owned()
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }
}

/// One stored record batch header, as served by Fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub last_offset_delta: i32,
    pub magic: i8,
    /// attributes & 0x7: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub compression: i16,
    pub records_count: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

/// Fetch v4 (non-flexible) of one partition from `offset`; returns (error code, high watermark,
/// the record set's bytes as stored).
pub fn fetch_record_set(
    stream: &mut TcpStream,
    topic: &str,
    partition: i32,
    offset: i64,
    max_bytes: i32,
) -> (i16, i64, Vec<u8>) {
    let mut body = Vec::new();
    body.extend_from_slice(&(-1i32).to_be_bytes()); // replica_id
    body.extend_from_slice(&1000i32.to_be_bytes()); // max_wait_ms
    body.extend_from_slice(&1i32.to_be_bytes()); // min_bytes
    body.extend_from_slice(&max_bytes.to_be_bytes()); // max_bytes
    body.push(0); // isolation_level READ_UNCOMMITTED
    body.extend_from_slice(&1i32.to_be_bytes()); // topics count
    body.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    body.extend_from_slice(&1i32.to_be_bytes()); // partitions count
    body.extend_from_slice(&partition.to_be_bytes());
    body.extend_from_slice(&offset.to_be_bytes());
    body.extend_from_slice(&max_bytes.to_be_bytes()); // partition_max_bytes
    let reply = round_trip(stream, 1, 4, 77, &body, Duration::from_secs(30));
    let Reply::Frame(frame) = reply else {
        panic!("Fetch v4 got no response: {reply:?}");
    };
    let mut cursor = Cursor::new(&frame);
    assert_eq!(cursor.i32(), 77, "Fetch correlation id");
    let _throttle_ms = cursor.i32();
    assert_eq!(cursor.i32(), 1, "Fetch response topics count");
    assert_eq!(cursor.string(), topic);
    assert_eq!(cursor.i32(), 1, "Fetch response partitions count");
    assert_eq!(cursor.i32(), partition);
    let error_code = cursor.i16();
    let high_watermark = cursor.i64();
    let _last_stable_offset = cursor.i64();
    let aborted_count = cursor.i32();
    for _ in 0..aborted_count.max(0) {
        cursor.i64();
        cursor.i64();
    }
    let records_len = cursor.i32();
    let records = cursor.take(records_len.max(0) as usize).to_vec();
    (error_code, high_watermark, records)
}

/// Fetch v4 (non-flexible) of one partition from `offset`; returns (error code, high watermark,
/// the batch headers in the record set). A trailing partial batch is ignored, as clients do.
pub fn fetch_batch_headers(
    stream: &mut TcpStream,
    topic: &str,
    partition: i32,
    offset: i64,
    max_bytes: i32,
) -> (i16, i64, Vec<BatchHeader>) {
    let (error_code, high_watermark, records) =
        fetch_record_set(stream, topic, partition, offset, max_bytes);
    let mut batches = Vec::new();
    let mut position = 0usize;
    while records.len() - position >= 61 {
        let mut batch = Cursor::new(&records[position..]);
        let base_offset = batch.i64();
        let batch_len = batch.i32();
        if batch_len < 49 || records.len() - position < 12 + batch_len as usize {
            break; // partial trailing batch
        }
        let _leader_epoch = batch.i32();
        let magic = batch.i8();
        let _crc = batch.i32();
        let attributes = batch.i16();
        let last_offset_delta = batch.i32();
        batch.take(8 + 8); // timestamps
        let producer_id = batch.i64();
        let producer_epoch = batch.i16();
        let base_sequence = batch.i32();
        let records_count = batch.i32();
        batches.push(BatchHeader {
            base_offset,
            last_offset_delta,
            magic,
            compression: attributes & 0x7,
            records_count,
            producer_id,
            producer_epoch,
            base_sequence,
        });
        position += 12 + batch_len as usize;
    }
    (error_code, high_watermark, batches)
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        let byte = (zigzag & 0x7f) as u8;
        zigzag >>= 7;
        if zigzag == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// An uncompressed RecordBatch v2 of `values` (null keys, no headers), base offset 0, with a
/// correct CRC32C unless `corrupt_crc`.
pub fn record_batch(values: &[&[u8]], timestamp_ms: i64, corrupt_crc: bool) -> Vec<u8> {
    let mut records = Vec::new();
    for (delta, value) in values.iter().enumerate() {
        let mut record = Vec::new();
        record.push(0); // attributes
        put_varint(&mut record, 0); // timestamp delta
        put_varint(&mut record, delta as i64); // offset delta
        put_varint(&mut record, -1); // key: null
        put_varint(&mut record, value.len() as i64);
        record.extend_from_slice(value);
        put_varint(&mut record, 0); // headers count
        put_varint(&mut records, record.len() as i64);
        records.extend_from_slice(&record);
    }
    // attributes .. end: what the CRC covers.
    let mut tail = Vec::new();
    tail.extend_from_slice(&0i16.to_be_bytes()); // attributes: no compression, CreateTime
    tail.extend_from_slice(&(values.len() as i32 - 1).to_be_bytes()); // last offset delta
    tail.extend_from_slice(&timestamp_ms.to_be_bytes()); // base timestamp
    tail.extend_from_slice(&timestamp_ms.to_be_bytes()); // max timestamp
    tail.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    tail.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    tail.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    tail.extend_from_slice(&(values.len() as i32).to_be_bytes());
    tail.extend_from_slice(&records);
    let mut crc = crc32c::crc32c(&tail);
    if corrupt_crc {
        crc ^= 0xdead_beef;
    }
    let mut batch = Vec::new();
    batch.extend_from_slice(&0i64.to_be_bytes()); // base offset
    let batch_len = 4 + 1 + 4 + tail.len(); // leader epoch + magic + crc + tail
    batch.extend_from_slice(&(batch_len as i32).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&crc.to_be_bytes());
    batch.extend_from_slice(&tail);
    batch
}

/// A Produce v3 body for one partition.
pub fn produce_v3_body(topic: &str, partition: i32, acks: i16, batch: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(-1i16).to_be_bytes()); // transactional id: null
    body.extend_from_slice(&acks.to_be_bytes());
    body.extend_from_slice(&10_000i32.to_be_bytes()); // timeout ms
    body.extend_from_slice(&1i32.to_be_bytes()); // topics count
    body.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    body.extend_from_slice(&1i32.to_be_bytes()); // partitions count
    body.extend_from_slice(&partition.to_be_bytes());
    body.extend_from_slice(&(batch.len() as i32).to_be_bytes());
    body.extend_from_slice(batch);
    body
}

/// Parses a Produce v3 response for one partition: (error code, base offset).
pub fn parse_produce_v3_response(frame: &[u8], correlation_id: i32) -> (i16, i64) {
    let mut cursor = Cursor::new(frame);
    assert_eq!(cursor.i32(), correlation_id, "Produce correlation id");
    assert_eq!(cursor.i32(), 1, "Produce response topics count");
    let _topic = cursor.string();
    assert_eq!(cursor.i32(), 1, "Produce response partitions count");
    let _partition = cursor.i32();
    let error_code = cursor.i16();
    let base_offset = cursor.i64();
    (error_code, base_offset)
}

/// Recomputes the CRC32C of a RecordBatch v2 after a test edited fields it covers.
pub fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// A nullable Kafka string (i16 length, -1 for null) as written by non-flexible versions.
pub fn put_string(out: &mut Vec<u8>, value: &str) {
    out.extend_from_slice(&(value.len() as i16).to_be_bytes());
    out.extend_from_slice(value.as_bytes());
}

/// A CreateTopics v2 body creating `names`, each with `partitions` partitions and
/// replication factor 1.
pub fn create_topics_v2_body(names: &[&str], partitions: i32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(names.len() as i32).to_be_bytes());
    for name in names {
        put_string(&mut body, name);
        body.extend_from_slice(&partitions.to_be_bytes());
        body.extend_from_slice(&1i16.to_be_bytes()); // replication factor
        body.extend_from_slice(&0i32.to_be_bytes()); // assignments
        body.extend_from_slice(&0i32.to_be_bytes()); // configs
    }
    body.extend_from_slice(&10_000i32.to_be_bytes()); // timeout ms
    body.push(0); // validate_only
    body
}

/// Parses a CreateTopics v2 response: (name, error code) per topic.
pub fn parse_create_topics_v2_response(frame: &[u8], correlation_id: i32) -> Vec<(String, i16)> {
    let mut cursor = Cursor::new(frame);
    assert_eq!(cursor.i32(), correlation_id, "CreateTopics correlation id");
    let _throttle_ms = cursor.i32();
    let count = cursor.i32();
    let mut out = Vec::new();
    for _ in 0..count {
        let name = cursor.string();
        let error_code = cursor.i16();
        let message_len = cursor.i16();
        if message_len > 0 {
            cursor.take(message_len as usize);
        }
        out.push((name, error_code));
    }
    out
}

/// A Metadata v1 body asking for `names`.
pub fn metadata_v1_body(names: &[&str]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(names.len() as i32).to_be_bytes());
    for name in names {
        put_string(&mut body, name);
    }
    body
}

/// Parses a Metadata v1 response: (name, error code, partitions count) per topic.
pub fn parse_metadata_v1_response(frame: &[u8], correlation_id: i32) -> Vec<(String, i16, i32)> {
    let mut cursor = Cursor::new(frame);
    assert_eq!(cursor.i32(), correlation_id, "Metadata correlation id");
    let brokers_count = cursor.i32();
    for _ in 0..brokers_count {
        cursor.i32(); // node id
        cursor.string(); // host
        cursor.i32(); // port
        let rack_len = cursor.i16();
        if rack_len > 0 {
            cursor.take(rack_len as usize);
        }
    }
    let _controller_id = cursor.i32();
    let topics_count = cursor.i32();
    let mut out = Vec::new();
    for _ in 0..topics_count {
        let error_code = cursor.i16();
        let name = cursor.string();
        let _internal = cursor.i8();
        let partitions_count = cursor.i32();
        for _ in 0..partitions_count {
            cursor.i16(); // error code
            cursor.i32(); // index
            cursor.i32(); // leader
            let replicas = cursor.i32();
            cursor.take(4 * replicas.max(0) as usize);
            let isr = cursor.i32();
            cursor.take(4 * isr.max(0) as usize);
        }
        out.push((name, error_code, partitions_count));
    }
    out
}

/// A deterministic pseudo-random byte source (xorshift64*), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound.max(1) as u64) as usize
    }

    pub fn bytes(&mut self, count: usize) -> Vec<u8> {
        (0..count).map(|_| self.next_u64() as u8).collect()
    }
}
