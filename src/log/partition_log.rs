//! `PartitionLog`: the public handle over one partition's segments.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use event_listener::Event;

use crate::io::dma_file::{self, DmaFile};
use crate::io::Task;

use super::batch;
use super::batch_records;
use super::config::{FlushPolicy, LogConfig};
use super::error::{Failure, LogError};
use super::log_cleaner::{self, CleanerCheckpoint};
use super::log_start::{self, LogStartCheckpoint};
use super::producer_state::{self, ProducerStates, SequenceCheck};
use super::read_ahead::ReadAhead;
use super::segment::{self, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::segment_index::{Footer, SegmentIndex};
use super::segment_writer;
use super::tail_cache::{CachedBatch, TailCache};
use super::txn_index::{self, AbortedTxn};

/// Written (empty) on clean close; its presence at open means no segment needs a rescan.
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = ".clean_shutdown";
/// Smallest DMA read issued for a cold fetch.
const READ_WINDOW_BYTES_MIN: usize = 64 << 10;
/// Largest DMA read issued for a cold fetch (a single larger batch is read whole).
const READ_WINDOW_BYTES_MAX: usize = 8 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_start_offset: i64,
    /// -1: the log keeps producer (CreateTime) timestamps.
    pub log_append_time_ms: i64,
    /// The record set was a retried batch of an idempotent producer that is already in the
    /// log: nothing was appended, and the offsets are those of the original. Answer it like
    /// any success; `wait_durable(last_offset)` then waits for the original's durability.
    pub duplicate: bool,
}

/// Whole batches; concatenating `chunks` gives the records field of a fetch response. A
/// chunk boundary may fall inside a batch (in-memory reads return each batch as a small
/// chunk holding its broker-set header fields followed by the producer's bytes), so decode
/// the concatenation, not chunk by chunk.
#[derive(Debug, Clone, Default)]
pub struct ReadResult {
    pub chunks: Vec<Bytes>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub last_stable_offset: i64,
    /// For a read_committed read: the aborted transactions from the read offset up to the
    /// last stable offset, which the client skips.
    pub aborted: Vec<AbortedTxn>,
}

impl ReadResult {
    pub fn bytes_len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }
}

/// A batch accepted by `append` and not yet written to its segment file.
pub(crate) struct PendingBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub segment_base: i64,
    pub position: u64,
    /// The batch as the producer sent it: baseOffset and partitionLeaderEpoch are still the
    /// producer's; the writer sets them in its copy ([`batch::assign_offset`]).
    pub bytes: Bytes,
    /// The broker time to stamp the batch with (LogAppendTime), as its in-memory copy is.
    pub log_append_time_ms: Option<i64>,
}

pub(crate) struct LogState {
    pub dir: PathBuf,
    pub config: LogConfig,
    /// Oldest first; the last one is active. Never empty.
    pub segments: VecDeque<Segment>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    /// Offsets below this are in segment files.
    pub written_offset: i64,
    /// Offsets below this are durable under the flush policy.
    pub durable_offset: i64,
    pub unwritten: VecDeque<PendingBatch>,
    pub unwritten_bytes: u64,
    pub cache: TailCache,
    /// Segment data read ahead for a consumer reading the files in order.
    pub read_ahead: ReadAhead,
    /// Idempotent-producer state as of `log_end_offset`.
    pub producers: ProducerStates,
    pub failure: Option<Failure>,
    pub closing: bool,
    pub closed: bool,
    pub writer: Option<Task<()>>,
    /// Wakes the segment writer (new appends, close).
    pub work_event: Event,
    /// Fires when `durable_offset` advances or the log fails/closes.
    pub durable_event: Event,
    /// Fires when the high watermark advances or the log closes.
    pub data_event: Event,
    /// Fires when queued batches reach the segment file, or the log fails/closes.
    pub written_event: Event,
    /// The last write or preallocation found the disk full. The writer keeps the queued
    /// batches and retries; producers are refused until a write succeeds again.
    pub storage_full: bool,
    /// The log start offset as the checkpoint file last made it durable (see `log_start`).
    pub log_start_checkpoint: LogStartCheckpoint,
    /// What the log cleaner has done to this log (compacted topics only).
    pub cleaner: CleanerCheckpoint,
}

impl LogState {
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

    /// Appends to `chunks` the cached batches from the one holding `offset`, below `bound`
    /// (the high watermark, or the last stable offset for read_committed), while the response (already `already` bytes) stays within `max_bytes`; the
    /// first batch of a response always goes whole (KIP-74).
    fn read_cached(
        &self,
        offset: i64,
        bound: i64,
        max_bytes: usize,
        already: usize,
        chunks: &mut Vec<Bytes>,
    ) {
        let first = self.cache.partition_point(|b| b.last_offset < offset);
        let mut total = already;
        for cached in self.cache.range(first..) {
            if cached.base_offset >= bound {
                break;
            }
            let len = cached.bytes.len();
            if total + len > max_bytes && total > 0 {
                break;
            }
            total += len;
            chunks.push(cached.prefix.clone());
            chunks.push(cached.bytes.slice(cached.prefix.len()..));
        }
    }

    fn segment_index_for(&self, offset: i64) -> usize {
        let i = self.segments.partition_point(|s| s.base_offset <= offset);
        i.saturating_sub(1)
    }
}

/// Handle to one partition's log. Cheap to clone; all clones share the log. `!Send`.
#[derive(Clone)]
pub struct PartitionLog {
    pub(super) state: Rc<RefCell<LogState>>,
}

impl PartitionLog {
    /// Opens or creates the partition directory, recovering the tail if needed.
    pub async fn open(dir: PathBuf, config: LogConfig) -> Result<PartitionLog, LogError> {
        dma_file::prepare_dir(&dir)
            .await
            .map_err(|e| LogError::io(format!("preparing {dir:?}"), e))?;
        let recovered = recover(&dir, &config).await?;
        let producers =
            recover_producers(&dir, &recovered.segments, crate::io::clock::now_ms()).await?;
        let active = recovered
            .segments
            .back()
            .expect("recovery always leaves an active segment");
        let leo = active.next_offset;
        let first_base = recovered.segments.front().map_or(0, |s| s.base_offset);
        let checkpoint = log_start::read_checkpoint(&dir).await?;
        let start = log_start::recovered_start(&dir, first_base, checkpoint, leo);
        let state = LogState {
            dir,
            config,
            segments: recovered.segments,
            log_start_offset: start,
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
            log_start_checkpoint: LogStartCheckpoint::new(checkpoint.unwrap_or(start)),
            cleaner: CleanerCheckpoint::default(),
        };
        state.assert_offsets();
        let state = Rc::new(RefCell::new(state));
        let (segment_base, file) = {
            let st = state.borrow();
            let active = st.segments.back().expect("never empty");
            let file = active
                .file
                .clone()
                .expect("active segment has a file at open");
            (active.base_offset, file)
        };
        let writer = crate::io::spawn_in(
            crate::io::TaskClass::Produce,
            segment_writer::run(state.clone(), recovered.tail, segment_base, file),
        );
        state.borrow_mut().writer = Some(writer);
        Ok(PartitionLog { state })
    }

