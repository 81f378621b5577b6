//! Every share group's state on one partition this shard owns: the share-partitions, their
//! state log, and, on a replicated partition, how the state follows the partition's Raft
//! group.
//!
//! Replicated partitions (issue 17): a change is not appended to the local state log but
//! proposed to the partition's replicas (`Replica::propose_state`), and every replica,
//! the leader included, appends it to its own state log when it is committed
//! ([`AttachedState`]). Each replica also keeps the committed state in memory. Only the
//! partition's leader serves, from its own copy: at the start of each of its terms it takes
//! the committed state, so what a deposed leader changed without a majority is gone, and
//! records acquired under another leader come back available (their locks are that
//! leader's). An acknowledgement is answered once committed; delivery counts are proposed
//! without waiting, as they are appended without waiting on a single node.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::{Rc, Weak};

use bytes::Bytes;
use event_listener::Event;
use uuid::Uuid;

use super::share_config::{AutoOffsetReset, ShareGroupConfig};
use super::share_partition::{
    AckBatch, AckError, AcquiredRange, BatchSpan, Outcome, SharePartition, StateChange,
};
use super::share_state_store::{ReplicatedChange, ShareStateStore, StoredRecord};
use super::ShareError;
use crate::log::PartitionLog;
use crate::protocol::batch_layout::{
    ATTRIBUTE_CONTROL, LOG_OVERHEAD, OFFSET_ATTRIBUTES, OFFSET_LAST_OFFSET_DELTA, OFFSET_LENGTH,
};
use crate::replica::attached_state::{AttachedState, DurableMark};
use crate::replica::{Committed, Replica, ReplicaError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTarget {
    Earliest,
    Latest,
    Offset(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionSummary {
    pub topic: String,
    pub partition: i32,
    pub start_offset: i64,
    pub high_watermark: i64,
    /// Records acquired by a member, or released and waiting for redelivery.
    pub in_flight: usize,
    /// Records above the start offset that are already acknowledged or archived.
    pub done: usize,
}

impl PartitionSummary {
    /// Records below the high watermark not yet acknowledged or archived (the lag of
    /// KIP-1226).
    pub fn lag(&self) -> i64 {
        let done = i64::try_from(self.done).unwrap_or(i64::MAX);
        (self.high_watermark - self.start_offset)
            .saturating_sub(done)
            .max(0)
    }
}

/// Every share group's state on one partition this shard owns.
pub struct PartitionShares {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
    pub log: PartitionLog,
    store: ShareStateStore,
    /// The state served (the leader's, on a replicated partition).
    groups: RefCell<HashMap<String, SharePartition>>,
    /// The partition's replica, when it is replicated.
    replica: Option<Rc<Replica>>,
    /// On a replicated partition: the state as its committed changes left it.
    committed: RefCell<HashMap<String, SharePartition>>,
    /// The term whose leader `groups` belongs to (0: none yet).
    serving_term: Cell<u64>,
    /// Most records in flight per share group on this partition.
    record_locks_max: usize,
    /// Notified when records become available again (wakes long-polling share fetches).
    released: Event,
    /// The topic was deleted: a fetch that still holds this partition acquires nothing, and
    /// the timers no longer compact its state log.
    deleted: Cell<bool>,
}

/// Where a persisted change can be awaited.
pub enum Durable {
    /// Nothing was written.
    Nothing,
    /// Appended to this node's state log: the log and the change's last offset.
    Local(PartitionLog, i64),
    /// Proposed to the partition's replicas: resolves once committed.
    Replicated(Committed),
}

/// Waits until `durable` is on disk (on a majority of replicas, if replicated).
pub async fn wait_durable(durable: Durable) -> Result<(), ShareError> {
    match durable {
        Durable::Nothing => Ok(()),
        Durable::Local(log, offset) => log
            .wait_durable(offset)
            .await
            .map_err(|e| ShareError::Storage(format!("persisting share state: {e}"))),
        Durable::Replicated(committed) => {
            committed.await.map(|_| ()).map_err(|e| replica_error(&e))
        }
    }
}

fn replica_error(error: &ReplicaError) -> ShareError {
    match error {
        ReplicaError::NotLeader { .. } | ReplicaError::Superseded { .. } => {
            ShareError::NotLeader(error.to_string())
        }
        _ => ShareError::Storage(error.to_string()),
    }
}

/// Where the opened state of a partition comes from and goes to.
pub struct OpenShares {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
    pub log: PartitionLog,
    pub dir: PathBuf,
    pub record_locks_max: usize,
    pub replica: Option<Rc<Replica>>,
}

/// The receiver of a replicated partition's committed share state changes.
struct CommittedChanges(Weak<PartitionShares>);

impl AttachedState for CommittedChanges {
    fn apply(&self, change: Bytes) -> Result<Option<DurableMark>, String> {
        match self.0.upgrade() {
            Some(shares) => shares.apply_committed(&change).map_err(|e| e.to_string()),
            // The topic is being deleted; its state goes with it.
            None => Ok(None),
        }
    }

    fn snapshot(&self) -> Result<Vec<Bytes>, String> {
        match self.0.upgrade() {
            Some(shares) => shares.committed_snapshot().map_err(|e| e.to_string()),
            None => Ok(Vec::new()),
        }
    }
}

/// Records acquired by one ShareFetch from one partition.
#[derive(Debug, Default)]
pub struct Acquired {
    /// Whole batches holding the acquired records.
    pub records: Bytes,
    pub ranges: Vec<AcquiredRange>,
}

/// The header fields read here end with lastOffsetDelta.
const BATCH_HEADER_BYTES: usize = OFFSET_LAST_OFFSET_DELTA + 4;

/// The batches of `data` with their byte ranges; stops at a truncated batch.
fn batch_spans(data: &[u8]) -> Vec<(BatchSpan, std::ops::Range<usize>)> {
    let mut spans = Vec::new();
    let mut position = 0usize;
    while let Some(header) = data.get(position..position + BATCH_HEADER_BYTES) {
        let field = |range: std::ops::Range<usize>| header.get(range).unwrap_or(&[]);
        let base = i64::from_be_bytes(field(0..8).try_into().unwrap_or([0; 8]));
        let length = i32::from_be_bytes(
            field(OFFSET_LENGTH..OFFSET_LENGTH + 4)
                .try_into()
                .unwrap_or([0; 4]),
        );
        let attributes = i16::from_be_bytes(
            field(OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2)
                .try_into()
                .unwrap_or([0; 2]),
        );
        let delta = i32::from_be_bytes(
            field(OFFSET_LAST_OFFSET_DELTA..OFFSET_LAST_OFFSET_DELTA + 4)
                .try_into()
                .unwrap_or([0; 4]),
        );
        let Some(end) = usize::try_from(length)
            .ok()
            .and_then(|l| (position + LOG_OVERHEAD).checked_add(l))
        else {
            break;
        };
        if end > data.len() || length < 0 {
            break;
        }
        spans.push((
            BatchSpan {
                base,
                last: base + i64::from(delta),
                control: attributes & ATTRIBUTE_CONTROL != 0,
            },
            position..end,
        ));
        position = end;
    }
    spans
}

impl PartitionShares {
    /// Opens (or creates) the partition's state log and replays it; a replicated partition's
    /// state is then attached to its replica, which applies the committed changes the log
    /// may not have yet.
    pub async fn open(open: OpenShares) -> Result<Rc<PartitionShares>, ShareError> {
        let (store, replayed) = ShareStateStore::open(open.dir, open.topic_id).await?;
        let groups: HashMap<String, SharePartition> = replayed
            .iter()
            .map(|(group, changes)| (group.clone(), SharePartition::replay(changes)))
            .collect();
        let committed = match open.replica {
            Some(_) => groups.clone(),
            None => HashMap::new(),
        };
        let shares = Rc::new(PartitionShares {
            topic: open.topic,
            topic_id: open.topic_id,
            partition: open.partition,
            log: open.log,
            store,
            groups: RefCell::new(groups),
            replica: open.replica,
            committed: RefCell::new(committed),
            serving_term: Cell::new(0),
            record_locks_max: open.record_locks_max,
            released: Event::new(),
            deleted: Cell::new(false),
        });
        if let Some(replica) = &shares.replica {
            replica
                .attach_state(Rc::new(CommittedChanges(Rc::downgrade(&shares))))
                .map_err(|e| ShareError::Storage(e.to_string()))?;
        }
        Ok(shares)
    }

    /// On every replica of a replicated partition: a committed change.
    fn apply_committed(&self, change: &[u8]) -> Result<Option<DurableMark>, ShareError> {
        if self.deleted.get() {
            return Ok(None);
        }
        let change = ReplicatedChange::decode(change)?;
        let mark = self.store.append(&change.group, &change.records)?;
        let mut committed = self.committed.borrow_mut();
        let mut changes = Vec::new();
        for record in &change.records {
            match record {
                StoredRecord::Change(c) => changes.push(c),
                StoredRecord::GroupDeleted => {
                    committed.remove(&change.group);
                    changes.clear();
                }
                StoredRecord::Topic { .. } | StoredRecord::SnapshotComplete { .. } => {}
            }
        }
        if !changes.is_empty() {
            committed
                .entry(change.group.clone())
                .or_insert_with(|| SharePartition::new(0))
                .apply_changes(changes);
        }
        Ok(Some(mark))
    }

    /// The committed state as one change per group, each replacing whatever state the group
    /// has where it is applied.
    fn committed_snapshot(&self) -> Result<Vec<Bytes>, ShareError> {
        let committed = self.committed.borrow();
        committed
            .iter()
            .map(|(group, sp)| {
                let mut records = vec![StoredRecord::GroupDeleted];
                records.extend(sp.snapshot().into_iter().map(StoredRecord::Change));
                let change = ReplicatedChange {
                    group: group.clone(),
                    records,
                };
                change.encode().map(Bytes::from)
            })
            .collect()
    }

    /// Whether this shard serves the partition's share state: always on a single node; on
    /// a replicated partition only as its leader, once that applied everything committed
    /// before its term. A leader's first call in a term takes the committed state.
    fn serving(&self) -> bool {
        let Some(replica) = &self.replica else {
            return true;
        };
        if !replica.is_readable_leader() {
            return false;
        }
        let term = replica.term();
        if self.serving_term.get() != term {
            *self.groups.borrow_mut() = self.committed.borrow().clone();
            self.serving_term.set(term);
            self.notify_released();
        }
        true
    }

    fn not_leader(&self) -> ShareError {
        ShareError::NotLeader(format!(
            "this broker does not lead {}-{}",
            self.topic, self.partition
        ))
    }

    /// Writes `records` of `group`: to the local state log, or proposed to the replicas.
    fn record(&self, group: &str, records: Vec<StoredRecord>) -> Result<Durable, ShareError> {
        let Some(replica) = &self.replica else {
            let (log, offset) = self.store.append(group, &records)?;
            return Ok(Durable::Local(log, offset));
        };
        let change = ReplicatedChange {
            group: group.to_owned(),
            records,
        }
        .encode()?;
        replica
            .propose_state(&change, crate::io::clock::now_ms())
            .map(Durable::Replicated)
            .map_err(|e| replica_error(&e))
    }

    pub fn is_replicated(&self) -> bool {
        self.replica.is_some()
    }

    /// Runs `f` on an existing group's share-partition, where this shard serves it.
    pub fn with_group<T>(
        &self,
        group: &str,
        f: impl FnOnce(&mut SharePartition) -> T,
    ) -> Option<T> {
        if !self.serving() {
            return None;
        }
        let mut groups = self.groups.borrow_mut();
        groups.get_mut(group).map(f)
    }

    /// Runs `f` on the group's share-partition, creating it at the configured reset
    /// position on first use.
    fn with_group_or_init<T>(
        &self,
        group: &str,
        reset: AutoOffsetReset,
        f: impl FnOnce(&mut SharePartition) -> T,
    ) -> Result<T, ShareError> {
        if !self.serving() {
            return Err(self.not_leader());
        }
        let mut groups = self.groups.borrow_mut();
        if !groups.contains_key(group) {
            let start = match reset {
                AutoOffsetReset::Earliest => self.log.log_start_offset(),
                AutoOffsetReset::Latest => self.log.high_watermark(),
            };
            // Like a delivery count, the start need not be durable before records go out.
            let _ = self.record(
                group,
                vec![StoredRecord::Change(StateChange::Start { offset: start })],
            )?;
            groups.insert(group.to_owned(), SharePartition::new(start));
        }
        let sp = groups
            .get_mut(group)
            .ok_or_else(|| ShareError::Storage("share-partition vanished".to_owned()))?;
        sp.clamp_to_log(self.log.log_start_offset());
        Ok(f(sp))
    }

    /// The groups with state here (committed state, on a replicated partition).
    pub fn group_ids(&self) -> Vec<String> {
        match self.replica {
            Some(_) => self.committed.borrow().keys().cloned().collect(),
            None => self.groups.borrow().keys().cloned().collect(),
        }
    }

    /// Persists `changes` of `group`.
    pub fn persist(&self, group: &str, changes: &[StateChange]) -> Result<Durable, ShareError> {
        if changes.is_empty() {
            return Ok(Durable::Nothing);
        }
        let records = changes.iter().cloned().map(StoredRecord::Change).collect();
        self.record(group, records)
    }

    pub fn notify_released(&self) {
        self.released.notify(usize::MAX);
    }

    /// Resolves when records may have become available (released or newly written).
    pub fn changed(&self) -> impl std::future::Future<Output = ()> + 'static {
        let listener = self.released.listen();
        let data = self.log.wait_for_data(self.log.high_watermark());
        futures_lite::future::or(listener, data)
    }

    /// Acquires records for `member`: reads from the first candidate offset, then acquires
    /// what is still available once the read returns.
    pub async fn acquire(
        &self,
        group: &str,
        member: &Rc<str>,
        config: &ShareGroupConfig,
        bytes_max: usize,
        records_max: usize,
    ) -> Result<Acquired, ShareError> {
        if self.deleted.get() {
            return Ok(Acquired::default());
        }
        let high_watermark = self.log.high_watermark();
        let candidate = self.with_group_or_init(group, config.auto_offset_reset, |sp| {
            sp.next_candidate(high_watermark)
        })?;
        let Some(from) = candidate else {
            return Ok(Acquired::default());
        };
        let read = self.log.read(from, bytes_max.max(1)).await.map_err(|e| {
            ShareError::Storage(format!("reading {}-{}: {e}", self.topic, self.partition))
        })?;
        let data = crate::log::join_chunks(&read.chunks);
        let spans = batch_spans(&data);
        let batches: Vec<BatchSpan> = spans.iter().map(|(span, _)| *span).collect();
        let deadline_ms = crate::io::clock::now_ms().saturating_add(config.lock_duration_ms);
        let (ranges, outcome) = self.with_group_or_init(group, config.auto_offset_reset, |sp| {
            sp.acquire(
                &batches,
                member,
                deadline_ms,
                records_max,
                self.record_locks_max,
            )
        })?;
        if ranges.is_empty() {
            return Ok(Acquired::default());
        }
        // Delivery counts need not be durable before the records go out (see the store).
        let _ = self.persist(group, &outcome.changes)?;
        let mut records = Vec::new();
        for (span, bytes) in &spans {
            if ranges
                .iter()
                .any(|r| r.first <= span.last && span.base <= r.last)
            {
                records.extend_from_slice(data.get(bytes.clone()).unwrap_or(&[]));
            }
        }
        Ok(Acquired {
            records: Bytes::from(records),
            ranges,
        })
    }

    /// Applies a member's acknowledgements; persists what changed.
    pub fn acknowledge(
        &self,
        group: &str,
        member: &str,
        batches: &[AckBatch],
        config: &ShareGroupConfig,
    ) -> Result<Result<(Outcome, Durable), AckError>, ShareError> {
        let now_ms = crate::io::clock::now_ms();
        let applied = self.with_group(group, |sp| {
            sp.acknowledge(
                member,
                batches,
                config.lock_duration_ms,
                now_ms,
                config.delivery_count_limit,
            )
        });
        let outcome = match applied {
            None => {
                return Ok(Err(AckError::InvalidRecordState(
                    batches.first().map_or(-1, |b| b.first),
                )))
            }
            Some(Err(e)) => return Ok(Err(e)),
            Some(Ok(outcome)) => outcome,
        };
        if outcome.released {
            self.notify_released();
        }
        let durable = self.persist(group, &outcome.changes)?;
        Ok(Ok((outcome, durable)))
    }

    pub fn summary(&self, group: &str) -> Option<PartitionSummary> {
        let high_watermark = self.log.high_watermark();
        self.with_group(group, |sp| PartitionSummary {
            topic: self.topic.clone(),
            partition: self.partition,
            start_offset: sp.start_offset(),
            high_watermark,
            in_flight: sp.pending_count(),
            done: sp.done_count(),
        })
    }

    pub fn reset_start(&self, group: &str, to: ResetTarget) -> Result<Durable, ShareError> {
        if !self.serving() {
            return Err(self.not_leader());
        }
        let offset = match to {
            ResetTarget::Earliest => self.log.log_start_offset(),
            ResetTarget::Latest => self.log.high_watermark(),
            ResetTarget::Offset(o) => {
                o.clamp(self.log.log_start_offset(), self.log.high_watermark())
            }
        };
        {
            let mut groups = self.groups.borrow_mut();
            let sp = groups
                .entry(group.to_owned())
                .or_insert_with(|| SharePartition::new(offset));
            *sp = SharePartition::new(offset);
        }
        self.notify_released();
        self.persist(group, &[StateChange::Start { offset }])
    }

    /// Forgets the group's state here; `None` if there was none (or another replica
    /// serves it).
    pub fn delete_group(&self, group: &str) -> Result<Option<Durable>, ShareError> {
        if !self.serving() || self.groups.borrow_mut().remove(group).is_none() {
            return Ok(None);
        }
        self.record(group, vec![StoredRecord::GroupDeleted])
            .map(Some)
    }

    /// Compacts the state log when it grew past `threshold_bytes` since its last snapshot.
    pub async fn compact_if_needed(&self, threshold_bytes: u64) -> Result<(), ShareError> {
        // A deleted topic's log is closed and its directory going; a new generation would
        // only bring the directory back.
        if self.deleted.get() || !self.store.needs_compaction(threshold_bytes) {
            return Ok(());
        }
        // A replicated partition's log holds committed changes only, and so does its snapshot.
        let state = match self.replica {
            Some(_) => &self.committed,
            None => &self.groups,
        };
        self.store
            .compact(|| {
                state
                    .borrow()
                    .iter()
                    .map(|(group, sp)| (group.clone(), sp.snapshot()))
                    .collect()
            })
            .await
    }

    pub async fn close(&self) {
        self.store.close().await;
    }

    /// The topic was deleted: closes the state log and removes it durably.
    pub async fn delete(&self) -> Result<(), ShareError> {
        self.deleted.set(true);
        self.store.delete().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_spans_reads_headers_and_stops_at_truncation() {
        let mut data = crate::log::testing::make_batch(3, 10, 0);
        data[0..8].copy_from_slice(&5i64.to_be_bytes());
        let len = data.len();
        let mut two = data.clone();
        two.extend_from_slice(&data[..len / 2]);
        let spans = batch_spans(&two);
        assert_eq!(spans.len(), 1);
        assert_eq!(
            spans[0].0,
            BatchSpan {
                base: 5,
                last: 7,
                control: false
            }
        );
        assert_eq!(spans[0].1, 0..len);
    }
}
