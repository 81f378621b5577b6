//! `RaftRecord`: what a partition's Raft log stores, one Kafka record each in a
//! [`StateLog`](crate::log::state_log::StateLog). The key is one byte naming the kind; the
//! value is raft-rs's own protobuf encoding (entries, hard and conf state) or fixed-width
//! big-endian integers (the rest).
//!
//! Replay rules (see `raft_store`): records apply in log order; an `Entry` at an index at or
//! below the last one replayed replaces that entry and everything after it, which is how a
//! follower's overwritten (uncommitted) tail is truncated without rewriting the file.

use bytes::Bytes;
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState};

use crate::log::state_log::{CodecError, StateRecord};

const KIND_MARKER: u8 = 0;
const KIND_ENTRY: u8 = 1;
const KIND_HARD_STATE: u8 = 2;
const KIND_CONF_STATE: u8 = 3;
const KIND_APPLIED: u8 = 4;
const KIND_COMPACTED: u8 = 5;
const KIND_INSTALLING: u8 = 6;

#[derive(Debug, Clone, PartialEq)]
pub enum RaftRecord {
    /// The state log's snapshot marker of `generation`.
    Marker {
        generation: u64,
    },
    Entry(Entry),
    HardState(HardState),
    ConfState(ConfState),
    /// Entries up to `index` are applied and durable in the partition log, which then ended
    /// at `log_end_offset`: the restart point of applying.
    Applied {
        index: u64,
        log_end_offset: i64,
    },
    /// Entries up to `index` (of `term`) were dropped from the Raft log by compaction.
    Compacted {
        index: u64,
        term: u64,
    },
    /// A snapshot at `index` is being installed: the partition log is being filled up to
    /// `log_end_offset` by copying, and nothing after `index` is applied before it gets
    /// there. Superseded by an `Applied` at or past `index`.
    Installing {
        index: u64,
        log_end_offset: i64,
    },
}

fn pair(value: &[u8]) -> Result<(u64, u64), CodecError> {
    let bytes: &[u8; 16] = value
        .try_into()
        .map_err(|_| format!("a {}-byte pair", value.len()))?;
    let (a, b) = bytes.split_at(8);
    let a: [u8; 8] = a.try_into()?;
    let b: [u8; 8] = b.try_into()?;
    Ok((u64::from_be_bytes(a), u64::from_be_bytes(b)))
}

fn encode_pair(a: u64, b: u64) -> Bytes {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&a.to_be_bytes());
    out.extend_from_slice(&b.to_be_bytes());
    Bytes::from(out)
}

impl StateRecord for RaftRecord {
    fn encode(&self) -> Result<(Bytes, Option<Bytes>), CodecError> {
        let (kind, value) = match self {
            RaftRecord::Marker { generation } => (
                KIND_MARKER,
                Bytes::copy_from_slice(&generation.to_be_bytes()),
            ),
            RaftRecord::Entry(entry) => (KIND_ENTRY, Bytes::from(entry.write_to_bytes()?)),
            RaftRecord::HardState(hs) => (KIND_HARD_STATE, Bytes::from(hs.write_to_bytes()?)),
            RaftRecord::ConfState(cs) => (KIND_CONF_STATE, Bytes::from(cs.write_to_bytes()?)),
            RaftRecord::Applied {
                index,
                log_end_offset,
            } => (
                KIND_APPLIED,
                // Offsets are never negative; the cast keeps the bits either way.
                encode_pair(*index, *log_end_offset as u64),
            ),
            RaftRecord::Compacted { index, term } => (KIND_COMPACTED, encode_pair(*index, *term)),
            RaftRecord::Installing {
                index,
                log_end_offset,
            } => (
                KIND_INSTALLING,
                // Offsets are never negative; the cast keeps the bits either way.
                encode_pair(*index, *log_end_offset as u64),
            ),
        };
        Ok((Bytes::copy_from_slice(&[kind]), Some(value)))
    }

    fn decode(key: Option<Bytes>, value: Option<Bytes>) -> Result<Option<Self>, CodecError> {
        let key = key.ok_or("a Raft log record without a key")?;
        let value = value.unwrap_or_default();
        let kind = *key.first().ok_or("an empty Raft log record key")?;
        Ok(Some(match kind {
            KIND_MARKER => RaftRecord::Marker {
                generation: u64::from_be_bytes(value.as_ref().try_into()?),
            },
            KIND_ENTRY => RaftRecord::Entry(Entry::parse_from_bytes(&value)?),
            KIND_HARD_STATE => RaftRecord::HardState(HardState::parse_from_bytes(&value)?),
            KIND_CONF_STATE => RaftRecord::ConfState(ConfState::parse_from_bytes(&value)?),
            KIND_APPLIED => {
                let (index, end) = pair(&value)?;
                RaftRecord::Applied {
                    index,
                    log_end_offset: end as i64,
                }
            }
            KIND_COMPACTED => {
                let (index, term) = pair(&value)?;
                RaftRecord::Compacted { index, term }
            }
            KIND_INSTALLING => {
                let (index, end) = pair(&value)?;
                RaftRecord::Installing {
                    index,
                    log_end_offset: end as i64,
                }
            }
            other => return Err(format!("unknown Raft log record kind {other}").into()),
        }))
    }

    fn snapshot_complete(generation: u64) -> Self {
        RaftRecord::Marker { generation }
    }

    fn completed_generation(&self) -> Option<u64> {
        match self {
            RaftRecord::Marker { generation } => Some(*generation),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let entry = Entry {
            index: 7,
            term: 3,
            data: b"batch".to_vec().into(),
            ..Entry::default()
        };
        let hs = HardState {
            term: 3,
            vote: 2,
            commit: 6,
            ..HardState::default()
        };
        let cs = ConfState {
            voters: vec![1, 2, 3],
            ..ConfState::default()
        };
        for record in [
            RaftRecord::Marker { generation: 4 },
            RaftRecord::Entry(entry),
            RaftRecord::HardState(hs),
            RaftRecord::ConfState(cs),
            RaftRecord::Applied {
                index: 9,
                log_end_offset: 120,
            },
            RaftRecord::Compacted { index: 5, term: 2 },
            RaftRecord::Installing {
                index: 11,
                log_end_offset: 300,
            },
        ] {
            let (key, value) = record.encode().expect("encodes");
            let back = RaftRecord::decode(Some(key), value).expect("decodes");
            assert_eq!(back, Some(record));
        }
    }

    #[test]
    fn unknown_kinds_and_short_values_are_errors() {
        assert!(RaftRecord::decode(Some(Bytes::from_static(&[99])), None).is_err());
        assert!(RaftRecord::decode(
            Some(Bytes::from_static(&[KIND_APPLIED])),
            Some(Bytes::from_static(&[1, 2]))
        )
        .is_err());
        assert!(RaftRecord::decode(None, None).is_err());
    }
}
