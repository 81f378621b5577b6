//! The log cleaner: compaction of `cleanup.policy=compact` logs, as Kafka's LogCleaner does
//! it, one bounded step at a time on the shard that owns the log.
//!
//! A pass over one log:
//! 1. **Plan.** The cleanable part is the run of sealed, fully durable segments from the log
//!    start, stopping at the first segment with a record younger than
//!    `min_compaction_lag_ms`; the active segment is never cleaned. Its dirty part starts at
//!    `CleanerCheckpoint::clean_offset`. A pass runs when at least
//!    `LOG_CLEANER_DIRTY_PERCENT_MIN` of the cleanable bytes are dirty, or when a kept
//!    tombstone's delete horizon has passed.
//! 2. **Map.** The dirty records' keys go into the [`OffsetMap`] (key hash -> newest offset)
//!    until it is full; `map_end` is the last offset whose record made it in.
//! 3. **Clean.** Every cleanable segment up to the one holding `map_end` is rewritten, oldest
//!    first: a record is kept if the map has no newer offset for its key. A kept tombstone
//!    (null value) gets a delete horizon, `now + delete_retention_ms`, stored in its batch
//!    (KIP-534: attributes bit 6, baseTimestamp = horizon, record timestamp deltas rebased),
//!    and a later pass past the horizon removes it. Keyless records are removed (Kafka does
//!    too: they cannot be compacted). Control batches are kept as they are.
//!
//! Rewritten batches stay valid Kafka RecordBatch v2: base offset, lastOffsetDelta,
//! maxTimestamp and producer fields are kept, so offsets keep their gaps and consumers skip
//! them; kept records are copied byte for byte (or rebased for a new horizon), compressed
//! batches are decompressed and recompressed with their own codec, and the CRC is
//! recomputed. A batch left with no record disappears (no empty batches: librdkafka takes a
//! fetch answer without a record for a fetch size too small), so a segment may end before
//! the next one starts; reads carry on into the next segment, and recovery accepts such
//! gaps between segments (offsets must still increase).
//!
//! **Swap, crash-safe.** The cleaned segment is written to `<base>.log.cleaned` and
//! fdatasynced. Then, with no await in between, the old `.index`/`.timeindex` are removed,
//! the cleaned file is renamed over `<base>.log` and the in-memory segment switched to it;
//! then the new indexes are written and the directory synced. A crash before the rename
//! leaves the old segment (the `.cleaned` leftover is deleted at open); after it, the new
//! segment, whose missing or stale index makes recovery rescan it (sealed segments may have
//! gaps). Either way nothing the old segment held is lost except what cleaning may drop.
//!
//! A segment left with nothing is removed instead (its offsets become a gap that reads skip),
//! unless it is the first, whose base is the log start. Reads in flight keep the old file
//! open (they hold its handle) and finish on the old bytes; the in-memory batch cache drops
//! what it held of a cleaned segment.
//!
//! **Bounded.** Memory: the map (`LOG_CLEANER_OFFSET_MAP_BYTES`), one read window
//! (`LOG_CLEANER_READ_BYTES` or one batch) and one write buffer (`LOG_CLEANER_WRITE_BYTES`
//! plus a batch). Time: the task yields between batches when the executor wants it, and runs
//! in its own low-share task queue (`crate::io::spawn_background`).
//!
//! The checkpoint (clean offset and next tombstone horizon) is kept in
//! `.cleaner_checkpoint`, written atomically after each pass, so a restart does not make
//! the cleaner read the whole log again. A lost or stale checkpoint costs only work: with
//! none, the first pass treats the whole log as dirty.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;

use crate::constants::{
    LOG_CLEANER_DIRTY_PERCENT_MIN, LOG_CLEANER_READ_BYTES, LOG_CLEANER_WRITE_BYTES,
};
use crate::io::dma_file::{self, DmaFile};

use super::batch::{
    self, BatchHeader, ATTRIBUTE_CONTROL, ATTRIBUTE_DELETE_HORIZON, COMPRESSION_MASK, HEADER_BYTES,
    LOG_OVERHEAD,
};
use super::batch_records::{self, RecordView};
use super::cleaner_checkpoint::{CleanerCheckpoint, CHECKPOINT_FILE};
use super::error::LogError;
use super::log_state::LogState;
use super::offset_map::OffsetMap;
use super::segment::{self, write_index, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::segment_index::{Footer, SegmentIndex};

/// Suffix of a cleaned segment not yet swapped in.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";

/// What one cleaning pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanSummary {
    pub segments_rewritten: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    /// Segment bytes the pass went through (to build its key index, and to rewrite).
    pub bytes_read: u64,
}

