//! Durable share-partition state, beside the log it tracks.
//!
//! Layout: `<data dir>/.share/<topic>-<partition>/` is a [`StateLog`] of state records for
//! every share group reading that partition (see [`crate::log::state_log`] for generations,
//! recovery and compaction): the record key is the group id and the value a JSON
//! [`StoredRecord`]. A snapshot holds the topic id, then every group's state as
//! [`StateChange`]s; later records are the changes in the order they were applied. (Topic
//! directories are `<topic>-<n>` in the data dir itself, so `.share` never collides with one.)
//!
//! Topic ids: the directory is named after the topic, but the state belongs to one topic id.
//! The log's first record ([`StoredRecord::Topic`]) says which, and [`ShareStateStore::open`]
//! discards a log whose id is not the topic's current one: that is the state of a topic of
//! the same name that was deleted (its directory is removed on deletion, but a crash can leave
//! it behind). A log written before topic ids were recorded has no such record; it is adopted
//! by the topic that has its name when it is first opened (at start-up), which is as much as
//! such a log can tell.
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
use uuid::Uuid;

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
    /// The topic the log's state belongs to (key empty); the first record of every
    /// generation since topic ids were recorded.
    Topic {
        #[serde(with = "uuid_text")]
        id: Uuid,
    },
    SnapshotComplete {
        generation: u64,
    },
}

/// A change to one group's state as a replicated partition's replicas receive it (a Raft
/// entry of the partition, `Replica::propose_state`): the records every replica appends.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicatedChange {
    pub group: String,
    pub records: Vec<StoredRecord>,
}

impl ReplicatedChange {
    pub fn encode(&self) -> Result<Vec<u8>, ShareError> {
        serde_json::to_vec(self)
            .map_err(|e| ShareError::Storage(format!("encoding a share state change: {e}")))
    }

    pub fn decode(bytes: &[u8]) -> Result<ReplicatedChange, ShareError> {
        serde_json::from_slice(bytes)
            .map_err(|e| ShareError::Storage(format!("decoding a share state change: {e}")))
    }
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

/// A topic id as its usual text (`8-4-4-4-12` hex digits) in the JSON of a record.
mod uuid_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use uuid::Uuid;

