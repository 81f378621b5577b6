//! Transactions on one partition (KIP-98): the first offset of every producer's open
//! transaction, which holds the last stable offset (LSO) back, and the index of aborted
//! transactions that a read_committed fetch hands to the client so it can drop their records.
//!
//! A transaction opens at its producer's first transactional batch and closes at the control
//! batch (a commit or abort marker) the coordinator has the partition write. Worked example:
//! producer 7 writes offsets 10..=12 in a transaction while producer 8 commits its own at 11;
//! the LSO is 10 until the abort marker of 7 lands at 13, which adds (7, 10, 13) to the
//! aborted index; a read_committed fetch from 0 then gets records up to the high watermark
//! and the entry (7, 10), and skips 7's records from offset 10 to its marker.
//!
//! The index is part of the producer-state snapshot (see [`super::producer_state`]) and is
//! rebuilt on recovery from the snapshot plus the batches after it, like the sequence state.

use fnv::FnvHashMap;

use super::batch::{self, BatchHeader};

/// RecordBatch attribute bits.
pub(crate) const ATTRIBUTE_TRANSACTIONAL: i16 = 0x10;
pub(crate) const ATTRIBUTE_CONTROL: i16 = 0x20;
/// Control record types (the control record key's `type`).
const CONTROL_TYPE_ABORT: i16 = 0;
const CONTROL_TYPE_COMMIT: i16 = 1;

/// One aborted transaction: a producer's records in `first_offset..last_offset` are
/// aborted; `last_offset` is the offset of its abort marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TxnIndex {
    /// Producer id → first offset of its open transaction.
    open: FnvHashMap<i64, i64>,
    /// In marker order, so by `last_offset`.
    aborted: Vec<AbortedTxn>,
}

/// Whether `header` is a control batch.
pub(crate) fn is_control(header: &BatchHeader) -> bool {
    header.attributes & ATTRIBUTE_CONTROL != 0
}

/// Whether `header` is a data batch written inside a transaction.
pub(crate) fn is_transactional_data(header: &BatchHeader) -> bool {
    header.producer_id >= 0
        && header.attributes & ATTRIBUTE_TRANSACTIONAL != 0
        && !is_control(header)
}

/// The producer id and epoch of the first batch of a produced record set, if that batch is
/// transactional data; `None` for anything shorter than a batch header.
pub fn transactional_producer(records: &[u8]) -> Option<(i64, i16)> {
    let header = super::batch::header_fields(records.get(..super::batch::HEADER_BYTES)?);
    is_transactional_data(&header).then_some((header.producer_id, header.producer_epoch))
}

impl TxnIndex {
    /// A transactional data batch of `producer_id` at `base_offset`.
    pub(crate) fn on_data(&mut self, producer_id: i64, base_offset: i64) {
        self.open.entry(producer_id).or_insert(base_offset);
    }

    /// A marker of `producer_id` at `offset` closes its open transaction, if any.
    pub(crate) fn on_marker(&mut self, producer_id: i64, commit: bool, offset: i64) {
        if let Some(first_offset) = self.open.remove(&producer_id) {
            if !commit {
                self.aborted.push(AbortedTxn {
                    producer_id,
                    first_offset,
                    last_offset: offset,
                });
            }
        }
    }

    pub(crate) fn has_open(&self, producer_id: i64) -> bool {
        self.open.contains_key(&producer_id)
    }

