//! Durable committed offsets: one offsets log per offsets partition owned by this shard.
//!
//! Layout: `<data dir>/.groups/offsets-<p>/gen-<g>/` is a [`PartitionLog`] of
//! [`OffsetRecord`]s. Generation `g` starts with a snapshot of every live offset of partition
//! `p` followed by a `SnapshotComplete { g }` marker; later records are commits and deletions
//! applied in log order. (Topic directories are always `<topic>-<n>`, so `.groups` never
//! collides with one.)
//!
//! Recovery opens the newest generation whose snapshot marker is present, deletes every other
//! generation, and replays it. Compaction opens generation `g + 1`, writes the snapshot and
//! marker and switches appends to it in one synchronous step, and deletes generation `g`
//! only once the marker is durable: a crash at any point leaves one complete generation
//! holding every acknowledged commit.
//!
//! Concurrency contract: owned by one shard; `append` is synchronous (so records reach the
//! log in the order they were accepted) and the in-memory view is updated at append time;
//! callers acknowledge a commit only after [`Durable`] resolves.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::offset_record::{CommittedOffset, OffsetRecord};
use super::{offsets_partition, GroupError, OFFSETS_PARTITION_COUNT};
use crate::io::dma_file;
use crate::log::{LogConfig, PartitionLog};

const GROUPS_DIR: &str = ".groups";
/// Records per batch when writing a snapshot (keeps each batch well under the batch limit).
const SNAPSHOT_BATCH_RECORDS: usize = 2_000;
/// Bytes read per call while replaying.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// `(topic, partition)` → committed offset.
pub type GroupOffsets = BTreeMap<(String, i32), CommittedOffset>;

struct OffsetsLog {
    log: PartitionLog,
    generation: u64,
    /// Log size right after the last snapshot; compaction triggers on growth beyond it.
    snapshot_bytes: u64,
}

pub struct OffsetStore {
    root: PathBuf,
    shard_id: usize,
    shard_count: usize,
    compact_bytes: u64,
    logs: RefCell<BTreeMap<u32, OffsetsLog>>,
    offsets: RefCell<HashMap<String, GroupOffsets>>,
}

/// Resolves once an append is durable.
pub type Durable = std::pin::Pin<Box<dyn Future<Output = Result<(), GroupError>>>>;

fn log_config() -> LogConfig {
    LogConfig::internal_state(16 << 20)
}

fn storage(context: &str, error: impl std::fmt::Display) -> GroupError {
    GroupError::Storage(format!("{context}: {error}"))
}

fn partition_dir(root: &Path, partition: u32) -> PathBuf {
    root.join(format!("offsets-{partition:02}"))
}

fn generation_dir(root: &Path, partition: u32, generation: u64) -> PathBuf {
    partition_dir(root, partition).join(format!("gen-{generation:012}"))
}

