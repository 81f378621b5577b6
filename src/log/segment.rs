//! One segment: a `.log` file of RecordBatches named by its base offset, plus its indexes.
//!
//! A segment's bytes move through three states, tracked here by two watermarks:
//! `assigned_bytes` (batches accepted by `append`, position fixed) >= `written_bytes`
//! (written to the file by the segment writer, readable with DMA). The last segment is the
//! active one; every earlier one is sealed: its file truncated to its exact size, fsynced,
//! and its indexes written.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::io::dma_file::{self, DmaFile};

use super::batch::{self, Scan};
use super::error::LogError;
use super::segment_index::{Footer, SegmentIndex};

pub(crate) const LOG_SUFFIX: &str = ".log";
pub(crate) const INDEX_SUFFIX: &str = ".index";
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// Bytes read per I/O while scanning a segment during recovery.
const SCAN_CHUNK_BYTES: usize = 4 << 20;

pub(crate) fn file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

pub(crate) fn path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(file_name(base_offset, suffix))
}

/// Parses `00000000000000000042.log` into 42.
pub(crate) fn parse_log_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(LOG_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) struct Segment {
    pub base_offset: i64,
    /// One past the last offset assigned to this segment.
    pub next_offset: i64,
    pub assigned_bytes: u64,
    pub written_bytes: u64,
    pub index: SegmentIndex,
    /// Wall-clock time (ms) of the first append in this process, for `segment_ms`.
    pub first_append_ms: Option<i64>,
    /// `None` until the segment writer creates the file.
    pub file: Option<Rc<DmaFile>>,
    pub sealed: bool,
    /// Producer-state snapshot as of `base_offset`, taken when `append` rolled to this
    /// segment; the segment writer writes it once the previous segment is sealed.
    pub producer_snapshot: Option<Vec<u8>>,
}

impl Segment {
    pub(crate) fn relative(&self, offset: i64) -> u32 {
        let rel = offset - self.base_offset;
        assert!(
            (0..=i64::from(u32::MAX)).contains(&rel),
            "offset {offset} outside segment {}",
            self.base_offset
        );
        rel as u32
    }
}

/// Result of scanning a segment file for its valid prefix.
pub(crate) struct ScanResult {
    pub valid_bytes: u64,
    pub next_offset: i64,
    pub index: SegmentIndex,
}

/// Calls `f` with the header and bytes of every batch in `file[position..end]`, which must
/// hold whole, already validated batches (below the recovered log end). Reads only what it
/// must: a batch larger than a read chunk is skipped after its header, and `f` gets only
/// its first chunk of bytes.
pub(crate) async fn for_each_header(
    file: &DmaFile,
    mut position: u64,
    end: u64,
    mut f: impl FnMut(&batch::BatchHeader, &[u8]),
) -> Result<(), LogError> {
    let corrupt = |position, reason| LogError::CorruptLog {
        path: file.path().to_path_buf(),
        position,
        reason,
    };
    while position < end {
        let len = SCAN_CHUNK_BYTES.min(usize::try_from(end - position).unwrap_or(usize::MAX));
        let chunk = file
            .read_at(position, len)
            .await
            .map_err(|e| LogError::io(format!("reading {:?}", file.path()), e))?;
        let mut p = 0usize;
        while p + batch::HEADER_BYTES <= chunk.len() {
            let size = match batch::framed_size(&chunk[p..]) {
                Some(size) if size >= batch::HEADER_BYTES => size,
                _ => return Err(corrupt(position + p as u64, "bad batch length")),
            };
            if p > 0 && p + size > chunk.len() {
                // Read again from its start, so that `f` sees every batch that fits a chunk
                // whole (transaction markers are read for their type).
                break;
            }
            f(
                &batch::header(&chunk[p..], size),
                &chunk[p..(p + size).min(chunk.len())],
            );
            p += size;
        }
        if p == 0 {
            return Err(corrupt(position, "truncated batch header"));
        }
        position += p as u64;
    }
    Ok(())
}

/// Scans `file` from position 0, checking framing, CRC and offset contiguity, and stops at
/// the first invalid or zeroed batch. Rebuilds the indexes on the way. With `gaps_allowed`
/// (sealed segments, which the log cleaner may have rewritten) offsets need only increase:
/// a compacted segment keeps its batches' offsets, with gaps where batches were removed.
pub(crate) async fn scan(
    file: &DmaFile,
    base_offset: i64,
    file_bytes: u64,
    index_interval_bytes: u32,
    gaps_allowed: bool,
) -> Result<ScanResult, LogError> {
    let strict = !gaps_allowed;
    let mut index = SegmentIndex::new();
    let mut position: u64 = 0;
    let mut valid_bytes: u64 = 0;
    let mut next_offset = base_offset;
    let mut want = SCAN_CHUNK_BYTES;
    'chunks: while position < file_bytes {
        let len = want.min(usize::try_from(file_bytes - position).unwrap_or(usize::MAX));
        let chunk = file
            .read_at(position, len)
            .await
            .map_err(|e| LogError::io(format!("scanning {:?}", file.path()), e))?;
        let mut p = 0usize;
        loop {
            match batch::scan(&chunk[p..], strict.then_some(next_offset)) {
                // Offsets never go back, gaps or not.
                Scan::Batch(h) if h.base_offset < next_offset => break 'chunks,
                Scan::Batch(h) => {
                    let rel = h.base_offset - base_offset;
                    let (Ok(rel), Ok(pos)) =
                        (u32::try_from(rel), u32::try_from(position + p as u64))
                    else {
                        break 'chunks;
                    };
                    index.on_batch(
                        rel,
                        pos,
                        h.size_bytes as u64,
                        h.max_timestamp,
                        index_interval_bytes,
                    );
                    next_offset = h.last_offset() + 1;
                    p += h.size_bytes;
                    valid_bytes = position + p as u64;
                }
                Scan::Incomplete(need) => {
                    if chunk.len() < len || position + (p + need) as u64 > file_bytes {
                        break 'chunks; // torn at end of file
                    }
                    if p == 0 {
                        want = need.max(SCAN_CHUNK_BYTES);
                    } else {
                        want = SCAN_CHUNK_BYTES.max(need);
                    }
                    break;
                }
                Scan::End => break 'chunks,
            }
        }
        if p == 0 && chunk.len() < len {
            break;
        }
        position = valid_bytes;
    }
    Ok(ScanResult {
        valid_bytes,
        next_offset,
        index,
    })
}

/// Writes the offset and time indexes of the segment at `base_offset` (not durably: the
/// caller fsyncs the directory or relies on recovery rescanning an unsealed segment).
pub(crate) async fn write_index(
    dir: &Path,
    base_offset: i64,
    index: &SegmentIndex,
    footer: Footer,
) -> Result<(), LogError> {
    let io = |e| LogError::io(format!("writing the indexes of segment {base_offset}"), e);
    dma_file::write_file(
        &path(dir, base_offset, TIME_INDEX_SUFFIX),
        &index.encode_times(),
    )
    .await
    .map_err(io)?;
    dma_file::write_file(
        &path(dir, base_offset, INDEX_SUFFIX),
        &index.encode_offsets(footer),
    )
    .await
    .map_err(io)
}
