//! Durable committed offsets: one offsets log per offsets partition owned by this shard.
//!
//! Layout: `<data dir>/.groups/offsets-<p>/` is a [`StateLog`] of [`OffsetRecord`]s (see
//! [`crate::log::state_log`] for generations, recovery and compaction). A snapshot holds a
//! `Commit` for every live offset of the groups of partition `p`; later records are commits
//! and deletions.
//! (Topic directories are always `<topic>-<n>`, so `.groups` never collides with one.)
//!
//! Concurrency contract: owned by one shard; `append` is synchronous (so records reach the
//! log in the order they were accepted) and the in-memory view is updated at append time;
//! callers acknowledge a commit only after [`Durable`] resolves.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;

use super::offset_record::{CommittedOffset, OffsetRecord};
use super::{offsets_partition, GroupError, OFFSETS_PARTITION_COUNT};
use crate::log::state_log::{CodecError, StateLog, StateLogConfig, StateLogError, StateRecord};

const GROUPS_DIR: &str = ".groups";

const LOG_CONFIG: StateLogConfig = StateLogConfig {
    segment_bytes: 16 << 20,
    batch_record_count_max: 2_000,
};

/// `(topic, partition)` → committed offset.
pub type GroupOffsets = BTreeMap<(String, i32), CommittedOffset>;

/// Every group's offsets (of one offsets partition while replaying, of all of them after).
type Offsets = HashMap<String, GroupOffsets>;

pub struct OffsetStore {
    root: PathBuf,
    shard_id: usize,
    shard_count: usize,
    compact_bytes: u64,
    /// Shared with compactions in progress, which hold a log across awaits.
    logs: RefCell<BTreeMap<u32, Rc<StateLog<OffsetRecord>>>>,
    offsets: RefCell<Offsets>,
}

/// Resolves once an append is durable.
pub type Durable = std::pin::Pin<Box<dyn Future<Output = Result<(), GroupError>>>>;

fn storage(error: StateLogError) -> GroupError {
    GroupError::Storage(error.to_string())
}

fn partition_dir(root: &Path, partition: u32) -> PathBuf {
    root.join(format!("offsets-{partition:02}"))
}

impl StateRecord for OffsetRecord {
    fn encode(&self) -> Result<(Bytes, Option<Bytes>), CodecError> {
        Ok(OffsetRecord::encode(self)?)
    }

    fn decode(key: Option<Bytes>, value: Option<Bytes>) -> Result<Option<Self>, CodecError> {
        Ok(Some(OffsetRecord::decode(key, value)?))
    }

    fn snapshot_complete(generation: u64) -> Self {
        OffsetRecord::SnapshotComplete { generation }
    }

    fn completed_generation(&self) -> Option<u64> {
        match self {
            OffsetRecord::SnapshotComplete { generation } => Some(*generation),
            _ => None,
        }
    }
}

/// Applies one record to `offsets`.
fn apply(offsets: &mut Offsets, record: OffsetRecord) {
    match record {
        OffsetRecord::Commit {
            group,
            topic,
            partition,
            offset,
        } => {
            offsets
                .entry(group)
                .or_default()
                .insert((topic, partition), offset);
        }
        OffsetRecord::Delete {
            group,
            topic,
            partition,
        } => {
            if let Some(group_offsets) = offsets.get_mut(&group) {
                group_offsets.remove(&(topic, partition));
                if group_offsets.is_empty() {
                    offsets.remove(&group);
                }
            }
        }
        OffsetRecord::GroupDeleted { group } => {
            offsets.remove(&group);
        }
        OffsetRecord::SnapshotComplete { .. } => {}
    }
}

impl OffsetStore {
    pub fn new(data_dir: &Path, shard_id: usize, shard_count: usize, compact_bytes: u64) -> Self {
        OffsetStore {
            root: data_dir.join(GROUPS_DIR),
            shard_id,
            shard_count: shard_count.max(1),
            compact_bytes,
            logs: RefCell::new(BTreeMap::new()),
            offsets: RefCell::new(HashMap::new()),
        }
    }

