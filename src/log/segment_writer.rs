//! The segment writer: one background task per partition that owns every write and fsync.
//!
//! It drains the queue of appended batches, coalesces them into large aligned O_DIRECT writes
//! (re-writing the active segment's partial last block each time), and makes them durable
//! under the flush policy. Under group commit one fdatasync covers everything written before
//! it; batches appended while an fsync runs share the next one. Durability (and the high
//! watermark) only ever advances in offset order, so acknowledgements complete in append
//! order. Under group commit the fdatasync round is the shard's (see `commit_group`): one
//! round covers every partition of the shard with data written. It also rolls segments:
//! seals the previous one (fsync, truncate to size, write indexes) and creates and
//! preallocates the next.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;

use crate::constants::DMA_ALIGNMENT;
use crate::io::dma_file::{AlignedBuf, DmaFile};

use super::commit_group;
use super::config::FlushPolicy;
use super::error::LogError;
use super::log_state::LogState;
use super::producer_state;
use super::segment::{self, write_index, LOG_SUFFIX};
use super::segment_index::Footer;

const BLOCK: u64 = DMA_ALIGNMENT as u64;

/// Segments are preallocated (fallocate) ahead of the writes, up to `segment_bytes`, so that
/// a partition costs disk space for what it holds, not for a whole empty segment. A new
/// segment starts with `PREALLOCATE_INITIAL_BYTES`; each later step doubles what is
/// allocated, up to `PREALLOCATE_STEP_BYTES_MAX` at a time, so busy partitions make few
/// fallocate calls while thousands of idle ones (or internal logs) stay small.
pub(crate) const PREALLOCATE_INITIAL_BYTES: u64 = 1 << 20;
const PREALLOCATE_STEP_BYTES_MAX: u64 = 64 << 20;

/// The size to preallocate so that a write ending at `write_end` fits.
fn preallocation_target(allocated: u64, write_end: u64, segment_bytes: u64) -> u64 {
    let step = allocated.clamp(PREALLOCATE_INITIAL_BYTES, PREALLOCATE_STEP_BYTES_MAX);
    write_end.max((write_end + step).min(segment_bytes.max(write_end)))
}

struct Writer {
    state: Rc<RefCell<LogState>>,
    /// Base offset and file of the segment being appended to.
    segment_base: i64,
    file: Rc<DmaFile>,
    /// Bytes of the file's last partial block (`written_bytes % BLOCK` of them).
    tail: Vec<u8>,
    /// File bytes reserved so far with fallocate (0 = unknown; checked on the next write).
    allocated_bytes: u64,
    last_sync: Instant,
}

/// An aligned write buffer and what it holds.
struct PreparedWrite {
    buf: AlignedBuf,
    run: WriteRun,
}

impl PreparedWrite {
    fn end(&self) -> u64 {
        self.run.aligned_start + self.buf.len() as u64
    }
}

/// What one write holds: `count` batches from the front of the queue, preceded by the
/// partial block the previous write ended with.
struct WriteRun {
    aligned_start: u64,
    /// File position of the first batch.
    first_position: u64,
    count: usize,
    /// Bytes of the batches.
    payload: u64,
    last_offset: i64,
    /// The partial last block, which the next write starts with.
    next_tail: Vec<u8>,
}

/// The writer task of a log whose active segment, when it opened, was `segment_base` in
/// `file`, its partial last block `tail`. (Taken at open, not when the task first runs:
/// appends made before then may already have started a later segment.)
pub(crate) async fn run(
    state: Rc<RefCell<LogState>>,
    tail: Vec<u8>,
    segment_base: i64,
    file: Rc<DmaFile>,
) {
    let mut writer = Writer {
        state: state.clone(),
        segment_base,
        file,
        tail,
        allocated_bytes: 0,
        last_sync: Instant::now(),
    };
    loop {
        match writer.run().await {
            Ok(()) => return,
            // A full disk is not the end of the partition: keep the queued batches (nothing
            // was dequeued by the failed write), refuse new appends, and try again until an
            // operator or retention frees space.
            Err(LogError::StorageFull) => {
                let newly_full = !std::mem::replace(&mut state.borrow_mut().storage_full, true);
                // Producers waiting for durability get KAFKA_STORAGE_ERROR instead of a hang.
                state.borrow().durable_event.notify(usize::MAX);
                if newly_full {
                    tracing::error!(dir = ?state.borrow().dir, "disk full; produce refused until space is freed");
                }
                crate::io::sleep(STORAGE_FULL_RETRY).await;
            }
            Err(error) => {
                state.borrow_mut().fail(&error);
                return;
            }
        }
    }
}

