//! `RaftStore`: a partition replica's durable Raft state (entries, HardState, ConfState,
//! the applied checkpoint) in a [`StateLog`] beside the partition, mirrored in raft-rs's
//! [`MemStorage`], which is what the Raft state machine reads.
//!
//! Every `Ready` is one `append` of records to the state log, so its group commit (one
//! fdatasync for everything queued) is what tells Raft the Ready is persisted. Overwritten
//! entries are not erased: a later `Entry` record at a lower or equal index supersedes them
//! on replay. Compaction rewrites the log as its live state (entries not yet applied durably,
//! the states, the checkpoint) and drops what raft-rs no longer needs.
//!
//! A snapshot (what a follower gets when it needs entries compacted away) is "the partition
//! log up to offset O at Raft index I": the applied checkpoint, whose data is already durable
//! in the leader's partition log. [`ReplicaStorage`] hands raft-rs exactly that; the data
//! travels separately (`Replica::install_snapshot` copies the batches), so a snapshot message
//! stays a few bytes whatever the partition's size.

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;

use bytes::Bytes;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage};

use crate::constants::{RAFT_LOG_BATCH_RECORDS_MAX, RAFT_LOG_SEGMENT_BYTES};
use crate::log::state_log::{Appended, SnapshotError, StateLog, StateLogConfig, StateLogError};

use super::raft_record::RaftRecord;

const CONFIG: StateLogConfig = StateLogConfig {
    segment_bytes: RAFT_LOG_SEGMENT_BYTES,
    batch_record_count_max: RAFT_LOG_BATCH_RECORDS_MAX,
};

/// What a replay of the log found.
#[derive(Default)]
struct Replayed {
    hard_state: HardState,
    conf_state: Option<ConfState>,
    compacted: Option<(u64, u64)>,
    entries: Vec<Entry>,
    applied: AppliedCheckpoint,
    /// A snapshot install that had not finished (its copy stopped with the process).
    installing: Option<AppliedCheckpoint>,
    /// The first inconsistency met, reported after replay.
    gap: Option<String>,
}

/// Entries up to `index` are applied and durable in the partition log, which then ended at
/// `log_end_offset`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AppliedCheckpoint {
    pub index: u64,
    pub log_end_offset: i64,
}

impl Replayed {
    fn apply(&mut self, record: RaftRecord) {
        match record {
            RaftRecord::Marker { .. } => {}
            RaftRecord::Entry(entry) => self.push_entry(entry),
            RaftRecord::HardState(hs) => self.hard_state = hs,
            RaftRecord::ConfState(cs) => self.conf_state = Some(cs),
            RaftRecord::Applied {
                index,
                log_end_offset,
            } => {
                self.applied = AppliedCheckpoint {
                    index,
                    log_end_offset,
                };
                if self.installing.is_some_and(|i| i.index <= index) {
                    self.installing = None;
                }
            }
            RaftRecord::Installing {
                index,
                log_end_offset,
            } => {
                self.installing = Some(AppliedCheckpoint {
                    index,
                    log_end_offset,
                })
            }
            RaftRecord::Compacted { index, term } => {
                self.compacted = Some((index, term));
                self.entries.retain(|e| e.index > index);
            }
        }
    }

    /// Appends `entry`, first dropping any entry at its index or after (a new leader's entry
    /// replacing an uncommitted one).
    fn push_entry(&mut self, entry: Entry) {
        if let Some(first) = self.entries.first().map(|e| e.index) {
            if entry.index < first {
                self.entries.clear();
            } else {
                let keep = usize::try_from(entry.index - first).unwrap_or(usize::MAX);
                self.entries.truncate(keep);
            }
        }
        let expected = match self.entries.last() {
            Some(last) => last.index + 1,
            None => self.compacted.map_or(1, |(index, _)| index + 1),
        };
        if entry.index != expected && self.gap.is_none() {
            self.gap = Some(format!(
                "entry {} follows entry {}",
                entry.index,
                expected - 1
            ));
        }
        self.entries.push(entry);
    }
}