    /// Validates, assigns offsets to and queues the record set of one produce request (one
    /// or more RecordBatch v2). All batches are accepted or none. Does no I/O, and never
    /// writes into `records` (it is usually a slice of the request frame).
    ///
    /// A batch with producerId >= 0 (idempotent producer) must come alone, and is checked
    /// against the producer's sequence state: a retry of one of its last five batches returns
    /// the original offsets with `duplicate: true` and appends nothing; a gap or a new epoch
    /// not starting at sequence 0 is [`LogError::OutOfOrderSequence`]; an older epoch is
    /// [`LogError::InvalidProducerEpoch`]. A producer id without state is accepted at any
    /// sequence (as Kafka >= 2.5 does).
    pub fn append(&self, records: Bytes, now_ms: i64) -> Result<AppendInfo, LogError> {
        let mut st = self.state.borrow_mut();
        st.check_open()?;
        let max_message_bytes = st.config.max_message_bytes;
        let headers = batch_headers(&records, max_message_bytes)?;
        if headers.is_empty() {
            return Err(LogError::InvalidRecord {
                reason: "empty record set",
            });
        }
        if headers.iter().any(|(_, h)| txn_index::is_control(h)) {
            return Err(LogError::InvalidRecord {
                reason: "control batches are written by the broker only",
            });
        }
        if st.config.cleanup.compact {
            batch_records::refuse_keyless(&records, &headers)?;
        }
        if headers.iter().any(|(_, h)| h.producer_id >= 0) {
            // Kafka accepts exactly one batch per partition from Produce v3 on; one batch
            // keeps "duplicate" a property of the whole record set.
            let [(_, header)] = headers.as_slice() else {
                return Err(LogError::InvalidRecord {
                    reason: "an idempotent producer's record set must hold exactly one batch",
                });
            };
            if let SequenceCheck::Duplicate(original) = st.producers.check(header)? {
                return Ok(AppendInfo {
                    base_offset: original.base_offset,
                    last_offset: original.last_offset,
                    log_start_offset: st.log_start_offset,
                    log_append_time_ms: -1,
                    duplicate: true,
                });
            }
        }
        // Recompressed only now, so that a duplicate is answered without the work.
        let (records, headers) = match st.config.compression {
            None => (records, headers),
            Some(codec) => match batch_records::recompress_record_set(&records, &headers, codec)? {
                None => (records, headers),
                Some(rewritten) => {
                    // Kafka checks max.message.bytes again on the rewritten batches.
                    let headers = batch_headers(&rewritten, max_message_bytes)?;
                    (rewritten, headers)
                }
            },
        };
        let first_offset = st.log_end_offset;
        let mut next = first_offset;
        for (_, header) in &headers {
            next = next
                .checked_add(i64::from(header.last_offset_delta) + 1)
                .ok_or(LogError::InvalidRecord {
                    reason: "offset overflow",
                })?;
        }
        // The producer's bytes stay untouched (they are usually a slice of a request frame
        // shared with other partitions): the assigned offsets go into small patched copies
        // of each batch's first bytes, used for in-memory reads; the segment writer patches
        // its aligned copy the same way. LogAppendTime patches more of the header, CRC
        // included, so its copies are longer.
        let log_append_time = st.config.log_append_time;
        let prefix_len = if log_append_time {
            batch::LOG_APPEND_TIME_FIELDS_END
        } else {
            batch::BROKER_FIELDS_END
        };
        let mut prefixes = BytesMut::with_capacity(headers.len() * prefix_len);
        let mut offset = first_offset;
        for (position, header) in &headers {
            let start = prefixes.len();
            prefixes.extend_from_slice(&records[*position..*position + prefix_len]);
            batch::assign_offset(&mut prefixes[start..], offset);
            if log_append_time {
                let tail = &records[*position + prefix_len..*position + header.size_bytes];
                batch::stamp_log_append_time(&mut prefixes[start..], tail, now_ms);
            }
            offset += i64::from(header.last_offset_delta) + 1;
        }
        let prefixes = prefixes.freeze();
        let mut offset = first_offset;
        for (i, (position, header)) in headers.iter().enumerate() {
            let bytes = records.slice(*position..*position + header.size_bytes);
            let at = i * prefix_len;
            let prefix = prefixes.slice(at..at + prefix_len);
            st.push_batch(bytes, prefix, offset, *header, now_ms);
            if header.producer_id >= 0 {
                st.producers.record(header, offset, now_ms);
            }
            if txn_index::is_transactional_data(header) {
                st.producers.txns.on_data(header.producer_id, offset);
            }
            offset += i64::from(header.last_offset_delta) + 1;
        }
        if !matches!(st.config.flush, FlushPolicy::GroupCommit { .. }) {
            let leo = st.log_end_offset;
            st.set_high_watermark(leo);
        }
        st.assert_offsets();
        st.work_event.notify(1);
        Ok(AppendInfo {
            base_offset: first_offset,
            last_offset: next - 1,
            log_start_offset: st.log_start_offset,
            log_append_time_ms: if log_append_time { now_ms } else { -1 },
            duplicate: false,
        })
    }

    /// Appends the marker ending `producer_id`'s transaction (a commit or an abort), as the
    /// transaction coordinator asks; returns its offset. An abort adds the transaction to the
    /// aborted index; either way the producer's open transaction no longer holds the last
    /// stable offset. A marker older than the producer's epoch is
    /// [`LogError::InvalidProducerEpoch`].
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<i64, LogError> {
        let mut bytes = txn_index::marker_batch(
            producer_id,
            producer_epoch,
            commit,
            coordinator_epoch,
            now_ms,
        );
        let mut st = self.state.borrow_mut();
        st.check_open()?;
        if let Some(current_epoch) = st.producers.epoch(producer_id) {
            if producer_epoch < current_epoch {
                return Err(LogError::InvalidProducerEpoch {
                    producer_id,
                    epoch: producer_epoch,
                    current_epoch,
                });
            }
        }
        let offset = st.log_end_offset;
        batch::assign_offset(&mut bytes, offset);
        let header = batch::header_fields(&bytes);
        let bytes = Bytes::from(bytes);
        let prefix = bytes.slice(..batch::BROKER_FIELDS_END);
        st.push_batch(bytes, prefix, offset, header, now_ms);
        st.producers
            .record_marker(producer_id, producer_epoch, commit, offset, now_ms);
        if !matches!(st.config.flush, FlushPolicy::GroupCommit { .. }) {
            let leo = st.log_end_offset;
            st.set_high_watermark(leo);
        }
        st.assert_offsets();
        st.work_event.notify(1);
        Ok(offset)
    }

    /// The last stable offset (KIP-98): the first offset of the oldest open transaction, or
    /// the high watermark. read_committed consumers read below it only.
    pub fn last_stable_offset(&self) -> i64 {
        self.state.borrow().last_stable_offset()
    }

    /// Whether `producer_id` at `epoch` has a transaction open in this partition.
    pub fn has_open_transaction(&self, producer_id: i64, epoch: i16) -> bool {
        let st = self.state.borrow();
        st.producers.txns.has_open(producer_id) && st.producers.epoch(producer_id) == Some(epoch)
    }

    /// The aborted transactions with records in `from..to`, oldest marker first.
    pub fn aborted_txns(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.state.borrow().producers.txns.aborted_between(from, to)
    }

