//! `Replica`: one partition's replica on one node, a raft-rs [`RawNode`] whose state machine
//! is the partition's [`PartitionLog`].
//!
//! The replica never runs on its own: the shard that owns the partition calls [`Replica::tick`]
//! on its timer, [`Replica::step`] with each message the transport brings, and
//! [`Replica::drive`] (or runs [`Replica::run`] as a task) to process Raft's output. One
//! `drive` is one `Ready`:
//!
//! 1. messages a leader may send before its own write (appends to followers) go out;
//! 2. committed entries are applied: each entry is one produce record set, appended to the
//!    partition log at the offsets the log assigns (identical on every replica, since every
//!    replica applies the same entries in the same order to the same log), and the proposer
//!    waiting for that index hears the outcome;
//! 3. new entries and the HardState are appended to the Raft log (`raft_store`) and raft-rs is
//!    told the Ready is handed over, so steps and proposals can continue meanwhile;
//! 4. once the Raft log's group commit has made them durable, the messages that must follow
//!    persistence (a follower's append acknowledgements, votes) go out and raft-rs counts the
//!    entries as persisted. So an entry commits only once a majority has it on disk,
//!    the leader included.
//!
//! Restart: the partition log is recovered on its own; the Raft log's `Applied` checkpoint
//! says which entry the partition log had durably reached, and entries after it that the
//! partition log also holds (applied but not yet checkpointed when the process stopped) are
//! recognised by their batch header, so none is applied twice. They may lie past the
//! commit index the Raft log recorded (the HardState of a Ready that only moved the commit
//! index is not waited for); the entries themselves were durable before they were applied,
//! so the walk goes up to the last entry and raises the commit index to what it found.
//!
//! Snapshots: a follower that needs entries the leader compacted away (it was down, or lost
//! its disk) gets a snapshot, "the partition log up to offset O at index I" (`raft_store`).
//! It copies the batches it lacks from the leader's partition log over the transport
//! (`ReplicaTransport::read_log`), appends them as the leader did, waits for them to be
//! durable, and only then records the snapshot in its Raft log and acknowledges it.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use futures_channel::oneshot;
use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Message, MessageType, Snapshot,
};
use raft::{ProgressState, RawNode, SnapshotStatus, StateRole, Storage as _};

use crate::constants::{
    RAFT_LOG_COMPACT_BYTES, REPLICA_ELECTION_TICKS, REPLICA_HEARTBEAT_TICKS,
    REPLICA_INFLIGHT_APPENDS_MAX, REPLICA_MESSAGE_BYTES_MAX, REPLICA_SNAPSHOT_ATTEMPTS,
    REPLICA_SNAPSHOT_READ_BYTES, REPLICA_SNAPSHOT_TIMEOUT_TICKS, REPLICA_STATE_ATTACH_TIMEOUT_MS,
};
use crate::log::state_log::Appended;
use crate::log::{AppendInfo, LogError, PartitionLog};
use crate::protocol::batch_layout::{
    HEADER_BYTES, LOG_OVERHEAD, OFFSET_LAST_OFFSET_DELTA, OFFSET_LENGTH, OFFSET_MAX_TIMESTAMP,
    OFFSET_PRODUCER_ID,
};

use super::attached_state::{is_durable, AttachedState, Attachment, DurableMark};
use super::raft_store::{
    decode_snapshot_data, AppliedCheckpoint, RaftStore, ReplicaStorage, StoreError,
};
use super::replica_error::ReplicaError;
use super::transport::{GroupKey, ReplicaTransport};

/// Who this replica is and who its peers are. Ids are node ids (raft-rs reserves 0).
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    pub id: u64,
    /// The group's voters, this replica included; used only when the Raft log is new (every
    /// replica must start from the same configuration).
    pub voters: Vec<u64>,
    /// Growth of the Raft log that triggers its compaction (`RAFT_LOG_COMPACT_BYTES`).
    pub compact_bytes: u64,
    /// Failed reads in a row after which a snapshot copy gives up
    /// (`REPLICA_SNAPSHOT_ATTEMPTS`).
    pub snapshot_attempts: u32,
}

impl ReplicaConfig {
    pub fn new(id: u64, voters: Vec<u64>) -> ReplicaConfig {
        ReplicaConfig {
            id,
            voters,
            compact_bytes: RAFT_LOG_COMPACT_BYTES,
            snapshot_attempts: REPLICA_SNAPSHOT_ATTEMPTS,
        }
    }
}

/// Resolves once the proposed record set is committed and applied here, with the offsets
/// the partition log gave it (acks=all), or with why it was not.
pub type Committed = Pin<Box<dyn Future<Output = Result<AppendInfo, ReplicaError>>>>;

struct Waiter {
    term: u64,
    reply: oneshot::Sender<Result<AppendInfo, ReplicaError>>,
}

struct Inner {
    node: RawNode<ReplicaStorage>,
    /// Proposals of this replica as leader, by entry index.
    waiters: BTreeMap<u64, Waiter>,
    /// Applied, not yet known durable in the partition log, oldest first (one per Ready
    /// that applied entries; drained at every `drive`), each with the attached state's
    /// last change at the time, which must be durable too. A queue rather than the latest
    /// alone, so that steady appends cannot keep the checkpoint from ever being recorded.
    pending_checkpoints: VecDeque<(AppliedCheckpoint, Option<DurableMark>)>,
    /// On the leader: ticks each follower has spent waiting for a snapshot it was sent.
    snapshot_ticks: BTreeMap<u64, u32>,
}

pub struct Replica {
    group: GroupKey,
    id: u64,
    compact_bytes: u64,
    snapshot_attempts: u32,
    store: RaftStore,
    partition: PartitionLog,
    transport: Rc<dyn ReplicaTransport>,
    inner: RefCell<Inner>,
    /// A `drive` is in progress (it awaits the disk; a second one would interleave Readies).
    driving: Cell<bool>,
    /// A snapshot install the process stopped in the middle of: its copy must finish
    /// before anything after the snapshot is applied (nothing else is done until then).
    unfinished_install: Cell<Option<AppliedCheckpoint>>,
    closed: Cell<bool>,
    /// A snapshot is being installed. Its Raft log already starts past the entries it
    /// applied, so it must not campaign meanwhile: raft-rs reads the unapplied entries
    /// before a campaign and stops the process when they are compacted. Nor would it be a
    /// leader worth having before its copy is complete.
    installing: Cell<bool>,
    /// The state kept beside the partition log (see `attached_state`).
    attachment: Attachment,
    /// Fires when something may have given Raft work (a step, a tick, a proposal).
    work: event_listener::Event,
}