/// A cleanable segment as the plan saw it.
struct Target {
    base_offset: i64,
    next_offset: i64,
    bytes: u64,
    file: Rc<DmaFile>,
}

struct Plan {
    dir: PathBuf,
    targets: Vec<Target>,
    first_dirty: i64,
    /// A kept tombstone's horizon has passed: clean every target even with nothing dirty.
    horizon_due: bool,
    delete_retention_ms: i64,
    index_interval_bytes: u32,
}

/// One cleaning pass over a log's state (the handle's `PartitionLog::clean`).
pub(super) struct LogCleaner<'a> {
    state: &'a RefCell<LogState>,
}

impl<'a> LogCleaner<'a> {
    pub(super) fn new(state: &'a RefCell<LogState>) -> LogCleaner<'a> {
        LogCleaner { state }
    }

    /// One cleaning pass if the log is compacted and has enough to clean (see the module
    /// docs); `map` is the shard's key index, cleared here. Returns what changed.
    pub(super) async fn clean(
        &self,
        now_ms: i64,
        map: &mut OffsetMap,
    ) -> Result<CleanSummary, LogError> {
        if self.state.borrow().config.cleanup.compact && !self.state.borrow().cleaner.loaded {
            self.load_checkpoint().await;
        }
        let Some(plan) = self.plan_clean(now_ms) else {
            return Ok(CleanSummary::default());
        };
        map.clear();
        let mut summary = CleanSummary::default();
        let map_end = build_offset_map(&plan, map, &mut summary.bytes_read).await?;
        let last_target = plan
            .targets
            .last()
            .map_or(plan.first_dirty, |t| t.next_offset - 1);
        let clean_to = if plan.horizon_due {
            map_end.max(last_target)
        } else {
            map_end
        };
        let mut horizon_due_ms: Option<i64> = None;
        for target in plan.targets.iter().filter(|t| t.base_offset <= clean_to) {
            summary.bytes_read += target.bytes;
            let cleaned = self
                .clean_segment(&plan, target, map, now_ms, &mut horizon_due_ms)
                .await?;
            if let Some((before, after, removed)) = cleaned {
                summary.segments_rewritten += 1;
                summary.bytes_before += before;
                summary.bytes_after += after;
                summary.records_removed += removed;
            }
        }
        let checkpoint = {
            let mut st = self.state.borrow_mut();
            st.cleaner.clean_offset = st.cleaner.clean_offset.max(map_end + 1);
            st.cleaner.horizon_due_ms = horizon_due_ms;
            st.cleaner.encode()
        };
        let path = plan.dir.join(CHECKPOINT_FILE);
        dma_file::write_file_atomic(&path, checkpoint.as_bytes())
            .await
            .map_err(|e| LogError::io(format!("writing {path:?}"), e))?;
        Ok(summary)
    }

    /// Reads the checkpoint of an earlier run, if there is a sound one. A clean offset past
    /// the log end (a tail lost since) is cut to it.
    async fn load_checkpoint(&self) {
        let path = self.state.borrow().dir.join(CHECKPOINT_FILE);
        let loaded = match dma_file::read_file(&path).await {
            Ok(data) => data.and_then(|d| CleanerCheckpoint::decode(&String::from_utf8_lossy(&d))),
            Err(error) => {
                tracing::warn!(?path, %error, "cannot read the cleaner checkpoint; cleaning the whole log");
                None
            }
        };
        let mut st = self.state.borrow_mut();
        st.cleaner.loaded = true;
        if let Some((clean_offset, horizon_due_ms)) = loaded {
            st.cleaner.clean_offset = clean_offset.min(st.log_end_offset());
            st.cleaner.horizon_due_ms = horizon_due_ms;
        }
    }

    fn plan_clean(&self, now_ms: i64) -> Option<Plan> {
        let st = self.state.borrow();
        if !st.config.cleanup.compact || st.failure.is_some() || st.closing || st.closed {
            return None;
        }
        let lag_ms = st.config.min_compaction_lag_ms;
        let young_after_ms = now_ms.saturating_sub(lag_ms);
        let mut targets = Vec::new();
        for s in &st.segments {
            let young = lag_ms > 0 && s.index.max_timestamp > young_after_ms;
            if !s.sealed || s.next_offset > st.high_watermark() || young {
                break;
            }
            let Some(file) = s.file.clone() else { break };
            targets.push(Target {
                base_offset: s.base_offset,
                next_offset: s.next_offset,
                bytes: s.written_bytes,
                file,
            });
        }
        let first = targets.first()?;
        let end = targets.last()?.next_offset;
        let first_dirty = st.cleaner.clean_offset.max(first.base_offset);
        let horizon_due = st.cleaner.horizon_due_ms.is_some_and(|t| now_ms >= t);
        let total: u64 = targets.iter().map(|t| t.bytes).sum();
        let dirty: u64 = targets
            .iter()
            .filter(|t| t.next_offset > first_dirty)
            .map(|t| t.bytes)
            .sum();
        let worth = first_dirty < end
            && dirty.saturating_mul(100) >= total.saturating_mul(LOG_CLEANER_DIRTY_PERCENT_MIN);
        if !worth && !horizon_due {
            return None;
        }
        Some(Plan {
            dir: st.dir.clone(),
            targets,
            first_dirty,
            horizon_due,
            delete_retention_ms: st.config.delete_retention_ms,
            index_interval_bytes: st.config.index_interval_bytes,
        })
    }

    /// Rewrites one segment without the records `map` supersedes and swaps it in. Returns
    /// (bytes before, bytes after, records removed), or `None` if nothing changed or the
    /// segment went away meanwhile (retention, close).
    async fn clean_segment(
        &self,
        plan: &Plan,
        target: &Target,
        map: &OffsetMap,
        now_ms: i64,
        horizon_due_ms: &mut Option<i64>,
    ) -> Result<Option<(u64, u64, u64)>, LogError> {
        let log_path = segment::path(&plan.dir, target.base_offset, LOG_SUFFIX);
        let mut temp = log_path.clone().into_os_string();
        temp.push(CLEANED_SUFFIX);
        let temp = PathBuf::from(temp);
        let mut out = CleanedWriter::create(&temp).await?;
        let mut index = SegmentIndex::new();
        let mut changed = false;
        let mut removed = 0u64;
        let mut reader = BatchReader::new(Rc::clone(&target.file), target.bytes);
        let filter = Filter {
            map,
            now_ms,
            delete_retention_ms: plan.delete_retention_ms,
        };
        let outcome: Result<(), LogError> = async {
            while let Some(whole) = reader.next().await? {
                let header = batch::header_fields(&whole);
                let kept = filter
                    .apply(&whole, &header)
                    .map_err(|reason| reader.corrupt(reason))?;
                removed += u64::from(kept.removed);
                if let Some(horizon) = kept.tombstone_horizon_ms {
                    *horizon_due_ms = Some(horizon_due_ms.map_or(horizon, |t| t.min(horizon)));
                }
                let bytes = match kept.batch {
                    Kept::Whole => whole,
                    Kept::Nothing => {
                        changed = true;
                        continue;
                    }
                    Kept::Rebuilt(bytes) => {
                        changed = true;
                        bytes
                    }
                };
                let (Ok(relative), Ok(position)) = (
                    u32::try_from(header.base_offset - target.base_offset),
                    u32::try_from(out.position()),
                ) else {
                    return Err(reader.corrupt("batch outside its segment's range"));
                };
                index.on_batch(
                    relative,
                    position,
                    bytes.len() as u64,
                    header.max_timestamp,
                    plan.index_interval_bytes,
                );
                out.push(&bytes).await?;
                crate::io::yield_if_needed().await;
            }
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            out.abandon().await;
            return Err(e);
        }
        if !changed {
            out.abandon().await;
            return Ok(None);
        }
        let (file, size) = match out.finish().await {
            Ok(done) => done,
            Err(e) => {
                remove_leftover(&temp);
                return Err(e);
            }
        };
        let footer = Footer {
            segment_bytes: size,
            next_offset_relative: (target.next_offset - target.base_offset) as u64,
            max_timestamp: index.max_timestamp,
        };
        let io = |e| LogError::io(format!("swapping in cleaned segment {log_path:?}"), e);
        let old = match self.swap(target, file, size, index.clone(), &log_path, &temp)? {
            Swap::Gone => return Ok(None),
            Swap::Dropped(old) => {
                dma_file::sync_dir(&plan.dir).await.map_err(io)?;
                old
            }
            Swap::Replaced(old) => {
                // One directory sync covers the rename and the new indexes: until it, a
                // crash may leave either file name, and an index whose footer does not
                // match its segment is never trusted (the segment is rescanned).
                write_index(&plan.dir, target.base_offset, &index, footer).await?;
                dma_file::sync_dir(&plan.dir).await.map_err(io)?;
                old
            }
        };
        if let Some(Ok(old)) = old.map(Rc::try_unwrap) {
            old.close().await.map_err(io)?;
        }
        tracing::debug!(
            dir = ?plan.dir,
            base_offset = target.base_offset,
            before = target.bytes,
            after = size,
            removed,
            "cleaned segment"
        );
        Ok(Some((target.bytes, size, removed)))
    }

    /// Puts the cleaned file in place of `target`'s, if the log still holds that segment as
    /// the plan saw it; a segment left empty is dropped instead, unless it is the first (whose
    /// base is the log start). No await: appends, reads and retention see either the old
    /// segment or the new one (or none: reads skip the gap to the next segment).
    fn swap(
        &self,
        target: &Target,
        mut file: DmaFile,
        size: u64,
        index: SegmentIndex,
        log_path: &Path,
        temp: &Path,
    ) -> Result<Swap, LogError> {
        let mut st = self.state.borrow_mut();
        let position = st.segments.iter().position(|s| {
            s.base_offset == target.base_offset
                && s.sealed
                && s.file.as_ref().is_some_and(|f| Rc::ptr_eq(f, &target.file))
        });
        let open = st.failure.is_none() && !st.closing && !st.closed;
        let Some(i) = position.filter(|_| open) else {
            drop(st);
            remove_leftover(temp);
            return Ok(Swap::Gone);
        };
        let io = |e| LogError::io(format!("swapping in cleaned segment {log_path:?}"), e);
        // Stale indexes must never vouch for the new file: they go first.
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            dma_file::remove_file(&segment::path(&st.dir, target.base_offset, suffix))
                .map_err(io)?;
        }
        st.drop_cached_below(target.next_offset);
        // It may hold the replaced file open.
        st.read_ahead.clear();
        if size == 0 && i > 0 {
            // Every record of it has a newer one later in the log, which is durable: a crash
            // before the removal is durable leaves the old segment, rescanned.
            dma_file::remove_file(log_path).map_err(io)?;
            remove_leftover(temp);
            let dropped = st.segments.remove(i).expect("found above");
            return Ok(Swap::Dropped(dropped.file));
        }
        file.rename_to(log_path).map_err(io)?;
        let segment = &mut st.segments[i];
        assert_eq!(
            segment.next_offset, target.next_offset,
            "a sealed segment's offsets never change"
        );
        let old = segment.file.replace(Rc::new(file));
        segment.index = index;
        segment.assigned_bytes = size;
        segment.written_bytes = size;
        Ok(Swap::Replaced(old))
    }
}

