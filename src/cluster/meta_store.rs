//! The metadata Raft group's storage: its log, vote and snapshot in `<data_dir>/raft/`, and the
//! state machine the committed records are applied to.
//!
//! Files (all written by the control-plane thread only):
//! - `vote.json`: the last vote; written to a temp file, fsync'd and renamed before openraft
//!   is told it is saved, because a forgotten vote can elect two leaders in one term.
//! - `log.jsonl`: one entry per line, `crc32c-hex<TAB>json`. Appends are fsync'd before they
//!   are acknowledged. On load a line that fails its CRC (a torn tail) ends the log: it was
//!   never acknowledged. Truncation and purge rewrite the file; the metadata log is small.
//! - `snapshot.json`: the state machine's snapshot with its Raft meta; the log before it is
//!   purged.
//!
//! The state is behind a `std::sync::Mutex` because openraft wants separate log reader and
//! snapshot builder objects; all of them run on the one control-plane thread, so the lock is
//! never contended and never seen by a shard.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::io::{Cursor, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogState, RaftLogReader, RaftSnapshotBuilder, RaftStorage, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership, Vote,
};
use serde::{Deserialize, Serialize};

use super::peer_list::NodeId;

/// One metadata change, opaque to Raft: the layer above encodes its own change (the
/// catalog's) as JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaRecord {
    pub body: String,
}

/// What applying a record answered (opaque like the record: the layer above's JSON), sent
/// back to the proposer so it learns whether its change took effect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaOutcome {
    pub body: String,
}

openraft::declare_raft_types!(
    /// The metadata group's types: opaque records, u64 node ids, nodes known by address.
    pub MetaTypes:
        D = MetaRecord,
        R = MetaOutcome,
        NodeId = NodeId,
        Node = BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// What committed metadata records are applied to. `Send` because it lives on the
/// control-plane thread; it hands changes to the shards by message.
pub trait MetaStateMachine: Send + Sync + 'static {
    /// Applies one committed record, in log order. Records after the last snapshot are applied
    /// again after a restart, and a proposal retried after a lost reply may be committed twice,
    /// so applying a record must be idempotent (e.g. a whole catalog image, or a change with
    /// its precondition). `index` is the record's Raft log index, increasing.
    fn apply(&mut self, index: u64, record: &MetaRecord) -> MetaOutcome;
    /// The whole state, to be given to [`MetaStateMachine::restore`] on another node.
    fn snapshot(&self) -> String;
    /// Replaces the state with a snapshot's, taken after the record at log index `index`.
    fn restore(&mut self, index: u64, snapshot: &str) -> Result<(), String>;
    /// The members (voters and learners) of a membership entry at `index`, applied in log
    /// order like records (so idempotent as they are).
    fn members(&mut self, _index: u64, _members: &BTreeSet<NodeId>) {}
    /// The nodes the state says have joined the cluster before (e.g. registered): a node that
    /// starts with an empty `raft/` but is listed here lost its log (see `join_gate`).
    fn joined_nodes(&self) -> Vec<NodeId> {
        Vec::new()
    }
}

type StoreResult<T> = Result<T, StorageError<NodeId>>;

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: String,
}

struct Inner {
    dir: PathBuf,
    vote: Option<Vote<NodeId>>,
    log: BTreeMap<u64, Entry<MetaTypes>>,
    last_purged: Option<LogId<NodeId>>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    machine: Box<dyn MetaStateMachine>,
    snapshot: Option<SnapshotFile>,
    snapshot_count: u64,
}

/// The metadata group's log, vote, snapshot and state machine; cheap to clone (shared state).
#[derive(Clone)]
pub struct MetaStore {
    inner: Arc<Mutex<Inner>>,
}

const VOTE_FILE: &str = "vote.json";
const LOG_FILE: &str = "log.jsonl";
const SNAPSHOT_FILE: &str = "snapshot.json";