/// Bytes of the leader's clock at the start of an entry's data.
const PROPOSAL_CLOCK_BYTES: usize = 8;

/// The context of an entry whose record set is a transaction marker (a control batch):
/// applied with `PartitionLog::append_marker_batch`, where a produce record set's control
/// batch is refused. Only the leader's coordinator path proposes it, so a client cannot
/// write a marker through Produce.
const MARKER_CONTEXT: &[u8] = b"txn-marker";

/// The context of an entry that changes the partition's attached state (`attached_state`):
/// applied by handing its bytes to that state; the partition log is not touched.
const STATE_CONTEXT: &[u8] = b"attached-state";

/// The leader's wall clock travels with each record set, so that every replica stamps
/// LogAppendTime and expires producer state identically.
fn encode_proposal(now_ms: i64, records: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(PROPOSAL_CLOCK_BYTES + records.len());
    data.extend_from_slice(&now_ms.to_be_bytes());
    data.extend_from_slice(records);
    data
}

fn decode_proposal(data: &[u8]) -> Option<(i64, &[u8])> {
    let (ms, records) = data.split_at_checked(PROPOSAL_CLOCK_BYTES)?;
    Some((i64::from_be_bytes(ms.try_into().ok()?), records))
}

/// Whether a failed append says something about the record set (every replica decides the
/// same) or about this replica's disk (it must stop applying, or it would diverge).
fn is_deterministic(error: &LogError) -> bool {
    matches!(
        error,
        LogError::CorruptMessage { .. }
            | LogError::MessageTooLarge { .. }
            | LogError::InvalidRecord { .. }
            | LogError::KeylessRecords { .. }
            | LogError::OutOfOrderSequence { .. }
            | LogError::InvalidProducerEpoch { .. }
    )
}

/// Whether the stored batch `stored` (from the partition log) is the one the record set
/// `proposed` became: the broker rewrites offsets, epoch, CRC and, with LogAppendTime, the
/// max timestamp, but never the record count, the producer's fields or the base timestamp.
fn same_batch(proposed: &[u8], stored: &[u8]) -> bool {
    let fields = |b: &[u8]| {
        let first = b
            .get(OFFSET_LAST_OFFSET_DELTA..OFFSET_MAX_TIMESTAMP)?
            .to_vec();
        let second = b.get(OFFSET_PRODUCER_ID..HEADER_BYTES)?.to_vec();
        Some((first, second))
    };
    matches!((fields(proposed), fields(stored)), (Some(a), Some(b)) if a == b)
}

/// The batches of a record set by their framing (base offset, then length); whatever does
/// not frame as a whole batch stays with the last piece.
fn split_batches(records: &[u8]) -> Vec<&[u8]> {
    let mut batches = Vec::new();
    let mut rest = records;
    while !rest.is_empty() {
        let size = rest
            .get(OFFSET_LENGTH..LOG_OVERHEAD)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(i32::from_be_bytes)
            .and_then(|len| usize::try_from(len).ok())
            .map(|len| len + LOG_OVERHEAD)
            .filter(|size| *size <= rest.len());
        let Some(size) = size else {
            batches.push(rest);
            break;
        };
        let (batch, tail) = rest.split_at(size);
        batches.push(batch);
        rest = tail;
    }
    batches
}

/// An append rejection that asks `heartbeat`'s sender for a snapshot of at least the index
/// it committed: raft-rs's leader takes a rejection that names an index at or past the
/// follower's match, with `request_snapshot` set, as a follower needing a snapshot.
fn snapshot_request(heartbeat: &Message, id: u64, last: u64) -> Message {
    let mut request = Message::default();
    request.set_msg_type(MessageType::MsgAppendResponse);
    request.to = heartbeat.from;
    request.from = id;
    request.term = heartbeat.term;
    request.reject = true;
    request.index = u64::MAX;
    request.reject_hint = last;
    request.request_snapshot = heartbeat.commit;
    request
}

fn offset_count(batch: &[u8]) -> Option<i64> {
    let delta = batch.get(OFFSET_LAST_OFFSET_DELTA..OFFSET_LAST_OFFSET_DELTA + 4)?;
    Some(i64::from(i32::from_be_bytes(delta.try_into().ok()?)) + 1)
}

impl Replica {
    /// Opens the replica of `group` whose Raft log lives in `raft_dir` and whose state
    /// machine is `partition` (already open).
    pub async fn open(
        group: GroupKey,
        config: ReplicaConfig,
        raft_dir: PathBuf,
        partition: PartitionLog,
        transport: Rc<dyn ReplicaTransport>,
    ) -> Result<Replica, ReplicaError> {
        let name = group.to_string();
        let now_ms = crate::io::clock::now_ms();
        let store = RaftStore::open(raft_dir, &config.voters, now_ms)
            .await
            .map_err(|e| store_error(&name, e))?;
        let unfinished_install = store.unfinished_install();
        let mut replay = Vec::new();
        let applied = match unfinished_install {
            // The copy resumes where the partition log ends; nothing of the old log is
            // applied again (the snapshot replaced it).
            Some(target) if partition.log_end_offset() > target.log_end_offset => {
                return Err(ReplicaError::Inconsistent {
                    group: name,
                    reason: format!(
                        "the partition log ends at {}, past the end {} of the snapshot being installed",
                        partition.log_end_offset(),
                        target.log_end_offset
                    ),
                })
            }
            Some(target) => target,
            None => {
                let (applied, changes) = recover_applied(&name, &store, &partition).await?;
                replay = changes;
                applied
            }
        };
        let raft_config = raft::Config {
            id: config.id,
            election_tick: REPLICA_ELECTION_TICKS,
            heartbeat_tick: REPLICA_HEARTBEAT_TICKS,
            applied: applied.index,
            max_size_per_msg: REPLICA_MESSAGE_BYTES_MAX,
            max_inflight_msgs: REPLICA_INFLIGHT_APPENDS_MAX,
            // A leader that cannot reach a majority steps down (it could not commit anyway),
            // and a node returning from a partition does not depose a working leader.
            check_quorum: true,
            pre_vote: true,
            ..raft::Config::default()
        };
        let raft_error = |source| ReplicaError::Raft {
            group: name.clone(),
            source,
        };
        raft_config.validate().map_err(raft_error)?;
        // raft-rs logs through slog; its messages are per-group chatter (elections, probes)
        // that the replica reports itself where it matters.
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let node = RawNode::new(&raft_config, store.storage(), &logger).map_err(raft_error)?;
        let pending_checkpoints = (applied != store.applied() && unfinished_install.is_none())
            .then_some((applied, None))
            .into_iter()
            .collect();
        let attachment = Attachment::default();
        attachment.replay_later(replay);
        Ok(Replica {
            group,
            id: config.id,
            compact_bytes: config.compact_bytes,
            snapshot_attempts: config.snapshot_attempts,
            store,
            partition,
            transport,
            inner: RefCell::new(Inner {
                node,
                waiters: BTreeMap::new(),
                pending_checkpoints,
                snapshot_ticks: BTreeMap::new(),
            }),
            driving: Cell::new(false),
            unfinished_install: Cell::new(unfinished_install),
            closed: Cell::new(false),
            installing: Cell::new(false),
            attachment,
            work: event_listener::Event::new(),
        })
    }