/// What became of a cleaned segment.
enum Swap {
    /// The log no longer holds the segment as planned; the cleaned file was removed.
    Gone,
    /// The cleaned file replaced the segment's; here is the old file.
    Replaced(Option<Rc<DmaFile>>),
    /// Nothing was left of the segment and it was removed; here is its file.
    Dropped(Option<Rc<DmaFile>>),
}

/// Reads the dirty records' keys into `map`. Returns the last offset covered: every record
/// of the dirty part up to it is in the map.
async fn build_offset_map(
    plan: &Plan,
    map: &mut OffsetMap,
    bytes_read: &mut u64,
) -> Result<i64, LogError> {
    let mut map_end = plan.first_dirty - 1;
    for target in plan
        .targets
        .iter()
        .filter(|t| t.next_offset > plan.first_dirty)
    {
        *bytes_read += target.bytes;
        let mut reader = BatchReader::new(Rc::clone(&target.file), target.bytes);
        while let Some(whole) = reader.next().await? {
            let header = batch::header_fields(&whole);
            if header.last_offset() < plan.first_dirty {
                continue;
            }
            if header.attributes & ATTRIBUTE_CONTROL == 0 {
                let full_before = batch_records::with_records(&whole, |data| {
                    for record in batch_records::parse_records(data, header.records_count)? {
                        let offset = header.base_offset + i64::from(record.offset_delta);
                        if offset < plan.first_dirty {
                            continue;
                        }
                        if let Some(key) = record.key {
                            if !map.put(key, offset) {
                                return Ok(Some(offset));
                            }
                        }
                    }
                    Ok(None)
                })
                .map_err(|reason| reader.corrupt(reason))?;
                if let Some(offset) = full_before {
                    return Ok(map_end.max(offset - 1));
                }
            }
            map_end = header.last_offset();
            crate::io::yield_if_needed().await;
        }
    }
    Ok(map_end)
}

