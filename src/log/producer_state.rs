//! Idempotent-producer state of one partition, after Kafka's `ProducerStateManager` (without
//! transactions): per producer id, its epoch and the sequence ranges and offsets of its last
//! [`BATCHES_RETAINED`] batches.
//!
//! Rules for a batch with producerId >= 0 (checked by `PartitionLog::append` before any offset
//! is assigned), in this order:
//! - same epoch and the same (firstSeq, lastSeq) as a retained batch: a retried duplicate;
//!   answered with the original offsets and not appended;
//! - epoch below the producer's: [`LogError::InvalidProducerEpoch`];
//! - a newer epoch must start at sequence 0, else [`LogError::OutOfOrderSequence`];
//! - the same epoch must continue at lastSeq + 1 (wrapping at `i32::MAX` to 0), else
//!   [`LogError::OutOfOrderSequence`];
//! - a producer id without state is accepted at any sequence. Kafka brokers since 2.5 do the
//!   same ("accept writes with any sequence number" when there is no producer epoch): the
//!   state may have expired or its records been deleted by retention, and refusing with
//!   UNKNOWN_PRODUCER_ID makes clients reset and re-send, which brings back duplicates.
//!
//! The state is rebuilt on open from a snapshot plus the batch headers after it (producerId,
//! producerEpoch and baseSequence are in every header). Snapshots are written at segment roll
//! (state as of the new segment's base offset, after the old segment is fsynced) and at
//! close (as of the log end offset), as `<offset, 20 digits>.snapshot`; the newest two are
//! kept. Producers idle longer than `producer_id_expiration_ms` are dropped by the retention
//! task.
//!
//! Snapshot format (big-endian): magic "SLPS", version u8, offset i64, producer count u32,
//! then per producer: id i64, epoch i16, last append ms i64, batch count u8, batches as
//! (firstSeq i32, lastSeq i32, baseOffset i64, lastOffset i64); from version 2 the
//! transaction index ([`super::txn_index`]); then CRC32C of all before it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use fnv::FnvHashMap;

use super::batch::BatchHeader;
use super::error::LogError;
use super::txn_index::TxnIndex;

/// Batches remembered per producer (Kafka: 5, the most a producer may have in flight).
pub(crate) const BATCHES_RETAINED: usize = 5;
pub(crate) const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Snapshots kept on disk (the newest ones).
const SNAPSHOTS_RETAINED: usize = 2;
const SNAPSHOT_MAGIC: u32 = 0x534c_5053; // "SLPS"
/// Version 2 appends the transaction index ([`TxnIndex::encode_into`]); version 1 is read
/// as having no transactions.
const SNAPSHOT_VERSION: u8 = 2;
const NO_EPOCH: i16 = -1;

/// Sequence range and offsets of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    /// Oldest first, at most `BATCHES_RETAINED`.
    batches: VecDeque<BatchMetadata>,
    /// Broker wall-clock time of the latest append (for expiration).
    last_append_ms: i64,
}

