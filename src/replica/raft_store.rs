//! `RaftStore`: a partition replica's durable Raft state (entries, HardState, ConfState,
//! the applied checkpoint) in a [`StateLog`] beside the partition, mirrored in raft-rs's
//! [`MemStorage`], which is what the Raft state machine reads.
//!
//! Every `Ready` is one `append` of records to the state log, so its group commit (one
//! fdatasync for everything queued) is what tells Raft the Ready is persisted. Overwritten
//! entries are not erased: a later `Entry` record at a lower or equal index supersedes them
//! on replay. Compaction rewrites the log as its live state (entries not yet applied durably,
//! the states, the checkpoint) and drops what raft-rs no longer needs.

use std::cell::Cell;
use std::path::PathBuf;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::storage::MemStorage;
use raft::Storage as _;

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
                }
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
    applied: Cell<AppliedCheckpoint>,
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
            applied: Cell::new(replayed.applied),
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

    /// The view raft-rs reads. Cheap to clone: clones share it.
    pub fn mem(&self) -> MemStorage {
        self.mem.clone()
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
        // A read error here would otherwise rewrite the log without the entries it holds.
        let snapshot = || -> Result<Vec<RaftRecord>, SnapshotError> {
            let raft_state = self.mem.initial_state()?;
            let first = self.mem.first_index()?;
            let last = self.mem.last_index()?;
            let mut records = vec![
                RaftRecord::HardState(raft_state.hard_state),
                RaftRecord::ConfState(raft_state.conf_state),
                RaftRecord::Compacted { index, term },
            ];
            if first <= last {
                let entries = self.mem.entries(
                    first,
                    last + 1,
                    None,
                    raft::GetEntriesContext::empty(false),
                )?;
                records.extend(entries.into_iter().map(RaftRecord::Entry));
            }
            let applied = self.applied.get();
            records.push(RaftRecord::Applied {
                index: applied.index,
                log_end_offset: applied.log_end_offset,
            });
            Ok(records)
        };
        self.log
            .try_compact(now_ms, snapshot)
            .await
            .map(|_| ())
            .map_err(StoreError::Log)
    }

    pub async fn close(&self) -> Result<(), StateLogError> {
        self.log.close().await
    }
}
