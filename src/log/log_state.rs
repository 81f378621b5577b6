//! `LogState`: one partition log's state in memory, shared by its handle (`PartitionLog`), its
//! segment writer (`segment_writer`) and the shard's commit rounds (`commit_group`).
//!
//! The five offsets are private and only move through methods that check, in release builds
//! too, `log_start_offset <= high_watermark <= log_end_offset` and
//! `durable_offset <= written_offset <= log_end_offset`: a violation would serve or
//! acknowledge records the log does not hold. Worked example: after appending offsets 0..=9
//! under group commit, `log_end_offset == 10`; once the writer has them in the file,
//! `written_offset == 10`; the commit round's fdatasync then makes `durable_offset` and
//! `high_watermark` 10.

use std::collections::VecDeque;
use std::path::PathBuf;

use bytes::Bytes;
use event_listener::Event;

use crate::io::Task;

use super::batch;
use super::cleaner_checkpoint::CleanerCheckpoint;
use super::config::LogConfig;
use super::error::{Failure, LogError};
use super::log_start::LogStartCheckpoint;
use super::producer_state::ProducerStates;
use super::read_ahead::ReadAhead;
use super::segment::Segment;
use super::segment_index::SegmentIndex;
use super::tail_cache::{CachedBatch, TailCache};

/// A batch accepted by `append` and not yet written to its segment file.
pub(crate) struct PendingBatch {
    pub(super) base_offset: i64,
    pub(super) last_offset: i64,
    pub(super) segment_base: i64,
    pub(super) position: u64,
    /// The batch as the producer sent it: baseOffset and partitionLeaderEpoch are still the
    /// producer's.
    pub(super) bytes: Bytes,
    /// The batch's first bytes as the broker set them (offset; under LogAppendTime also
    /// timestamp and CRC), shared with the tail cache: the writer copies them over the
    /// producer's instead of patching and re-checksumming again, so the file holds exactly
    /// what in-memory readers were served.
    pub(super) prefix: Bytes,
}

/// One partition log's in-memory state; `Rc<RefCell<_>>`-shared by its handle, its segment
/// writer task and the shard's commit rounds, all on one shard.
pub(crate) struct LogState {
    pub(super) dir: PathBuf,
    pub(super) config: LogConfig,
    /// Oldest first; the last one is active. Never empty.
    pub(super) segments: VecDeque<Segment>,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    /// Offsets below this are in segment files.
    written_offset: i64,
    /// Offsets below this are durable under the flush policy.
    durable_offset: i64,
    pub(super) unwritten: VecDeque<PendingBatch>,
    pub(super) unwritten_bytes: u64,
    pub(super) cache: TailCache,
    /// Segment data read ahead for a consumer reading the files in order.
    pub(super) read_ahead: ReadAhead,
    /// Idempotent-producer state as of `log_end_offset`.
    pub(super) producers: ProducerStates,
    pub(super) failure: Option<Failure>,
    pub(super) closing: bool,
    pub(super) closed: bool,
    pub(super) writer: Option<Task<()>>,
    /// Wakes the segment writer (new appends, close).
    pub(super) work_event: Event,
    /// Fires when `durable_offset` advances or the log fails/closes.
    pub(super) durable_event: Event,
    /// Fires when the high watermark advances or the log closes.
    pub(super) data_event: Event,
    /// Fires when queued batches reach the segment file, or the log fails/closes.
    pub(super) written_event: Event,
    /// The last write or preallocation found the disk full. The writer keeps the queued
    /// batches and retries; producers are refused until a write succeeds again.
    pub(super) storage_full: bool,
    /// The log start offset as the checkpoint file last made it durable (see `log_start`).
    pub(super) log_start_checkpoint: LogStartCheckpoint,
    /// What the log cleaner has done to this log (compacted topics only).
    pub(super) cleaner: CleanerCheckpoint,
}

