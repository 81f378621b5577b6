//! A hand-written FetchResponse encoder (v4–v16), the one response on the hot path.
//!
//! The codec crate wants each partition's records as one contiguous `Bytes`, which would
//! mean copying every chunk the log returns into a new buffer. This encoder instead emits
//! the response as a list of pieces: small metadata runs (and small record chunks) are
//! packed into shared buffers, while record chunks of `RECORDS_INLINE_BYTES_MAX` or more go
//! out as the log's own `Bytes`, uncopied. It is checked byte for byte against the codec
//! in the tests below.

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

/// Record chunks smaller than this are copied into the surrounding piece: one more
/// socket write would cost more than the copy.
pub const RECORDS_INLINE_BYTES_MAX: usize = 16 * 1024;

/// First version with compact (flexible) encodings and tagged fields.
const FLEXIBLE_VERSION: i16 = 12;
/// First version that names topics by id.
const TOPIC_ID_VERSION: i16 = 13;

pub struct FetchPartitionOut {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// `(producer id, first offset)` of the aborted transactions a read_committed consumer
    /// skips; `None` (null) for read_uncommitted.
    pub aborted_transactions: Option<Vec<(i64, i64)>>,
    /// Whole record batches, back to back once concatenated.
    pub records: Vec<Bytes>,
}

pub struct FetchTopicOut {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: Vec<FetchPartitionOut>,
}

pub struct FetchResponseOut {
    pub error_code: i16,
    pub session_id: i32,
    pub topics: Vec<FetchTopicOut>,
}

#[derive(Debug, thiserror::Error)]
#[error("fetch response of {0} bytes exceeds the frame limit")]
pub struct ResponseTooLarge(usize);

/// Encodes the size-prefixed response frame as a list of pieces to write in order.
pub fn encode(
    response: &FetchResponseOut,
    version: i16,
    correlation_id: i32,
) -> Result<Vec<Bytes>, ResponseTooLarge> {
    let mut counter = Counter::default();
    write_body(&mut counter, response, version, correlation_id);
    let size = i32::try_from(counter.total).map_err(|_| ResponseTooLarge(counter.total))?;
    // Sized from the first pass: every copied byte fits without regrowing, and each piece
    // split off is a view of this one allocation.
    let mut pieces = Pieces {
        done: Vec::with_capacity(counter.uncopied_chunks * 2 + 1),
        current: BytesMut::with_capacity(4 + counter.copied),
    };
    pieces.current.put_i32(size);
    write_body(&mut pieces, response, version, correlation_id);
    Ok(pieces.finish())
}

/// Where the encoder writes: a byte counter (first pass) or the piece list (second pass).
trait Out {
    fn put(&mut self, bytes: &[u8]);
    fn put_records(&mut self, chunks: &[Bytes]);
}

/// The first pass: the body's size, and how much of it [`Pieces`] will copy.
#[derive(Default)]
struct Counter {
    total: usize,
    /// Bytes copied into piece buffers (metadata and small record chunks).
    copied: usize,
    /// Record chunks that go out as their own piece.
    uncopied_chunks: usize,
}

impl Out for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.total += bytes.len();
        self.copied += bytes.len();
    }
    fn put_records(&mut self, chunks: &[Bytes]) {
        for chunk in chunks {
            self.total += chunk.len();
            if chunk.len() < RECORDS_INLINE_BYTES_MAX {
                self.copied += chunk.len();
            } else {
                self.uncopied_chunks += 1;
            }
        }
    }
}

struct Pieces {
    done: Vec<Bytes>,
    current: BytesMut,
}

impl Out for Pieces {
    fn put(&mut self, bytes: &[u8]) {
        self.current.extend_from_slice(bytes);
    }
    fn put_records(&mut self, chunks: &[Bytes]) {
        for chunk in chunks {
            if chunk.len() < RECORDS_INLINE_BYTES_MAX {
                self.current.extend_from_slice(chunk);
            } else {
                if !self.current.is_empty() {
                    self.done.push(self.current.split().freeze());
                }
                self.done.push(chunk.clone());
            }
        }
    }
}