    fn owned_partitions(&self) -> impl Iterator<Item = u32> + '_ {
        (0..OFFSETS_PARTITION_COUNT).filter(|p| *p as usize % self.shard_count == self.shard_id)
    }

    /// Opens (or creates) and replays the offsets log of every partition this shard owns.
    pub async fn load(&self) -> Result<(), GroupError> {
        // Each shard opens only its own partition dirs: creating one probes with a file in
        // it, which two shards must not share.
        let partitions: Vec<u32> = self.owned_partitions().collect();
        for partition in partitions {
            let (log, offsets) = StateLog::open(
                partition_dir(&self.root, partition),
                LOG_CONFIG,
                crate::io::clock::now_ms(),
                apply,
            )
            .await
            .map_err(storage)?;
            self.offsets.borrow_mut().extend(offsets);
            self.logs.borrow_mut().insert(partition, Rc::new(log));
        }
        let groups = self.offsets.borrow().len();
        tracing::info!(shard_id = self.shard_id, groups, "group offsets loaded");
        Ok(())
    }

    /// Appends `records` for groups of `partition` and applies them to the in-memory view.
    /// The returned future resolves once they are durable.
    pub fn append(&self, group: &str, records: Vec<OffsetRecord>) -> Result<Durable, GroupError> {
        let partition = offsets_partition(group);
        let Some(log) = self.logs.borrow().get(&partition).cloned() else {
            return Err(GroupError::NotCoordinator(group.to_owned()));
        };
        let appended = log
            .append(&records, crate::io::clock::now_ms())
            .map_err(storage)?;
        {
            let mut offsets = self.offsets.borrow_mut();
            for record in records {
                apply(&mut offsets, record);
            }
        }
        Ok(Box::pin(async move {
            appended.wait_durable().await.map_err(storage)
        }))
    }

    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        self.offsets
            .borrow()
            .get(group)?
            .get(&(topic.to_owned(), partition))
            .cloned()
    }

    /// Every committed offset of `group`.
    pub fn group_offsets(&self, group: &str) -> GroupOffsets {
        self.offsets
            .borrow()
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// Groups with at least one committed offset.
    pub fn groups(&self) -> Vec<String> {
        self.offsets.borrow().keys().cloned().collect()
    }

    pub fn has_offsets(&self, group: &str) -> bool {
        self.offsets.borrow().contains_key(group)
    }

    /// Newest commit timestamp of `group`'s offsets.
    pub fn last_commit_ms(&self, group: &str) -> Option<i64> {
        self.offsets
            .borrow()
            .get(group)?
            .values()
            .map(|o| o.commit_timestamp_ms)
            .max()
    }

    /// Rewrites every offsets log that grew by more than the compaction threshold since its
    /// last snapshot. Called from the group timers task, one compaction at a time.
    pub async fn compact_if_large(&self) -> Result<(), GroupError> {
        let due: Vec<u32> = self
            .logs
            .borrow()
            .iter()
            .filter(|(_, log)| log.needs_compaction(self.compact_bytes))
            .map(|(p, _)| *p)
            .collect();
        for partition in due {
            self.compact(partition).await?;
        }
        Ok(())
    }

    /// Writes a snapshot of `partition` as a new generation and removes the old one.
    pub async fn compact(&self, partition: u32) -> Result<(), GroupError> {
        let Some(log) = self.logs.borrow().get(&partition).cloned() else {
            return Ok(());
        };
        let generation = log
            .compact(crate::io::clock::now_ms(), || {
                self.snapshot_records(partition)
            })
            .await
            .map_err(storage)?;
        tracing::info!(
            shard_id = self.shard_id,
            partition,
            generation,
            "offsets log compacted"
        );
        Ok(())
    }

    /// A `Commit` for every live offset of the groups of `partition`.
    fn snapshot_records(&self, partition: u32) -> Vec<OffsetRecord> {
        let mut records = Vec::new();
        for (group, offsets) in self.offsets.borrow().iter() {
            if offsets_partition(group) != partition {
                continue;
            }
            for ((topic, index), offset) in offsets {
                records.push(OffsetRecord::Commit {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: *index,
                    offset: offset.clone(),
                });
            }
        }
        records
    }

    /// Flushes and closes every offsets log.
    pub async fn close(&self) {
        let logs: Vec<(u32, Rc<StateLog<OffsetRecord>>)> =
            std::mem::take(&mut *self.logs.borrow_mut())
                .into_iter()
                .collect();
        for (partition, log) in logs {
            if let Err(e) = log.close().await {
                tracing::error!(partition, error = %e, "closing an offsets log failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::dma_file;

    fn commit(group: &str, partition: i32, offset: i64) -> OffsetRecord {
        OffsetRecord::Commit {
            group: group.to_owned(),
            topic: "t".to_owned(),
            partition,
            offset: CommittedOffset {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 1,
            },
        }
    }

    /// A group whose offsets partition is owned by shard 0 of 1: every group.
    const GROUP: &str = "g";

    #[test]
    fn offsets_survive_reopen_and_compaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_owned();
        crate::io::block_on_local(async move {
            let store = OffsetStore::new(&data_dir, 0, 1, 1);
            store.load().await.expect("load");
            for round in 0..50 {
                let durable = store
                    .append(
                        GROUP,
                        vec![commit(GROUP, 0, round), commit(GROUP, 1, round * 2)],
                    )
                    .expect("append");
                durable.await.expect("durable");
            }
            store
                .append("other", vec![commit("other", 0, 7)])
                .expect("append")
                .await
                .expect("durable");
            let partition = offsets_partition(GROUP);
            store.compact(partition).await.expect("compact");
            store
                .append(GROUP, vec![commit(GROUP, 2, 5)])
                .expect("append after compaction")
                .await
                .expect("durable");
            // No close: reopening must work from what is durable, as after kill -9.
            drop(store);
            let reopened = OffsetStore::new(&data_dir, 0, 1, 1);
            reopened.load().await.expect("reload");
            assert_eq!(
                reopened.committed(GROUP, "t", 0).map(|o| o.offset),
                Some(49)
            );
            assert_eq!(
                reopened.committed(GROUP, "t", 1).map(|o| o.offset),
                Some(98)
            );
            assert_eq!(reopened.committed(GROUP, "t", 2).map(|o| o.offset), Some(5));
            assert_eq!(
                reopened.committed("other", "t", 0).map(|o| o.offset),
                Some(7)
            );
            let generations =
                dma_file::list_dir(&partition_dir(&data_dir.join(GROUPS_DIR), partition))
                    .expect("list");
            assert_eq!(
                generations,
                vec![format!("gen-{:012}", 1)],
                "the old generation is removed"
            );
            reopened.close().await;
        });
    }

    #[test]
    fn an_incomplete_snapshot_is_discarded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_owned();
        crate::io::block_on_local(async move {
            let store = OffsetStore::new(&data_dir, 0, 1, 1);
            store.load().await.expect("load");
            store
                .append(GROUP, vec![commit(GROUP, 0, 3)])
                .expect("append")
                .await
                .expect("durable");
            store.close().await;
            // A compaction that crashed before writing its marker left generation 1 behind.
            let partition = offsets_partition(GROUP);
            let root = data_dir.join(GROUPS_DIR);
            crate::log::state_log::testing::write_generation(
                &partition_dir(&root, partition),
                LOG_CONFIG,
                1,
                &[commit(GROUP, 0, 999)],
            )
            .await;

            let reopened = OffsetStore::new(&data_dir, 0, 1, 1);
            reopened.load().await.expect("reload");
            assert_eq!(reopened.committed(GROUP, "t", 0).map(|o| o.offset), Some(3));
            assert!(!dma_file::exists(
                &partition_dir(&root, partition).join(format!("gen-{:012}", 1))
            ));
            reopened.close().await;
        });
    }
}