    /// The first offset of the oldest open transaction.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        self.open.values().min().copied()
    }

    /// Aborted transactions with records in `from..to`.
    pub(crate) fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let start = self.aborted.partition_point(|t| t.last_offset < from);
        self.aborted[start..]
            .iter()
            .filter(|t| t.first_offset < to)
            .copied()
            .collect()
    }

    /// Drops aborted transactions wholly below `log_start_offset` (their records are gone).
    pub(crate) fn trim_below(&mut self, log_start_offset: i64) {
        let start = self
            .aborted
            .partition_point(|t| t.last_offset < log_start_offset);
        self.aborted.drain(..start);
    }

    /// Appends the index to a snapshot body.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        let mut open: Vec<(&i64, &i64)> = self.open.iter().collect();
        open.sort_unstable();
        out.extend_from_slice(&(open.len() as u32).to_be_bytes());
        for (producer_id, first) in open {
            out.extend_from_slice(&producer_id.to_be_bytes());
            out.extend_from_slice(&first.to_be_bytes());
        }
        out.extend_from_slice(&(self.aborted.len() as u32).to_be_bytes());
        for t in &self.aborted {
            out.extend_from_slice(&t.producer_id.to_be_bytes());
            out.extend_from_slice(&t.first_offset.to_be_bytes());
            out.extend_from_slice(&t.last_offset.to_be_bytes());
        }
    }

    /// Decodes what [`TxnIndex::encode_into`] wrote; returns the index and the bytes after it.
    pub(crate) fn decode(mut data: &[u8]) -> Option<(TxnIndex, &[u8])> {
        let take_i64 = |data: &mut &[u8]| {
            let (head, rest) = data.split_first_chunk::<8>()?;
            *data = rest;
            Some(i64::from_be_bytes(*head))
        };
        let take_u32 = |data: &mut &[u8]| {
            let (head, rest) = data.split_first_chunk::<4>()?;
            *data = rest;
            Some(u32::from_be_bytes(*head))
        };
        let mut index = TxnIndex::default();
        let open_count = take_u32(&mut data)?;
        for _ in 0..open_count {
            let producer_id = take_i64(&mut data)?;
            let first = take_i64(&mut data)?;
            index.open.insert(producer_id, first);
        }
        let aborted_count = take_u32(&mut data)?;
        // Each entry is 24 bytes: a count beyond the data is a damaged snapshot.
        if data.len() / 24 < aborted_count as usize {
            return None;
        }
        for _ in 0..aborted_count {
            index.aborted.push(AbortedTxn {
                producer_id: take_i64(&mut data)?,
                first_offset: take_i64(&mut data)?,
                last_offset: take_i64(&mut data)?,
            });
        }
        Some((index, data))
    }
}

/// The offset after the last whole batch in `chunks` (batches back to back once
/// concatenated; a chunk boundary may fall inside a batch); `None` without a whole header.
pub(crate) fn end_offset(chunks: &[bytes::Bytes]) -> Option<i64> {
    /// Reads `N` bytes at absolute position `at`, moving `cursor` (chunk index, its start)
    /// forward only: positions asked for never decrease.
    fn read<const N: usize>(
        chunks: &[bytes::Bytes],
        cursor: &mut (usize, usize),
        at: usize,
    ) -> Option<[u8; N]> {
        let mut out = [0u8; N];
        let mut filled = 0;
        while filled < N {
            let (index, start) = *cursor;
            let chunk = chunks.get(index)?;
            let position = at + filled;
            if position >= start + chunk.len() {
                *cursor = (index + 1, start + chunk.len());
                continue;
            }
            let available = &chunk[position - start..];
            let take = available.len().min(N - filled);
            out[filled..filled + take].copy_from_slice(&available[..take]);
            filled += take;
        }
        Some(out)
    }
    let total: usize = chunks.iter().map(bytes::Bytes::len).sum();
    let mut cursor = (0usize, 0usize);
    let mut position = 0usize;
    let mut end = None;
    while position + batch::HEADER_BYTES <= total {
        let base = i64::from_be_bytes(read::<8>(chunks, &mut cursor, position)?);
        let length = i32::from_be_bytes(read::<4>(chunks, &mut cursor, position + 8)?);
        let delta = i32::from_be_bytes(read::<4>(chunks, &mut cursor, position + 23)?);
        let size = usize::try_from(length)
            .ok()?
            .checked_add(batch::LOG_OVERHEAD)?;
        if position + size > total {
            break;
        }
        end = Some(base + i64::from(delta) + 1);
        position += size;
    }
    end
}

/// Of `aborted` (those from the read offset on), the ones with records in the batches read:
/// the client needs no others, and a log with many aborted transactions would otherwise
/// repeat them in every fetch.
pub(crate) fn aborted_in_read(
    mut aborted: Vec<AbortedTxn>,
    chunks: &[bytes::Bytes],
) -> Vec<AbortedTxn> {
    match end_offset(chunks) {
        Some(end) => aborted.retain(|t| t.first_offset < end),
        None => aborted.clear(),
    }
    aborted
}

/// Bytes of a marker batch: the header, then one record of 17 bytes (length 1, attributes 1,
/// timestamp delta 1, offset delta 1, key length 1, key 4, value length 1, value 6,
/// header count 1).
const MARKER_RECORD_BYTES: usize = 17;
pub(crate) const MARKER_BATCH_BYTES: usize = batch::HEADER_BYTES + MARKER_RECORD_BYTES;