/// Encodes `records` as record batches of at most `SNAPSHOT_BATCH_RECORDS` each.
fn encode_batches(records: &[OffsetRecord], now_ms: i64) -> Result<Vec<Bytes>, GroupError> {
    let mut batches = Vec::new();
    for chunk in records.chunks(SNAPSHOT_BATCH_RECORDS) {
        let kafka_records: Vec<Record> = chunk
            .iter()
            .enumerate()
            .map(|(i, record)| {
                let (key, value) = record.encode();
                let offset = i as i64;
                Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: -1,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: TimestampType::Creation,
                    offset,
                    // Constant `offset - sequence` keeps the encoder to one batch.
                    sequence: (offset as i32).wrapping_sub(1),
                    timestamp: now_ms,
                    key: Some(key),
                    value,
                    headers: Default::default(),
                }
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            kafka_records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(|e| storage("encoding offsets records", e))?;
        batches.push(buf.freeze());
    }
    Ok(batches)
}

/// Applies one record to `offsets`.
fn apply(offsets: &mut HashMap<String, GroupOffsets>, record: OffsetRecord) {
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

/// What replaying one generation found.
struct Replayed {
    offsets: HashMap<String, GroupOffsets>,
    complete: bool,
}

async fn replay(log: &PartitionLog, generation: u64) -> Result<Replayed, GroupError> {
    let mut offsets = HashMap::new();
    let mut complete = false;
    let mut position = log.log_start_offset();
    let end = log.high_watermark();
    while position < end {
        let read = log
            .read(position, REPLAY_READ_BYTES)
            .await
            .map_err(|e| storage("reading an offsets log", e))?;
        if read.chunks.is_empty() {
            break;
        }
        for chunk in read.chunks {
            let mut data = chunk;
            let sets = RecordBatchDecoder::decode_all(&mut data)
                .map_err(|e| storage("decoding an offsets log", e))?;
            for set in sets {
                for record in set.records {
                    position = position.max(record.offset + 1);
                    if record.offset < log.log_start_offset() {
                        continue;
                    }
                    let decoded = OffsetRecord::decode(record.key, record.value)
                        .map_err(|e| storage("decoding an offsets record", e))?;
                    if decoded == (OffsetRecord::SnapshotComplete { generation }) {
                        complete = true;
                    }
                    apply(&mut offsets, decoded);
                }
            }
        }
    }
    Ok(Replayed { offsets, complete })
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
        // Each shard prepares only its own partition dirs: `prepare_dir` probes with a file
        // in the directory it is given, which two shards must not share.
        let partitions: Vec<u32> = self.owned_partitions().collect();
        for partition in partitions {
            self.load_partition(partition).await?;
        }
        let groups = self.offsets.borrow().len();
        tracing::info!(shard_id = self.shard_id, groups, "group offsets loaded");
        Ok(())
    }

    async fn load_partition(&self, partition: u32) -> Result<(), GroupError> {
        let dir = partition_dir(&self.root, partition);
        let mut generations: Vec<u64> = match dma_file::list_dir(&dir) {
            Ok(names) => names
                .iter()
                .filter_map(|n| n.strip_prefix("gen-")?.parse().ok())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(storage("listing offsets generations", e)),
        };
        generations.sort_unstable_by(|a, b| b.cmp(a));
        let mut chosen = None;
        for generation in &generations {
            let path = generation_dir(&self.root, partition, *generation);
            if chosen.is_some() {
                // Older than the generation in use: superseded by its snapshot.
                dma_file::remove_dir_all(&path).map_err(|e| storage("removing", e))?;
                continue;
            }
            let log = PartitionLog::open(path.clone(), log_config())
                .await
                .map_err(|e| storage("opening an offsets log", e))?;
            let replayed = replay(&log, *generation).await?;
            if replayed.complete {
                chosen = Some((*generation, log, replayed.offsets));
            } else {
                // A compaction that crashed before its snapshot was durable.
                tracing::warn!(?path, "discarding an incomplete offsets snapshot");
                log.delete()
                    .await
                    .map_err(|e| storage("deleting an incomplete snapshot", e))?;
            }
        }
        let (generation, log, offsets) = match chosen {
            Some(chosen) => chosen,
            None => {
                let log = self.create_generation(partition, 0, &[]).await?;
                (0, log, HashMap::new())
            }
        };
        let snapshot_bytes = log.size_bytes();
        self.offsets.borrow_mut().extend(offsets);
        self.logs.borrow_mut().insert(
            partition,
            OffsetsLog {
                log,
                generation,
                snapshot_bytes,
            },
        );
        if !generations.is_empty() {
            dma_file::sync_dir(&dir)
                .await
                .map_err(|e| storage("syncing offsets dir", e))?;
        }
        Ok(())
    }

    /// Opens generation `generation` and writes `snapshot` and its marker; returns the log
    /// once the marker is durable.
    async fn create_generation(
        &self,
        partition: u32,
        generation: u64,
        snapshot: &[OffsetRecord],
    ) -> Result<PartitionLog, GroupError> {
        let path = generation_dir(&self.root, partition, generation);
        dma_file::prepare_dir(&partition_dir(&self.root, partition))
            .await
            .map_err(|e| storage("preparing an offsets dir", e))?;
        let log = PartitionLog::open(path, log_config())
            .await
            .map_err(|e| storage("creating an offsets log", e))?;
        let mut records = snapshot.to_vec();
        records.push(OffsetRecord::SnapshotComplete { generation });
        let last = append_records(&log, &records, crate::server::connection::now_ms())?;
        log.wait_durable(last)
            .await
            .map_err(|e| storage("writing an offsets snapshot", e))?;
        Ok(log)
    }

    /// Appends `records` for groups of `partition` and applies them to the in-memory view.
    /// The returned future resolves once they are durable.
    pub fn append(&self, group: &str, records: Vec<OffsetRecord>) -> Result<Durable, GroupError> {
        let partition = offsets_partition(group);
        let log = match self.logs.borrow().get(&partition) {
            Some(entry) => entry.log.clone(),
            None => return Err(GroupError::NotCoordinator(group.to_owned())),
        };
        let last = append_records(&log, &records, crate::server::connection::now_ms())?;
        {
            let mut offsets = self.offsets.borrow_mut();
            for record in records {
                apply(&mut offsets, record);
            }
        }
        Ok(Box::pin(async move {
            log.wait_durable(last)
                .await
                .map_err(|e| storage("making offsets durable", e))
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
            .filter(|(_, l)| l.log.size_bytes() > l.snapshot_bytes + self.compact_bytes)
            .map(|(p, _)| *p)
            .collect();
        for partition in due {
            self.compact(partition).await?;
        }
        Ok(())
    }

    /// Writes a snapshot of `partition` as a new generation and removes the old one.
    pub async fn compact(&self, partition: u32) -> Result<(), GroupError> {
        let Some(generation) = self.logs.borrow().get(&partition).map(|l| l.generation) else {
            return Ok(());
        };
        let next = generation + 1;
        let path = generation_dir(&self.root, partition, next);
        let new_log = PartitionLog::open(path, log_config())
            .await
            .map_err(|e| storage("creating an offsets log", e))?;
        // From here to the swap nothing awaits, so no commit slips between snapshot and swap.
        let snapshot = self.snapshot_records(partition, next);
        let last = match append_records(&new_log, &snapshot, crate::server::connection::now_ms()) {
            Ok(last) => last,
            Err(e) => {
                if let Err(close) = new_log.delete().await {
                    tracing::warn!(error = %close, "removing a failed snapshot");
                }
                return Err(e);
            }
        };
        let old = {
            let mut logs = self.logs.borrow_mut();
            let entry = logs
                .get_mut(&partition)
                .expect("partition present: checked above without an await since");
            let old = std::mem::replace(&mut entry.log, new_log.clone());
            entry.generation = next;
            entry.snapshot_bytes = new_log.size_bytes();
            old
        };
        new_log
            .wait_durable(last)
            .await
            .map_err(|e| storage("writing an offsets snapshot", e))?;
        // Commits still in flight on the old log finish as it closes; then it is redundant.
        old.delete()
            .await
            .map_err(|e| storage("removing a compacted offsets log", e))?;
        dma_file::sync_dir(&partition_dir(&self.root, partition))
            .await
            .map_err(|e| storage("syncing offsets dir", e))?;
        tracing::info!(
            shard_id = self.shard_id,
            partition,
            generation = next,
            "offsets log compacted"
        );
        Ok(())
    }

    fn snapshot_records(&self, partition: u32, generation: u64) -> Vec<OffsetRecord> {
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
        records.push(OffsetRecord::SnapshotComplete { generation });
        records
    }

    /// Flushes and closes every offsets log.
    pub async fn close(&self) {
        let logs: Vec<(u32, OffsetsLog)> = std::mem::take(&mut *self.logs.borrow_mut())
            .into_iter()
            .collect();
        for (partition, entry) in logs {
            if let Err(e) = entry.log.close().await {
                tracing::error!(partition, error = %e, "closing an offsets log failed");
            }
        }
    }
}

/// Appends `records` to `log`; returns the offset of the last one.
fn append_records(
    log: &PartitionLog,
    records: &[OffsetRecord],
    now_ms: i64,
) -> Result<i64, GroupError> {
    let mut last = -1;
    for batch in encode_batches(records, now_ms)? {
        let info = log
            .append(batch, now_ms)
            .map_err(|e| storage("appending to an offsets log", e))?;
        last = info.last_offset;
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let torn = PartitionLog::open(generation_dir(&root, partition, 1), log_config())
                .await
                .expect("open torn generation");
            let last = append_records(&torn, &[commit(GROUP, 0, 999)], 0).expect("append");
            torn.wait_durable(last).await.expect("durable");
            torn.close().await.expect("close");

            let reopened = OffsetStore::new(&data_dir, 0, 1, 1);
            reopened.load().await.expect("reload");
            assert_eq!(reopened.committed(GROUP, "t", 0).map(|o| o.offset), Some(3));
            assert!(!dma_file::exists(&generation_dir(&root, partition, 1)));
            reopened.close().await;
        });
    }
}
