//! Opening a partition directory: the segments a clean shutdown vouches for are trusted, the
//! others rescanned (CRC of every batch), and the log truncated to its longest valid prefix,
//! a torn tail from a crash included; then the idempotent-producer state is rebuilt.

use std::collections::VecDeque;
use std::path::Path;
use std::rc::Rc;

use crate::io::dma_file::{self, DmaFile};

use super::config::LogConfig;
use super::error::LogError;
use super::log_cleaner;
use super::producer_state::{self, ProducerStates};
use super::segment::{self, write_index, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::segment_index::{Footer, SegmentIndex};
use super::segment_writer;
use super::txn_index;

/// Written (empty) on clean close; its presence at open means no segment needs a rescan.
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = ".clean_shutdown";

/// Rebuilds the idempotent-producer state as of the recovered log end: the newest snapshot
/// at or below it, then the headers of every batch after the snapshot. Snapshots past the log
/// end (from a tail that recovery truncated) are removed. Producers met only in the replayed
/// headers count as active at `now_ms`, so none expires earlier than it would have.
pub(super) async fn recover_producers(
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
    pub(super) segments: VecDeque<Segment>,
    /// Bytes of the active segment's last partial block, to be rewritten by the next write.
    pub(super) tail: Vec<u8>,
}

/// Loads the segments of `dir`, rescanning whatever a clean shutdown does not vouch for, and
/// truncates to the longest valid prefix of the log.
pub(super) async fn recover(dir: &Path, config: &LogConfig) -> Result<Recovered, LogError> {
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