/// A control batch ending `producer_id`'s transaction: Kafka's ControlRecord key
/// (version 0, type) and EndTransactionMarker value (version 0, coordinator epoch), at
/// offset 0; also what a replicated partition's leader proposes as a marker entry.
pub fn marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    now_ms: i64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(MARKER_BATCH_BYTES);
    out.extend_from_slice(&0i64.to_be_bytes()); // baseOffset, assigned at append
    out.extend_from_slice(&((MARKER_BATCH_BYTES - batch::LOG_OVERHEAD) as i32).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // partitionLeaderEpoch
    out.push(2); // magic
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, below
    out.extend_from_slice(&(ATTRIBUTE_TRANSACTIONAL | ATTRIBUTE_CONTROL).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // lastOffsetDelta
    out.extend_from_slice(&now_ms.to_be_bytes()); // baseTimestamp
    out.extend_from_slice(&now_ms.to_be_bytes()); // maxTimestamp
    out.extend_from_slice(&producer_id.to_be_bytes());
    out.extend_from_slice(&producer_epoch.to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes()); // baseSequence
    out.extend_from_slice(&1i32.to_be_bytes()); // recordsCount
    let control_type = if commit {
        CONTROL_TYPE_COMMIT
    } else {
        CONTROL_TYPE_ABORT
    };
    // Varints are zigzag: 16 → 32, 4 → 8, 6 → 12.
    out.extend_from_slice(&[32, 0, 0, 0, 8]);
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&control_type.to_be_bytes());
    out.push(12);
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&coordinator_epoch.to_be_bytes());
    out.push(0);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    debug_assert_eq!(out.len(), MARKER_BATCH_BYTES);
    out
}

/// Whether the control batch `data` (its bytes from the start of the header) is a commit
/// (`Some(true)`) or an abort (`Some(false)`); `None` when its first record is unreadable.
pub(crate) fn marker_is_commit(data: &[u8]) -> Option<bool> {
    marker_of(data).map(|(commit, _)| commit)
}

/// The control batch `data`'s marker: commit (or abort), and the coordinator epoch of its
/// EndTransactionMarker value; `None` when its first record is unreadable.
pub(crate) fn marker_of(data: &[u8]) -> Option<(bool, i32)> {
    let mut r = data.get(batch::HEADER_BYTES..)?;
    batch::read_varint(&mut r)?; // record length
    r = r.get(1..)?; // attributes
    batch::read_varint(&mut r)?; // timestamp delta
    batch::read_varint(&mut r)?; // offset delta
    let key_len = batch::read_varint(&mut r)?;
    if key_len < 4 {
        return None;
    }
    let key = r.get(..4)?;
    let commit = match i16::from_be_bytes([key[2], key[3]]) {
        CONTROL_TYPE_COMMIT => true,
        CONTROL_TYPE_ABORT => false,
        _ => return None,
    };
    r = r.get(usize::try_from(key_len).ok()?..)?;
    batch::read_varint(&mut r)?; // value length
    let value = r.get(..6)?; // version i16, coordinator epoch i32
    let coordinator_epoch = i32::from_be_bytes([value[2], value[3], value[4], value[5]]);
    Some((commit, coordinator_epoch))
}