/// How often a partition whose disk is full retries its pending write.
const STORAGE_FULL_RETRY: Duration = Duration::from_millis(500);

impl Writer {
    async fn run(&mut self) -> Result<(), LogError> {
        loop {
            let (policy, has_work, needs_sync, closing, listener) = {
                let st = self.state.borrow();
                let has_work = !st.unwritten.is_empty();
                let needs_sync = st.durable_offset() < st.written_offset();
                let listener = st.work_event.listen();
                (st.config.flush, has_work, needs_sync, st.closing, listener)
            };
            let sync_due = needs_sync
                && (closing
                    || match policy {
                        FlushPolicy::IntervalMs(ms) => {
                            self.last_sync.elapsed() >= Duration::from_millis(ms)
                        }
                        FlushPolicy::GroupCommit { .. } => false,
                        FlushPolicy::Never => true,
                    });
            if !has_work && !sync_due {
                if closing {
                    return Ok(());
                }
                match policy {
                    FlushPolicy::IntervalMs(ms) if needs_sync => {
                        let left =
                            Duration::from_millis(ms).saturating_sub(self.last_sync.elapsed());
                        future::or(listener, crate::io::sleep(left)).await;
                    }
                    _ => listener.await,
                }
                continue;
            }
            drop(listener);
            let bytes_max = match policy {
                FlushPolicy::GroupCommit {
                    delay_us,
                    bytes_max,
                } => {
                    let queued = self.state.borrow().unwritten_bytes;
                    if delay_us > 0 && queued < bytes_max && !closing {
                        crate::io::sleep(Duration::from_micros(delay_us)).await;
                    }
                    bytes_max.max(1)
                }
                _ => u64::MAX,
            };
            let mut written: u64 = 0;
            while written < bytes_max {
                let n = self.write_run(bytes_max - written).await?;
                if n == 0 {
                    break;
                }
                written += n;
            }
            let st_closing = self.state.borrow().closing;
            match policy {
                // Otherwise the shard's commit rounds make the writes durable (`complete`).
                FlushPolicy::GroupCommit { .. } if st_closing => self.sync(true).await?,
                FlushPolicy::GroupCommit { .. } => {}
                FlushPolicy::IntervalMs(ms) => {
                    if st_closing || self.last_sync.elapsed() >= Duration::from_millis(ms) {
                        self.sync(false).await?;
                    }
                }
                FlushPolicy::Never => {
                    if st_closing {
                        self.sync(false).await?;
                    } else {
                        let mut st = self.state.borrow_mut();
                        let written = st.written_offset();
                        st.advance_durable(written);
                    }
                }
            }
        }
    }

    /// fdatasyncs the active file and advances durability (and the high watermark if
    /// `advance_hw`) to everything written before it.
    async fn sync(&mut self, advance_hw: bool) -> Result<(), LogError> {
        let covered = self.state.borrow().written_offset();
        let started = Instant::now();
        self.file
            .fdatasync()
            .await
            .map_err(|e| LogError::io(format!("fdatasync of segment {}", self.segment_base), e))?;
        self.last_sync = Instant::now();
        let mut st = self.state.borrow_mut();
        crate::metrics::fsync_completed(self.last_sync - started, covered - st.durable_offset());
        st.advance_durable(covered);
        if advance_hw {
            st.set_high_watermark(covered);
        }
        st.assert_offsets();
        Ok(())
    }