    /// Resolves once everything up to and including `offset` is durable under the flush
    /// policy (see [`FlushPolicy`]).
    pub async fn wait_durable(&self, offset: i64) -> Result<(), LogError> {
        loop {
            let listener = {
                let st = self.state.borrow();
                if st.durable_offset > offset {
                    return Ok(());
                }
                if let Some(failure) = &st.failure {
                    return Err(failure.to_error());
                }
                if st.closed {
                    return Err(LogError::Closed);
                }
                // The batch stays queued and may still be written once space is freed, but
                // the producer must hear now that durability is not happening.
                if st.storage_full {
                    return Err(LogError::StorageFull);
                }
                if offset >= st.log_end_offset {
                    return Err(LogError::OffsetOutOfRange {
                        requested: offset,
                        log_start: st.log_start_offset,
                        log_end: st.log_end_offset,
                    });
                }
                st.durable_event.listen()
            };
            listener.await;
        }
    }

    /// Whole batches from the one containing `offset`, at most `max_bytes` in total except that
    /// the first batch is always returned whole (KIP-74); never past the high watermark.
    /// `offset == high_watermark()` returns no chunks.
    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, LogError> {
        self.read_isolated(offset, max_bytes, false).await
    }

    /// [`PartitionLog::read`], and with `committed` (a read_committed consumer) never past
    /// the last stable offset, with the aborted transactions from `offset` up to it.
    pub async fn read_isolated(
        &self,
        offset: i64,
        max_bytes: usize,
        committed: bool,
    ) -> Result<ReadResult, LogError> {
        let (file, position, end, bound, hw, start, lso, aborted, ahead) = {
            let st = self.state.borrow();
            if st.closed {
                return Err(LogError::Closed);
            }
            let hw = st.high_watermark;
            let start = st.log_start_offset;
            if offset < start || offset > hw {
                return Err(LogError::OffsetOutOfRange {
                    requested: offset,
                    log_start: start,
                    log_end: hw,
                });
            }
            let lso = st.last_stable_offset();
            let bound = if committed { lso } else { hw };
            let aborted = if committed {
                st.producers.txns.aborted_between(offset, bound)
            } else {
                Vec::new()
            };
            let mut result = ReadResult {
                chunks: Vec::new(),
                high_watermark: hw,
                log_start_offset: start,
                last_stable_offset: lso,
                aborted: Vec::new(),
            };
            if offset >= bound {
                return Ok(result);
            }
            if st.cache.front().is_some_and(|b| b.base_offset <= offset) {
                st.read_cached(offset, bound, max_bytes, 0, &mut result.chunks);
                result.aborted = txn_index::aborted_in_read(aborted, &result.chunks);
                return Ok(result);
            }
            let segment = &st.segments[st.segment_index_for(offset)];
            let Some(file) = segment.file.clone() else {
                return Ok(result);
            };
            let (_, position) = segment.index.position_for(segment.relative(offset));
            let end = segment.written_bytes;
            (
                file,
                u64::from(position),
                end,
                bound,
                hw,
                start,
                lso,
                aborted,
                st.read_ahead.clone(),
            )
        };
        let (mut chunks, mut total, mut full) = read_segment_after(
            &file,
            position,
            end,
            offset,
            bound,
            max_bytes,
            0,
            Some(&ahead),
        )
        .await?;
        // A compacted segment can end in a gap, its last records cleaned away: go on into
        // the next segments while there is room, as Kafka's log reads do. Otherwise a fetch
        // in that gap would get nothing below the bound, or only batches below its
        // offset, which librdkafka takes for a fetch size too small (and doubles, for good).
        let mut from = offset;
        while !full {
            let next = {
                let st = self.state.borrow();
                let i = st.segment_index_for(from);
                let Some(next) = st.segments.get(i + 1).filter(|s| s.base_offset < bound) else {
                    break;
                };
                from = next.base_offset;
                if st.cache.front().is_some_and(|b| b.base_offset <= from) {
                    st.read_cached(from, bound, max_bytes, total, &mut chunks);
                    break;
                }
                match next.file.clone() {
                    Some(file) => (file, next.written_bytes),
                    None => break,
                }
            };
            let (more, bytes, more_full) = read_segment_after(
                &next.0,
                0,
                next.1,
                offset,
                bound,
                max_bytes,
                total,
                Some(&ahead),
            )
            .await?;
            chunks.extend(more);
            total = bytes;
            full = more_full;
        }
        Ok(ReadResult {
            aborted: txn_index::aborted_in_read(aborted, &chunks),
            chunks,
            high_watermark: hw,
            log_start_offset: start,
            last_stable_offset: lso,
        })
    }