impl LogState {
    /// The state of a log just opened: everything recovery kept, up to the active segment's
    /// next offset, is in the segment files, durable and visible.
    pub(super) fn recovered(
        dir: PathBuf,
        config: LogConfig,
        segments: VecDeque<Segment>,
        log_start_offset: i64,
        producers: ProducerStates,
        log_start_checkpoint: LogStartCheckpoint,
    ) -> LogState {
        let leo = segments
            .back()
            .expect("recovery always leaves an active segment")
            .next_offset;
        let state = LogState {
            dir,
            config,
            segments,
            log_start_offset,
            log_end_offset: leo,
            high_watermark: leo,
            written_offset: leo,
            durable_offset: leo,
            unwritten: VecDeque::new(),
            unwritten_bytes: 0,
            cache: TailCache::default(),
            read_ahead: ReadAhead::default(),
            producers,
            failure: None,
            closing: false,
            closed: false,
            writer: None,
            work_event: Event::new(),
            durable_event: Event::new(),
            data_event: Event::new(),
            written_event: Event::new(),
            storage_full: false,
            log_start_checkpoint,
            cleaner: CleanerCheckpoint::default(),
        };
        state.assert_offsets();
        state
    }

    /// The first offset still in the log (readable from here on).
    pub(crate) fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offsets below it are visible to readers.
    pub(crate) fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// The offset the next appended batch gets.
    pub(crate) fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    /// Offsets below this are in segment files.
    pub(crate) fn written_offset(&self) -> i64 {
        self.written_offset
    }

    /// Offsets below this are durable under the flush policy.
    pub(crate) fn durable_offset(&self) -> i64 {
        self.durable_offset
    }

    /// Moves the log start up to `offset` (DeleteRecords, retention); a lower one changes
    /// nothing. It must not pass the high watermark.
    pub(crate) fn advance_log_start(&mut self, offset: i64) {
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.assert_offsets();
        }
    }

    /// The segment writer has written every offset below `offset` to its file.
    pub(crate) fn advance_written(&mut self, offset: i64) {
        assert!(
            offset >= self.written_offset,
            "written offset goes back: {} -> {offset}",
            self.written_offset
        );
        self.written_offset = offset;
        self.assert_offsets();
        self.written_event.notify(usize::MAX);
    }

    /// An fsync (or a flush policy without one) made every offset below `offset` durable.
    /// Wakes the waiters of `wait_durable` when it advances.
    pub(crate) fn advance_durable(&mut self, offset: i64) {
        if offset > self.durable_offset {
            self.durable_offset = offset;
            self.assert_offsets();
            self.durable_event.notify(usize::MAX);
        }
    }

    pub(crate) fn assert_offsets(&self) {
        assert!(
            self.log_start_offset <= self.high_watermark
                && self.high_watermark <= self.log_end_offset,
            "offset invariant violated: log_start {} hw {} leo {}",
            self.log_start_offset,
            self.high_watermark,
            self.log_end_offset
        );
        assert!(self.durable_offset <= self.written_offset);
        assert!(self.written_offset <= self.log_end_offset);
    }

    /// See [`PartitionLog::last_stable_offset`]. Never below the log start (as in Kafka): a
    /// transaction whose first records DeleteRecords removed holds the start, not an offset
    /// no consumer can fetch.
    pub(crate) fn last_stable_offset(&self) -> i64 {
        self.producers
            .txns
            .first_unstable_offset()
            .map_or(self.high_watermark, |first| {
                first.max(self.log_start_offset).min(self.high_watermark)
            })
    }

    pub(crate) fn set_high_watermark(&mut self, hw: i64) {
        if hw > self.high_watermark {
            self.high_watermark = hw;
            self.assert_offsets();
            self.data_event.notify(usize::MAX);
        }
    }

    pub(crate) fn fail(&mut self, error: &LogError) {
        if self.failure.is_none() {
            tracing::error!(dir = ?self.dir, %error, "partition log failed");
            self.failure = Some(Failure::from_error(error));
        }
        self.durable_event.notify(usize::MAX);
        self.data_event.notify(usize::MAX);
        self.written_event.notify(usize::MAX);
    }

    pub(crate) fn check_open(&self) -> Result<(), LogError> {
        if let Some(failure) = &self.failure {
            return Err(failure.to_error());
        }
        if self.closing || self.closed {
            return Err(LogError::Closed);
        }
        Ok(())
    }

    /// Drops written batches from the front of the cache while the shard's tail caches are
    /// over budget (see `tail_cache`).
    pub(crate) fn trim_cache(&mut self) {
        let written_offset = self.written_offset;
        self.cache
            .trim(written_offset, crate::constants::TAIL_CACHE_BYTES_PER_SHARD);
    }

    /// The index in `segments` of the one holding `offset` (the first one below it).
    pub(super) fn segment_index_for(&self, offset: i64) -> usize {
        let i = self.segments.partition_point(|s| s.base_offset <= offset);
        i.saturating_sub(1)
    }
}