enum Kept {
    Whole,
    Nothing,
    Rebuilt(Bytes),
}

struct Filtered {
    batch: Kept,
    removed: u32,
    /// The delete horizon of the tombstones the batch keeps.
    tombstone_horizon_ms: Option<i64>,
}

/// Which records of a batch survive a pass.
struct Filter<'a> {
    map: &'a OffsetMap,
    now_ms: i64,
    delete_retention_ms: i64,
}

impl Filter<'_> {
    fn apply(&self, whole: &Bytes, header: &BatchHeader) -> Result<Filtered, &'static str> {
        if header.attributes & ATTRIBUTE_CONTROL != 0 {
            return Ok(Filtered {
                batch: Kept::Whole,
                removed: 0,
                tombstone_horizon_ms: None,
            });
        }
        let horizon_before =
            (header.attributes & ATTRIBUTE_DELETE_HORIZON != 0).then_some(header.base_timestamp);
        batch_records::with_records(whole, |data| {
            let records = batch_records::parse_records(data, header.records_count)?;
            let mut kept: Vec<&RecordView<'_>> = Vec::with_capacity(records.len());
            let mut tombstones = false;
            for record in &records {
                let offset = header.base_offset + i64::from(record.offset_delta);
                // Keyless records cannot be compacted; Kafka's cleaner drops them too.
                let Some(key) = record.key else { continue };
                if self.map.get(key).is_some_and(|newest| offset < newest) {
                    continue;
                }
                if record.value_is_null {
                    if horizon_before.is_some_and(|horizon| self.now_ms > horizon) {
                        continue;
                    }
                    tombstones = true;
                }
                kept.push(record);
            }
            let horizon = match horizon_before {
                Some(horizon) => Some(horizon),
                None if tombstones => Some(self.now_ms.saturating_add(self.delete_retention_ms)),
                None => None,
            };
            let removed = u32::try_from(records.len() - kept.len()).unwrap_or(u32::MAX);
            let tombstone_horizon_ms = horizon.filter(|_| tombstones);
            let batch = if removed == 0 && horizon == horizon_before {
                Kept::Whole
            } else if kept.is_empty() {
                Kept::Nothing
            } else {
                Kept::Rebuilt(rebuild(whole, header, &kept, horizon, horizon_before)?)
            };
            Ok(Filtered {
                batch,
                removed,
                tombstone_horizon_ms,
            })
        })
    }
}

