//! Durable share-partition state, beside the log it tracks.
//!
//! Layout: `<data dir>/.share/<topic>-<partition>/` is a [`StateLog`] of state records for
//! every share group reading that partition (see [`crate::log::state_log`] for generations,
//! recovery and compaction): the record key is the group id and the value a JSON
//! [`StoredRecord`]. A snapshot holds every group's state as [`StateChange`]s; later records
//! are the changes in the order they were applied. (Topic directories are `<topic>-<n>` in
//! the data dir itself, so `.share` never collides with one.)
//!
//! What is waited for: acknowledgements (and archiving) are answered only once their
//! records are durable; delivery counts are appended without waiting — losing the last few
//! in a crash only lowers a count. Recovery replays the newest complete generation: records
//! acquired at the crash come back available.
//!
//! Concurrency contract: owned by the shard that owns the partition; `append` is
//! synchronous, so records reach the log in the order the state changed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::share_partition::StateChange;
use super::ShareError;
use crate::log::state_log::{CodecError, StateLog, StateLogConfig, StateLogError, StateRecord};
use crate::log::PartitionLog;

pub const SHARE_DIR: &str = ".share";

const LOG_CONFIG: StateLogConfig = StateLogConfig {
    segment_bytes: 8 << 20,
    batch_record_count_max: 1_000,
};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StoredRecord {
    Change(StateChange),
    /// The group's state on this partition is forgotten (group deleted).
    GroupDeleted,
    SnapshotComplete {
        generation: u64,
    },
}

/// One record of a share state log: key `group` (empty for a snapshot marker), value the
/// JSON of `record`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupRecord {
    group: String,
    record: StoredRecord,
}

impl StateRecord for GroupRecord {
    fn encode(&self) -> Result<(Bytes, Option<Bytes>), CodecError> {
        let value = serde_json::to_vec(&self.record)?;
        Ok((
            Bytes::copy_from_slice(self.group.as_bytes()),
            Some(Bytes::from(value)),
        ))
    }

    fn decode(key: Option<Bytes>, value: Option<Bytes>) -> Result<Option<Self>, CodecError> {
        // Only this module writes these logs, always with a value; skip anything else.
        let Some(value) = value else { return Ok(None) };
        let group = key
            .as_ref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default();
        let record = serde_json::from_slice(&value)?;
        Ok(Some(GroupRecord { group, record }))
    }

    fn snapshot_complete(generation: u64) -> Self {
        GroupRecord {
            group: String::new(),
            record: StoredRecord::SnapshotComplete { generation },
        }
    }

    fn completed_generation(&self) -> Option<u64> {
        match self.record {
            StoredRecord::SnapshotComplete { generation } => Some(generation),
            _ => None,
        }
    }
}

/// Every group's changes, in log order, as found by replay.
pub type ReplayedGroups = HashMap<String, Vec<StateChange>>;

fn apply(groups: &mut ReplayedGroups, record: GroupRecord) {
    match record.record {
        StoredRecord::Change(change) => groups.entry(record.group).or_default().push(change),
        StoredRecord::GroupDeleted => {
            groups.remove(&record.group);
        }
        // Markers are handled by the state log.
        StoredRecord::SnapshotComplete { .. } => {}
    }
}

fn storage(error: StateLogError) -> ShareError {
    ShareError::Storage(error.to_string())
}

pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir
        .join(SHARE_DIR)
        .join(format!("{topic}-{partition}"))
}

pub struct ShareStateStore {
    log: StateLog<GroupRecord>,
}

impl ShareStateStore {
    /// Opens (or creates) the state log of one partition and replays it.
    pub async fn open(dir: PathBuf) -> Result<(ShareStateStore, ReplayedGroups), ShareError> {
        let (log, groups) =
            StateLog::open(dir, LOG_CONFIG, crate::server::connection::now_ms(), apply)
                .await
                .map_err(storage)?;
        Ok((ShareStateStore { log }, groups))
    }

    /// Appends `records` of `group`; returns the log and last offset to wait on for
    /// durability.
    pub fn append(
        &self,
        group: &str,
        records: &[StoredRecord],
    ) -> Result<(PartitionLog, i64), ShareError> {
        let records: Vec<GroupRecord> = records
            .iter()
            .map(|record| GroupRecord {
                group: group.to_owned(),
                record: record.clone(),
            })
            .collect();
        let appended = self
            .log
            .append(&records, crate::server::connection::now_ms())
            .map_err(storage)?;
        Ok((appended.log, appended.last_offset))
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
        self.log.needs_compaction(threshold_bytes)
    }

    /// Rewrites the log as `snapshot` (taken synchronously by the caller right before) in a
    /// new generation, then deletes the old one.
    pub async fn compact(
        &self,
        snapshot: impl FnOnce() -> Vec<(String, Vec<StateChange>)>,
    ) -> Result<(), ShareError> {
        let old_generation = self.log.generation();
        let generation = self
            .log
            .compact(crate::server::connection::now_ms(), || {
                let mut records = Vec::new();
                for (group, changes) in snapshot() {
                    records.extend(changes.into_iter().map(|change| GroupRecord {
                        group: group.clone(),
                        record: StoredRecord::Change(change),
                    }));
                }
                records
            })
            .await
            .map_err(storage)?;
        tracing::debug!(dir = ?self.log.dir(), old_generation, generation, "share state compacted");
        Ok(())
    }

    pub async fn close(&self) {
        if let Err(e) = self.log.close().await {
            tracing::error!(dir = ?self.log.dir(), error = %e, "closing share state log failed");
        }
    }
}