impl LogState {
    /// Queues one validated batch at `base_offset` (the log end) for the writer and the tail
    /// cache, rolling to a new segment when the active one is full, old or too wide.
    pub(super) fn push_batch(
        &mut self,
        bytes: Bytes,
        prefix: Bytes,
        base_offset: i64,
        header: batch::BatchHeader,
        now_ms: i64,
    ) {
        let size = bytes.len() as u64;
        let last_offset = base_offset + i64::from(header.last_offset_delta);
        let segment_bytes = self.config.segment_bytes_clamped();
        let segment_ms = i64::try_from(self.config.segment_ms).unwrap_or(i64::MAX);
        let active = self.segments.back().expect("never empty");
        let full = active.assigned_bytes + size > segment_bytes;
        let old = active
            .first_append_ms
            .is_some_and(|t| now_ms.saturating_sub(t) >= segment_ms);
        // Offsets relative to the base must fit u32 too.
        let wide = last_offset - active.base_offset > i64::from(u32::MAX / 2);
        if active.assigned_bytes > 0 && (full || old || wide) {
            self.start_segment(base_offset);
        }
        let interval = self.config.index_interval_bytes;
        let active = self.segments.back_mut().expect("never empty");
        let position = active.assigned_bytes;
        let relative = active.relative(base_offset);
        let position_u32 = u32::try_from(position).expect("segment positions fit u32");
        active
            .index
            .on_batch(relative, position_u32, size, header.max_timestamp, interval);
        active.assigned_bytes += size;
        active.next_offset = last_offset + 1;
        active.first_append_ms.get_or_insert(now_ms);
        let segment_base = active.base_offset;
        self.unwritten.push_back(PendingBatch {
            base_offset,
            last_offset,
            segment_base,
            position,
            bytes: bytes.clone(),
            prefix: prefix.clone(),
        });
        self.unwritten_bytes += size;
        self.cache.push_back(CachedBatch {
            base_offset,
            last_offset,
            prefix,
            bytes,
        });
        self.log_end_offset = last_offset + 1;
    }

    /// A new active segment at `base_offset`; the segment writer creates its file when it
    /// reaches the segment's first batch.
    fn start_segment(&mut self, base_offset: i64) {
        self.segments.push_back(Segment {
            base_offset,
            next_offset: base_offset,
            assigned_bytes: 0,
            written_bytes: 0,
            index: SegmentIndex::new(),
            first_append_ms: None,
            file: None,
            sealed: false,
            producer_snapshot: Some(self.producers.encode(base_offset)),
        });
    }

    /// See [`PartitionLog::skip_to`]. Returns whether the log held nothing before (its start
    /// then moved to `offset` too).
    pub(super) fn skip_to(&mut self, offset: i64) -> bool {
        let old_end = self.log_end_offset;
        if offset <= old_end {
            return false;
        }
        self.start_segment(offset);
        self.log_end_offset = offset;
        // Nothing is pending below `offset` when everything up to the old end is durable, so
        // the skipped offsets count as written, durable and visible; otherwise the next batch
        // written and synced moves them past the gap.
        let settled = self.durable_offset == old_end && self.high_watermark == old_end;
        let empty = self.log_start_offset == old_end;
        if settled {
            self.advance_written(offset);
            self.advance_durable(offset);
            self.set_high_watermark(offset);
            if empty {
                self.advance_log_start(offset);
            }
        }
        self.assert_offsets();
        settled && empty
    }

    /// Forgets cached batches below `offset`, which a cleaned segment no longer holds.
    pub(super) fn drop_cached_below(&mut self, offset: i64) {
        self.cache.drop_front_while(|b| b.base_offset < offset);
    }
}