/// The batch `whole` holding only `kept`. A new delete horizon becomes the baseTimestamp,
/// so each kept record's timestamp delta is rebased to keep its timestamp.
fn rebuild(
    whole: &Bytes,
    header: &BatchHeader,
    kept: &[&RecordView<'_>],
    horizon: Option<i64>,
    horizon_before: Option<i64>,
) -> Result<Bytes, &'static str> {
    let rebase_to = horizon.filter(|_| horizon_before.is_none());
    let mut records = Vec::new();
    let mut inner = Vec::new();
    for record in kept {
        match rebase_to {
            None => records.extend_from_slice(record.raw),
            Some(base) => {
                let timestamp = header.base_timestamp.wrapping_add(record.timestamp_delta);
                inner.clear();
                inner.push(record.attributes);
                batch_records::write_varint(&mut inner, timestamp.wrapping_sub(base));
                batch_records::write_varint(&mut inner, i64::from(record.offset_delta));
                inner.extend_from_slice(record.body);
                batch_records::write_varint(&mut records, inner.len() as i64);
                records.extend_from_slice(&inner);
            }
        }
    }
    let mut attributes = header.attributes;
    if horizon.is_some() {
        attributes |= ATTRIBUTE_DELETE_HORIZON;
    }
    let base_timestamp = horizon.unwrap_or(header.base_timestamp);
    let count = i32::try_from(kept.len()).map_err(|_| "too many records")?;
    let records = match header.attributes & COMPRESSION_MASK {
        0 => records,
        codec => batch_records::compress(codec, &records)?.to_vec(),
    };
    Ok(batch::rebuild(
        whole,
        attributes,
        base_timestamp,
        count,
        &records,
    ))
}

/// Whole, CRC-checked batches of a sealed segment, read a window at a time.
struct BatchReader {
    file: Rc<DmaFile>,
    end: u64,
    window: Bytes,
    /// File position of `window[0]`.
    window_start: u64,
    used: usize,
}

impl BatchReader {
    fn new(file: Rc<DmaFile>, end: u64) -> BatchReader {
        BatchReader {
            file,
            end,
            window: Bytes::new(),
            window_start: 0,
            used: 0,
        }
    }