/// Whether `batch` (from the start of its header) is a control batch: a transaction marker.
pub fn is_control_batch(batch: &[u8]) -> bool {
    batch.len() >= batch::HEADER_BYTES && is_control(&batch::header_fields(batch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testing::{make_batch_with, ProducerFields};
    use crate::log::{AbortedTxn, LogConfig, PartitionLog};

    /// A transactional batch of `records` records from `producer_id` at sequence `seq`.
    fn transactional(producer_id: i64, seq: i32, records: i32) -> bytes::Bytes {
        let fields = ProducerFields {
            producer_id,
            producer_epoch: 0,
            base_sequence: seq,
        };
        let mut b = make_batch_with(records, 20 * records as usize, 1, fields);
        b[21..23].copy_from_slice(&ATTRIBUTE_TRANSACTIONAL.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        bytes::Bytes::from(b)
    }

    /// An open transaction whose first records DeleteRecords removed: the last stable offset
    /// is the log start, not an offset no consumer can fetch (Kafka clamps it too).
    #[test]
    fn the_last_stable_offset_never_falls_below_the_log_start() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("p");
        crate::io::block_on_local(async move {
            let log = PartitionLog::open(path, LogConfig::default())
                .await
                .expect("open");
            log.append(transactional(7, 0, 2), 0)
                .expect("open txn at 0..=1");
            let last = log
                .append(
                    bytes::Bytes::from(crate::log::testing::make_batch(3, 10, 1)),
                    0,
                )
                .expect("plain 2..=4")
                .last_offset;
            log.wait_durable(last).await.expect("durable");
            assert_eq!(log.last_stable_offset(), 0);
            assert_eq!(log.delete_records_before(3, 0).await.expect("delete"), 3);
            assert_eq!(log.last_stable_offset(), 3);
            let read = log.read_isolated(3, 1 << 20, true).await.expect("read");
            assert_eq!(read.last_stable_offset, 3);
            log.close().await.expect("close");
        });
    }

    #[test]
    fn the_index_is_rebuilt_after_a_crash_and_a_clean_restart() {
        for clean in [false, true] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let path = tmp.path().join("p");
            crate::io::block_on_local(async move {
                let log = PartitionLog::open(path.clone(), LogConfig::default())
                    .await
                    .expect("open");
                // Producer 7 aborts 0..=1 (marker at 2), 8 commits 3 (marker at 4), 9 stays
                // open from 5.
                log.append(transactional(7, 0, 2), 1).expect("append");
                assert_eq!(log.append_marker(7, 0, false, 0, 1).expect("abort"), 2);
                log.append(transactional(8, 0, 1), 1).expect("append");
                assert_eq!(log.append_marker(8, 0, true, 0, 1).expect("commit"), 4);
                log.append(transactional(9, 0, 1), 1).expect("append");
                log.wait_durable(5).await.expect("durable");
                let aborted = vec![AbortedTxn {
                    producer_id: 7,
                    first_offset: 0,
                    last_offset: 2,
                }];
                assert_eq!(log.last_stable_offset(), 5);
                assert_eq!(log.aborted_txns(0, 6), aborted);
                let read = log.read_isolated(0, 1 << 20, true).await.expect("read");
                assert_eq!(read.last_stable_offset, 5);
                assert_eq!(read.aborted, aborted);
                // A marker of an epoch older than the producer's is refused.
                assert!(log.append_marker(9, -1, false, 0, 1).is_err());
                if clean {
                    log.close().await.expect("close");
                } else {
                    drop(log); // as after kill -9: recovery replays the batches
                }
                let reopened = PartitionLog::open(path, LogConfig::default())
                    .await
                    .expect("reopen");
                assert_eq!(reopened.last_stable_offset(), 5, "clean: {clean}");
                assert_eq!(reopened.aborted_txns(0, 6), aborted, "clean: {clean}");
                reopened.close().await.expect("close");
            });
        }
    }

    #[test]
    fn the_end_offset_is_found_across_chunk_boundaries() {
        let mut first = marker_batch(7, 0, true, 0, 1);
        batch::assign_offset(&mut first, 10);
        let mut second = make_batch_with(3, 60, 1, ProducerFields::NONE);
        batch::assign_offset(&mut second, 11);
        let mut all = first.clone();
        all.extend_from_slice(&second);
        assert_eq!(end_offset(&[bytes::Bytes::from(all.clone())]), Some(14));
        // Cut anywhere, even inside headers.
        for cut in [1, 9, 30, first.len(), first.len() + 25] {
            let chunks = [
                bytes::Bytes::copy_from_slice(&all[..cut]),
                bytes::Bytes::copy_from_slice(&all[cut..]),
            ];
            assert_eq!(end_offset(&chunks), Some(14), "cut at {cut}");
        }
        assert_eq!(end_offset(&[]), None);
    }

    #[test]
    fn a_marker_is_a_valid_control_batch_of_its_type() {
        for commit in [true, false] {
            let bytes = marker_batch(7, 3, commit, 0, 1_000);
            let header = batch::validate(&bytes, 0, 1 << 20).expect("valid batch");
            assert!(is_control(&header));
            assert!(!is_transactional_data(&header));
            assert_eq!((header.producer_id, header.producer_epoch), (7, 3));
            assert_eq!(marker_is_commit(&bytes), Some(commit));
        }
    }

    #[test]
    fn open_transactions_hold_the_stable_offset_and_aborts_are_indexed() {
        let mut index = TxnIndex::default();
        index.on_data(7, 10);
        index.on_data(7, 11);
        index.on_data(8, 12);
        assert_eq!(index.first_unstable_offset(), Some(10));
        index.on_marker(8, true, 13);
        index.on_marker(7, false, 14);
        assert_eq!(index.first_unstable_offset(), None);
        let aborted = AbortedTxn {
            producer_id: 7,
            first_offset: 10,
            last_offset: 14,
        };
        assert_eq!(index.aborted_between(0, 20), vec![aborted]);
        assert_eq!(index.aborted_between(15, 20), vec![]);
        assert_eq!(index.aborted_between(0, 10), vec![]);
        let mut encoded = Vec::new();
        index.encode_into(&mut encoded);
        let (decoded, rest) = TxnIndex::decode(&encoded).expect("decodes");
        assert!(rest.is_empty());
        assert_eq!(decoded, index);
        index.trim_below(15);
        assert_eq!(index.aborted_between(0, 20), vec![]);
    }
}