    /// Writes queued batches of the current segment (rolling to the segment of the first
    /// queued batch first) in aligned writes of up to `write_bytes_max`, until about
    /// `bytes_max` bytes of batches are written or the run reaches another segment. Returns
    /// the bytes of batches written (0 when the queue is empty).
    ///
    /// One write is in flight at a time (consecutive writes share the partial last block),
    /// but the next write's buffer is built while the current one is at the disk, so copying
    /// the batches does not add to the disk's time.
    async fn write_run(&mut self, bytes_max: u64) -> Result<u64, LogError> {
        let segment_base = match self.state.borrow().unwritten.front() {
            None => return Ok(0),
            Some(first) => first.segment_base,
        };
        if segment_base != self.segment_base {
            self.roll(segment_base).await?;
        }
        let mut written = 0u64;
        let mut next = self.prepare(0, &self.tail);
        while let Some(write) = next.take() {
            self.preallocate(write.end()).await?;
            let PreparedWrite { buf, run } = write;
            let more = written + run.payload < bytes_max;
            let file = self.file.clone();
            let build_next = async {
                if !more {
                    return None;
                }
                crate::io::runtime::yield_to_reactor().await;
                self.prepare(run.count, &run.next_tail)
            };
            let write = async {
                let started = Instant::now();
                let result = file.write_at(buf, run.aligned_start).await;
                crate::metrics::latency(crate::metrics::Hist::LogWrite, started.elapsed());
                result
            };
            let (result, prepared) = future::zip(write, build_next).await;
            result.map_err(|e| LogError::io(format!("writing segment {segment_base}"), e))?;
            written += run.payload;
            self.complete(run);
            next = prepared;
        }
        Ok(written)
    }

    /// Builds the aligned buffer of the next write: `tail` (the partial block the previous
    /// write ended with) followed by the queued batches after the first `skip`, as many as
    /// fit in `write_bytes_max` (at least one), all in the current segment. `None` when
    /// there is nothing to write in this segment.
    fn prepare(&self, skip: usize, tail: &[u8]) -> Option<PreparedWrite> {
        let st = self.state.borrow();
        let first = st.unwritten.get(skip)?;
        if first.segment_base != self.segment_base {
            return None;
        }
        let first_position = first.position;
        let aligned_start = first_position / BLOCK * BLOCK;
        assert_eq!(
            (first_position - aligned_start) as usize,
            tail.len(),
            "tail block out of step with the write position"
        );
        let write_bytes_max = st.config.write_bytes_max.max(DMA_ALIGNMENT);
        let mut count = 0usize;
        let mut payload = 0usize;
        for pending in st.unwritten.iter().skip(skip) {
            if pending.segment_base != self.segment_base
                || (count > 0 && tail.len() + payload + pending.bytes.len() > write_bytes_max)
            {
                break;
            }
            count += 1;
            payload += pending.bytes.len();
        }
        let used = tail.len() + payload;
        let padded = used.div_ceil(DMA_ALIGNMENT) * DMA_ALIGNMENT;
        let mut last_offset = 0;
        let buf = self.file.alloc_filled(padded, |bytes| {
            bytes[..tail.len()].copy_from_slice(tail);
            let mut at = tail.len();
            for pending in st.unwritten.iter().skip(skip).take(count) {
                let (head, body) = (pending.prefix.len(), pending.bytes.len());
                bytes[at..at + head].copy_from_slice(&pending.prefix);
                bytes[at + head..at + body].copy_from_slice(&pending.bytes[head..]);
                at += body;
                last_offset = pending.last_offset;
            }
            at
        });
        let tail_start = used / DMA_ALIGNMENT * DMA_ALIGNMENT;
        // Becomes the tail only once the write succeeds: a write refused for a full disk is
        // retried later from the same position with the same tail.
        let next_tail = buf.as_bytes()[tail_start..used].to_vec();
        Some(PreparedWrite {
            buf,
            run: WriteRun {
                aligned_start,
                first_position,
                count,
                payload: payload as u64,
                last_offset,
                next_tail,
            },
        })
    }

    /// Reserves file space (fallocate, in growing steps) so that a write ending at
    /// `write_end` fits.
    async fn preallocate(&mut self, write_end: u64) -> Result<(), LogError> {
        if write_end <= self.allocated_bytes {
            return Ok(());
        }
        let segment_bytes = self.state.borrow().config.segment_bytes_clamped();
        let target = preallocation_target(self.allocated_bytes, write_end, segment_bytes);
        let segment_base = self.segment_base;
        self.file
            .pre_allocate(target)
            .await
            .map_err(|e| LogError::io(format!("preallocating segment {segment_base}"), e))?;
        self.allocated_bytes = target;
        Ok(())
    }