    pub fn serialize<S: Serializer>(id: &Uuid, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Uuid, D::Error> {
        let text = String::deserialize(deserializer)?;
        Uuid::parse_str(&text).map_err(serde::de::Error::custom)
    }
}

/// Every group's changes, in log order, as found by replay.
pub type ReplayedGroups = HashMap<String, Vec<StateChange>>;

/// What replaying a state log found.
#[derive(Debug, Default)]
struct Replayed {
    /// `None` in a log written before topic ids were recorded (or one just created).
    topic_id: Option<Uuid>,
    groups: ReplayedGroups,
}

fn apply(replayed: &mut Replayed, record: GroupRecord) {
    match record.record {
        StoredRecord::Change(change) => replayed
            .groups
            .entry(record.group)
            .or_default()
            .push(change),
        StoredRecord::GroupDeleted => {
            replayed.groups.remove(&record.group);
        }
        StoredRecord::Topic { id } => replayed.topic_id = Some(id),
        // Markers are handled by the state log.
        StoredRecord::SnapshotComplete { .. } => {}
    }
}

fn topic_record(topic_id: Uuid) -> GroupRecord {
    GroupRecord {
        group: String::new(),
        record: StoredRecord::Topic { id: topic_id },
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

async fn open_log(dir: &Path) -> Result<(StateLog<GroupRecord>, Replayed), ShareError> {
    StateLog::open(
        dir.to_owned(),
        LOG_CONFIG,
        crate::io::clock::now_ms(),
        apply,
    )
    .await
    .map_err(storage)
}

/// Removes a share state directory (or nothing, if it is gone already) and syncs its parent,
/// so that the removal survives a crash.
pub async fn remove_dir(dir: &Path) -> Result<(), ShareError> {
    if !crate::io::dma_file::exists(dir) {
        return Ok(());
    }
    let failed = |e: std::io::Error| ShareError::Storage(format!("removing {dir:?}: {e}"));
    crate::io::dma_file::remove_dir_all(dir).map_err(failed)?;
    if let Some(parent) = dir.parent() {
        crate::io::dma_file::sync_dir(parent)
            .await
            .map_err(failed)?;
    }
    Ok(())
}

pub struct ShareStateStore {
    log: StateLog<GroupRecord>,
    topic_id: Uuid,
}

impl ShareStateStore {
    /// Opens (or creates) the state log of one partition of topic `topic_id` and replays it.
    /// A log of another topic id is deleted first, so the partition starts with no state (see
    /// the module docs); a log with no topic id is adopted.
    pub async fn open(
        dir: PathBuf,
        topic_id: Uuid,
    ) -> Result<(ShareStateStore, ReplayedGroups), ShareError> {
        let (log, replayed) = open_log(&dir).await?;
        let log = match replayed.topic_id {
            Some(id) if id == topic_id => {
                return Ok((ShareStateStore { log, topic_id }, replayed.groups));
            }
            Some(stale_id) => {
                tracing::info!(?dir, %stale_id, %topic_id, "discarding the share state of a deleted topic of the same name");
                log.close().await.map_err(storage)?;
                remove_dir(&dir).await?;
                open_log(&dir).await?.0
            }
            None => {
                if !replayed.groups.is_empty() {
                    tracing::info!(?dir, %topic_id, "share state written before topic ids: adopted by the topic of its name");
                }
                log
            }
        };
        // Durable with the first change appended after it, which is all that needs it: until
        // then the log holds no state to tell apart.
        log.append(&[topic_record(topic_id)], crate::io::clock::now_ms())
            .map_err(storage)?;
        let groups = match replayed.topic_id {
            None => replayed.groups,
            Some(_) => ReplayedGroups::new(),
        };
        Ok((ShareStateStore { log, topic_id }, groups))
    }

    /// Closes the log and removes its directory durably: the topic was deleted.
    pub async fn delete(&self) -> Result<(), ShareError> {
        self.log.close().await.map_err(storage)?;
        remove_dir(self.log.dir()).await
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
            .append(&records, crate::io::clock::now_ms())
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
            .compact(crate::io::clock::now_ms(), || {
                let mut records = vec![topic_record(self.topic_id)];
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as a broker from before topic ids wrote it: the group as key, the JSON of the
    /// record as value, byte for byte.
    struct LegacyRecord {
        group: &'static str,
        json: &'static str,
    }

    impl StateRecord for LegacyRecord {
        fn encode(&self) -> Result<(Bytes, Option<Bytes>), CodecError> {
            Ok((
                Bytes::from_static(self.group.as_bytes()),
                Some(Bytes::from_static(self.json.as_bytes())),
            ))
        }

        fn decode(_: Option<Bytes>, _: Option<Bytes>) -> Result<Option<Self>, CodecError> {
            Ok(None)
        }

        fn snapshot_complete(_: u64) -> Self {
            LegacyRecord {
                group: "",
                json: r#"{"SnapshotComplete":{"generation":0}}"#,
            }
        }

        fn completed_generation(&self) -> Option<u64> {
            self.group.is_empty().then_some(0)
        }
    }

    const A: Uuid = Uuid::from_u128(0xa);
    const B: Uuid = Uuid::from_u128(0xb);

    fn with_dir<F: std::future::Future<Output = ()> + 'static>(test: impl FnOnce(PathBuf) -> F) {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = temp.path().join(SHARE_DIR).join("orders-0");
        crate::io::block_on_local(test(dir));
    }

    async fn open(dir: &Path, topic_id: Uuid) -> (ShareStateStore, ReplayedGroups) {
        ShareStateStore::open(dir.to_owned(), topic_id)
            .await
            .expect("open the share state")
    }

    async fn write_legacy(dir: &Path, records: &[LegacyRecord]) {
        let (log, ()) = StateLog::<LegacyRecord>::open(dir.to_owned(), LOG_CONFIG, 0, |_, _| {})
            .await
            .expect("open a legacy log");
        log.append(records, 0)
            .expect("append")
            .wait_durable()
            .await
            .expect("durable");
        log.close().await.expect("close");
    }

    fn start(offset: i64) -> Vec<StateChange> {
        vec![StateChange::Start { offset }]
    }

    #[test]
    fn state_of_another_topic_id_is_discarded() {
        with_dir(|dir| async move {
            let (store, groups) = open(&dir, A).await;
            assert!(groups.is_empty());
            let (log, offset) = store.append_changes("g", &start(7)).expect("append");
            log.wait_durable(offset).await.expect("durable");
            store.close().await;

            let (store, groups) = open(&dir, A).await;
            assert_eq!(groups.get("g"), Some(&start(7)));
            store.close().await;

            // The topic was deleted and created again, and the directory outlived it.
            let (store, groups) = open(&dir, B).await;
            assert!(groups.is_empty(), "{groups:?}");
            store.close().await;
            let (store, groups) = open(&dir, B).await;
            assert!(groups.is_empty(), "{groups:?}");
            store.close().await;
        });
    }

    #[test]
    fn state_from_before_topic_ids_is_adopted_and_keeps_its_id_through_compaction() {
        with_dir(|dir| async move {
            write_legacy(
                &dir,
                &[
                    LegacyRecord {
                        group: "g",
                        json: r#"{"Change":{"Start":{"offset":3}}}"#,
                    },
                    LegacyRecord {
                        group: "g",
                        json: r#"{"Change":{"Delivered":{"first":3,"last":4,"count":1}}}"#,
                    },
                    LegacyRecord {
                        group: "h",
                        json: r#"{"Change":{"Start":{"offset":0}}}"#,
                    },
                    LegacyRecord {
                        group: "h",
                        json: r#""GroupDeleted""#,
                    },
                ],
            )
            .await;
            let adopted = vec![
                StateChange::Start { offset: 3 },
                StateChange::Delivered {
                    first: 3,
                    last: 4,
                    count: 1,
                },
            ];
            let (store, groups) = open(&dir, A).await;
            assert_eq!(groups.len(), 1, "{groups:?}");
            assert_eq!(groups.get("g"), Some(&adopted));
            let (log, offset) = store.append_changes("g", &start(5)).expect("append");
            log.wait_durable(offset).await.expect("durable");
            store.close().await;

            // Adopted once, the state is topic A's: B does not get it.
            let (store, groups) = open(&dir, A).await;
            assert_eq!(groups.get("g").and_then(|c| c.last()), start(5).last());
            store
                .compact(|| vec![("g".to_owned(), start(5))])
                .await
                .expect("compact");
            store.close().await;
            let (store, groups) = open(&dir, A).await;
            assert_eq!(groups.get("g"), Some(&start(5)));
            store.close().await;
            let (store, groups) = open(&dir, B).await;
            assert!(groups.is_empty(), "{groups:?}");
            store.close().await;
        });
    }

    #[test]
    fn delete_removes_the_directory() {
        with_dir(|dir| async move {
            let (store, _) = open(&dir, A).await;
            store.append_changes("g", &start(1)).expect("append");
            store.delete().await.expect("delete");
            assert!(!dir.exists());
            // Removing what is already gone is not an error.
            remove_dir(&dir).await.expect("remove again");
        });
    }
}
