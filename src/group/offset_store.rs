//! Durable committed offsets: one offsets log per offsets partition owned by this shard.
//!
//! Layout: `<data dir>/.groups/offsets-<p>/` is a [`StateLog`] of [`OffsetRecord`]s (see
//! [`crate::log::state_log`] for generations, recovery and compaction). A snapshot holds a
//! `Commit` for every live offset of the groups of partition `p`; later records are commits
//! and deletions.
//! (Topic directories are always `<topic>-<n>`, so `.groups` never collides with one.)
//!
//! In a cluster of several nodes the offsets partitions are instead the partitions of the
//! replicated internal topic (see [`super::offsets_replicas`]): nothing is kept under
//! `.groups`, and this store holds the offsets of the partitions this shard leads.
//!
//! Concurrency contract: owned by one shard; `append` is synchronous (so records reach the
//! log in the order they were accepted) and the in-memory view is updated at append time;
//! callers acknowledge a commit only after [`Durable`] resolves.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;

use super::offset_record::{CommittedOffset, OffsetRecord};
use super::{offsets_partition, offsets_replicas, Durable, GroupError, OFFSETS_PARTITION_COUNT};
use crate::log::state_log::{
    self, CodecError, StateLog, StateLogConfig, StateLogError, StateRecord,
};
use crate::replica::state_partitions::{LeadershipChanges, Serving, StatePartitions};

const GROUPS_DIR: &str = ".groups";

const LOG_CONFIG: StateLogConfig = StateLogConfig {
    segment_bytes: 16 << 20,
    batch_record_count_max: 2_000,
};

/// Record bytes per batch proposed to a replicated offsets partition: well under its
/// `max.message.bytes`.
const REPLICATED_BATCH_BYTES_MAX: usize = 256 << 10;

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
    /// In a cluster: the offsets partitions are replicated partitions, not `.groups` logs.
    replicated: Option<StatePartitions>,
}

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
            replicated: None,
        }
    }

    /// Keeps offsets in the replicated offsets partitions attached later, not in `.groups`.
    pub fn replicate(&mut self) {
        self.replicated = Some(StatePartitions::default());
    }

    pub fn replicas(&self) -> Option<&StatePartitions> {
        self.replicated.as_ref()
    }

    /// Whether this store answers for `group`: always on a single node's own logs; in a
    /// cluster only while leading its offsets partition with the offsets loaded.
    pub fn serving(&self, group: &str) -> Serving {
        match &self.replicated {
            None => Serving::Yes,
            Some(replicas) => replicas.serving(offsets_partition(group)),
        }
    }

    fn owned_partitions(&self) -> impl Iterator<Item = u32> + '_ {
        (0..OFFSETS_PARTITION_COUNT).filter(|p| *p as usize % self.shard_count == self.shard_id)
    }

    /// Opens (or creates) and replays the offsets log of every partition this shard owns.
    pub async fn load(&self) -> Result<(), GroupError> {
        if self.replicated.is_some() {
            // Loaded partition by partition as this shard comes to lead them.
            return Ok(());
        }
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
        if let Some(replicas) = &self.replicated {
            let records = self.keyed_by_offset(records);
            let now = crate::io::clock::now_ms();
            let batches = state_log::encode_record_batches(
                &records,
                LOG_CONFIG.batch_record_count_max,
                REPLICATED_BATCH_BYTES_MAX,
                now,
            )
            .map_err(|e| GroupError::Storage(e.to_string()))?;
            let proposed = replicas
                .propose(partition, batches, now)
                .map_err(|e| offsets_replicas::not_proposed(e, group))?;
            let group = group.to_owned();
            let durable: Durable = Box::pin(async move {
                proposed
                    .await
                    .map_err(|e| offsets_replicas::not_proposed(e, &group))
            });
            let mut offsets = self.offsets.borrow_mut();
            for record in records {
                apply(&mut offsets, record);
            }
            return Ok(durable);
        }
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

    /// A replicated offsets partition is compacted by key (Kafka's log cleaner), which keeps
    /// the newest record of each key: a `GroupDeleted` would be cleaned away while older
    /// commits of its group stay, so it is written as a tombstone of each offset instead.
    fn keyed_by_offset(&self, records: Vec<OffsetRecord>) -> Vec<OffsetRecord> {
        let offsets = self.offsets.borrow();
        let mut keyed = Vec::with_capacity(records.len());
        for record in records {
            match record {
                OffsetRecord::GroupDeleted { group } => {
                    let partitions = offsets.get(&group).into_iter().flat_map(|o| o.keys());
                    keyed.extend(partitions.map(|(topic, partition)| OffsetRecord::Delete {
                        group: group.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                    }));
                }
                other => keyed.push(other),
            }
        }
        keyed
    }

    /// What changed in the leadership of the attached offsets partitions (in a cluster).
    pub fn leadership_changes(&self) -> LeadershipChanges {
        self.replicated
            .as_ref()
            .map(StatePartitions::leadership_changes)
            .unwrap_or_default()
    }

    /// Forgets the offsets of the groups of `partition` (another node leads it now).
    pub fn drop_partition(&self, partition: u32) {
        self.offsets
            .borrow_mut()
            .retain(|group, _| offsets_partition(group) != partition);
    }

    /// Loads the offsets of replicated `partition`, led in `term`, from its partition log;
    /// returns how many groups it holds. The partition serves only once this returns, and
    /// only if it is still led in `term`.
    pub async fn load_partition(&self, partition: u32, term: u64) -> Result<usize, GroupError> {
        let Some(replicas) = &self.replicated else {
            return Ok(0);
        };
        let Some(log) = replicas.log(partition) else {
            return Ok(0);
        };
        let path = PathBuf::from(format!("{}-{partition}", super::OFFSETS_TOPIC));
        let mut loaded = Offsets::new();
        state_log::read_records(&log, &path, |record| apply(&mut loaded, record))
            .await
            .map_err(storage)?;
        let groups = loaded.len();
        self.drop_partition(partition);
        self.offsets.borrow_mut().extend(loaded);
        if !replicas.mark_loaded(partition, term) {
            // Lost meanwhile: the next look drops nothing, so drop it here.
            self.drop_partition(partition);
        }
        Ok(groups)
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
        // Replicated partitions are closed with the shard's other replicas.
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