    /// Resolves when `high_watermark() > offset`, or when the log closes or fails.
    pub fn wait_for_data(&self, offset: i64) -> impl Future<Output = ()> + 'static {
        let state = self.state.clone();
        async move {
            loop {
                let listener = {
                    let st = state.borrow();
                    if st.high_watermark > offset || st.closed || st.failure.is_some() {
                        return;
                    }
                    st.data_event.listen()
                };
                listener.await;
            }
        }
    }

    /// The disk was full at the last write attempt; appends should be refused (retriably)
    /// until the writer gets through again.
    pub fn is_storage_full(&self) -> bool {
        self.state.borrow().storage_full
    }

    /// Bytes appended but not yet written to the segment file.
    pub fn unwritten_bytes(&self) -> u64 {
        self.state.borrow().unwritten_bytes
    }

    /// Resolves once fewer than `bytes` are waiting to be written, or the log has failed or
    /// closed (later calls then report that). Producers that outrun the disk wait here, so
    /// memory holds a bounded backlog rather than everything the network delivers.
    pub async fn wait_unwritten_below(&self, bytes: u64) {
        loop {
            let listener = {
                let st = self.state.borrow();
                if st.unwritten_bytes < bytes || st.check_open().is_err() {
                    return;
                }
                st.written_event.listen()
            };
            listener.await;
        }
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state.borrow().log_start_offset
    }

    /// Under group commit this advances only after the fsync covering the data.
    pub fn high_watermark(&self) -> i64 {
        self.state.borrow().high_watermark
    }

    pub fn log_end_offset(&self) -> i64 {
        self.state.borrow().log_end_offset
    }

    /// Size of all segments in bytes (assigned, including not yet written).
    pub fn size_bytes(&self) -> u64 {
        let st = self.state.borrow();
        st.segments.iter().map(|s| s.assigned_bytes).sum()
    }

    /// Number of segments (sealed plus active).
    pub fn segment_count(&self) -> usize {
        self.state.borrow().segments.len()
    }

    /// The first record (below the high watermark) whose timestamp is >= `ts`:
    /// `(its offset, its timestamp)`, or `None` (Kafka's ListOffsets by timestamp).
    ///
    /// The time index and batch headers (maxTimestamp) find the first batch that can hold
    /// such a record; only that batch's records are read (decompressed if need be). Example:
    /// batches [0..=2] with timestamps 100, 101, 102 and [3..=5] with 200, 201, 202:
    /// `offset_for_timestamp(101) == Some((1, 101))`, `(150) == Some((3, 200))`,
    /// `(203) == None`.
    pub async fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        let mut offset = {
            let st = self.state.borrow();
            let Some(segment) = st.segments.iter().find(|s| s.index.max_timestamp >= ts) else {
                return Ok(None);
            };
            segment.base_offset + i64::from(segment.index.offset_before_timestamp(ts))
        };
        loop {
            let start = self.log_start_offset();
            let result = match self.read(offset.max(start), READ_WINDOW_BYTES_MIN).await {
                Ok(result) => result,
                Err(LogError::OffsetOutOfRange { .. }) => return Ok(None),
                Err(e) => return Err(e),
            };
            if result.chunks.is_empty() {
                return Ok(None);
            }
            // Chunks may split a batch (in-memory reads); batches are whole once joined.
            let data = join_chunks(&result.chunks);
            let mut position = 0usize;
            for (base, last, max_ts) in batch::batch_offsets(&data) {
                let size = batch::framed_size(&data[position..]).unwrap_or(0);
                let whole = data.slice(position..position + size);
                position += size;
                offset = last + 1;
                if max_ts < ts {
                    continue;
                }
                match batch_records::first_record_at_or_after(&whole, ts, start) {
                    Ok(Some(found)) => return Ok(Some(found)),
                    // maxTimestamp overstated the records; Kafka moves on too.
                    Ok(None) => {}
                    Err(reason) => {
                        tracing::warn!(
                            base,
                            reason,
                            "unreadable records; answering with the batch"
                        );
                        return Ok(Some((base, max_ts)));
                    }
                }
            }
        }
    }

    /// The record with the largest timestamp below the high watermark (ListOffsets
    /// MAX_TIMESTAMP, KIP-734): `(its offset, its timestamp)`, the first one if several share
    /// it, or `None` when the log holds no record. It is the first record at or after the
    /// largest batch maxTimestamp any segment holds, so only the batch holding it is read.
    /// Example: batches [0..=2] with timestamps 100, 300, 200 and [3..=4] with 250, 300:
    /// `Some((1, 300))`.
    pub async fn offset_for_max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        let max_timestamp = {
            let st = self.state.borrow();
            st.segments
                .iter()
                .filter(|s| s.next_offset > s.base_offset.max(st.log_start_offset))
                .map(|s| s.index.max_timestamp)
                .max()
        };
        match max_timestamp {
            Some(ts) => self.offset_for_timestamp(ts).await,
            None => Ok(None),
        }
    }

    /// Deletes sealed segments past `retention_ms` (by their newest timestamp), beyond
    /// `retention_bytes`, or wholly below the log start offset (moved by DeleteRecords),
    /// oldest first, and advances the log start offset. Also forgets idempotent producers
    /// idle for `producer_id_expiration_ms`.
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<(), LogError> {
        let (dir, removed) = {
            let mut st = self.state.borrow_mut();
            st.check_open()?;
            let expiration_ms = st.config.producer_id_expiration_ms;
            let expired = st.producers.expire(now_ms, expiration_ms);
            let log_start_offset = st.log_start_offset;
            st.producers.txns.trim_below(log_start_offset);
            if expired > 0 {
                tracing::debug!(dir = ?st.dir, expired, "idle producers expired");
            }
            let mut total: u64 = st.segments.iter().map(|s| s.assigned_bytes).sum();
            let mut removed = Vec::new();
            while st.segments.len() > 1 {
                let front = &st.segments[0];
                if !front.sealed || front.next_offset > st.high_watermark {
                    break;
                }
                // A compact-only log keeps its segments; the cleaner shrinks them instead.
                // DeleteRecords moves the log start whatever the policy.
                let deletes = st.config.cleanup.delete;
                let expired = deletes
                    && st
                        .config
                        .retention_ms
                        .is_some_and(|ms| front.index.max_timestamp < now_ms.saturating_sub(ms));
                let oversized = deletes
                    && st
                        .config
                        .retention_bytes
                        .is_some_and(|max| total - front.assigned_bytes >= max);
                let below_start = front.next_offset <= st.log_start_offset;
                if !expired && !oversized && !below_start {
                    break;
                }
                total -= front.assigned_bytes;
                let segment = st.segments.pop_front().expect("checked len");
                removed.push(segment);
            }
            if removed.is_empty() {
                return Ok(());
            }
            // DeleteRecords may have put the start past the first kept segment's base.
            let start = st.segments[0].base_offset.max(st.log_start_offset);
            st.log_start_offset = start;
            st.cache.drop_front_while(|b| b.last_offset < start);
            // It may hold a removed segment's file open.
            st.read_ahead.clear();
            st.assert_offsets();
            (st.dir.clone(), removed)
        };
        for segment in removed {
            tracing::info!(
                ?dir,
                base_offset = segment.base_offset,
                "retention deletes segment"
            );
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                let path = segment::path(&dir, segment.base_offset, suffix);
                dma_file::remove_file(&path)
                    .map_err(|e| LogError::io(format!("removing {path:?}"), e))?;
            }
            if let Some(file) = segment.file {
                if let Ok(file) = Rc::try_unwrap(file) {
                    file.close()
                        .await
                        .map_err(|e| LogError::io("closing a deleted segment", e))?;
                }
            }
        }
        dma_file::sync_dir(&dir)
            .await
            .map_err(|e| LogError::io(format!("syncing {dir:?}"), e))
    }

    /// Applies new settings; they take effect for later appends, rolls and retention runs.
    pub fn update_config(&self, config: LogConfig) {
        self.state.borrow_mut().config = config;
    }

    /// Writes and fsyncs everything, seals the indexes of the active segment and writes the
    /// clean-shutdown marker. Later calls return `Ok(())`.
    pub async fn close(&self) -> Result<(), LogError> {
        let writer = {
            let mut st = self.state.borrow_mut();
            if st.closed {
                return Ok(());
            }
            st.closing = true;
            st.work_event.notify(usize::MAX);
            st.writer.take()
        };
        let Some(writer) = writer else {
            return Err(LogError::Closed); // another close is in progress
        };
        writer.await;
        let result = self.finish_close().await;
        let files: Vec<Rc<DmaFile>> = {
            let mut st = self.state.borrow_mut();
            st.closed = true;
            st.read_ahead.clear();
            st.durable_event.notify(usize::MAX);
            st.data_event.notify(usize::MAX);
            st.written_event.notify(usize::MAX);
            st.segments
                .iter_mut()
                .filter_map(|s| s.file.take())
                .collect()
        };
        close_files(files).await;
        result
    }

    async fn finish_close(&self) -> Result<(), LogError> {
        let (dir, base, file, footer, index, snapshot) = {
            let st = self.state.borrow();
            if let Some(failure) = &st.failure {
                return Err(failure.to_error());
            }
            let snapshot = (st.log_end_offset, st.producers.encode(st.log_end_offset));
            let active = st.segments.back().expect("never empty");
            let footer = Footer {
                segment_bytes: active.written_bytes,
                next_offset_relative: (active.next_offset - active.base_offset) as u64,
                max_timestamp: active.index.max_timestamp,
            };
            (
                st.dir.clone(),
                active.base_offset,
                active.file.clone(),
                footer,
                active.index.clone(),
                snapshot,
            )
        };
        if let Some(file) = file {
            let io = |e| LogError::io("closing the active segment", e);
            file.truncate(footer.segment_bytes).await.map_err(io)?;
            file.fdatasync().await.map_err(io)?;
        }
        write_index(&dir, base, &index, footer).await?;
        producer_state::write_snapshot(&dir, snapshot.0, &snapshot.1).await?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        dma_file::write_file(&marker, b"clean")
            .await
            .map_err(|e| LogError::io("writing the clean-shutdown marker", e))?;
        dma_file::sync_dir(&dir)
            .await
            .map_err(|e| LogError::io(format!("syncing {dir:?}"), e))
    }

    /// Closes the log and removes its directory (topic deletion).
    pub async fn delete(&self) -> Result<(), LogError> {
        let closed = self.close().await;
        let dir = self.state.borrow().dir.clone();
        if let Err(e) = closed {
            tracing::warn!(?dir, error = %e, "closing a log being deleted failed");
        }
        dma_file::remove_dir_all(&dir).map_err(|e| LogError::io(format!("removing {dir:?}"), e))
    }
}

