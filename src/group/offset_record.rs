//! The records of an offsets log: each is one Kafka record (key, value) inside an ordinary
//! RecordBatch v2, so the log layer stores and checksums them like any partition's data.
//!
//! Keys start with a kind byte; strings are u16 length + UTF-8 bytes; integers big-endian.
//!
//! | kind | key                                 | value                                              |
//! |------|-------------------------------------|----------------------------------------------------|
//! | 1    | group, topic, partition i32         | v1: offset i64, leader epoch i32, metadata, commit ms i64; none = deleted |
//! | 2    | group                               | none: every offset of the group is deleted         |
//! | 3    | (empty)                             | snapshot complete: generation u64                  |

use bytes::{Buf, BufMut, Bytes, BytesMut};

const KIND_OFFSET: u8 = 1;
const KIND_GROUP_DELETED: u8 = 2;
const KIND_SNAPSHOT_COMPLETE: u8 = 3;
const OFFSET_VALUE_V1: u8 = 1;

/// One committed offset as stored and served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetRecord {
    Commit {
        group: String,
        topic: String,
        partition: i32,
        offset: CommittedOffset,
    },
    Delete {
        group: String,
        topic: String,
        partition: i32,
    },
    GroupDeleted {
        group: String,
    },
    SnapshotComplete {
        generation: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed offsets record: {0}")]
pub struct RecordDecodeError(&'static str);

/// A string too long for the record format. The handlers refuse such input with a Kafka
/// error first; this keeps anything they miss from reaching the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("offsets record {field} of {len_bytes} bytes exceeds {RECORD_STRING_BYTES_MAX}")]
pub struct RecordEncodeError {
    pub field: &'static str,
    pub len_bytes: usize,
}

pub(crate) fn put_str(
    buf: &mut BytesMut,
    field: &'static str,
    text: &str,
) -> Result<(), RecordEncodeError> {
    let len = u16::try_from(text.len()).map_err(|_| RecordEncodeError {
        field,
        len_bytes: text.len(),
    })?;
    buf.put_u16(len);
    buf.put_slice(text.as_bytes());
    Ok(())
}

pub(crate) fn get_str(buf: &mut Bytes) -> Result<String, RecordDecodeError> {
    if buf.remaining() < 2 {
        return Err(RecordDecodeError("truncated string length"));
    }
    let len = usize::from(buf.get_u16());
    if buf.remaining() < len {
        return Err(RecordDecodeError("truncated string"));
    }
    let bytes = buf.split_to(len);
    String::from_utf8(bytes.to_vec()).map_err(|_| RecordDecodeError("string is not UTF-8"))
}

pub(crate) fn get_i32(buf: &mut Bytes) -> Result<i32, RecordDecodeError> {
    if buf.remaining() < 4 {
        return Err(RecordDecodeError("truncated i32"));
    }
    Ok(buf.get_i32())
}

pub(crate) fn get_i64(buf: &mut Bytes) -> Result<i64, RecordDecodeError> {
    if buf.remaining() < 8 {
        return Err(RecordDecodeError("truncated i64"));
    }
    Ok(buf.get_i64())
}

/// Longest string a record may hold.
pub const RECORD_STRING_BYTES_MAX: usize = u16::MAX as usize;

impl OffsetRecord {
    /// `(key, value)`; a `None` value is a deletion.
    pub fn encode(&self) -> Result<(Bytes, Option<Bytes>), RecordEncodeError> {
        let mut key = BytesMut::new();
        match self {
            OffsetRecord::Commit {
                group,
                topic,
                partition,
                offset,
            } => {
                key.put_u8(KIND_OFFSET);
                put_str(&mut key, "group", group)?;
                put_str(&mut key, "topic", topic)?;
                key.put_i32(*partition);
                let mut value = BytesMut::new();
                value.put_u8(OFFSET_VALUE_V1);
                value.put_i64(offset.offset);
                value.put_i32(offset.leader_epoch);
                put_str(&mut value, "metadata", &offset.metadata)?;
                value.put_i64(offset.commit_timestamp_ms);
                Ok((key.freeze(), Some(value.freeze())))
            }
            OffsetRecord::Delete {
                group,
                topic,
                partition,
            } => {
                key.put_u8(KIND_OFFSET);
                put_str(&mut key, "group", group)?;
                put_str(&mut key, "topic", topic)?;
                key.put_i32(*partition);
                Ok((key.freeze(), None))
            }
            OffsetRecord::GroupDeleted { group } => {
                key.put_u8(KIND_GROUP_DELETED);
                put_str(&mut key, "group", group)?;
                Ok((key.freeze(), None))
            }
            OffsetRecord::SnapshotComplete { generation } => {
                key.put_u8(KIND_SNAPSHOT_COMPLETE);
                let mut value = BytesMut::new();
                value.put_u64(*generation);
                Ok((key.freeze(), Some(value.freeze())))
            }
        }
    }

    pub fn decode(key: Option<Bytes>, value: Option<Bytes>) -> Result<Self, RecordDecodeError> {
        let mut key = key.ok_or(RecordDecodeError("record without a key"))?;
        if key.is_empty() {
            return Err(RecordDecodeError("empty key"));
        }
        match key.get_u8() {
            KIND_OFFSET => {
                let group = get_str(&mut key)?;
                let topic = get_str(&mut key)?;
                let partition = get_i32(&mut key)?;
                let Some(mut value) = value else {
                    return Ok(OffsetRecord::Delete {
                        group,
                        topic,
                        partition,
                    });
                };
                if value.is_empty() || value.get_u8() != OFFSET_VALUE_V1 {
                    return Err(RecordDecodeError("unknown offset value version"));
                }
                let offset = get_i64(&mut value)?;
                let leader_epoch = get_i32(&mut value)?;
                let metadata = get_str(&mut value)?;
                let commit_timestamp_ms = get_i64(&mut value)?;
                Ok(OffsetRecord::Commit {
                    group,
                    topic,
                    partition,
                    offset: CommittedOffset {
                        offset,
                        leader_epoch,
                        metadata,
                        commit_timestamp_ms,
                    },
                })
            }
            KIND_GROUP_DELETED => Ok(OffsetRecord::GroupDeleted {
                group: get_str(&mut key)?,
            }),
            KIND_SNAPSHOT_COMPLETE => {
                let mut value = value.ok_or(RecordDecodeError("snapshot marker without value"))?;
                if value.remaining() < 8 {
                    return Err(RecordDecodeError("truncated snapshot marker"));
                }
                Ok(OffsetRecord::SnapshotComplete {
                    generation: value.get_u64(),
                })
            }
            _ => Err(RecordDecodeError("unknown record kind")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let records = [
            OffsetRecord::Commit {
                group: "g".into(),
                topic: "orders".into(),
                partition: 3,
                offset: CommittedOffset {
                    offset: 42,
                    leader_epoch: -1,
                    metadata: "m".into(),
                    commit_timestamp_ms: 7,
                },
            },
            OffsetRecord::Delete {
                group: "g".into(),
                topic: "t".into(),
                partition: 0,
            },
            OffsetRecord::GroupDeleted { group: "g".into() },
            OffsetRecord::SnapshotComplete { generation: 9 },
        ];
        for record in records {
            let (key, value) = record.encode().expect("encodable");
            assert_eq!(OffsetRecord::decode(Some(key), value), Ok(record));
        }
    }

    #[test]
    fn a_string_too_long_for_the_format_is_an_error() {
        let record = OffsetRecord::GroupDeleted {
            group: "g".repeat(RECORD_STRING_BYTES_MAX + 1),
        };
        assert_eq!(
            record.encode(),
            Err(RecordEncodeError {
                field: "group",
                len_bytes: RECORD_STRING_BYTES_MAX + 1
            })
        );
    }

    #[test]
    fn truncated_records_are_refused() {
        let (key, value) = OffsetRecord::Commit {
            group: "group".into(),
            topic: "t".into(),
            partition: 1,
            offset: CommittedOffset {
                offset: 1,
                leader_epoch: 0,
                metadata: String::new(),
                commit_timestamp_ms: 0,
            },
        }
        .encode()
        .expect("encodable");
        for cut in 0..key.len() {
            assert!(OffsetRecord::decode(Some(key.slice(..cut)), value.clone()).is_err());
        }
        let value = value.expect("commit has a value");
        for cut in 0..value.len() {
            assert!(OffsetRecord::decode(Some(key.clone()), Some(value.slice(..cut))).is_err());
        }
    }
}
