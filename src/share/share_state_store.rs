//! Durable share-partition state, beside the log it tracks.
//!
//! Layout: `<data dir>/.share/<topic>-<partition>/gen-<g>/` is a [`PartitionLog`] of state
//! records for every share group reading that partition: the record key is the group id
//! and the value a JSON [`StoredRecord`]. Generation `g` starts with a snapshot of every
//! group's state followed by `SnapshotComplete { g }`; later records are the
//! [`StateChange`]s in the order they were applied. (Topic directories are `<topic>-<n>` in
//! the data dir itself, so `.share` never collides with one.)
//!
//! What is waited for: acknowledgements (and archiving) are answered only once their
//! records are durable; delivery counts are appended without waiting — losing the last few
//! in a crash only lowers a count. Recovery opens the newest complete generation, deletes
//! the others, and replays it: records acquired at the crash come back available.
//! Compaction (same scheme as the group offsets store) writes a snapshot into generation
//! `g + 1`, switches appends to it in one synchronous step, and deletes generation `g` once
//! the new one is durable.
//!
//! Concurrency contract: owned by the shard that owns the partition; `append` is
//! synchronous, so records reach the log in the order the state changed.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::share_partition::StateChange;
use super::ShareError;
use crate::io::dma_file;
use crate::log::{LogConfig, PartitionLog};

pub const SHARE_DIR: &str = ".share";
/// Records per batch (keeps each batch well under the batch size limit).
const BATCH_RECORDS: usize = 1_000;
const REPLAY_READ_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StoredRecord {
    Change(StateChange),
    /// The group's state on this partition is forgotten (group deleted).
    GroupDeleted,
    SnapshotComplete {
        generation: u64,
    },
}

/// Every group's changes, in log order, as found by replay.
pub type ReplayedGroups = HashMap<String, Vec<StateChange>>;

fn log_config() -> LogConfig {
    LogConfig::internal_state(8 << 20)
}

fn storage(context: &str, error: impl std::fmt::Display) -> ShareError {
    ShareError::Storage(format!("{context}: {error}"))
}

pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir
        .join(SHARE_DIR)
        .join(format!("{topic}-{partition}"))
}

fn generation_dir(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("gen-{generation:012}"))
}

pub struct ShareStateStore {
    dir: PathBuf,
    log: RefCell<PartitionLog>,
    generation: Cell<u64>,
    /// Log size right after the last snapshot; compaction triggers on growth beyond it.
    snapshot_bytes: Cell<u64>,
}

impl ShareStateStore {
    /// Opens (or creates) the state log of one partition and replays it.
    pub async fn open(dir: PathBuf) -> Result<(ShareStateStore, ReplayedGroups), ShareError> {
        let mut generations: Vec<u64> = match dma_file::list_dir(&dir) {
            Ok(names) => names
                .iter()
                .filter_map(|n| n.strip_prefix("gen-")?.parse().ok())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(storage("listing share state generations", e)),
        };
        generations.sort_unstable_by(|a, b| b.cmp(a));
        let mut chosen = None;
        for generation in &generations {
            let path = generation_dir(&dir, *generation);
            if chosen.is_some() {
                dma_file::remove_dir_all(&path).map_err(|e| storage("removing", e))?;
                continue;
            }
            let log = PartitionLog::open(path.clone(), log_config())
                .await
                .map_err(|e| storage("opening a share state log", e))?;
            let (groups, complete) = replay(&log, *generation).await?;
            if complete {
                chosen = Some((*generation, log, groups));
            } else {
                tracing::warn!(?path, "discarding an incomplete share state snapshot");
                log.delete()
                    .await
                    .map_err(|e| storage("deleting an incomplete snapshot", e))?;
            }
        }
        let (generation, log, groups) = match chosen {
            Some(chosen) => chosen,
            None => (0, create_generation(&dir, 0, &[]).await?, HashMap::new()),
        };
        let store = ShareStateStore {
            dir,
            snapshot_bytes: Cell::new(log.size_bytes()),
            log: RefCell::new(log),
            generation: Cell::new(generation),
        };
        Ok((store, groups))
    }

    /// Appends `changes` of `group`; returns the log and last offset to wait on for
    /// durability.
    pub fn append(
        &self,
        group: &str,
        records: &[StoredRecord],
    ) -> Result<(PartitionLog, i64), ShareError> {
        let log = self.log.borrow().clone();
        let last = append_records(&log, group, records)?;
        Ok((log, last))
    }

    pub fn append_changes(
        &self,
        group: &str,
        changes: &[StateChange],
    ) -> Result<(PartitionLog, i64), ShareError> {
        let records: Vec<StoredRecord> =
            changes.iter().cloned().map(StoredRecord::Change).collect();
        self.append(group, &records)
    }

    /// Whether the log grew by more than `threshold_bytes` since the last snapshot.
    pub fn needs_compaction(&self, threshold_bytes: u64) -> bool {
        self.log.borrow().size_bytes() > self.snapshot_bytes.get().saturating_add(threshold_bytes)
    }