/// Closes segment files now rather than on glommio's next I/O cycle after the last drop: an
/// executor that stops right after `close` (a tool, a test, a shutdown) would otherwise leak
/// the descriptors, and a deleted topic's disk space with them. A file still held by an
/// in-flight read is left to that read's drop.
async fn close_files(files: Vec<Rc<DmaFile>>) {
    for file in files {
        if let Ok(file) = Rc::try_unwrap(file) {
            if let Err(error) = file.close().await {
                tracing::warn!(%error, "closing a segment file failed");
            }
        }
    }
}

impl LogState {
    fn push_batch(
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
            log_append_time_ms: self.config.log_append_time.then_some(now_ms),
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
}

/// Reads whole batches from `file[position..end]`, skipping those before `offset`.
#[cfg(test)]
async fn read_segment(
    file: &Rc<DmaFile>,
    position: u64,
    end: u64,
    offset: i64,
    hw: i64,
    max_bytes: usize,
) -> Result<Vec<Bytes>, LogError> {
    let (chunks, _, _) =
        read_segment_after(file, position, end, offset, hw, max_bytes, 0, None).await?;
    Ok(chunks)
}

/// Reads whole batches from `file[position..end]`, skipping those before `offset`, for a
/// response already `already` bytes long. Returns the chunks, the response's length with
/// them, and whether it is full (no more batch fits, or the high watermark was reached)
/// rather than the segment exhausted. With `ahead`, takes what was read ahead instead of
/// reading the file where it can, and reads ahead after a read that continues the last.
#[expect(
    clippy::too_many_arguments,
    reason = "one read's bounds, kept apart for clarity"
)]
async fn read_segment_after(
    file: &Rc<DmaFile>,
    mut position: u64,
    end: u64,
    offset: i64,
    hw: i64,
    max_bytes: usize,
    already: usize,
    ahead: Option<&ReadAhead>,
) -> Result<(Vec<Bytes>, usize, bool), LogError> {
    let started = position;
    let result = read_batches(
        file,
        &mut position,
        end,
        offset,
        hw,
        max_bytes,
        already,
        ahead,
    )
    .await;
    if let (Some(ahead), Ok(_)) = (ahead, &result) {
        ahead.after_read(file, started, position, end, read_window(max_bytes));
    }
    result
}

/// [`read_segment_after`]'s reads; leaves `position` where the next read would start.
#[expect(
    clippy::too_many_arguments,
    reason = "one read's bounds, kept apart for clarity"
)]
async fn read_batches(
    file: &Rc<DmaFile>,
    position: &mut u64,
    end: u64,
    offset: i64,
    hw: i64,
    max_bytes: usize,
    already: usize,
    ahead: Option<&ReadAhead>,
) -> Result<(Vec<Bytes>, usize, bool), LogError> {
    let mut chunks = Vec::new();
    let mut total = already;
    let mut want = read_window(max_bytes);
    let corrupt = |position, reason| LogError::CorruptLog {
        path: file.path().to_path_buf(),
        position,
        reason,
    };
    while *position < end {
        let position_now = *position;
        let data = match read_ahead_bytes(ahead, file, position_now, end).await {
            Some(data) => data,
            None => {
                let len = want.min(usize::try_from(end - position_now).unwrap_or(usize::MAX));
                let data = file
                    .read_at(position_now, len)
                    .await
                    .map_err(|e| LogError::io(format!("reading {:?}", file.path()), e))?;
                if data.len() < len {
                    // A file shorter than what the log says was written: reading on would loop.
                    return Err(corrupt(
                        position_now + data.len() as u64,
                        "segment file ends before its written size",
                    ));
                }
                Bytes::copy_from_slice(&data)
            }
        };
        let mut p = 0usize;
        let mut first = None;
        let mut done = false;
        let mut prev_last: Option<i64> = None;
        loop {
            let Some(size) = batch::framed_size(&data[p..]) else {
                // Not even a batch header left before the end: the file does not hold
                // whole batches up to where the log says it was written.
                if p < data.len() && position_now + data.len() as u64 >= end {
                    return Err(corrupt(position_now + p as u64, "truncated batch header"));
                }
                want = READ_WINDOW_BYTES_MIN;
                break;
            };
            if size == 0 || position_now + (p + size) as u64 > end {
                return Err(corrupt(position_now + p as u64, "bad batch length"));
            }
            if p + size > data.len() {
                want = size.max(READ_WINDOW_BYTES_MIN);
                break;
            }
            let batch_bytes = &data[p..p + size];
            // No CRC32C here: every batch in a segment had its CRC checked at append (or by
            // recovery's scan after a crash), and clients check it again, as Kafka's own
            // zero-copy reads leave them to. The magic byte still catches a read that is
            // out of step with the batches.
            if !batch::is_v2_batch(batch_bytes) {
                return Err(corrupt(position_now + p as u64, "not a RecordBatch v2"));
            }
            let header = batch::header(batch_bytes, size);
            // Without the CRC, the offsets are what keeps a damaged header from being
            // served: a batch never straddles the high watermark nor goes backwards.
            let last = header.last_offset();
            if last < header.base_offset
                || (header.base_offset < hw && last >= hw)
                || prev_last.is_some_and(|prev| header.base_offset <= prev)
            {
                return Err(corrupt(
                    position_now + p as u64,
                    "batch offsets out of order",
                ));
            }
            prev_last = Some(last);
            if header.base_offset >= hw || (total + size > max_bytes && total > 0) {
                done = true;
                break;
            }
            if header.last_offset() >= offset {
                first.get_or_insert(p);
                total += size;
            }
            p += size;
        }
        if let Some(first) = first {
            chunks.push(data.slice(first..p));
        }
        // No batch is smaller than its header: stop rather than read a window only to find
        // that its first batch does not fit.
        *position += p as u64;
        if done || (total > 0 && total + batch::HEADER_BYTES > max_bytes) {
            return Ok((chunks, total, true));
        }
    }
    Ok((chunks, total, false))
}

/// The bytes of `file` at `position` that were read ahead, cut at `end`, when they start
/// with a whole batch (otherwise the caller reads the file).
async fn read_ahead_bytes(
    ahead: Option<&ReadAhead>,
    file: &Rc<DmaFile>,
    position: u64,
    end: u64,
) -> Option<Bytes> {
    let data = ahead?.bytes_at(file, position).await?;
    let len = usize::try_from(end - position)
        .unwrap_or(usize::MAX)
        .min(data.len());
    let data = data.slice(..len);
    let size = batch::framed_size(&data)?;
    (size > 0 && size <= data.len()).then_some(data)
}

/// The bytes a cold read asks the disk for: `max_bytes` plus slack, so that the common case,
/// a first batch about as large as the fetch limit starting a little after the index
/// position, is read in one go.
fn read_window(max_bytes: usize) -> usize {
    max_bytes
        .saturating_add(READ_WINDOW_BYTES_MIN)
        .clamp(READ_WINDOW_BYTES_MIN, READ_WINDOW_BYTES_MAX)
}

