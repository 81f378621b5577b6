//! `PartitionLog`: the public handle over one partition's segments. Its state, read path and
//! recovery live beside it (`log_state`, `log_reader`, `log_recovery`).

use std::cell::RefCell;
use std::future::Future;
use std::path::PathBuf;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use crate::io::dma_file::{self, DmaFile};

use super::batch;
use super::batch_records;
use super::config::{FlushPolicy, LogConfig};
use super::error::LogError;
use super::log_cleaner::{CleanSummary, LogCleaner};
use super::log_reader::{self, ReadResult, READ_WINDOW_BYTES_MIN};
use super::log_recovery::{self, CLEAN_SHUTDOWN_FILE};
use super::log_start::{self, LogStartCheckpoint};
use super::log_state::LogState;
use super::offset_map::OffsetMap;
use super::producer_state::{self, SequenceCheck};
use super::segment::{self, write_index, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::segment_index::Footer;
use super::segment_writer;
use super::txn_index::{self, AbortedTxn};

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
        let recovered = log_recovery::recover(&dir, &config).await?;
        let producers =
            log_recovery::recover_producers(&dir, &recovered.segments, crate::io::clock::now_ms())
                .await?;
        let leo = recovered
            .segments
            .back()
            .expect("recovery always leaves an active segment")
            .next_offset;
        let first_base = recovered.segments.front().map_or(0, |s| s.base_offset);
        let checkpoint = log_start::read_checkpoint(&dir).await?;
        let start = log_start::recovered_start(&dir, first_base, checkpoint, leo);
        let state = LogState::recovered(
            dir,
            config,
            recovered.segments,
            start,
            producers,
            LogStartCheckpoint::new(checkpoint.unwrap_or(start)),
        );
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
                    log_start_offset: st.log_start_offset(),
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
        let first_offset = st.log_end_offset();
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
        // of each batch's first bytes, used for in-memory reads and copied by the segment
        // writer over the producer's into its aligned buffer (the one copy of the payload).
        // LogAppendTime patches more of the header, CRC included, so its copies are longer.
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
            let leo = st.log_end_offset();
            st.set_high_watermark(leo);
        }
        st.assert_offsets();
        st.work_event.notify(1);
        Ok(AppendInfo {
            base_offset: first_offset,
            last_offset: next - 1,
            log_start_offset: st.log_start_offset(),
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
        let offset = st.log_end_offset();
        batch::assign_offset(&mut bytes, offset);
        // Kafka stamps control batches too. The marker is the broker's own, so it is stamped
        // in place and its prefix is just its first bytes.
        let prefix_len = if st.config.log_append_time {
            let (head, tail) = bytes.split_at_mut(batch::LOG_APPEND_TIME_FIELDS_END);
            batch::stamp_log_append_time(head, tail, now_ms);
            batch::LOG_APPEND_TIME_FIELDS_END
        } else {
            batch::BROKER_FIELDS_END
        };
        let header = batch::header_fields(&bytes);
        let bytes = Bytes::from(bytes);
        let prefix = bytes.slice(..prefix_len);
        st.push_batch(bytes, prefix, offset, header, now_ms);
        st.producers
            .record_marker(producer_id, producer_epoch, commit, offset, now_ms);
        if !matches!(st.config.flush, FlushPolicy::GroupCommit { .. }) {
            let leo = st.log_end_offset();
            st.set_high_watermark(leo);
        }
        st.assert_offsets();
        st.work_event.notify(1);
        Ok(offset)
    }

    /// Appends a marker given as its control batch (a replicated partition's marker entry,
    /// or a marker copied from another replica's log), as [`Self::append_marker`] would.
    pub fn append_marker_batch(&self, marker: &[u8], now_ms: i64) -> Result<i64, LogError> {
        let unreadable = LogError::InvalidRecord {
            reason: "a transaction marker that does not parse",
        };
        if !txn_index::is_control_batch(marker) {
            return Err(unreadable);
        }
        let header = batch::header_fields(marker);
        let Some((commit, coordinator_epoch)) = txn_index::marker_of(marker) else {
            return Err(unreadable);
        };
        self.append_marker(
            header.producer_id,
            header.producer_epoch,
            commit,
            coordinator_epoch,
            now_ms,
        )
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
                if st.durable_offset() > offset {
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
                if offset >= st.log_end_offset() {
                    return Err(LogError::OffsetOutOfRange {
                        requested: offset,
                        log_start: st.log_start_offset(),
                        log_end: st.log_end_offset(),
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
        log_reader::read(&self.state, offset, max_bytes, committed).await
    }

    /// Resolves when `high_watermark() > offset`, or when the log closes or fails.
    pub fn wait_for_data(&self, offset: i64) -> impl Future<Output = ()> + 'static {
        let state = self.state.clone();
        async move {
            loop {
                let listener = {
                    let st = state.borrow();
                    if st.high_watermark() > offset || st.closed || st.failure.is_some() {
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
        self.state.borrow().log_start_offset()
    }

    /// Under group commit this advances only after the fsync covering the data.
    pub fn high_watermark(&self) -> i64 {
        self.state.borrow().high_watermark()
    }

    /// Offsets below this are on disk (whatever the flush policy says consumers may see).
    pub fn durable_offset(&self) -> i64 {
        self.state.borrow().durable_offset()
    }

    pub fn log_end_offset(&self) -> i64 {
        self.state.borrow().log_end_offset()
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
                .filter(|s| s.next_offset > s.base_offset.max(st.log_start_offset()))
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
            let log_start_offset = st.log_start_offset();
            st.producers.txns.trim_below(log_start_offset);
            if expired > 0 {
                tracing::debug!(dir = ?st.dir, expired, "idle producers expired");
            }
            let mut total: u64 = st.segments.iter().map(|s| s.assigned_bytes).sum();
            let mut removed = Vec::new();
            while st.segments.len() > 1 {
                let front = &st.segments[0];
                if !front.sealed || front.next_offset > st.high_watermark() {
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
                let below_start = front.next_offset <= st.log_start_offset();
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
            let start = st.segments[0].base_offset.max(st.log_start_offset());
            st.advance_log_start(start);
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
            let snapshot = (
                st.log_end_offset(),
                st.producers.encode(st.log_end_offset()),
            );
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

    /// Whether the log's `cleanup.policy` includes `compact`.
    pub fn is_compacted(&self) -> bool {
        self.state.borrow().config.cleanup.compact
    }

    /// One cleaning pass if the log is compacted and has enough to clean (see `log_cleaner`);
    /// `map` is the shard's key index, cleared here. Returns what changed.
    pub async fn clean(&self, now_ms: i64, map: &mut OffsetMap) -> Result<CleanSummary, LogError> {
        LogCleaner::new(&self.state).clean(now_ms, map).await
    }

    /// Kafka's DeleteRecords on one partition: makes `offset` the log start offset if it is
    /// above the current one (a lower one changes nothing), durably, then deletes the
    /// segments wholly below it. Returns the log start offset afterwards (the response's low
    /// watermark). `offset` must be in `0..=high_watermark()`, else
    /// [`LogError::OffsetOutOfRange`].
    ///
    /// Readers see the new start at once; a crash before the checkpoint is durable (before
    /// this returns) may bring the old start back, as an unanswered request may.
    pub async fn delete_records_before(&self, offset: i64, now_ms: i64) -> Result<i64, LogError> {
        let start = {
            let mut st = self.state.borrow_mut();
            st.check_open()?;
            if offset < 0 || offset > st.high_watermark() {
                return Err(LogError::OffsetOutOfRange {
                    requested: offset,
                    log_start: st.log_start_offset(),
                    log_end: st.high_watermark(),
                });
            }
            st.advance_log_start(offset);
            st.log_start_offset()
        };
        if start > 0 {
            // The checkpoint must never name an offset a crash could take back out of the
            // log (only possible under a flush policy whose high watermark runs ahead of
            // the fsync).
            self.wait_durable(start - 1).await?;
        }
        self.persist_log_start(start).await?;
        self.enforce_retention(now_ms).await?;
        Ok(self.log_start_offset())
    }

    /// Continues the log at `offset`, past offsets it will never hold: a replica copying
    /// another's log that was cleaned (whole batches gone) or whose start moved (retention,
    /// DeleteRecords). The next batch appended gets `offset` and starts a segment of its own,
    /// since offsets within a segment are contiguous (recovery checks that) while gaps
    /// between segments are allowed (the cleaner leaves them too). A log that held nothing
    /// starts at `offset`, durably. No-op at or below the log end.
    pub async fn skip_to(&self, offset: i64) -> Result<(), LogError> {
        let started = {
            let mut st = self.state.borrow_mut();
            st.check_open()?;
            st.skip_to(offset)
        };
        if started {
            self.persist_log_start(offset).await?;
        }
        Ok(())
    }

    /// Resolves once the checkpoint file holds `start` or more.
    async fn persist_log_start(&self, start: i64) -> Result<(), LogError> {
        loop {
            let turn = {
                let mut st = self.state.borrow_mut();
                if st.log_start_checkpoint.durable() >= start {
                    return Ok(());
                }
                match st.log_start_checkpoint.begin_write() {
                    Err(listener) => Err(listener),
                    // The newest start, which may be past `start` by now.
                    Ok(()) => Ok((st.dir.clone(), st.log_start_offset())),
                }
            };
            let (dir, value) = match turn {
                Ok(write) => write,
                Err(listener) => {
                    listener.await;
                    continue;
                }
            };
            let written = log_start::write_checkpoint(&dir, value).await;
            let mut st = self.state.borrow_mut();
            st.log_start_checkpoint
                .end_write(written.is_ok().then_some(value));
            written?;
        }
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
pub fn join_chunks(chunks: &[Bytes]) -> Bytes {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::log_reader::read_segment;
    use crate::log::testing::make_batch;
    use std::path::Path;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    /// A replica's copy skips offsets its leader no longer holds: the batch after the gap
    /// starts a segment of its own, reads step over the gap, and a reopened log has both;
    /// an empty log that skips starts at the new offset, durably.
    #[test]
    fn skipped_offsets_leave_a_gap_between_segments() {
        let tmp = dir();
        let path = tmp.path().join("p");
        let empty = tmp.path().join("q");
        crate::io::block_on_local(async move {
            let log = PartitionLog::open(path.clone(), LogConfig::default())
                .await
                .expect("open");
            log.append(Bytes::from(make_batch(4, 100, 1)), 0)
                .expect("append");
            log.skip_to(10).await.expect("skip");
            assert_eq!(log.log_end_offset(), 10);
            let info = log
                .append(Bytes::from(make_batch(2, 100, 2)), 0)
                .expect("append after the gap");
            assert_eq!((info.base_offset, info.last_offset), (10, 11));
            log.wait_durable(11).await.expect("durable");
            let in_gap = log.read(5, 1 << 20).await.expect("read in the gap");
            let offsets = crate::log::testing::batch_offsets(&join_chunks(&in_gap.chunks));
            assert_eq!(offsets.first().map(|o| o.0), Some(10));
            log.close().await.expect("close");

            let log = PartitionLog::open(path, LogConfig::default())
                .await
                .expect("reopen");
            assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 12));
            let all = log.read(0, 1 << 20).await.expect("read");
            let offsets = crate::log::testing::batch_offsets(&join_chunks(&all.chunks));
            let bases: Vec<i64> = offsets.iter().map(|o| o.0).collect();
            assert_eq!(bases, vec![0, 10]);
            log.close().await.expect("close");

            let log = PartitionLog::open(empty.clone(), LogConfig::default())
                .await
                .expect("open empty");
            log.skip_to(30).await.expect("skip");
            assert_eq!((log.log_start_offset(), log.high_watermark()), (30, 30));
            log.append(Bytes::from(make_batch(2, 100, 3)), 0)
                .expect("append");
            log.wait_durable(31).await.expect("durable");
            log.close().await.expect("close");
            let log = PartitionLog::open(empty, LogConfig::default())
                .await
                .expect("reopen empty");
            assert_eq!((log.log_start_offset(), log.log_end_offset()), (30, 32));
            log.close().await.expect("close");
        });
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

    /// Under LogAppendTime the broker's stamped header (offset, timestamp type, maxTimestamp,
    /// CRC) reaches readers from the tail cache and from the segment file alike, for
    /// producers' batches and for the broker's own markers; the producer's bytes stay as
    /// they were sent.
    #[test]
    fn log_append_time_batches_read_the_same_from_memory_and_file() {
        const NOW_MS: i64 = 5_000_000;
        let tmp = dir();
        let path = tmp.path().join("p");
        crate::io::block_on_local(async move {
            let config = LogConfig {
                flush: FlushPolicy::Never,
                log_append_time: true,
                ..LogConfig::default()
            };
            let log = PartitionLog::open(path.clone(), config.clone())
                .await
                .expect("open");
            log.append(Bytes::from(make_batch(2, 50, 1)), NOW_MS)
                .expect("append");
            let mut frame = make_batch(3, 5000, 10);
            frame.extend_from_slice(&make_batch(1, 100, 20));
            let sent = frame.clone();
            let frame = Bytes::from(frame);
            let info = log.append(frame.clone(), NOW_MS).expect("append");
            assert_eq!((info.base_offset, info.log_append_time_ms), (2, NOW_MS));
            let marker = log.append_marker(7, 0, true, 0, NOW_MS).expect("marker");
            assert_eq!(marker, 6);
            assert_eq!(&frame[..], &sent[..], "producer bytes untouched");
            let read = log.read(0, 1 << 20).await.expect("read");
            assert_eq!(
                read.chunks.len(),
                8,
                "from the tail cache: prefix and body per batch"
            );
            let memory = join_chunks(&read.chunks);
            assert_eq!(
                batch::batch_offsets(&memory),
                vec![
                    (0, 1, NOW_MS),
                    (2, 4, NOW_MS),
                    (5, 5, NOW_MS),
                    (6, 6, NOW_MS)
                ],
                "assigned offsets and the broker's time"
            );
            let mut at = 0;
            while at < memory.len() {
                let size = batch::framed_size(&memory[at..]).expect("whole batch");
                let stamped = &memory[at..at + size];
                assert!(batch::crc_matches(stamped), "CRC of the batch at {at}");
                assert_ne!(
                    batch::header_fields(stamped).attributes
                        & crate::protocol::batch_layout::ATTRIBUTE_LOG_APPEND_TIME,
                    0,
                    "timestamp type of the batch at {at}"
                );
                at += size;
            }
            log.wait_durable(6).await.expect("written");
            log.close().await.expect("close");
            let log = PartitionLog::open(path, config).await.expect("reopen");
            let cold = log.read(0, 1 << 20).await.expect("cold read");
            assert_eq!(
                join_chunks(&cold.chunks),
                memory,
                "the file holds what memory served"
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