pub struct RaftStore {
    log: StateLog<RaftRecord>,
    mem: MemStorage,
    applied: Rc<Cell<AppliedCheckpoint>>,
    /// The snapshot install the log says is unfinished, if any.
    installing: Cell<Option<AppliedCheckpoint>>,
}

/// What a snapshot's data says: the partition log's end at the snapshot's index. Versioned,
/// so a later format can be told apart.
const SNAPSHOT_DATA_VERSION: u8 = 1;

pub fn encode_snapshot_data(log_end_offset: i64) -> Bytes {
    let mut data = Vec::with_capacity(9);
    data.push(SNAPSHOT_DATA_VERSION);
    data.extend_from_slice(&log_end_offset.to_be_bytes());
    Bytes::from(data)
}

/// The partition log end a snapshot's data names, if it is one this version writes.
pub fn decode_snapshot_data(data: &[u8]) -> Option<i64> {
    match data.split_first() {
        Some((&SNAPSHOT_DATA_VERSION, end)) => Some(i64::from_be_bytes(end.try_into().ok()?)),
        _ => None,
    }
}

/// What raft-rs reads: the in-memory mirror of the Raft log, except that a snapshot is the
/// durable applied checkpoint (raft-rs's own `MemStorage` would name its commit index, which
/// the partition log may not have reached).
#[derive(Clone)]
pub struct ReplicaStorage {
    mem: MemStorage,
    applied: Rc<Cell<AppliedCheckpoint>>,
}