impl Pieces {
    fn finish(mut self) -> Vec<Bytes> {
        if !self.current.is_empty() {
            self.done.push(self.current.freeze());
        }
        self.done
    }
}

fn put_varint(out: &mut impl Out, mut value: u64) {
    let mut buf = [0u8; 10];
    let mut len = 0;
    while value >= 0x80 {
        buf[len] = (value as u8) | 0x80;
        value >>= 7;
        len += 1;
    }
    buf[len] = value as u8;
    out.put(&buf[..=len]);
}

/// An array length: i32 in classic versions, unsigned varint of N+1 in flexible ones.
fn put_len(out: &mut impl Out, flexible: bool, len: usize) {
    if flexible {
        put_varint(out, len as u64 + 1);
    } else {
        out.put(&i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes());
    }
}

fn put_tags(out: &mut impl Out, flexible: bool) {
    if flexible {
        put_varint(out, 0);
    }
}

fn write_body(out: &mut impl Out, response: &FetchResponseOut, version: i16, correlation_id: i32) {
    let flexible = version >= FLEXIBLE_VERSION;
    out.put(&correlation_id.to_be_bytes());
    put_tags(out, flexible); // response header v1
    out.put(&0i32.to_be_bytes()); // throttle_time_ms
    if version >= 7 {
        out.put(&response.error_code.to_be_bytes());
        out.put(&response.session_id.to_be_bytes());
    }
    put_len(out, flexible, response.topics.len());
    for topic in &response.topics {
        if version >= TOPIC_ID_VERSION {
            out.put(topic.topic_id.as_bytes());
        } else {
            put_len_string(out, flexible, &topic.name);
        }
        put_len(out, flexible, topic.partitions.len());
        for partition in &topic.partitions {
            out.put(&partition.partition_index.to_be_bytes());
            out.put(&partition.error_code.to_be_bytes());
            out.put(&partition.high_watermark.to_be_bytes());
            out.put(&partition.last_stable_offset.to_be_bytes());
            if version >= 5 {
                out.put(&partition.log_start_offset.to_be_bytes());
            }
            match &partition.aborted_transactions {
                None if flexible => put_varint(out, 0),
                None => out.put(&(-1i32).to_be_bytes()),
                Some(aborted) => {
                    put_len(out, flexible, aborted.len());
                    for (producer_id, first_offset) in aborted {
                        out.put(&producer_id.to_be_bytes());
                        out.put(&first_offset.to_be_bytes());
                        put_tags(out, flexible);
                    }
                }
            }
            if version >= 11 {
                out.put(&(-1i32).to_be_bytes()); // preferred_read_replica
            }
            let records_len: usize = partition.records.iter().map(Bytes::len).sum();
            if flexible {
                put_varint(out, records_len as u64 + 1);
            } else {
                out.put(&i32::try_from(records_len).unwrap_or(i32::MAX).to_be_bytes());
            }
            out.put_records(&partition.records);
            put_tags(out, flexible);
        }
        put_tags(out, flexible);
    }
    put_tags(out, flexible);
}