    fn corrupt(&self, reason: &'static str) -> LogError {
        LogError::CorruptLog {
            path: self.file.path().to_path_buf(),
            position: self.window_start + self.used as u64,
            reason,
        }
    }

    async fn next(&mut self) -> Result<Option<Bytes>, LogError> {
        loop {
            let rest = &self.window[self.used..];
            let need = match batch::framed_size(rest) {
                Some(size) if size < HEADER_BYTES => return Err(self.corrupt("bad batch length")),
                Some(size) if size <= rest.len() => {
                    let whole = self.window.slice(self.used..self.used + size);
                    if !batch::crc_matches(&whole) {
                        return Err(self.corrupt("CRC32C mismatch"));
                    }
                    self.used += size;
                    return Ok(Some(whole));
                }
                Some(size) => size,
                None => LOG_OVERHEAD,
            };
            let at = self.window_start + self.used as u64;
            if at >= self.end {
                return Ok(None);
            }
            let left = usize::try_from(self.end - at).unwrap_or(usize::MAX);
            let len = LOG_CLEANER_READ_BYTES.max(need).min(left);
            if len < need {
                return Err(self.corrupt("batch runs past the segment end"));
            }
            let data = self
                .file
                .read_at(at, len)
                .await
                .map_err(|e| LogError::io(format!("reading {:?}", self.file.path()), e))?;
            if data.len() < len {
                return Err(self.corrupt("segment file ends before its size"));
            }
            self.window = Bytes::copy_from_slice(&data);
            self.window_start = at;
            self.used = 0;
        }
    }
}

/// Writes a cleaned segment sequentially with O_DIRECT, a buffer at a time.
struct CleanedWriter {
    file: DmaFile,
    pending: Vec<u8>,
    flushed: u64,
}

impl CleanedWriter {
    async fn create(path: &Path) -> Result<CleanedWriter, LogError> {
        let io = |e| LogError::io(format!("creating {path:?}"), e);
        let file = DmaFile::open_rw(path, true).await.map_err(io)?;
        // A leftover of an earlier pass may be there.
        file.truncate(0).await.map_err(io)?;
        Ok(CleanedWriter {
            file,
            pending: Vec::with_capacity(LOG_CLEANER_WRITE_BYTES),
            flushed: 0,
        })
    }

    fn position(&self) -> u64 {
        self.flushed + self.pending.len() as u64
    }

    async fn push(&mut self, bytes: &[u8]) -> Result<(), LogError> {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= LOG_CLEANER_WRITE_BYTES {
            let align = self.file.alignment() as usize;
            let whole_blocks = self.pending.len() / align * align;
            self.write(whole_blocks).await?;
        }
        Ok(())
    }

    /// Writes the first `len` pending bytes (padded with zeros to the alignment).
    async fn write(&mut self, len: usize) -> Result<(), LogError> {
        let align = self.file.alignment() as usize;
        let padded = len.div_ceil(align) * align;
        let pending = &self.pending;
        let buf = self.file.alloc_filled(padded, |b| {
            b[..len].copy_from_slice(&pending[..len]);
            len
        });
        self.file
            .write_at(buf, self.flushed)
            .await
            .map_err(|e| LogError::io(format!("writing {:?}", self.file.path()), e))?;
        self.pending.drain(..len);
        self.flushed += len as u64;
        Ok(())
    }

    /// Writes the rest, cuts the padding and fdatasyncs. Returns the file and its size.
    async fn finish(mut self) -> Result<(DmaFile, u64), LogError> {
        let size = self.position();
        let rest = self.pending.len();
        if rest > 0 {
            self.write(rest).await?;
        }
        let io = |e| LogError::io("finishing a cleaned segment", e);
        self.file.truncate(size).await.map_err(io)?;
        self.file.fdatasync().await.map_err(io)?;
        Ok((self.file, size))
    }

    async fn abandon(self) {
        let path = self.file.path().to_path_buf();
        if let Err(error) = self.file.close().await {
            tracing::warn!(?path, %error, "closing an abandoned cleaned segment failed");
        }
        remove_leftover(&path);
    }
}

/// Removes a cleaned file that will not be swapped in. Failing is harmless: the next open
/// of the log removes leftovers.
fn remove_leftover(path: &Path) {
    if let Err(error) = dma_file::remove_file(path) {
        tracing::warn!(?path, %error, "removing an unused cleaned segment failed");
    }
}