impl Storage for ReplicaStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.mem.initial_state()
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let applied = self.applied.get();
        // A follower's snapshot request (`Replica::step`) can name the commit index, which
        // the durable checkpoint may not have reached yet; raft-rs asks again later.
        if applied.index < request_index {
            return Err(raft::Error::Store(
                raft::StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let mut snapshot = Snapshot::default();
        let meta = snapshot.mut_metadata();
        meta.index = applied.index;
        meta.term = self.mem.term(applied.index)?;
        meta.set_conf_state(self.mem.initial_state()?.conf_state);
        snapshot.data = encode_snapshot_data(applied.log_end_offset);
        Ok(snapshot)
    }
}

/// A failure of the Raft log: its state log's, raft-rs's storage's, or an inconsistency of
/// what it holds.
#[derive(Debug)]
pub enum StoreError {
    Log(StateLogError),
    Raft(raft::Error),
    Inconsistent(String),
}

impl RaftStore {
    /// Opens (or creates, with `voters` as the configuration) the Raft log in `dir`.
    pub async fn open(dir: PathBuf, voters: &[u64], now_ms: i64) -> Result<RaftStore, StoreError> {
        let (log, replayed) = StateLog::open(dir, CONFIG, now_ms, Replayed::apply)
            .await
            .map_err(StoreError::Log)?;
        let replayed: Replayed = replayed;
        if let Some(gap) = replayed.gap {
            return Err(StoreError::Inconsistent(gap));
        }
        let fresh = replayed.conf_state.is_none();
        let conf_state = replayed.conf_state.unwrap_or_else(|| ConfState {
            voters: voters.to_vec(),
            ..ConfState::default()
        });
        let mem = MemStorage::new();
        {
            let mut core = mem.wl();
            if let Some((index, term)) = replayed.compacted {
                let mut snapshot = Snapshot::default();
                snapshot.mut_metadata().index = index;
                snapshot.mut_metadata().term = term;
                snapshot.mut_metadata().set_conf_state(conf_state.clone());
                core.apply_snapshot(snapshot).map_err(StoreError::Raft)?;
            }
            core.append(&replayed.entries).map_err(StoreError::Raft)?;
            core.set_conf_state(conf_state.clone());
        }
        let last_index = mem.last_index().map_err(StoreError::Raft)?;
        if replayed.hard_state.commit > last_index {
            return Err(StoreError::Inconsistent(format!(
                "commit index {} is past the last entry {last_index}",
                replayed.hard_state.commit
            )));
        }
        if replayed.applied.index > replayed.hard_state.commit {
            return Err(StoreError::Inconsistent(format!(
                "applied index {} is past the commit index {}",
                replayed.applied.index, replayed.hard_state.commit
            )));
        }
        if replayed.hard_state != HardState::default() {
            mem.wl().set_hardstate(replayed.hard_state);
        }
        let store = RaftStore {
            log,
            mem,
            applied: Rc::new(Cell::new(replayed.applied)),
            installing: Cell::new(replayed.installing),
        };
        if fresh {
            // The configuration must be durable before this replica votes or acknowledges.
            store
                .log
                .append(&[RaftRecord::ConfState(conf_state)], now_ms)
                .map_err(StoreError::Log)?
                .wait_durable()
                .await
                .map_err(StoreError::Log)?;
        }
        Ok(store)
    }

    /// Raises the commit index in memory to `index`, an entry this log holds that the
    /// partition log shows was applied (so it was committed): the HardState naming that
    /// commit may not have been durable when the process stopped (a Ready that only moves
    /// the commit index is not waited for). Written with the next HardState.
    pub fn raise_commit(&self, index: u64) {
        let mut mem = self.mem.wl();
        let hard_state = mem.mut_hard_state();
        hard_state.commit = hard_state.commit.max(index);
    }

    /// The view raft-rs reads. Cheap to clone: clones share it.
    pub fn storage(&self) -> ReplicaStorage {
        ReplicaStorage {
            mem: self.mem.clone(),
            applied: Rc::clone(&self.applied),
        }
    }

    /// The snapshot (index, partition log end) whose copy must finish before anything after
    /// it is applied: one the process stopped in the middle of.
    pub fn unfinished_install(&self) -> Option<AppliedCheckpoint> {
        self.installing.get()
    }

    pub fn applied(&self) -> AppliedCheckpoint {
        self.applied.get()
    }

    /// Makes `entries` and `hard_state` (one Ready's) readable at once and queues them for
    /// the disk; the returned handle says when they are durable. `None`: nothing to write.
    pub fn persist(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        conf_state: Option<&ConfState>,
        now_ms: i64,
    ) -> Result<Option<Appended>, StoreError> {
        let mut records = Vec::with_capacity(entries.len() + 2);
        if !entries.is_empty() {
            self.mem.wl().append(entries).map_err(StoreError::Raft)?;
            records.extend(entries.iter().cloned().map(RaftRecord::Entry));
        }
        if let Some(hs) = hard_state {
            self.mem.wl().set_hardstate(hs.clone());
            records.push(RaftRecord::HardState(hs.clone()));
        }
        if let Some(cs) = conf_state {
            self.mem.wl().set_conf_state(cs.clone());
            records.push(RaftRecord::ConfState(cs.clone()));
        }
        if records.is_empty() {
            return Ok(None);
        }
        self.log
            .append(&records, now_ms)
            .map(Some)
            .map_err(StoreError::Log)
    }

    /// Records that entries up to `checkpoint.index` are applied and durable in the partition
    /// log (durable itself with the next group commit; a crash before then only means
    /// re-checking a few more entries at open).
    pub fn record_applied(
        &self,
        checkpoint: AppliedCheckpoint,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.log
            .append(
                &[RaftRecord::Applied {
                    index: checkpoint.index,
                    log_end_offset: checkpoint.log_end_offset,
                }],
                now_ms,
            )
            .map_err(StoreError::Log)?;
        self.applied.set(checkpoint);
        Ok(())
    }

    /// Bytes of the Raft log on disk (its current generation).
    pub fn size_bytes(&self) -> u64 {
        self.log.size_bytes()
    }

    /// Whether the log grew by `bytes` since it was last compacted.
    pub fn needs_compaction(&self, bytes: u64) -> bool {
        self.log.needs_compaction(bytes)
    }

    /// Drops entries up to `index` (which must be applied durably, and on a leader also held
    /// by every follower: raft-rs would otherwise need a snapshot to catch one up), then
    /// rewrites the log as what is left.
    pub async fn compact(&self, index: u64, now_ms: i64) -> Result<(), StoreError> {
        let term = self.mem.term(index).map_err(StoreError::Raft)?;
        self.mem.wl().compact(index).map_err(StoreError::Raft)?;
        self.rewrite(index, term, None, now_ms).await
    }

    /// Rewrites the log as its live state from `index` (of `term`) on: the states,
    /// `Compacted { index, term }`, the entries after it, the applied checkpoint, and
    /// `installing` when given.
    async fn rewrite(
        &self,
        index: u64,
        term: u64,
        installing: Option<AppliedCheckpoint>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        // A read error here would otherwise rewrite the log without the entries it holds.
        let snapshot = || -> Result<Vec<RaftRecord>, SnapshotError> {
            let raft_state = self.mem.initial_state()?;
            // raft-rs's compaction keeps the entry at `index` (its term answers for the
            // entries after it); on disk `Compacted` answers for it, and replay drops
            // entries at or below it, so none may follow it.
            let first = self.mem.first_index()?.max(index + 1);
            let last = self.mem.last_index()?;
            let mut records = vec![
                RaftRecord::HardState(raft_state.hard_state),
                RaftRecord::ConfState(raft_state.conf_state),
                RaftRecord::Compacted { index, term },
            ];
            if first <= last {
                let entries =
                    self.mem
                        .entries(first, last + 1, None, GetEntriesContext::empty(false))?;
                records.extend(entries.into_iter().map(RaftRecord::Entry));
            }
            let applied = self.applied.get();
            records.push(RaftRecord::Applied {
                index: applied.index,
                log_end_offset: applied.log_end_offset,
            });
            if let Some(install) = installing {
                records.push(RaftRecord::Installing {
                    index: install.index,
                    log_end_offset: install.log_end_offset,
                });
            }
            Ok(records)
        };
        self.log
            .try_compact(now_ms, snapshot)
            .await
            .map(|_| ())
            .map_err(StoreError::Log)
    }

    /// Makes `snapshot` the start of the Raft log in memory (raft-rs reads it from here as
    /// soon as the Ready that carries it is handed back); [`Self::install_snapshot`] makes it
    /// durable once its data is.
    pub fn restore_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        self.mem
            .wl()
            .apply_snapshot(snapshot.clone())
            .map_err(StoreError::Raft)
    }

    /// Makes a snapshot Ready's `entries` and `hard_state` readable without writing them:
    /// [`Self::install_snapshot`] writes them with the snapshot.
    pub fn stage(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> Result<(), StoreError> {
        if !entries.is_empty() {
            self.mem.wl().append(entries).map_err(StoreError::Raft)?;
        }
        if let Some(hs) = hard_state {
            self.mem.wl().set_hardstate(hs.clone());
        }
        Ok(())
    }

    /// Rewrites the log as the restored snapshot (`Compacted` at its index, the entries
    /// after it) with `checkpoint`: called once the partition log holds the snapshot's data
    /// durably.
    pub async fn install_snapshot(
        &self,
        term: u64,
        checkpoint: AppliedCheckpoint,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.applied.set(checkpoint);
        self.rewrite(checkpoint.index, term, None, now_ms).await?;
        self.installing.set(None);
        Ok(())
    }

    /// Makes the restored snapshot durable before its data is copied, marked unfinished:
    /// a restart in the middle of the copy then resumes it (the partition log already
    /// holds part of it, which no entry of the old log accounts for).
    pub async fn begin_install(
        &self,
        term: u64,
        target: AppliedCheckpoint,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.installing.set(Some(target));
        self.rewrite(target.index, term, Some(target), now_ms).await
    }

    pub async fn close(&self) -> Result<(), StateLogError> {
        self.log.close().await
    }
}