impl MetaStore {
    /// Opens (creating if needed) `dir` and loads what a previous run left there.
    pub fn open(dir: &Path, mut machine: Box<dyn MetaStateMachine>) -> std::io::Result<MetaStore> {
        std::fs::create_dir_all(dir)?;
        let vote = read_json::<Vote<NodeId>>(&dir.join(VOTE_FILE))?;
        let snapshot = read_json::<SnapshotFile>(&dir.join(SNAPSHOT_FILE))?;
        let mut last_applied = None;
        let mut last_purged = None;
        let mut membership = StoredMembership::default();
        if let Some(snapshot) = &snapshot {
            let index = snapshot.meta.last_log_id.map_or(0, |l| l.index);
            machine
                .restore(index, &snapshot.data)
                .map_err(std::io::Error::other)?;
            last_applied = snapshot.meta.last_log_id;
            last_purged = snapshot.meta.last_log_id;
            membership = snapshot.meta.last_membership.clone();
        }
        let mut log = BTreeMap::new();
        match std::fs::read_to_string(dir.join(LOG_FILE)) {
            Ok(text) => {
                for line in text.lines() {
                    match decode_line(line) {
                        Some(entry) => {
                            log.insert(entry.log_id.index, entry);
                        }
                        // A torn or corrupt line ends the log: nothing after it was acked.
                        None => break,
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // Entries the snapshot already covers are not needed (a purge may have been cut short).
        if let Some(purged) = last_purged {
            log.retain(|index, _| *index > purged.index);
        }
        Ok(MetaStore {
            inner: Arc::new(Mutex::new(Inner {
                dir: dir.to_path_buf(),
                vote,
                log,
                last_purged,
                last_applied,
                membership,
                machine,
                snapshot,
                snapshot_count: 0,
            })),
        })
    }

    /// Whether nothing of a Raft run is here (no vote, log or snapshot): a first start, or a
    /// node that lost its `raft/` dir.
    pub fn is_pristine(&self) -> bool {
        let inner = self.lock();
        inner.vote.is_none() && inner.log.is_empty() && inner.snapshot.is_none()
    }

    /// See [`MetaStateMachine::joined_nodes`].
    pub fn joined_nodes(&self) -> Vec<NodeId> {
        self.lock().machine.joined_nodes()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock already took the control plane down with it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` atomically and durably: temp file, fsync, rename, fsync the dir.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

fn encode_line(entry: &Entry<MetaTypes>) -> std::io::Result<String> {
    let json = serde_json::to_string(entry).map_err(std::io::Error::other)?;
    Ok(format!("{:08x}\t{json}\n", crc32c::crc32c(json.as_bytes())))
}

fn decode_line(line: &str) -> Option<Entry<MetaTypes>> {
    let (crc, json) = line.split_once('\t')?;
    let crc = u32::from_str_radix(crc, 16).ok()?;
    if crc32c::crc32c(json.as_bytes()) != crc {
        return None;
    }
    serde_json::from_str(json).ok()
}

impl Inner {
    fn rewrite_log(&self) -> std::io::Result<()> {
        let mut text = String::new();
        for entry in self.log.values() {
            text.push_str(&encode_line(entry)?);
        }
        write_durably(&self.dir, LOG_FILE, text.as_bytes())
    }

    fn build_snapshot(&mut self) -> std::io::Result<Snapshot<MetaTypes>> {
        self.snapshot_count += 1;
        let last = self.last_applied;
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: self.membership.clone(),
            snapshot_id: format!(
                "{}-{}-{}",
                last.map_or(0, |l| l.leader_id.term),
                last.map_or(0, |l| l.index),
                self.snapshot_count
            ),
        };
        let file = SnapshotFile {
            meta: meta.clone(),
            data: self.machine.snapshot(),
        };
        let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
        write_durably(&self.dir, SNAPSHOT_FILE, &bytes)?;
        let data = file.data.clone().into_bytes();
        self.snapshot = Some(file);
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftLogReader<MetaTypes> for MetaStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StoreResult<Vec<Entry<MetaTypes>>> {
        Ok(self
            .lock()
            .log
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftSnapshotBuilder<MetaTypes> for MetaStore {
    async fn build_snapshot(&mut self) -> StoreResult<Snapshot<MetaTypes>> {
        self.lock()
            .build_snapshot()
            .map_err(|e| StorageIOError::write_snapshot(None, &e).into())
    }
}

impl RaftStorage<MetaTypes> for MetaStore {
    type LogReader = MetaStore;
    type SnapshotBuilder = MetaStore;

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StoreResult<()> {
        let mut inner = self.lock();
        let bytes = serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        write_durably(&inner.dir, VOTE_FILE, &bytes).map_err(|e| StorageIOError::write_vote(&e))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> StoreResult<Option<Vote<NodeId>>> {
        Ok(self.lock().vote)
    }

    async fn get_log_state(&mut self) -> StoreResult<LogState<MetaTypes>> {
        let inner = self.lock();
        let last = inner.log.values().next_back().map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: last.or(inner.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn append_to_log<I>(&mut self, entries: I) -> StoreResult<()>
    where
        I: IntoIterator<Item = Entry<MetaTypes>> + OptionalSend,
    {
        let mut inner = self.lock();
        let mut text = String::new();
        let mut appended = Vec::new();
        for entry in entries {
            text.push_str(&encode_line(&entry).map_err(|e| StorageIOError::write_logs(&e))?);
            appended.push(entry);
        }
        let path = inner.dir.join(LOG_FILE);
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            file.write_all(text.as_bytes())?;
            file.sync_data()
        };
        write().map_err(|e| StorageIOError::write_logs(&e))?;
        for entry in appended {
            inner.log.insert(entry.log_id.index, entry);
        }
        Ok(())
    }

    async fn delete_conflict_logs_since(&mut self, log_id: LogId<NodeId>) -> StoreResult<()> {
        let mut inner = self.lock();
        inner.log.split_off(&log_id.index);
        inner
            .rewrite_log()
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge_logs_upto(&mut self, log_id: LogId<NodeId>) -> StoreResult<()> {
        let mut inner = self.lock();
        inner.last_purged = Some(log_id);
        inner.log = inner.log.split_off(&(log_id.index + 1));
        inner
            .rewrite_log()
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn last_applied_state(
        &mut self,
    ) -> StoreResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        let inner = self.lock();
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply_to_state_machine(
        &mut self,
        entries: &[Entry<MetaTypes>],
    ) -> StoreResult<Vec<MetaOutcome>> {
        let mut inner = self.lock();
        let mut outcomes = Vec::with_capacity(entries.len());
        for entry in entries {
            inner.last_applied = Some(entry.log_id);
            let outcome = match &entry.payload {
                EntryPayload::Blank => MetaOutcome::default(),
                EntryPayload::Normal(record) => inner.machine.apply(entry.log_id.index, record),
                EntryPayload::Membership(membership) => {
                    let members: BTreeSet<NodeId> = membership.nodes().map(|(id, _)| *id).collect();
                    inner.machine.members(entry.log_id.index, &members);
                    inner.membership =
                        StoredMembership::new(Some(entry.log_id), membership.clone());
                    MetaOutcome::default()
                }
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StoreResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        let data = String::from_utf8(snapshot.into_inner())
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let file = SnapshotFile {
            meta: meta.clone(),
            data,
        };
        let bytes = serde_json::to_vec(&file)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        write_durably(&inner.dir, SNAPSHOT_FILE, &bytes)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        let index = meta.last_log_id.map_or(0, |l| l.index);
        inner.machine.restore(index, &file.data).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), &std::io::Error::other(e))
        })?;
        inner.last_applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        inner.snapshot = Some(file);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StoreResult<Option<Snapshot<MetaTypes>>> {
        let inner = self.lock();
        Ok(inner.snapshot.as_ref().map(|file| Snapshot {
            meta: file.meta.clone(),
            snapshot: Box::new(Cursor::new(file.data.clone().into_bytes())),
        }))
    }
}