/// Validates every batch of a produced record set; each batch with its position in it.
fn batch_headers(
    records: &[u8],
    max_message_bytes: u32,
) -> Result<Vec<(usize, batch::BatchHeader)>, LogError> {
    let mut headers = Vec::new();
    let mut position = 0usize;
    while position < records.len() {
        let header = batch::validate(&records[position..], position, max_message_bytes)?;
        headers.push((position, header));
        position += header.size_bytes;
    }
    Ok(headers)
}

/// One `Bytes` holding all of `chunks` (no copy when there is only one).
fn join_chunks(chunks: &[Bytes]) -> Bytes {
    match chunks {
        [one] => one.clone(),
        _ => {
            let mut joined = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
            for chunk in chunks {
                joined.extend_from_slice(chunk);
            }
            joined.freeze()
        }
    }
}

pub(crate) async fn write_index(
    dir: &Path,
    base_offset: i64,
    index: &SegmentIndex,
    footer: Footer,
) -> Result<(), LogError> {
    let io = |e| LogError::io(format!("writing the indexes of segment {base_offset}"), e);
    dma_file::write_file(
        &segment::path(dir, base_offset, TIME_INDEX_SUFFIX),
        &index.encode_times(),
    )
    .await
    .map_err(io)?;
    dma_file::write_file(
        &segment::path(dir, base_offset, INDEX_SUFFIX),
        &index.encode_offsets(footer),
    )
    .await
    .map_err(io)
}

/// Rebuilds the idempotent-producer state as of the recovered log end: the newest snapshot
/// at or below it, then the headers of every batch after the snapshot. Snapshots past the log
/// end (from a tail that recovery truncated) are removed. Producers met only in the replayed
/// headers count as active at `now_ms`, so none expires earlier than it would have.
async fn recover_producers(
    dir: &Path,
    segments: &VecDeque<Segment>,
    now_ms: i64,
) -> Result<ProducerStates, LogError> {
    let io_dir = |e| LogError::io(format!("recovering producer state in {dir:?}"), e);
    let leo = segments.back().map_or(0, |s| s.next_offset);
    let mut loaded = None;
    for offset in producer_state::list_snapshots(dir).map_err(io_dir)? {
        let path = producer_state::snapshot_path(dir, offset);
        if offset > leo || loaded.is_some() {
            if offset > leo {
                dma_file::remove_file(&path).map_err(io_dir)?;
            }
            continue;
        }
        let data = dma_file::read_file(&path).await.map_err(io_dir)?;
        match data.as_deref().and_then(ProducerStates::decode) {
            Some((at, states)) if at == offset => loaded = Some((offset, states)),
            _ => {
                tracing::warn!(?path, "ignoring a corrupt producer-state snapshot");
                dma_file::remove_file(&path).map_err(io_dir)?;
            }
        }
    }
    let (from, mut states) = loaded.unwrap_or_default();
    let mut replayed = 0usize;
    for segment in segments.iter().filter(|s| s.next_offset > from) {
        let Some(file) = &segment.file else { continue };
        let position = if from > segment.base_offset {
            u64::from(segment.index.position_for(segment.relative(from)).1)
        } else {
            0
        };
        segment::for_each_header(file, position, segment.written_bytes, |header, bytes| {
            if header.base_offset < from || header.producer_id < 0 {
                return;
            }
            if txn_index::is_control(header) {
                if let Some(commit) = txn_index::marker_is_commit(bytes) {
                    let (id, epoch) = (header.producer_id, header.producer_epoch);
                    states.record_marker(id, epoch, commit, header.base_offset, now_ms);
                    replayed += 1;
                }
                return;
            }
            // Only what `append` would have accepted (a trusted segment is not rescanned,
            // so a damaged header may reach this point).
            let idempotent = header.base_sequence >= 0 && header.last_offset_delta >= 0;
            if idempotent {
                states.record(header, header.base_offset, now_ms);
                if txn_index::is_transactional_data(header) {
                    states.txns.on_data(header.producer_id, header.base_offset);
                }
                replayed += 1;
            }
        })
        .await?;
    }
    if replayed > 0 {
        tracing::info!(
            ?dir,
            from,
            replayed,
            "producer state rebuilt from batch headers"
        );
    }
    Ok(states)
}

pub(crate) struct Recovered {
    pub segments: VecDeque<Segment>,
    /// Bytes of the active segment's last partial block, to be rewritten by the next write.
    pub tail: Vec<u8>,
}