    pub fn group(&self) -> &GroupKey {
        &self.group
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn partition(&self) -> &PartitionLog {
        &self.partition
    }

    /// Whether the replica stopped (closed, or failed on its disk): it then takes no part in
    /// its group until it is reopened.
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    pub fn is_leader(&self) -> bool {
        self.inner.borrow().node.raft.state == StateRole::Leader
    }

    /// Whether this replica leads and its partition log already holds everything committed
    /// before its term: it has applied an entry of its own term (the empty entry a new
    /// leader commits first). Until then a new leader's log can end before offsets its
    /// predecessor already served, so it must not answer reads (a consumer's position past
    /// its end would be OFFSET_OUT_OF_RANGE).
    pub fn is_readable_leader(&self) -> bool {
        let inner = self.inner.borrow();
        let raft = &inner.node.raft;
        raft.state == StateRole::Leader
            && raft.raft_log.term(raft.raft_log.applied).ok() == Some(raft.term)
    }

    /// The leader this replica knows of, if any.
    pub fn leader(&self) -> Option<u64> {
        let leader = self.inner.borrow().node.raft.leader_id;
        (leader != raft::INVALID_ID).then_some(leader)
    }

    /// On the leader: the index each other replica has acknowledged, by node; empty
    /// elsewhere.
    pub fn follower_matches(&self) -> std::collections::BTreeMap<u64, u64> {
        let inner = self.inner.borrow();
        if inner.node.raft.state != StateRole::Leader {
            return std::collections::BTreeMap::new();
        }
        let progress = inner.node.raft.prs().iter();
        progress
            .filter(|(id, _)| **id != self.id)
            .map(|(id, p)| (*id, p.matched))
            .collect()
    }

    /// The current term: the leader epoch of the partition.
    pub fn term(&self) -> u64 {
        self.inner.borrow().node.raft.term
    }

    /// The highest entry index known committed (by a majority, durably).
    pub fn commit_index(&self) -> u64 {
        self.inner.borrow().node.raft.raft_log.committed
    }

    pub fn last_index(&self) -> u64 {
        self.inner.borrow().node.raft.raft_log.last_index()
    }

    /// The first entry the Raft log still holds (entries before it were compacted away).
    pub fn first_index(&self) -> u64 {
        self.inner.borrow().node.raft.raft_log.first_index()
    }

    /// Entries up to this one are applied and durable in the partition log, as recorded on
    /// disk (a restart resumes from it).
    pub fn checkpointed_index(&self) -> u64 {
        self.store.applied().index
    }

    pub fn applied_index(&self) -> u64 {
        self.inner.borrow().node.raft.raft_log.applied
    }

    /// Bytes of this replica's Raft log on disk.
    pub fn raft_log_bytes(&self) -> u64 {
        self.store.size_bytes()
    }

    /// The high watermark: the end of what the partition log holds, which is only ever
    /// committed entries.
    pub fn high_watermark(&self) -> i64 {
        self.partition.log_end_offset()
    }

    fn name(&self) -> String {
        self.group.to_string()
    }

    /// Advances Raft's logical clock by one tick (the shard's timer, every
    /// `REPLICA_TICK_MS`): heartbeats and election timeouts are counted in ticks.
    pub fn tick(&self) {
        // A stopped replica takes no part in its group: it may have stopped in the middle of
        // an install, with the same compacted entries `installing` guards against.
        if self.installing.get() || self.closed.get() {
            return;
        }
        let mut inner = self.inner.borrow_mut();
        inner.node.tick();
        Self::expire_snapshots(&mut inner);
        drop(inner);
        // A tick that only advanced a counter leaves nothing to do, but a heartbeat or a
        // campaign shows up as a Ready.
        if self.has_work() {
            self.work.notify(1);
        }
    }

    /// On the leader: a follower sent a snapshot waits for it (raft-rs sends it nothing else)
    /// until it acknowledges it; if the snapshot or its copy failed, that never comes. After
    /// `REPLICA_SNAPSHOT_TIMEOUT_TICKS` the snapshot is reported failed, so raft-rs probes
    /// the follower again and sends a new one if it still needs it.
    fn expire_snapshots(inner: &mut Inner) {
        if inner.node.raft.state != StateRole::Leader {
            inner.snapshot_ticks.clear();
            return;
        }
        let waiting: Vec<u64> = inner
            .node
            .raft
            .prs()
            .iter()
            .filter(|(_, p)| p.state == ProgressState::Snapshot)
            .map(|(id, _)| *id)
            .collect();
        inner.snapshot_ticks.retain(|id, _| waiting.contains(id));
        for id in waiting {
            let ticks = inner.snapshot_ticks.entry(id).or_default();
            *ticks += 1;
            if *ticks >= REPLICA_SNAPSHOT_TIMEOUT_TICKS {
                inner.snapshot_ticks.remove(&id);
                inner.node.report_snapshot(id, SnapshotStatus::Failure);
            }
        }
    }

    /// Starts an election now (tests, and leadership transfer on shutdown later).
    pub fn campaign(&self) -> Result<(), ReplicaError> {
        let result = self.inner.borrow_mut().node.campaign();
        self.work.notify(1);
        result.map_err(|source| ReplicaError::Raft {
            group: self.name(),
            source,
        })
    }

    /// Hands Raft a message from a peer.
    pub fn step(&self, mut message: Message) -> Result<(), ReplicaError> {
        if self.installing.get() && message.get_msg_type() == MessageType::MsgTimeoutNow {
            return Ok(()); // a leadership hand-over: it campaigns (see `installing`)
        }
        let mut inner = self.inner.borrow_mut();
        if message.get_msg_type() == MessageType::MsgHeartbeat {
            // A heartbeat's commit index is what the leader knows this replica holds. After
            // this replica lost its disk it holds less, and raft-rs would stop the process
            // on it. It commits what it has instead (every entry it got since is one a
            // leader sent below that commit index, so committed) and asks for a snapshot:
            // the leader would otherwise never send it what it lost, since it counts it as
            // matched.
            let last = inner.node.raft.raft_log.last_index();
            if message.commit > last {
                tracing::info!(group = %self.group, commit = message.commit, last, "the leader counts entries this replica lost: asking for a snapshot");
                self.transport
                    .send(&self.group, vec![snapshot_request(&message, self.id, last)]);
                message.commit = last;
            }
        }
        let result = inner.node.step(message);
        drop(inner);
        self.work.notify(1);
        result.map_err(|source| ReplicaError::Raft {
            group: self.name(),
            source,
        })
    }

    /// Hands leadership to `to` (a caught-up follower): raft-rs has it campaign at once.
    pub fn transfer_leader(&self, to: u64) {
        self.inner.borrow_mut().node.transfer_leader(to);
        self.work.notify(1);
    }

    /// Tells Raft a peer could not be reached (so it probes instead of streaming appends).
    pub fn report_unreachable(&self, peer: u64) {
        self.inner.borrow_mut().node.report_unreachable(peer);
    }

    /// Fails the proposals still waiting here once this replica no longer leads, as Kafka
    /// fails pending acks=all requests with NOT_LEADER_OR_FOLLOWER when leadership moves:
    /// otherwise they would wait until this replica applies their index again. An entry that
    /// did commit under the next leader is then acknowledged to nobody, and the producer's
    /// retry is a duplicate the partition log recognises (idempotent producers).
    pub fn release_if_deposed(&self) {
        let waiters = {
            let mut inner = self.inner.borrow_mut();
            if inner.waiters.is_empty() || inner.node.raft.state == StateRole::Leader {
                return;
            }
            std::mem::take(&mut inner.waiters)
        };
        let leader = self.leader();
        for (_, waiter) in waiters {
            let _ = waiter.reply.send(Err(ReplicaError::NotLeader {
                group: self.name(),
                leader,
            }));
        }
    }

    fn has_ready(&self) -> bool {
        self.inner.borrow().node.has_ready()
    }

    /// Whether `drive` would do something: finish an interrupted snapshot install once a
    /// leader to copy from is known, else process a Ready.
    fn has_work(&self) -> bool {
        match self.unfinished_install.get() {
            Some(_) => self.leader().is_some(),
            None => self.has_ready(),
        }
    }

    /// Proposes one produce record set (one RecordBatch v2). Only the leader accepts;
    /// the returned future resolves once the entry is committed and applied here.
    pub fn propose(&self, records: &[u8], now_ms: i64) -> Result<Committed, ReplicaError> {
        self.propose_entry(Vec::new(), records, now_ms)
    }

    /// Proposes a marker ending a transaction (Kafka's WriteTxnMarkers to the partition
    /// leader), given as its control batch (`log::marker_batch`): every replica appends it
    /// at the same offset when it applies it. Resolves once committed and applied here, with
    /// the marker's offset.
    pub fn propose_marker(&self, marker: &[u8], now_ms: i64) -> Result<Committed, ReplicaError> {
        self.propose_entry(MARKER_CONTEXT.to_vec(), marker, now_ms)
    }

    /// Proposes a change to the partition's attached state (`attached_state`). Resolves
    /// once committed and applied here.
    pub fn propose_state(&self, change: &[u8], now_ms: i64) -> Result<Committed, ReplicaError> {
        self.propose_entry(STATE_CONTEXT.to_vec(), change, now_ms)
    }

    /// Attaches the state that changes proposed with [`Replica::propose_state`] go to, and
    /// applies to it those committed before (they waited here, in order).
    pub fn attach_state(&self, state: Rc<dyn AttachedState>) -> Result<(), ReplicaError> {
        let mark = self
            .attachment
            .attach(state)
            .map_err(|reason| self.attached_error(reason))?;
        // The changes just applied belong to entries already counted in pending checkpoints.
        for (_, pending) in self.inner.borrow_mut().pending_checkpoints.iter_mut() {
            *pending = mark.clone();
        }
        Ok(())
    }

    pub fn has_attached_state(&self) -> bool {
        self.attachment.is_attached()
    }

    /// Resolves once a committed state change waits for a state to be attached.
    pub async fn state_changes_waiting(&self) {
        self.attachment.changes_waiting().await
    }

    fn propose_entry(
        &self,
        context: Vec<u8>,
        records: &[u8],
        now_ms: i64,
    ) -> Result<Committed, ReplicaError> {
        if self.closed.get() {
            return Err(ReplicaError::Closed { group: self.name() });
        }
        let mut inner = self.inner.borrow_mut();
        let not_leader = |inner: &Inner| ReplicaError::NotLeader {
            group: self.name(),
            leader: Some(inner.node.raft.leader_id).filter(|id| *id != raft::INVALID_ID),
        };
        if inner.node.raft.state != StateRole::Leader {
            return Err(not_leader(&inner));
        }
        match inner
            .node
            .propose(context, encode_proposal(now_ms, records))
        {
            Ok(()) => {}
            Err(raft::Error::ProposalDropped) => return Err(not_leader(&inner)),
            Err(source) => {
                return Err(ReplicaError::Raft {
                    group: self.name(),
                    source,
                })
            }
        }
        let index = inner.node.raft.raft_log.last_index();
        let term = inner.node.raft.term;
        let (reply, receiver) = oneshot::channel();
        inner.waiters.insert(index, Waiter { term, reply });
        drop(inner);
        self.work.notify(1);
        let group = self.name();
        Ok(Box::pin(async move {
            receiver
                .await
                .unwrap_or(Err(ReplicaError::Closed { group }))
        }))
    }

    /// Proposes a produce record set that may hold several batches (a non-idempotent
    /// producer may send them together): one entry per batch, so that an entry stays as
    /// large as one batch (`max.message.bytes`) and the restart walk can match it against
    /// one stored batch. Resolves once every entry is committed and applied, with the first
    /// batch's base offset and the last one's end, or with the first failure. Bytes that do
    /// not frame as a batch go into the last entry, where the partition log refuses them as
    /// it would on a single node.
    pub fn propose_record_set(
        &self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<Committed, ReplicaError> {
        let batches = split_batches(records);
        if batches.len() <= 1 {
            return self.propose(records, now_ms);
        }
        let commits = batches
            .into_iter()
            .map(|batch| self.propose(batch, now_ms))
            .collect::<Result<Vec<Committed>, ReplicaError>>()?;
        Ok(Box::pin(async move {
            let mut first: Option<AppendInfo> = None;
            let mut last = None;
            for commit in commits {
                let info = commit.await?;
                first.get_or_insert(info);
                last = Some(info);
            }
            match (first, last) {
                (Some(first), Some(last)) => Ok(AppendInfo {
                    base_offset: first.base_offset,
                    duplicate: first.duplicate && last.duplicate,
                    ..last
                }),
                // Not reached: there were at least two batches.
                _ => Err(ReplicaError::Inconsistent {
                    group: String::new(),
                    reason: "an empty record set".to_owned(),
                }),
            }
        }))
    }

    /// Runs `drive` whenever there is work, until the replica is closed or fails.
    pub async fn run(&self) -> Result<(), ReplicaError> {
        loop {
            let listener = self.work.listen();
            while self.drive().await? {}
            if self.closed.get() {
                return Ok(());
            }
            if !self.has_work() {
                listener.await;
            }
        }
    }

    /// Processes one `Ready`; false when there was none. Errors are the disk's (the Raft
    /// log or the partition log failing): the replica then stops, and is reopened from disk.
    pub async fn drive(&self) -> Result<bool, ReplicaError> {
        if self.closed.get() || self.driving.replace(true) {
            return Ok(false);
        }
        let result = self.drive_one().await;
        self.driving.set(false);
        if result.is_err() {
            self.fail_waiters();
            self.closed.set(true);
        }
        result
    }

    async fn drive_one(&self) -> Result<bool, ReplicaError> {
        let now_ms = crate::io::clock::now_ms();
        if let Some(target) = self.unfinished_install.get() {
            let Some(leader) = self.leader() else {
                return Ok(false);
            };
            self.while_installing(self.finish_install(leader, target, now_ms))
                .await?;
        }
        self.checkpoint_applied(now_ms)?;
        // A snapshot comes out of the block unhandled (its install awaits the network).
        let taken = {
            let mut inner = self.inner.borrow_mut();
            if !inner.node.has_ready() {
                return Ok(false);
            }
            let mut ready = inner.node.ready();
            self.transport.send(&self.group, ready.take_messages());
            if ready.snapshot().is_empty() {
                Ok(self.hand_over_ready(&mut inner, ready, now_ms)?)
            } else {
                Err(ready)
            }
        };
        let (appended, must_sync, persisted_messages, number) = match taken {
            Ok(handed_over) => handed_over,
            Err(ready) => {
                let installed = self.install_snapshot(ready, now_ms);
                return self.while_installing(installed).await.map(|()| true);
            }
        };
        // A Ready that only moved the commit index need not wait: losing that is harmless.
        if let Some(appended) = appended.filter(|_| must_sync) {
            appended
                .wait_durable()
                .await
                .map_err(|source| ReplicaError::RaftLog {
                    group: self.name(),
                    source,
                })?;
        }
        self.transport.send(&self.group, persisted_messages);
        // What the persisted entries unlock (commits, acknowledgements) is the next Ready.
        self.inner.borrow_mut().node.on_persist_ready(number);
        self.compact_if_needed(now_ms).await?;
        Ok(true)
    }

    /// Applies a Ready's committed entries, queues its entries and HardState for the disk,
    /// and hands it back to raft-rs; returns what `drive` must wait for and send after.
    fn hand_over_ready(
        &self,
        inner: &mut Inner,
        mut ready: raft::Ready,
        now_ms: i64,
    ) -> Result<(Option<Appended>, bool, Vec<Message>, u64), ReplicaError> {
        let committed = ready.take_committed_entries();
        let conf_state = self.apply(inner, committed)?;
        let appended = self
            .store
            .persist(ready.entries(), ready.hs(), conf_state.as_ref(), now_ms)
            .map_err(|e| self.persist_error(e))?;
        let persisted_messages = ready.take_persisted_messages();
        let number = ready.number();
        let must_sync = ready.must_sync();
        inner.node.advance_append_async(ready);
        Ok((appended, must_sync, persisted_messages, number))
    }

    /// Runs `install` (a snapshot install, or the rest of an interrupted one) with
    /// `installing` set, cleared however it ends, also when the task is dropped.
    async fn while_installing<T>(&self, install: impl Future<Output = T>) -> T {
        struct Clear<'a>(&'a Cell<bool>);
        impl Drop for Clear<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        self.installing.set(true);
        let _clear = Clear(&self.installing);
        install.await
    }

    /// Handles a Ready that carries a snapshot (only followers get one): the Raft log starts
    /// at the snapshot's index in memory at once (raft-rs reads it from there once the Ready
    /// is handed back); then the batches up to the snapshot's end are copied from the
    /// leader's partition log and made durable, the snapshot is written to the Raft log, and
    /// only then is the Ready reported persisted, which sends the acknowledgement. Until
    /// then nothing after the snapshot is applied: `drive` runs one Ready at a time.
    async fn install_snapshot(
        &self,
        mut ready: raft::Ready,
        now_ms: i64,
    ) -> Result<(), ReplicaError> {
        let snapshot: Snapshot = ready.snapshot().clone();
        let (index, term) = (snapshot.get_metadata().index, snapshot.get_metadata().term);
        let end = decode_snapshot_data(&snapshot.data).ok_or_else(|| {
            self.inconsistent(format!(
                "snapshot at index {index} has data of another format"
            ))
        })?;
        let (leader, committed, persisted_messages, number) = {
            let mut inner = self.inner.borrow_mut();
            self.store
                .restore_snapshot(&snapshot)
                .map_err(|e| self.persist_error(e))?;
            let committed = ready.take_committed_entries();
            let persisted_messages = ready.take_persisted_messages();
            let number = ready.number();
            // The Ready's own entries and HardState go to disk with the snapshot, not before
            // it: a commit index past the old log's end must never be durable alone.
            self.store
                .stage(ready.entries(), ready.hs())
                .map_err(|e| self.persist_error(e))?;
            inner.node.advance_append_async(ready);
            inner.pending_checkpoints.clear();
            (
                inner.node.raft.leader_id,
                committed,
                persisted_messages,
                number,
            )
        };
        tracing::info!(group = %self.group, index, term, end, from = leader, "installing a snapshot");
        let target = AppliedCheckpoint {
            index,
            log_end_offset: end,
        };
        self.store
            .begin_install(term, target, now_ms)
            .await
            .map_err(|e| self.persist_error(e))?;
        self.copy_log_until(leader, end).await?;
        self.copy_state_from(leader).await?;
        self.store
            .install_snapshot(term, target, now_ms)
            .await
            .map_err(|e| self.persist_error(e))?;
        self.transport.send(&self.group, persisted_messages);
        let mut inner = self.inner.borrow_mut();
        inner.node.on_persist_ready(number);
        inner.node.advance_apply_to(index);
        if !committed.is_empty() {
            self.apply(&mut inner, committed)?;
        }
        Ok(())
    }

    /// Resumes a snapshot install the process stopped in the middle of (its Raft log starts
    /// at the snapshot already), copying from `leader`.
    async fn finish_install(
        &self,
        leader: u64,
        target: AppliedCheckpoint,
        now_ms: i64,
    ) -> Result<(), ReplicaError> {
        tracing::info!(group = %self.group, index = target.index, end = target.log_end_offset, from = leader, "resuming an interrupted snapshot install");
        self.copy_log_until(leader, target.log_end_offset).await?;
        self.copy_state_from(leader).await?;
        let term = self
            .store
            .storage()
            .term(target.index)
            .map_err(|e| self.raft_error(e))?;
        self.store
            .install_snapshot(term, target, now_ms)
            .await
            .map_err(|e| self.persist_error(e))?;
        self.unfinished_install.set(None);
        Ok(())
    }

    /// Copies the batches of the partition log from this replica's end up to `end` from
    /// node `from`'s copy, appending each as the leader did (same offsets, same producer
    /// state), and waits until they are durable.
    async fn copy_log_until(&self, from: u64, end: i64) -> Result<(), ReplicaError> {
        loop {
            let at = self.partition.log_end_offset();
            if at >= end {
                break;
            }
            let chunk = self
                .read_with_retries(from, || async move {
                    let chunk = self
                        .transport
                        .read_log(&self.group, from, at, REPLICA_SNAPSHOT_READ_BYTES)
                        .await?;
                    match chunk.is_empty() {
                        true => Err(format!("nothing at offset {at}")),
                        false => Ok(chunk),
                    }
                })
                .await?;
            self.append_copied(&chunk, end).await?;
        }
        if end == 0 {
            return Ok(());
        }
        // The last offset of the snapshot's data (`wait_durable` takes an offset the log holds).
        self.partition
            .wait_durable(end - 1)
            .await
            .map_err(|source| ReplicaError::Partition {
                group: self.name(),
                source,
            })
    }

    /// Applies the leader's attached state (as changes) and waits until it is durable, so
    /// that the snapshot, once recorded, stands for the state too. Changes that must wait
    /// for a state to be attached are waited for: until then they are only in memory.
    async fn copy_state_from(&self, from: u64) -> Result<(), ReplicaError> {
        let changes = self
            .read_with_retries(from, || self.transport.read_state(&self.group, from))
            .await?;
        if changes.is_empty() {
            return Ok(());
        }
        for change in changes {
            self.attachment
                .apply(change)
                .map_err(|reason| self.attached_error(reason))?;
        }
        let attached = async {
            self.attachment.attached().await;
            true
        };
        let timed_out = async {
            let wait = std::time::Duration::from_millis(REPLICA_STATE_ATTACH_TIMEOUT_MS);
            crate::io::sleep(wait).await;
            false
        };
        // A state that failed to open would otherwise hold the install, and every Ready
        // after it, for good.
        if !futures_lite::future::or(attached, timed_out).await {
            return Err(self
                .attached_error("no state was attached to take the snapshot's state".to_owned()));
        }
        if let Some((log, offset)) = self.attachment.last_mark() {
            log.wait_durable(offset)
                .await
                .map_err(|e| self.attached_error(e.to_string()))?;
        }
        Ok(())
    }

    /// One read of a snapshot's data from node `from`, retried with a growing pause until it
    /// succeeds or has failed `snapshot_attempts` times in a row.
    async fn read_with_retries<T, F, R>(&self, from: u64, mut read: R) -> Result<T, ReplicaError>
    where
        R: FnMut() -> F,
        F: Future<Output = Result<T, String>>,
    {
        let mut failures = 0;
        loop {
            let reason = match read().await {
                Ok(value) => return Ok(value),
                Err(reason) => reason,
            };
            failures += 1;
            if failures >= self.snapshot_attempts {
                return Err(ReplicaError::SnapshotCopy {
                    group: self.name(),
                    from,
                    reason,
                });
            }
            tracing::debug!(group = %self.group, from, %reason, "retrying a snapshot read");
            crate::io::sleep(std::time::Duration::from_millis(100 * u64::from(failures))).await;
        }
    }

    /// The attached state's snapshot, for a follower installing a Raft snapshot; `None`
    /// when no state is attached.
    pub fn state_snapshot(&self) -> Option<Result<Vec<Bytes>, ReplicaError>> {
        let snapshot = self.attachment.snapshot()?;
        Some(snapshot.map_err(|reason| self.attached_error(reason)))
    }

    pub fn has_waiting_state_changes(&self) -> bool {
        self.attachment.has_waiting()
    }

    /// Appends the batches of `chunk` this replica lacks, below `end`. Offsets the leader's
    /// log no longer holds (cleaned away, or below its start: its read starts there) are
    /// skipped, so the copy holds what the leader's does, at the same offsets.
    async fn append_copied(&self, chunk: &Bytes, end: i64) -> Result<(), ReplicaError> {
        for batch in split_batches(chunk) {
            let at = self.partition.log_end_offset();
            if batch.len() < HEADER_BYTES {
                return Err(self.inconsistent(format!(
                    "a copied batch of {} bytes, shorter than its header",
                    batch.len()
                )));
            }
            let header = crate::log::header_fields(batch);
            let base = header.base_offset;
            if header.last_offset() < at {
                continue; // the read starts at the batch holding `at`
            }
            if base > at {
                self.partition
                    .skip_to(base.min(end))
                    .await
                    .map_err(|source| ReplicaError::Partition {
                        group: self.name(),
                        source,
                    })?;
            }
            if base >= end {
                break;
            }
            // The leader's clock at its append is the batch's max timestamp under
            // LogAppendTime, so the copy is stamped the same.
            let copied = if crate::log::is_control_batch(batch) {
                self.append_marker(batch, header.max_timestamp)
            } else {
                self.partition
                    .append(chunk.slice_ref(batch), header.max_timestamp)
            };
            let info = copied.map_err(|source| ReplicaError::Partition {
                group: self.name(),
                source,
            })?;
            if info.base_offset != base || info.duplicate {
                return Err(self.inconsistent(format!(
                    "a copied batch at offset {base} was stored at {} (duplicate: {})",
                    info.base_offset, info.duplicate
                )));
            }
        }
        Ok(())
    }

    /// Applies committed entries in order; returns the configuration if one changed.
    fn apply(
        &self,
        inner: &mut Inner,
        entries: Vec<Entry>,
    ) -> Result<Option<ConfState>, ReplicaError> {
        let Some(last) = entries.last().map(|e| e.index) else {
            return Ok(None);
        };
        let mut conf_state = None;
        for entry in entries {
            match entry.get_entry_type() {
                EntryType::EntryNormal => self.apply_records(inner, &entry)?,
                EntryType::EntryConfChange => {
                    let change = ConfChange::parse_from_bytes(&entry.data)
                        .map_err(|e| self.inconsistent(format!("a configuration change: {e}")))?;
                    let applied = inner.node.apply_conf_change(&change);
                    conf_state = Some(applied.map_err(|e| self.raft_error(e))?);
                }
                EntryType::EntryConfChangeV2 => {
                    let change = ConfChangeV2::parse_from_bytes(&entry.data)
                        .map_err(|e| self.inconsistent(format!("a configuration change: {e}")))?;
                    let applied = inner.node.apply_conf_change(&change);
                    conf_state = Some(applied.map_err(|e| self.raft_error(e))?);
                }
            }
        }
        inner.node.advance_apply_to(last);
        inner.pending_checkpoints.push_back((
            AppliedCheckpoint {
                index: last,
                log_end_offset: self.partition.log_end_offset(),
            },
            self.attachment.last_mark(),
        ));
        Ok(conf_state)
    }

    /// Appends one entry's record set to the partition log and answers its proposer.
    fn apply_records(&self, inner: &mut Inner, entry: &Entry) -> Result<(), ReplicaError> {
        // An empty entry is a new leader's first (raft-rs commits it to learn what its
        // predecessors committed): nothing to store.
        let outcome = if entry.data.is_empty() {
            None
        } else {
            let (leader_ms, _) = decode_proposal(&entry.data)
                .ok_or_else(|| self.inconsistent(format!("entry {} is too short", entry.index)))?;
            // The entry's bytes are shared, not copied: the log keeps a slice of them.
            let records = entry.data.slice(PROPOSAL_CLOCK_BYTES..);
            let appended = if entry.context.as_ref() == STATE_CONTEXT {
                self.attachment
                    .apply(records)
                    .map_err(|reason| self.attached_error(reason))?;
                Ok(self.nothing_appended())
            } else if entry.context.as_ref() == MARKER_CONTEXT {
                self.append_marker(&records, leader_ms)
            } else {
                self.partition.append(records, leader_ms)
            };
            match appended {
                Ok(info) => Some(Ok(info)),
                Err(e) if is_deterministic(&e) => Some(Err(ReplicaError::Partition {
                    group: self.name(),
                    source: e,
                })),
                Err(source) => {
                    return Err(ReplicaError::Partition {
                        group: self.name(),
                        source,
                    })
                }
            }
        };
        if let Some(waiter) = inner.waiters.remove(&entry.index) {
            let superseded = || ReplicaError::Superseded {
                group: self.name(),
                index: entry.index,
            };
            let reply = match outcome {
                Some(outcome) if waiter.term == entry.term => outcome,
                _ => Err(superseded()),
            };
            // A proposer that stopped waiting is no error.
            let _ = waiter.reply.send(reply);
        }
        Ok(())
    }

    /// What a state change answers its proposer: the partition log is as it was.
    fn nothing_appended(&self) -> AppendInfo {
        let end = self.partition.log_end_offset();
        AppendInfo {
            base_offset: end,
            last_offset: end - 1,
            log_start_offset: self.partition.log_start_offset(),
            log_append_time_ms: -1,
            duplicate: false,
        }
    }

    fn attached_error(&self, reason: String) -> ReplicaError {
        ReplicaError::AttachedState {
            group: self.name(),
            reason,
        }
    }

    /// Appends a marker entry's control batch, answered like a one-record append.
    fn append_marker(&self, marker: &[u8], leader_ms: i64) -> Result<AppendInfo, LogError> {
        let offset = self.partition.append_marker_batch(marker, leader_ms)?;
        Ok(AppendInfo {
            base_offset: offset,
            last_offset: offset,
            log_start_offset: self.partition.log_start_offset(),
            log_append_time_ms: -1,
            duplicate: false,
        })
    }

    /// Records the applied checkpoint once the partition log, and the attached state, have
    /// it on disk. Changes waiting for a state to attach hold it back: they are on disk only
    /// in the Raft log.
    fn checkpoint_applied(&self, now_ms: i64) -> Result<(), ReplicaError> {
        if self.attachment.has_waiting() {
            return Ok(());
        }
        let mut inner = self.inner.borrow_mut();
        let durable = self.partition.durable_offset();
        let mut latest = None;
        while let Some((checkpoint, mark)) = inner.pending_checkpoints.front() {
            if checkpoint.log_end_offset > durable || !is_durable(mark) {
                break;
            }
            latest = inner.pending_checkpoints.pop_front().map(|(c, _)| c);
        }
        match latest {
            Some(checkpoint) => self
                .store
                .record_applied(checkpoint, now_ms)
                .map_err(|e| self.persist_error(e)),
            None => Ok(()),
        }
    }

    /// Drops Raft log entries the partition log holds durably. A follower that still needs
    /// them gets a snapshot instead, so a follower that is down does not make the leader's
    /// Raft log grow.
    async fn compact_if_needed(&self, now_ms: i64) -> Result<(), ReplicaError> {
        if !self.store.needs_compaction(self.compact_bytes) {
            return Ok(());
        }
        let upto = self.store.applied().index;
        {
            let inner = self.inner.borrow();
            let first = inner.node.store().first_index().unwrap_or(1);
            if upto < first {
                return Ok(());
            }
        }
        self.store
            .compact(upto, now_ms)
            .await
            .map_err(|e| self.persist_error(e))
    }

    fn persist_error(&self, error: StoreError) -> ReplicaError {
        store_error(&self.name(), error)
    }

    fn raft_error(&self, source: raft::Error) -> ReplicaError {
        ReplicaError::Raft {
            group: self.name(),
            source,
        }
    }

    fn inconsistent(&self, reason: String) -> ReplicaError {
        ReplicaError::Inconsistent {
            group: self.name(),
            reason,
        }
    }

    fn fail_waiters(&self) {
        let waiters = std::mem::take(&mut self.inner.borrow_mut().waiters);
        for (_, waiter) in waiters {
            let _ = waiter
                .reply
                .send(Err(ReplicaError::Closed { group: self.name() }));
        }
    }

    /// Stops the replica: proposals still waiting fail with `Closed`; the Raft log is
    /// flushed and closed. The partition log stays open (its owner closes it).
    pub async fn close(&self) -> Result<(), ReplicaError> {
        self.closed.set(true);
        self.work.notify(usize::MAX);
        self.fail_waiters();
        self.store
            .close()
            .await
            .map_err(|source| ReplicaError::RaftLog {
                group: self.name(),
                source,
            })
    }
}

fn store_error(group: &str, error: StoreError) -> ReplicaError {
    let group = group.to_owned();
    match error {
        StoreError::Log(source) => ReplicaError::RaftLog { group, source },
        StoreError::Raft(source) => ReplicaError::Raft { group, source },
        StoreError::Inconsistent(reason) => ReplicaError::Inconsistent { group, reason },
    }
}

/// The index of the last entry the partition log holds, from the checkpoint forward, and
/// the attached-state changes among the entries up to it (applied again once a state is
/// attached: the state's log may not have had them on disk).
async fn recover_applied(
    group: &str,
    store: &RaftStore,
    partition: &PartitionLog,
) -> Result<(AppliedCheckpoint, Vec<Bytes>), ReplicaError> {
    let inconsistent = |reason: String| ReplicaError::Inconsistent {
        group: group.to_owned(),
        reason,
    };
    let checkpoint = store.applied();
    let end = partition.log_end_offset();
    if end < checkpoint.log_end_offset {
        return Err(inconsistent(format!(
            "the partition log ends at {end}, before offset {} that entry {} left durable",
            checkpoint.log_end_offset, checkpoint.index
        )));
    }
    let mem = store.storage();
    // Applied entries were durable here before they were applied (`drive` waits for a
    // Ready's entries before the next one), but the HardState naming their commit may not
    // be (a Ready that only moves the commit index is not waited for): walk every entry
    // the log holds, and raise the commit index to what the partition log shows applied.
    let last = mem.last_index().map_err(|source| ReplicaError::Raft {
        group: group.to_owned(),
        source,
    })?;
    let mut index = checkpoint.index;
    let mut offset = checkpoint.log_end_offset;
    let mut changes = Vec::new();
    while offset < end {
        index += 1;
        if index > last {
            return Err(inconsistent(format!(
                "the partition log holds offsets {offset}..{end} that no entry of the Raft log accounts for"
            )));
        }
        let entry = mem
            .entries(
                index,
                index + 1,
                None,
                raft::GetEntriesContext::empty(false),
            )
            .map_err(|source| ReplicaError::Raft {
                group: group.to_owned(),
                source,
            })?;
        let Some(entry) = entry.first() else {
            return Err(inconsistent(format!("entry {index} is missing")));
        };
        if entry.get_entry_type() != EntryType::EntryNormal || entry.data.is_empty() {
            continue;
        }
        let Some((_, records)) = decode_proposal(&entry.data) else {
            return Err(inconsistent(format!("entry {index} is too short")));
        };
        if entry.context.as_ref() == STATE_CONTEXT {
            changes.push(entry.data.slice(PROPOSAL_CLOCK_BYTES..));
            continue;
        }
        let stored = partition
            .read(offset, 1)
            .await
            .map_err(|source| ReplicaError::Partition {
                group: group.to_owned(),
                source,
            })?;
        let stored = stored.chunks.first().cloned().unwrap_or_default();
        // An entry whose append was refused (a duplicate, a bad sequence) left nothing.
        if same_batch(records, &stored) {
            offset += offset_count(records).unwrap_or(1);
        }
    }
    store.raise_commit(index);
    // Changes after the last entry the walk found are applied again by raft-rs, from the
    // commit index up; those up to it would not be.
    let checkpoint = AppliedCheckpoint {
        index,
        log_end_offset: end,
    };
    Ok((checkpoint, changes))
}