    /// Records a finished write: its batches leave the queue and count as written.
    fn complete(&mut self, run: WriteRun) {
        self.tail = run.next_tail;
        let mut st = self.state.borrow_mut();
        if std::mem::take(&mut st.storage_full) {
            tracing::info!(dir = ?st.dir, "disk has room again; produce resumes");
        }
        for _ in 0..run.count {
            let done = st.unwritten.pop_front().expect("counted above");
            assert!(
                done.base_offset >= st.written_offset(),
                "batches written out of order"
            );
            st.unwritten_bytes -= done.bytes.len() as u64;
        }
        st.advance_written(run.last_offset + 1);
        let segment_base = self.segment_base;
        let active = st
            .segments
            .iter_mut()
            .rev()
            .find(|s| s.base_offset == segment_base)
            .expect("segment being written exists");
        active.written_bytes = run.first_position + run.payload;
        st.trim_cache();
        st.assert_offsets();
        let group_commit = matches!(st.config.flush, FlushPolicy::GroupCommit { .. });
        if group_commit && !st.closing {
            drop(st);
            commit_group::written(&self.state, &self.file);
        }
    }

    /// Seals the current segment and opens the segment starting at `next_base`.
    async fn roll(&mut self, next_base: i64) -> Result<(), LogError> {
        let (dir, footer, index, segment_bytes, snapshot) = {
            let mut st = self.state.borrow_mut();
            let snapshot = st
                .segments
                .iter_mut()
                .find(|s| s.base_offset == next_base)
                .and_then(|s| s.producer_snapshot.take());
            let current = st
                .segments
                .iter()
                .find(|s| s.base_offset == self.segment_base)
                .expect("current segment exists");
            let footer = Footer {
                segment_bytes: current.written_bytes,
                next_offset_relative: (current.next_offset - current.base_offset) as u64,
                max_timestamp: current.index.max_timestamp,
            };
            (
                st.dir.clone(),
                footer,
                current.index.clone(),
                st.config.segment_bytes_clamped(),
                snapshot,
            )
        };
        let base = self.segment_base;
        let io = |e| LogError::io(format!("sealing segment {base}"), e);
        self.file.fdatasync().await.map_err(io)?;
        self.file.truncate(footer.segment_bytes).await.map_err(io)?;
        self.file.fdatasync().await.map_err(io)?;
        write_index(&dir, base, &index, footer).await?;
        // Only now is everything below `next_base` durable, so the state as of it may be.
        if let Some(snapshot) = snapshot {
            producer_state::write_snapshot(&dir, next_base, &snapshot).await?;
        }

        let path = segment::path(&dir, next_base, LOG_SUFFIX);
        let io = |e| LogError::io(format!("creating segment {next_base}"), e);
        let file = Rc::new(DmaFile::open_rw(&path, true).await.map_err(io)?);
        let allocated = segment_bytes.min(PREALLOCATE_INITIAL_BYTES);
        file.pre_allocate(allocated).await.map_err(io)?;
        crate::io::dma_file::sync_dir(&dir).await.map_err(io)?;
        {
            let mut st = self.state.borrow_mut();
            for segment in st.segments.iter_mut() {
                if segment.base_offset == base {
                    segment.sealed = true;
                }
                if segment.base_offset == next_base {
                    segment.file = Some(file.clone());
                }
            }
        }
        self.segment_base = next_base;
        self.file = file;
        self.tail.clear();
        self.allocated_bytes = allocated;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preallocation_starts_small_and_doubles_up_to_the_step_limit() {
        let segment = 1 << 30;
        let mib = 1 << 20;
        assert_eq!(preallocation_target(mib, mib + 10, segment), 2 * mib + 10);
        assert_eq!(
            preallocation_target(8 * mib, 8 * mib + 1, segment),
            16 * mib + 1
        );
        assert_eq!(
            preallocation_target(512 * mib, 512 * mib + 1, segment),
            576 * mib + 1
        );
        // Never past the segment size, unless one write is larger.
        assert_eq!(preallocation_target(mib, mib + 10, 2 * mib), 2 * mib);
        assert_eq!(preallocation_target(mib, 3 * mib, 2 * mib), 3 * mib);
    }
}