fn put_len_string(out: &mut impl Out, flexible: bool, text: &str) {
    if flexible {
        put_varint(out, text.len() as u64 + 1);
    } else {
        out.put(&i16::try_from(text.len()).unwrap_or(i16::MAX).to_be_bytes());
    }
    out.put(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchResponse, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{ApiKey, ProducerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn sample(big: bool) -> FetchResponseOut {
        let chunk = |n: usize, fill: u8| Bytes::from(vec![fill; n]);
        let size = if big {
            RECORDS_INLINE_BYTES_MAX + 5
        } else {
            70
        };
        FetchResponseOut {
            error_code: 0,
            session_id: 0,
            topics: vec![
                FetchTopicOut {
                    name: "logs".into(),
                    topic_id: Uuid::from_u128(7),
                    partitions: vec![
                        FetchPartitionOut {
                            partition_index: 0,
                            error_code: 0,
                            high_watermark: 10,
                            last_stable_offset: 10,
                            log_start_offset: 0,
                            aborted_transactions: Some(vec![(7, 3), (8, 5)]),
                            records: vec![chunk(size, 1), chunk(33, 2)],
                        },
                        FetchPartitionOut {
                            partition_index: 3,
                            error_code: 1,
                            high_watermark: -1,
                            last_stable_offset: -1,
                            log_start_offset: -1,
                            aborted_transactions: None,
                            records: vec![],
                        },
                    ],
                },
                FetchTopicOut {
                    name: "other".into(),
                    topic_id: Uuid::from_u128(9),
                    partitions: vec![],
                },
            ],
        }
    }

    /// The same response through the codec crate, for comparison.
    fn via_codec(response: &FetchResponseOut, version: i16, correlation_id: i32) -> Vec<u8> {
        let topics = response
            .topics
            .iter()
            .map(|t| {
                let mut topic = FetchableTopicResponse::default();
                if version >= TOPIC_ID_VERSION {
                    topic.topic_id = t.topic_id;
                } else {
                    topic.topic = TopicName(StrBytes::from_string(t.name.clone()));
                }
                topic.partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut data = PartitionData::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(p.error_code)
                            .with_high_watermark(p.high_watermark)
                            .with_last_stable_offset(p.last_stable_offset)
                            .with_aborted_transactions(p.aborted_transactions.as_ref().map(
                                |aborted| {
                                    aborted
                                        .iter()
                                        .map(|(producer_id, first_offset)| {
                                            AbortedTransaction::default()
                                                .with_producer_id(ProducerId(*producer_id))
                                                .with_first_offset(*first_offset)
                                        })
                                        .collect()
                                },
                            ))
                            .with_records(Some(p.records.concat().into()));
                        if version >= 5 {
                            data.log_start_offset = p.log_start_offset;
                        }
                        data
                    })
                    .collect();
                topic
            })
            .collect();
        let body = FetchResponse::default()
            .with_error_code(response.error_code)
            .with_session_id(response.session_id)
            .with_responses(topics);
        let bytes =
            crate::protocol::response::encode(ApiKey::Fetch, version, correlation_id, &body)
                .expect("codec encodes");
        bytes.to_vec()
    }

    #[test]
    fn matches_the_codec_byte_for_byte_in_every_served_version() {
        for big in [false, true] {
            let response = sample(big);
            for version in 4..=16 {
                let ours = encode(&response, version, 42).expect("encodes").concat();
                assert_eq!(
                    ours,
                    via_codec(&response, version, 42),
                    "v{version} big={big}"
                );
            }
        }
    }

    /// Many small chunks around large ones: every copied piece must come from the one buffer
    /// the first pass sized, back to back, rather than from buffers regrown on the way.
    #[test]
    fn copied_pieces_share_one_buffer() {
        let small = |fill: u8| Bytes::from(vec![fill; 1000]);
        let big = Bytes::from(vec![9u8; RECORDS_INLINE_BYTES_MAX]);
        let mut records = Vec::new();
        for round in 0..3u8 {
            records.extend((0..40).map(|_| small(round)));
            records.push(big.clone());
        }
        records.push(small(7));
        let mut response = sample(false);
        response.topics[0].partitions[0].records = records;
        let pieces = encode(&response, 12, 1).expect("encodes");
        assert_eq!(
            pieces.concat(),
            via_codec(&response, 12, 1),
            "same bytes as the codec"
        );
        let copied: Vec<&Bytes> = pieces
            .iter()
            .filter(|p| p.as_ptr() != big.as_ptr())
            .collect();
        assert_eq!(copied.len(), 4, "three big chunks split four copied runs");
        for pair in copied.windows(2) {
            assert_eq!(
                pair[0].as_ptr().wrapping_add(pair[0].len()),
                pair[1].as_ptr(),
                "copied pieces are consecutive views of one allocation"
            );
        }
    }

    #[test]
    fn large_chunks_are_not_copied() {
        let response = sample(true);
        let pieces = encode(&response, 12, 1).expect("encodes");
        let big = &response.topics[0].partitions[0].records[0];
        assert!(pieces
            .iter()
            .any(|p| p.as_ptr() == big.as_ptr() && p.len() == big.len()));
    }
}