/// What `append` should do with an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    Append,
    Duplicate(BatchMetadata),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProducerStates {
    producers: FnvHashMap<i64, ProducerEntry>,
    /// Open and aborted transactions.
    pub(crate) txns: TxnIndex,
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap from `i32::MAX` to 0.
/// Meant for `base_sequence >= 0` and `last_offset_delta >= 0`; other values (a damaged
/// header met during replay) give a meaningless result, never a panic.
pub(crate) fn last_sequence(base_sequence: i32, last_offset_delta: i32) -> i32 {
    let sum = i64::from(base_sequence) + i64::from(last_offset_delta);
    if sum > i64::from(i32::MAX) {
        (sum - i64::from(i32::MAX) - 1) as i32
    } else {
        sum as i32
    }
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    i64::from(next_seq) == i64::from(last_seq) + 1 || (next_seq == 0 && last_seq == i32::MAX)
}

impl ProducerStates {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.producers.len()
    }

    /// The current epoch of `producer_id`, if it has state here.
    pub(crate) fn epoch(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|entry| entry.epoch)
    }

    /// Checks an idempotent batch (`header.producer_id >= 0`) against the producer's state.
    pub(crate) fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, LogError> {
        let producer_id = header.producer_id;
        let epoch = header.producer_epoch;
        let first_seq = header.base_sequence;
        if first_seq < 0 {
            return Err(LogError::InvalidRecord {
                reason: "batch with a producer id but no base sequence",
            });
        }
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        let last_seq = last_sequence(first_seq, header.last_offset_delta);
        if epoch == entry.epoch {
            if let Some(original) = entry
                .batches
                .iter()
                .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            {
                return Ok(SequenceCheck::Duplicate(*original));
            }
        }
        if epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current_epoch: entry.epoch,
            });
        }
        let expected = if epoch != entry.epoch {
            (first_seq != 0 && entry.epoch != NO_EPOCH).then_some(0)
        } else {
            entry
                .batches
                .back()
                .filter(|last| !in_sequence(last.last_seq, first_seq))
                .map(|last| last.last_seq.wrapping_add(1).max(0))
        };
        match expected {
            Some(expected) => Err(LogError::OutOfOrderSequence {
                producer_id,
                epoch,
                sequence: first_seq,
                expected,
            }),
            None => Ok(SequenceCheck::Append),
        }
    }

    /// Records an appended idempotent batch whose base offset is `base_offset`.
    pub(crate) fn record(&mut self, header: &BatchHeader, base_offset: i64, now_ms: i64) {
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: header.producer_epoch,
                batches: VecDeque::with_capacity(BATCHES_RETAINED),
                last_append_ms: now_ms,
            });
        if entry.epoch != header.producer_epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_RETAINED {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: header.base_sequence,
            last_seq: last_sequence(header.base_sequence, header.last_offset_delta),
            base_offset,
            last_offset: base_offset.saturating_add(i64::from(header.last_offset_delta)),
        });
        entry.last_append_ms = entry.last_append_ms.max(now_ms);
    }

    /// Records a transaction marker of `producer_id` at `offset`. The coordinator writes it
    /// with the producer's current epoch, which may be newer than any batch here (a fenced
    /// producer's transaction aborted): batches of older epochs are refused from then on.
    pub(crate) fn record_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        offset: i64,
        now_ms: i64,
    ) {
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch,
                batches: VecDeque::with_capacity(BATCHES_RETAINED),
                last_append_ms: now_ms,
            });
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.last_append_ms = entry.last_append_ms.max(now_ms);
        self.txns.on_marker(producer_id, commit, offset);
    }

    /// Forgets producers whose last append is at least `expiration_ms` old, except those
    /// with an open transaction (which hold the last stable offset). Returns how many.
    pub(crate) fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        let txns = &self.txns;
        self.producers.retain(|id, entry| {
            now_ms.saturating_sub(entry.last_append_ms) < expiration_ms || txns.has_open(*id)
        });
        before - self.producers.len()
    }

    /// The snapshot file content for this state as of `offset` (every batch below it).
    pub(crate) fn encode(&self, offset: i64) -> Vec<u8> {
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        let mut out = Vec::with_capacity(17 + self.producers.len() * (19 + 24 * 5) + 4);
        out.extend_from_slice(&SNAPSHOT_MAGIC.to_be_bytes());
        out.push(SNAPSHOT_VERSION);
        out.extend_from_slice(&offset.to_be_bytes());
        out.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for id in ids {
            let entry = &self.producers[id];
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&entry.epoch.to_be_bytes());
            out.extend_from_slice(&entry.last_append_ms.to_be_bytes());
            out.push(entry.batches.len() as u8);
            for b in &entry.batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.base_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
            }
        }
        self.txns.encode_into(&mut out);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Decodes a snapshot: `(offset, state)`, or `None` if it is torn or not a snapshot.
    pub(crate) fn decode(data: &[u8]) -> Option<(i64, ProducerStates)> {
        let body_len = data.len().checked_sub(4)?;
        let (body, crc) = data.split_at(body_len);
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut r = Reader(body);
        if r.u32()? != SNAPSHOT_MAGIC {
            return None;
        }
        let version = r.u8()?;
        if version != 1 && version != SNAPSHOT_VERSION {
            return None;
        }
        let offset = r.i64()?;
        let count = r.u32()?;
        let mut states = ProducerStates::default();
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.i16()?;
            let last_append_ms = r.i64()?;
            let batch_count = usize::from(r.u8()?);
            if batch_count > BATCHES_RETAINED {
                return None;
            }
            let mut batches = VecDeque::with_capacity(BATCHES_RETAINED);
            for _ in 0..batch_count {
                batches.push_back(BatchMetadata {
                    first_seq: r.i32()?,
                    last_seq: r.i32()?,
                    base_offset: r.i64()?,
                    last_offset: r.i64()?,
                });
            }
            states.producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    last_append_ms,
                },
            );
        }
        if version >= 2 {
            let (txns, rest) = TxnIndex::decode(r.0)?;
            states.txns = txns;
            r.0 = rest;
        }
        r.0.is_empty().then_some((offset, states))
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
}

pub(crate) fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}{SNAPSHOT_SUFFIX}"))
}

