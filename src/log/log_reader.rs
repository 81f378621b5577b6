//! The log's read path: a fetch served from the tail cache when it holds the offset, else
//! from the segment files (cold reads), read ahead for a consumer reading them in order.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;

use crate::io::dma_file::DmaFile;

use super::batch;
use super::error::LogError;
use super::log_state::LogState;
use super::read_ahead::ReadAhead;
use super::txn_index::{self, AbortedTxn};

/// Smallest DMA read issued for a cold fetch.
pub(super) const READ_WINDOW_BYTES_MIN: usize = 64 << 10;
/// Largest DMA read issued for a cold fetch (a single larger batch is read whole).
const READ_WINDOW_BYTES_MAX: usize = 8 << 20;

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

/// [`PartitionLog::read_isolated`](super::PartitionLog::read_isolated): whole batches from the
/// one holding `offset`, below the high watermark (or, `committed`, the last stable offset).
pub(super) async fn read(
    state: &RefCell<LogState>,
    offset: i64,
    max_bytes: usize,
    committed: bool,
) -> Result<ReadResult, LogError> {
    let (file, position, end, bound, hw, start, lso, aborted, ahead) = {
        let st = state.borrow();
        if st.closed {
            return Err(LogError::Closed);
        }
        let hw = st.high_watermark();
        let start = st.log_start_offset();
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
            read_cached(&st, offset, bound, max_bytes, 0, &mut result.chunks);
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
            let st = state.borrow();
            let i = st.segment_index_for(from);
            let Some(next) = st.segments.get(i + 1).filter(|s| s.base_offset < bound) else {
                break;
            };
            from = next.base_offset;
            if st.cache.front().is_some_and(|b| b.base_offset <= from) {
                read_cached(&st, from, bound, max_bytes, total, &mut chunks);
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

/// Appends to `chunks` the cached batches from the one holding `offset`, below `bound`
/// (the high watermark, or the last stable offset for read_committed), while the response (already `already` bytes) stays within `max_bytes`; the
/// first batch of a response always goes whole (KIP-74).
fn read_cached(
    st: &LogState,
    offset: i64,
    bound: i64,
    max_bytes: usize,
    already: usize,
    chunks: &mut Vec<Bytes>,
) {
    let first = st.cache.partition_point(|b| b.last_offset < offset);
    let mut total = already;
    for cached in st.cache.range(first..) {
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

/// Reads whole batches from `file[position..end]`, skipping those before `offset`.
#[cfg(test)]
pub(super) async fn read_segment(
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
                // Uncopied: the response's chunks are slices of the DMA buffer itself.
                data.into_bytes()
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