/// Loads the segments of `dir`, rescanning whatever a clean shutdown does not vouch for, and
/// truncates to the longest valid prefix of the log.
async fn recover(dir: &Path, config: &LogConfig) -> Result<Recovered, LogError> {
    let io_dir = |e| LogError::io(format!("recovering {dir:?}"), e);
    let marker = dir.join(CLEAN_SHUTDOWN_FILE);
    let clean = dma_file::exists(&marker);
    let names = dma_file::list_dir(dir).map_err(io_dir)?;
    // A cleaner's output that was never swapped in: the segment it was for is intact.
    for name in names
        .iter()
        .filter(|n| n.ends_with(log_cleaner::CLEANED_SUFFIX))
    {
        dma_file::remove_file(&dir.join(name)).map_err(io_dir)?;
    }
    let mut bases: Vec<i64> = names
        .iter()
        .filter_map(|name| segment::parse_log_name(name))
        .collect();
    bases.sort_unstable();
    let mut segments: VecDeque<Segment> = VecDeque::new();
    let mut drop_from = None;
    for (i, &base) in bases.iter().enumerate() {
        let is_last = i + 1 == bases.len();
        if let Some(prev) = segments.back() {
            // A gap is fine: the log cleaner may have removed a segment's last batches.
            if prev.next_offset > base {
                tracing::warn!(
                    ?dir,
                    base,
                    "segment overlaps the previous one; dropping it and later ones"
                );
                drop_from = Some(i);
                break;
            }
        }
        let log_path = segment::path(dir, base, LOG_SUFFIX);
        let file = DmaFile::open_rw(&log_path, false).await.map_err(io_dir)?;
        let file_bytes = file.size().await.map_err(io_dir)?;
        let index_bytes = dma_file::read_file(&segment::path(dir, base, INDEX_SUFFIX))
            .await
            .map_err(io_dir)?;
        let time_bytes = dma_file::read_file(&segment::path(dir, base, TIME_INDEX_SUFFIX))
            .await
            .map_err(io_dir)?;
        let trusted = match (index_bytes, time_bytes) {
            (Some(ix), Some(tx)) if clean || !is_last => SegmentIndex::decode(&ix, &tx)
                .filter(|(_, footer)| footer.segment_bytes == file_bytes),
            _ => None,
        };
        let (index, valid_bytes, next_offset, rescanned) = match trusted {
            Some((index, footer)) => {
                let next = base + footer.next_offset_relative as i64;
                (index, file_bytes, next, false)
            }
            None => {
                let scanned = segment::scan(
                    &file,
                    base,
                    file_bytes,
                    config.index_interval_bytes,
                    !is_last,
                )
                .await?;
                if scanned.valid_bytes < file_bytes && !is_last {
                    tracing::warn!(
                        ?dir,
                        base,
                        valid = scanned.valid_bytes,
                        file_bytes,
                        "sealed segment has an invalid tail"
                    );
                }
                (
                    scanned.index,
                    scanned.valid_bytes,
                    scanned.next_offset,
                    true,
                )
            }
        };
        let truncated = valid_bytes < file_bytes;
        if rescanned && (truncated || !clean) {
            file.truncate(valid_bytes).await.map_err(io_dir)?;
            file.fdatasync().await.map_err(io_dir)?;
        }
        if rescanned && !is_last {
            let footer = Footer {
                segment_bytes: valid_bytes,
                next_offset_relative: (next_offset - base) as u64,
                max_timestamp: index.max_timestamp,
            };
            write_index(dir, base, &index, footer).await?;
        }
        segments.push_back(Segment {
            base_offset: base,
            next_offset,
            assigned_bytes: valid_bytes,
            written_bytes: valid_bytes,
            index,
            first_append_ms: None,
            file: Some(Rc::new(file)),
            sealed: !is_last,
            producer_snapshot: None,
        });
        if truncated && !is_last {
            drop_from = Some(i + 1);
            break;
        }
    }
    if let Some(from) = drop_from {
        for &base in &bases[from..] {
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                dma_file::remove_file(&segment::path(dir, base, suffix)).map_err(io_dir)?;
            }
        }
        if let Some(last) = segments.back_mut() {
            // The former sealed segment becomes active again.
            last.sealed = false;
        }
    }
    if segments.is_empty() {
        let base = 0;
        let file = DmaFile::open_rw(&segment::path(dir, base, LOG_SUFFIX), true)
            .await
            .map_err(io_dir)?;
        segments.push_back(Segment {
            base_offset: base,
            next_offset: base,
            assigned_bytes: 0,
            written_bytes: 0,
            index: SegmentIndex::new(),
            first_append_ms: None,
            file: Some(Rc::new(file)),
            sealed: false,
            producer_snapshot: None,
        });
    }
    // The active segment's indexes will change; stale files must not be trusted later.
    let active = segments.back().expect("not empty");
    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        dma_file::remove_file(&segment::path(dir, active.base_offset, suffix)).map_err(io_dir)?;
    }
    let file = active.file.clone().expect("recovered segments have files");
    let end = active.written_bytes;
    let block = crate::constants::DMA_ALIGNMENT as u64;
    let tail_start = end / block * block;
    let tail = file
        .read_at(tail_start, (end - tail_start) as usize)
        .await
        .map_err(io_dir)?
        .to_vec();
    let step = config
        .segment_bytes_clamped()
        .min(segment_writer::PREALLOCATE_INITIAL_BYTES);
    file.pre_allocate(step.max(end)).await.map_err(io_dir)?;
    file.fdatasync().await.map_err(io_dir)?;
    // Only now may a crash leave an unscanned active segment: drop the marker durably.
    dma_file::remove_file(&marker).map_err(io_dir)?;
    dma_file::sync_dir(dir).await.map_err(io_dir)?;
    Ok(Recovered { segments, tail })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testing::make_batch;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    #[test]
    fn group_commit_hides_data_until_fsync() {
        let tmp = dir();
        let path = tmp.path().join("p");
        crate::io::block_on_local(async move {
            let log = PartitionLog::open(path, LogConfig::default())
                .await
                .expect("open");
            let info = log
                .append(Bytes::from(make_batch(4, 100, 7)), 0)
                .expect("append");
            assert_eq!((info.base_offset, info.last_offset), (0, 3));
            assert_eq!(log.log_end_offset(), 4);
            assert_eq!(log.high_watermark(), 0, "not visible before the fsync");
            let empty = log.read(0, 1000).await.expect("read at hw");
            assert!(empty.chunks.is_empty());
            log.wait_for_data(0).await;
            assert_eq!(log.high_watermark(), 4);
            log.wait_durable(3).await.expect("durable");
            let read = log.read(0, 1000).await.expect("read");
            assert_eq!(read.bytes_len(), 161);
            assert!(matches!(
                log.read(5, 10).await,
                Err(LogError::OffsetOutOfRange { requested: 5, .. })
            ));
            log.close().await.expect("close");
            assert!(matches!(
                log.append(Bytes::from(make_batch(1, 1, 1)), 0),
                Err(LogError::Closed)
            ));
        });
    }

    /// Writes `count` batches of about 10 KB each, closes the log and reopens it, so that
    /// reads start with an empty tail cache and go to the segment file.
    async fn reopened_with_batches(path: &Path, count: usize) -> (PartitionLog, Vec<Vec<u8>>) {
        let batches: Vec<Vec<u8>> = (0..count)
            .map(|i| make_batch(10, 10_000, i as i64))
            .collect();
        let log = PartitionLog::open(path.to_path_buf(), LogConfig::default())
            .await
            .expect("open");
        for batch in &batches {
            log.append(Bytes::from(batch.clone()), 0).expect("append");
        }
        log.wait_durable(log.log_end_offset() - 1)
            .await
            .expect("durable");
        log.close().await.expect("close");
        let log = PartitionLog::open(path.to_path_buf(), LogConfig::default())
            .await
            .expect("reopen");
        (log, batches)
    }

    /// Overwrites bytes of the first segment file behind the log's back (buffered, synced).
    fn overwrite_segment(dir: &Path, position: u64, bytes: &[u8]) {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(segment::path(dir, 0, LOG_SUFFIX))
            .expect("open segment");
        file.write_all_at(bytes, position).expect("overwrite");
        file.sync_all().expect("sync");
    }

    /// A consumer reading the segment in order gets its third fetch from the window read
    /// ahead during the second: the test overwrites the file there (O_DIRECT reads would
    /// see the damage) and the read still returns the batches as written.
    #[test]
    fn sequential_cold_reads_are_served_from_read_ahead() {
        let tmp = dir();
        let path = tmp.path().join("p");
        crate::io::block_on_local(async move {
            let (log, batches) = reopened_with_batches(&path, 40).await;
            let batch_bytes = batches[0].len();
            let fetch_bytes = 4 * batch_bytes;
            let first = log.read(0, fetch_bytes).await.expect("read 1");
            let next = crate::log::testing::batch_offsets(&join_chunks(&first.chunks))
                .last()
                .expect("batches")
                .1
                + 1;
            let second = log.read(next, fetch_bytes).await.expect("read 2");
            let second_data = join_chunks(&second.chunks);
            let next = crate::log::testing::batch_offsets(&second_data)
                .last()
                .expect("batches")
                .1
                + 1;
            let ahead = log.state.borrow().read_ahead.clone();
            ahead.settled().await;
            // Damage what the third fetch needs, past what the first two read.
            let damaged_from = (first.bytes_len() + second_data.len()) as u64;
            overwrite_segment(&path, damaged_from, &vec![0u8; 2 * fetch_bytes]);
            let third = log
                .read(next, fetch_bytes)
                .await
                .expect("read 3 from memory");
            let data = join_chunks(&third.chunks);
            let first_batch = usize::try_from(next).expect("offset") / 10;
            assert_eq!(
                &data[16..batch_bytes],
                &batches[first_batch][16..],
                "the batch as written"
            );
            log.close().await.expect("close");
        });
    }

    /// Cold reads do not check CRC32C again (append and recovery did): a batch whose
    /// payload changed on disk after a clean shutdown is returned as the file holds it.
    #[test]
    fn cold_reads_do_not_recheck_crc() {
        let tmp = dir();
        let path = tmp.path().join("p");
        crate::io::block_on_local(async move {
            let (log, _) = reopened_with_batches(&path, 1).await;
            log.close().await.expect("close");
            // A byte in the last record's value, far from the header.
            overwrite_segment(&path, 5_000, &[0xee]);
            let log = PartitionLog::open(path.clone(), LogConfig::default())
                .await
                .expect("reopen after a clean shutdown: no rescan");
            let read = log
                .read(0, 1 << 20)
                .await
                .expect("read without a CRC check");
            assert_eq!(join_chunks(&read.chunks)[5_000], 0xee);
            log.close().await.expect("close");
        });
    }

    /// Descriptors open on files under `dir` in this process.
    fn open_files_under(dir: &std::path::Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .expect("procfs")
            .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
            .filter(|target| target.starts_with(dir))
            .count()
    }

    /// `close` releases every segment file before returning, so an executor that stops
    /// right after (or a topic deletion) leaks neither descriptors nor the disk space of
    /// deleted segments.
    #[test]
    fn close_releases_every_segment_file() {
        let tmp = dir();
        let path = tmp.path().join("p");
        let config = LogConfig {
            segment_bytes: 64 << 10,
            ..LogConfig::default()
        };
        let watched = path.clone();
        crate::io::block_on_local(async move {
            let log = PartitionLog::open(path, config).await.expect("open");
            let mut last = 0;
            for i in 0..8 {
                last = log
                    .append(Bytes::from(make_batch(4, 20_000, i)), 0)
                    .expect("append")
                    .last_offset;
            }
            log.wait_durable(last).await.expect("durable");
            assert!(log.segment_count() > 1, "the test needs several segments");
            assert!(open_files_under(&watched) > 0);
            log.close().await.expect("close");
            assert_eq!(open_files_under(&watched), 0, "files left open after close");
        });
    }

    /// A segment that does not hold whole batches up to the size the log recorded (damaged
    /// outside the broker) reads as corrupt instead of being re-read forever.
    #[test]
    fn damaged_segment_bytes_read_as_corrupt_not_forever() {
        let tmp = dir();
        let path = tmp.path().join("segment.log");
        let mut batches = make_batch(2, 300, 1);
        // The second batch follows the first in offsets, as the log writes them.
        let mut second = make_batch(3, 500, 2);
        second[..8].copy_from_slice(&2i64.to_be_bytes());
        batches.extend_from_slice(&second);
        let whole = batches.len() as u64;
        // Five stray bytes after the last batch: less than a batch header.
        let mut stray = batches.clone();
        stray.extend_from_slice(&[0, 0, 0, 0, 9]);
        std::fs::write(&path, &stray).expect("write");
        crate::io::block_on_local(async move {
            let file = Rc::new(DmaFile::open_read(&path).await.expect("open"));
            let intact = read_segment(&file, 0, whole, 0, i64::MAX, 1 << 20).await;
            assert_eq!(
                intact
                    .expect("intact")
                    .iter()
                    .map(Bytes::len)
                    .sum::<usize>() as u64,
                whole
            );
            let tail = read_segment(&file, 0, whole + 5, 0, i64::MAX, 1 << 20).await;
            assert!(matches!(tail, Err(LogError::CorruptLog { .. })), "{tail:?}");
            // The log claims more than the file holds.
            let short = read_segment(&file, 0, whole + 5000, 0, i64::MAX, 1 << 20).await;
            assert!(
                matches!(short, Err(LogError::CorruptLog { .. })),
                "{short:?}"
            );
            let file = Rc::try_unwrap(file).ok().expect("the only handle");
            file.close().await.expect("close");
        });
    }

    /// The producer's bytes are shared, not copied: in-memory reads return them (after a
    /// small patched prefix), they are never written to, and the file gets the patched batch.
    #[test]
    fn append_keeps_the_producers_bytes() {
        let tmp = dir();
        let path = tmp.path().join("p");
        crate::io::block_on_local(async move {
            let config = LogConfig {
                flush: FlushPolicy::Never,
                ..LogConfig::default()
            };
            let log = PartitionLog::open(path.clone(), config.clone())
                .await
                .expect("open");
            log.append(Bytes::from(make_batch(2, 50, 1)), 0)
                .expect("append");
            // A "frame" holding some other bytes, then two batches, shared with the caller.
            let mut frame = b"topic-name".to_vec();
            let a = make_batch(3, 5000, 10);
            let b = make_batch(1, 100, 20);
            frame.extend_from_slice(&a);
            frame.extend_from_slice(&b);
            let frame = Bytes::from(frame);
            let records = frame.slice(10..);
            let info = log.append(records.clone(), 0).expect("append");
            assert_eq!((info.base_offset, info.last_offset), (2, 5));
            assert_eq!(&frame[10..10 + a.len()], &a[..], "producer bytes untouched");
            let read = log.read(2, 1 << 20).await.expect("read");
            assert_eq!(read.chunks.len(), 4, "prefix and body per batch");
            assert_eq!(read.chunks[0].len(), batch::BROKER_FIELDS_END);
            assert_eq!(
                read.chunks[1].as_ptr(),
                records[batch::BROKER_FIELDS_END..].as_ptr(),
                "in-memory reads share the producer's buffer"
            );
            let joined = join_chunks(&read.chunks);
            assert_eq!(
                batch::batch_offsets(&joined),
                vec![(2, 4, 12), (5, 5, 20)],
                "offsets patched in what readers see"
            );
            assert_eq!(
                &joined[batch::BROKER_FIELDS_END..a.len()],
                &a[batch::BROKER_FIELDS_END..]
            );
            log.wait_durable(5).await.expect("written");
            log.close().await.expect("close");
            let log = PartitionLog::open(path, config).await.expect("reopen");
            let cold = log.read(2, 1 << 20).await.expect("cold read");
            assert_eq!(
                join_chunks(&cold.chunks),
                joined,
                "the file holds the patched batches"
            );
            log.close().await.expect("close");
        });
    }

    #[test]
    fn never_policy_exposes_at_append_and_rejects_bad_batches_atomically() {
        let tmp = dir();
        let path = tmp.path().join("p");
        crate::io::block_on_local(async move {
            let config = LogConfig {
                flush: FlushPolicy::Never,
                max_message_bytes: 2000,
                ..LogConfig::default()
            };
            let log = PartitionLog::open(path, config).await.expect("open");
            let mut two = make_batch(2, 10, 1);
            two.extend_from_slice(&make_batch(3, 10, 1));
            let info = log.append(Bytes::from(two), 0).expect("append");
            assert_eq!((info.base_offset, info.last_offset), (0, 4));
            assert_eq!(log.high_watermark(), 5);
            let mut bad = make_batch(1, 10, 1);
            bad.extend_from_slice(&make_batch(1, 10, 1));
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(matches!(
                log.append(Bytes::from(bad), 0),
                Err(LogError::CorruptMessage { .. })
            ));
            assert!(matches!(
                log.append(Bytes::from(make_batch(1, 5000, 1)), 0),
                Err(LogError::MessageTooLarge { .. })
            ));
            assert!(matches!(
                log.append(Bytes::new(), 0),
                Err(LogError::InvalidRecord { .. })
            ));
            assert_eq!(
                log.log_end_offset(),
                5,
                "rejected record sets leave no trace"
            );
            log.wait_durable(4).await.expect("written");
            log.delete().await.expect("delete");
        });
    }
}