/// Parses `00000000000000000042.snapshot` into 42.
pub(crate) fn parse_snapshot_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(SNAPSHOT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Offsets of the snapshots in `dir`, newest first.
pub(crate) fn list_snapshots(dir: &Path) -> std::io::Result<Vec<i64>> {
    let mut offsets: Vec<i64> = crate::io::dma_file::list_dir(dir)?
        .iter()
        .filter_map(|name| parse_snapshot_name(name))
        .collect();
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    Ok(offsets)
}

/// Writes the snapshot for `offset` atomically and removes all but the newest
/// `SNAPSHOTS_RETAINED`.
pub(crate) async fn write_snapshot(dir: &Path, offset: i64, data: &[u8]) -> Result<(), LogError> {
    let path = snapshot_path(dir, offset);
    crate::io::dma_file::write_file_atomic(&path, data)
        .await
        .map_err(|e| LogError::io(format!("writing {path:?}"), e))?;
    let offsets = list_snapshots(dir).map_err(|e| LogError::io(format!("listing {dir:?}"), e))?;
    for old in offsets.iter().skip(SNAPSHOTS_RETAINED) {
        let path = snapshot_path(dir, *old);
        crate::io::dma_file::remove_file(&path)
            .map_err(|e| LogError::io(format!("removing {path:?}"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch;
    use crate::log::testing::{make_batch_with, ProducerFields};

    fn header(producer_id: i64, epoch: i16, seq: i32, records: i32) -> BatchHeader {
        let b = make_batch_with(
            records,
            10 * records as usize,
            0,
            ProducerFields {
                producer_id,
                producer_epoch: epoch,
                base_sequence: seq,
            },
        );
        batch::header_fields(&b)
    }

    #[test]
    fn sequence_rules() {
        let mut s = ProducerStates::default();
        // Unknown producer: any sequence (Kafka >= 2.5).
        assert_eq!(
            s.check(&header(7, 0, 42, 2)).expect("ok"),
            SequenceCheck::Append
        );
        s.record(&header(7, 0, 0, 3), 100, 1); // seq 0..=2 at 100..=102
        assert_eq!(
            s.check(&header(7, 0, 3, 1)).expect("ok"),
            SequenceCheck::Append
        );
        assert!(matches!(
            s.check(&header(7, 0, 4, 1)),
            Err(LogError::OutOfOrderSequence {
                sequence: 4,
                expected: 3,
                ..
            })
        ));
        assert_eq!(
            s.check(&header(7, 0, 0, 3)).expect("dup"),
            SequenceCheck::Duplicate(BatchMetadata {
                first_seq: 0,
                last_seq: 2,
                base_offset: 100,
                last_offset: 102
            })
        );
        // Same first sequence, different length: not a duplicate, and out of order.
        assert!(matches!(
            s.check(&header(7, 0, 0, 2)),
            Err(LogError::OutOfOrderSequence { .. })
        ));
        // New epoch starts at 0; a stale epoch is fenced.
        assert!(matches!(
            s.check(&header(7, 1, 3, 1)),
            Err(LogError::OutOfOrderSequence { expected: 0, .. })
        ));
        s.record(&header(7, 1, 0, 1), 103, 2);
        assert!(matches!(
            s.check(&header(7, 0, 3, 1)),
            Err(LogError::InvalidProducerEpoch {
                epoch: 0,
                current_epoch: 1,
                ..
            })
        ));
        assert!(
            matches!(
                s.check(&header(7, 0, 0, 3)),
                Err(LogError::InvalidProducerEpoch { .. })
            ),
            "a duplicate from a fenced epoch is not answered as a duplicate"
        );
        assert!(matches!(
            s.check(&header(8, 0, -1, 1)),
            Err(LogError::InvalidRecord { .. })
        ));
    }

    #[test]
    fn keeps_the_last_five_batches_and_wraps_sequences() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.record(&header(1, 0, i * 2, 2), i64::from(i) * 2, 0);
        }
        assert!(matches!(
            s.check(&header(1, 0, 2, 2)),
            Err(LogError::OutOfOrderSequence { .. })
        ));
        assert!(matches!(
            s.check(&header(1, 0, 4, 2)),
            Ok(SequenceCheck::Duplicate(_))
        ));
        assert!(matches!(
            s.check(&header(1, 0, 12, 2)),
            Ok(SequenceCheck::Duplicate(_))
        ));
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(last_sequence(i32::MAX, i32::MAX), i32::MAX - 1);
        // Garbage from a damaged header must not panic.
        let _ = last_sequence(i32::MIN, i32::MIN);
        let _ = last_sequence(i32::MAX, -5);
        let mut w = ProducerStates::default();
        w.record(&header(2, 0, i32::MAX - 1, 2), 0, 0);
        assert_eq!(
            w.check(&header(2, 0, 0, 1)).expect("wraps"),
            SequenceCheck::Append
        );
    }

    #[test]
    fn snapshot_round_trip_and_expiry() {
        let mut s = ProducerStates::default();
        s.record(&header(1, 0, 0, 2), 0, 1_000);
        s.record(&header(2, 3, 9, 1), 2, 5_000);
        let bytes = s.encode(3);
        assert_eq!(ProducerStates::decode(&bytes), Some((3, s.clone())));
        let mut torn = bytes.clone();
        torn.pop();
        assert_eq!(ProducerStates::decode(&torn), None);
        let mut flipped = bytes;
        flipped[20] ^= 1;
        assert_eq!(ProducerStates::decode(&flipped), None);
        assert_eq!(s.expire(10_999, 10_000), 0);
        assert_eq!(s.expire(11_000, 10_000), 1);
        assert_eq!(s.len(), 1);
        assert_eq!(
            parse_snapshot_name("00000000000000000042.snapshot"),
            Some(42)
        );
        assert_eq!(parse_snapshot_name("42.snapshot"), None);
    }
}