    /// Rewrites the log as `snapshot` (taken synchronously by the caller right before) in a
    /// new generation, then deletes the old one.
    pub async fn compact(
        &self,
        snapshot: impl FnOnce() -> Vec<(String, Vec<StateChange>)>,
    ) -> Result<(), ShareError> {
        let generation = self.generation.get() + 1;
        let path = generation_dir(&self.dir, generation);
        let log = PartitionLog::open(path, log_config())
            .await
            .map_err(|e| storage("creating a share state log", e))?;
        // From here to the swap nothing awaits: the snapshot holds every applied change.
        let mut last = -1;
        for (group, changes) in snapshot() {
            let records: Vec<StoredRecord> =
                changes.into_iter().map(StoredRecord::Change).collect();
            if !records.is_empty() {
                last = append_records(&log, &group, &records)?;
            }
        }
        last =
            append_records(&log, "", &[StoredRecord::SnapshotComplete { generation }])?.max(last);
        let old = self.log.replace(log.clone());
        let old_generation = self.generation.replace(generation);
        log.wait_durable(last)
            .await
            .map_err(|e| storage("writing a share state snapshot", e))?;
        self.snapshot_bytes.set(log.size_bytes());
        // Earlier appends to the old log are answered once durable; let them finish first.
        let old_end = old.log_end_offset();
        if old_end > 0 {
            if let Err(e) = old.wait_durable(old_end - 1).await {
                tracing::warn!(error = %e, "old share state log failed before compaction");
            }
        }
        old.delete()
            .await
            .map_err(|e| storage("deleting a compacted share state log", e))?;
        tracing::debug!(dir = ?self.dir, old_generation, generation, "share state compacted");
        Ok(())
    }

    pub async fn close(&self) {
        let log = self.log.borrow().clone();
        if let Err(e) = log.close().await {
            tracing::error!(dir = ?self.dir, error = %e, "closing share state log failed");
        }
    }
}

async fn create_generation(
    dir: &Path,
    generation: u64,
    snapshot: &[(String, Vec<StateChange>)],
) -> Result<PartitionLog, ShareError> {
    dma_file::prepare_dir(dir)
        .await
        .map_err(|e| storage("preparing a share state dir", e))?;
    let log = PartitionLog::open(generation_dir(dir, generation), log_config())
        .await
        .map_err(|e| storage("creating a share state log", e))?;
    for (group, changes) in snapshot {
        let records: Vec<StoredRecord> =
            changes.iter().cloned().map(StoredRecord::Change).collect();
        append_records(&log, group, &records)?;
    }
    let last = append_records(&log, "", &[StoredRecord::SnapshotComplete { generation }])?;
    log.wait_durable(last)
        .await
        .map_err(|e| storage("writing a share state snapshot", e))?;
    Ok(log)
}

async fn replay(log: &PartitionLog, generation: u64) -> Result<(ReplayedGroups, bool), ShareError> {
    let mut groups: ReplayedGroups = HashMap::new();
    let mut complete = false;
    let mut position = log.log_start_offset();
    let end = log.high_watermark();
    while position < end {
        let read = log
            .read(position, REPLAY_READ_BYTES)
            .await
            .map_err(|e| storage("reading a share state log", e))?;
        if read.chunks.is_empty() {
            break;
        }
        let mut joined = BytesMut::with_capacity(read.bytes_len());
        for chunk in &read.chunks {
            joined.extend_from_slice(chunk);
        }
        let mut data = joined.freeze();
        let sets = RecordBatchDecoder::decode_all(&mut data)
            .map_err(|e| storage("decoding a share state log", e))?;
        let before = position;
        for set in sets {
            for record in set.records {
                position = position.max(record.offset + 1);
                let group = record
                    .key
                    .as_ref()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .unwrap_or_default();
                let Some(value) = record.value else { continue };
                let stored: StoredRecord = serde_json::from_slice(&value)
                    .map_err(|e| storage("decoding a share state record", e))?;
                match stored {
                    StoredRecord::Change(change) => groups.entry(group).or_default().push(change),
                    StoredRecord::GroupDeleted => {
                        groups.remove(&group);
                    }
                    StoredRecord::SnapshotComplete { generation: g } => {
                        complete |= g == generation;
                    }
                }
            }
        }
        if position == before {
            break;
        }
    }
    Ok((groups, complete))
}

fn append_records(
    log: &PartitionLog,
    group: &str,
    records: &[StoredRecord],
) -> Result<i64, ShareError> {
    let now_ms = crate::server::connection::now_ms();
    let mut last = -1;
    for chunk in records.chunks(BATCH_RECORDS) {
        let mut kafka_records = Vec::with_capacity(chunk.len());
        for (i, record) in chunk.iter().enumerate() {
            let value = serde_json::to_vec(record).map_err(|e| storage("encoding", e))?;
            let offset = i as i64;
            kafka_records.push(Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset,
                sequence: (offset as i32).wrapping_sub(1),
                timestamp: now_ms,
                key: Some(Bytes::copy_from_slice(group.as_bytes())),
                value: Some(Bytes::from(value)),
                headers: Default::default(),
            });
        }
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            kafka_records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(|e| storage("encoding share state records", e))?;
        let info = log
            .append(buf.freeze(), now_ms)
            .map_err(|e| storage("appending to a share state log", e))?;
        last = info.last_offset;
    }
    Ok(last)
}
