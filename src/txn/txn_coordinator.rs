//! The per-shard transaction coordinator: the state of every transactional id this shard
//! coordinates, the requests of their producers, and the completion of their transactions
//! (markers into every partition, offsets into every group).
//!
//! Concurrency contract: owned by one shard (`!Send`); `RefCell`s are never borrowed across
//! an `.await`. Each state change is applied in memory and appended to the state log in one
//! synchronous step, then answered once durable. One task at a time completes a given
//! transaction (`completing`); anyone else asking is told CONCURRENT_TRANSACTIONS, which
//! clients retry.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use futures_channel::oneshot;

use super::txn_host::TxnHost;
use super::txn_message::TxnMessage;
use super::txn_metadata::{InitStep, PendingOffset, TxnMetadata, TxnState};
use super::txn_store::{TxnRecord, TxnStore};
use super::{coordinator_shard, TxnError, TRANSACTION_TIMEOUT_MS_MAX};
use crate::group::offset_record::CommittedOffset;
use crate::group::offsets_partition;
use crate::io::clock::now_ms;
use crate::replica::state_partitions::Serving;

/// Transactional id → partitions whose offsets it commits to one group.
type PendingByTxn = HashMap<String, BTreeSet<(String, i32)>>;

// Kept reachable here, where `verify` returns it; it is defined with the message it answers.
pub use super::txn_message::Verified;

/// Where [`TxnCoordinator::write_markers`] sends markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerRoute {
    /// The coordinator's own call: each partition's marker goes to the node leading it.
    ToLeaders,
    /// A call from another shard or node: the partitions are this node's to write (never
    /// passed on again, so two nodes with different views of a leader cannot bounce a
    /// marker between them); a replica that does not lead refuses, and the coordinator
    /// retries.
    ThisNode,
}

pub struct TxnCoordinator {
    shard_id: usize,
    shard_count: usize,
    /// The transactional ids this node coordinates (all of them on a single node).
    node_keys: crate::group::NodeKeys,
    store: TxnStore,
    txns: RefCell<HashMap<String, TxnMetadata>>,
    /// Transactional ids whose markers a task is writing now.
    completing: RefCell<HashSet<String>>,
    loaded: Cell<bool>,
    peers: RefCell<Vec<async_channel::Sender<TxnMessage>>>,
    /// For the groups this shard coordinates: the partitions each open transaction commits
    /// offsets for (KIP-447). An OffsetFetch requiring stable offsets is told
    /// UNSTABLE_OFFSET_COMMIT for them until the transaction ends.
    pending_offsets: RefCell<HashMap<String, PendingByTxn>>,
}

/// Removes a transactional id from `completing` however its completion ends.
struct Completing<'a> {
    coordinator: &'a TxnCoordinator,
    transactional_id: String,
}

impl Drop for Completing<'_> {
    fn drop(&mut self) {
        self.coordinator
            .completing
            .borrow_mut()
            .remove(&self.transactional_id);
    }
}

impl TxnCoordinator {
    pub fn new(
        data_dir: &std::path::Path,
        shard_id: usize,
        shard_count: usize,
        node_keys: crate::group::NodeKeys,
    ) -> Self {
        TxnCoordinator {
            shard_id,
            shard_count: shard_count.max(1),
            node_keys,
            store: TxnStore::new(data_dir, shard_id, shard_count),
            txns: RefCell::new(HashMap::new()),
            completing: RefCell::new(HashSet::new()),
            loaded: Cell::new(false),
            peers: RefCell::new(Vec::new()),
            pending_offsets: RefCell::new(HashMap::new()),
        }
    }

    /// In a cluster of several nodes: transaction state lives in the replicated partitions
    /// of `TXN_STATE_TOPIC` (attached with [`Self::attach_state_replica`]), and this shard
    /// coordinates the transactional ids of the partitions it leads.
    pub fn with_replicated_state(mut self) -> Self {
        self.store.replicate();
        self
    }

    /// Hands this shard's replica of transaction-state partition `partition` over.
    pub fn attach_state_replica(
        &self,
        partition: u32,
        replica: std::rc::Rc<crate::replica::Replica>,
    ) {
        if let Some(replicas) = self.store.replicas() {
            replicas.attach(partition, replica);
        }
    }

    /// Forgets the replica of `partition` and the transactions it held.
    pub fn detach_state_replica(&self, partition: u32) {
        if let Some(replicas) = self.store.replicas() {
            if replicas.detach(partition) {
                self.forget_partition(partition);
            }
        }
    }

    /// Follows the leadership of the replicated state partitions (called by the timers
    /// task): drops the transactions of partitions led elsewhere now, and loads those of
    /// partitions this shard has come to lead. A loaded transaction left `Prepare*` is then
    /// completed by the timers task, as after a restart.
    pub async fn follow_state_leaders(&self) {
        let changes = self.store.leadership_changes();
        for partition in &changes.lost {
            tracing::info!(partition, "transaction-state partition led elsewhere");
            self.forget_partition(*partition);
        }
        for (partition, term) in changes.gained {
            self.forget_partition(partition);
            match self.store.load_partition(partition, term).await {
                Ok(Some(txns)) => {
                    let count = txns.len();
                    self.txns.borrow_mut().extend(txns);
                    tracing::info!(partition, term, count, "transaction-state partition loaded");
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(partition, error = %e, "loading a transaction-state partition")
                }
            }
        }
    }

    fn forget_partition(&self, partition: u32) {
        self.txns
            .borrow_mut()
            .retain(|id, _| offsets_partition(id) != partition);
    }

    /// Connects this shard to every shard's transaction inbox (index = shard id).
    pub fn connect(&self, peers: Vec<async_channel::Sender<TxnMessage>>) {
        *self.peers.borrow_mut() = peers;
    }

    /// Replays the state logs. Transactions found in a `Prepare*` state are completed by the
    /// timers task once the shard serves.
    pub async fn load(&self) -> Result<(), TxnError> {
        let txns = self.store.load().await?;
        let count = txns.len();
        *self.txns.borrow_mut() = txns;
        self.loaded.set(true);
        tracing::info!(shard_id = self.shard_id, count, "transaction state loaded");
        self.announce_pending_offsets().await
    }

    /// Tells each group's coordinator which offsets the loaded open transactions commit.
    /// The messages wait in the inboxes until those start serving, right after start-up.
    async fn announce_pending_offsets(&self) -> Result<(), TxnError> {
        let mut pending = Vec::new();
        for (transactional_id, m) in self.txns.borrow().iter() {
            if !matches!(m.state, TxnState::Ongoing | TxnState::PrepareCommit) {
                continue;
            }
            let mut by_group: BTreeMap<&str, Vec<(String, i32)>> = BTreeMap::new();
            for o in &m.offsets {
                by_group
                    .entry(&o.group)
                    .or_default()
                    .push((o.topic.clone(), o.partition));
            }
            for (group, partitions) in by_group {
                pending.push((group.to_owned(), transactional_id.clone(), partitions));
            }
        }
        for (group, transactional_id, partitions) in pending {
            self.announce_pending_offsets_to(group, &transactional_id, partitions)
                .await?;
        }
        Ok(())
    }

    /// Notes in `group`'s coordinator that `transactional_id` commits offsets of `partitions`.
    async fn announce_pending_offsets_to(
        &self,
        group: String,
        transactional_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<(), TxnError> {
        // A group another node coordinates: its coordinator noted them itself when it
        // staged them (TxnOffsetCommit), and keeps that note in memory only.
        if !self.node_keys.owns(&group) {
            return Ok(());
        }
        let owner = crate::group::coordinator_shard(&group, self.shard_count);
        if owner == self.shard_id {
            self.note_pending_offsets(&group, transactional_id, partitions);
            return Ok(());
        }
        let message = TxnMessage::PendingOffsets {
            group,
            transactional_id: transactional_id.to_owned(),
            partitions,
        };
        self.send(owner, message).await
    }

    /// On a group's coordinator: `transactional_id` commits offsets of `partitions` to
    /// `group` if it commits.
    pub fn note_pending_offsets(
        &self,
        group: &str,
        transactional_id: &str,
        partitions: impl IntoIterator<Item = (String, i32)>,
    ) {
        self.pending_offsets
            .borrow_mut()
            .entry(group.to_owned())
            .or_default()
            .entry(transactional_id.to_owned())
            .or_default()
            .extend(partitions);
    }

    /// On a group's coordinator: `transactional_id` ended; its offsets are settled.
    pub fn clear_pending_offsets(&self, group: &str, transactional_id: &str) {
        let mut pending = self.pending_offsets.borrow_mut();
        if let Some(by_txn) = pending.get_mut(group) {
            by_txn.remove(transactional_id);
            if by_txn.is_empty() {
                pending.remove(group);
            }
        }
    }

    /// Whether an open transaction commits an offset of `topic`-`partition` to `group`.
    pub fn is_offset_pending(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.pending_offsets
            .borrow()
            .get(group)
            .is_some_and(|by_txn| {
                by_txn
                    .values()
                    .any(|parts| parts.contains(&(topic.to_owned(), partition)))
            })
    }

    pub async fn close(&self) {
        self.loaded.set(false);
        self.store.close().await;
    }

    /// Whether this shard coordinates `transactional_id`: it hashes to this shard, on this
    /// node.
    pub fn is_coordinator(&self, transactional_id: &str) -> bool {
        coordinator_shard(transactional_id, self.shard_count) == self.shard_id
            && (self.store.replicas().is_some() || self.node_keys.owns(transactional_id))
            && self.store.serving(transactional_id) != Serving::No
    }

    fn check(&self, transactional_id: &str) -> Result<(), TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidTransactionalId);
        }
        if !self.is_coordinator(transactional_id) {
            return Err(TxnError::NotCoordinator(transactional_id.to_owned()));
        }
        if !self.loaded.get() || self.store.serving(transactional_id) == Serving::Loading {
            return Err(TxnError::LoadInProgress);
        }
        Ok(())
    }

    /// Applies `change` to the metadata of `transactional_id` and, when it says so, persists
    /// the result; the outcome of `change` is returned once the state is durable.
    async fn update<T>(
        &self,
        transactional_id: &str,
        change: impl FnOnce(&mut TxnMetadata) -> Result<(T, bool), TxnError>,
    ) -> Result<T, TxnError> {
        let (value, durable) = {
            let mut txns = self.txns.borrow_mut();
            let metadata = txns.get_mut(transactional_id).ok_or_else(|| {
                TxnError::InvalidProducerIdMapping {
                    transactional_id: transactional_id.to_owned(),
                    got: -1,
                }
            })?;
            let (value, changed) = change(metadata)?;
            let durable = if changed {
                metadata.last_update_ms = now_ms();
                Some(self.store.persist(transactional_id, metadata)?)
            } else {
                None
            };
            (value, durable)
        };
        if let Some(durable) = durable {
            durable.await?;
        }
        Ok(value)
    }

    /// InitProducerId with a transactional id: the producer id and epoch the new producer
    /// instance uses. An open transaction of an older instance is aborted first, which fences
    /// that instance (its epoch is now old).
    pub async fn init_producer_id<H: TxnHost>(
        &self,
        shard: &H,
        transactional_id: &str,
        timeout_ms: i32,
        expected: (i64, i16),
    ) -> Result<(i64, i16), TxnError> {
        self.check(transactional_id)?;
        if !(1..=TRANSACTION_TIMEOUT_MS_MAX).contains(&timeout_ms) {
            return Err(TxnError::InvalidTransactionTimeout {
                got: timeout_ms,
                max: TRANSACTION_TIMEOUT_MS_MAX,
            });
        }
        // Each pass moves the transaction at least one step towards `Ready`.
        loop {
            let known = self.txns.borrow().contains_key(transactional_id);
            if !known {
                let producer_id = shard.allocate_producer_id().await?;
                let durable = {
                    let mut txns = self.txns.borrow_mut();
                    if txns.contains_key(transactional_id) {
                        None // another request created it meanwhile: start over
                    } else {
                        let mut metadata = TxnMetadata::new(producer_id, timeout_ms);
                        metadata.last_update_ms = now_ms();
                        let durable = self.store.persist(transactional_id, &metadata)?;
                        txns.insert(transactional_id.to_owned(), metadata);
                        Some(durable)
                    }
                };
                match durable {
                    Some(durable) => {
                        durable.await?;
                        return Ok((producer_id, 0));
                    }
                    None => continue,
                }
            }
            let step = self.update(transactional_id, |m| {
                let step = m.init(timeout_ms, expected)?;
                match step {
                    InitStep::Ready => Ok(((step, m.producer_id, m.epoch, None), true)),
                    InitStep::AbortFirst => {
                        let claim = self.claim(transactional_id)?;
                        m.fence_and_abort();
                        Ok(((step, m.producer_id, m.epoch, Some(claim)), true))
                    }
                    _ => Ok(((step, m.producer_id, m.epoch, None), false)),
                }
            });
            match step.await? {
                (InitStep::Ready, producer_id, epoch, _) => return Ok((producer_id, epoch)),
                (InitStep::AbortFirst, _, _, Some(claim)) => {
                    self.finish(shard, transactional_id, claim).await?;
                }
                (InitStep::AbortFirst | InitStep::CompleteFirst, _, _, _) => {
                    self.complete(shard, transactional_id).await?;
                }
                (InitStep::NeedProducerId, _, _, _) => {
                    let producer_id = shard.allocate_producer_id().await?;
                    return self
                        .update(transactional_id, |m| {
                            m.restart_with(producer_id, timeout_ms);
                            Ok(((m.producer_id, m.epoch), true))
                        })
                        .await;
                }
            }
        }
    }

    /// AddPartitionsToTxn and AddOffsetsToTxn (which adds the group's offsets).
    pub async fn add(
        &self,
        transactional_id: &str,
        producer: (i64, i16),
        partitions: &[(String, i32)],
        group: Option<&str>,
    ) -> Result<(), TxnError> {
        self.check(transactional_id)?;
        let now = now_ms();
        self.update(transactional_id, |m| {
            m.check_producer(transactional_id, producer.0, producer.1)?;
            Ok(((), m.add(partitions, group, now)?))
        })
        .await
    }

    /// AddPartitionsToTxn's verify-only path (KIP-890): whether each partition is part of
    /// the producer's ongoing transaction.
    pub fn verify(
        &self,
        transactional_id: &str,
        producer: (i64, i16),
        partitions: Vec<(String, i32)>,
    ) -> Result<Verified, TxnError> {
        self.check(transactional_id)?;
        let txns = self.txns.borrow();
        let metadata =
            txns.get(transactional_id)
                .ok_or_else(|| TxnError::InvalidProducerIdMapping {
                    transactional_id: transactional_id.to_owned(),
                    got: producer.0,
                })?;
        metadata.check_producer(transactional_id, producer.0, producer.1)?;
        if matches!(
            metadata.state,
            TxnState::PrepareCommit | TxnState::PrepareAbort
        ) {
            return Err(TxnError::ConcurrentTransactions);
        }
        Ok(partitions
            .into_iter()
            .map(|p| {
                let added = metadata.state == TxnState::Ongoing && metadata.partitions.contains(&p);
                (
                    p,
                    if added {
                        Ok(())
                    } else {
                        Err(TxnError::TransactionAbortable)
                    },
                )
            })
            .collect())
    }

    /// TxnOffsetCommit, forwarded by the group's coordinator: offsets committed when the
    /// transaction commits.
    pub async fn stage_offsets(
        &self,
        transactional_id: &str,
        producer: (i64, i16),
        offsets: Vec<PendingOffset>,
    ) -> Result<(), TxnError> {
        self.check(transactional_id)?;
        let mut by_group: BTreeMap<String, Vec<(String, i32)>> = BTreeMap::new();
        for o in &offsets {
            by_group
                .entry(o.group.clone())
                .or_default()
                .push((o.topic.clone(), o.partition));
        }
        self.update(transactional_id, |m| {
            m.check_producer(transactional_id, producer.0, producer.1)?;
            m.stage_offsets(offsets)?;
            Ok(((), true))
        })
        .await?;
        // Sent before any SettleOffsets of this transaction can be, so the group's
        // coordinator never keeps a note of a transaction that already ended.
        for (group, partitions) in by_group {
            self.announce_pending_offsets_to(group, transactional_id, partitions)
                .await?;
        }
        Ok(())
    }

    /// EndTxn: prepares the commit or abort durably, then completes it.
    pub async fn end_txn<H: TxnHost>(
        &self,
        shard: &H,
        transactional_id: &str,
        producer: (i64, i16),
        commit: bool,
    ) -> Result<(), TxnError> {
        self.check(transactional_id)?;
        let claim = self
            .update(transactional_id, |m| {
                m.check_producer(transactional_id, producer.0, producer.1)?;
                if !m.end(commit)? {
                    return Ok((None, false));
                }
                Ok((Some(self.claim(transactional_id)?), true))
            })
            .await?;
        match claim {
            Some(claim) => self.finish(shard, transactional_id, claim).await,
            None => Ok(()),
        }
    }

    /// Writes the markers (and, for a commit, the offsets) of a transaction in a `Prepare*`
    /// state, then records it complete.
    pub async fn complete<H: TxnHost>(
        &self,
        shard: &H,
        transactional_id: &str,
    ) -> Result<(), TxnError> {
        let claim = self.claim(transactional_id)?;
        self.finish(shard, transactional_id, claim).await
    }

    /// Makes the caller the one task completing `transactional_id`'s transaction. Claimed in
    /// the same step as the `Prepare*` state is set, so the timers task never takes over a
    /// transaction whose EndTxn is still waiting for its state to be durable.
    fn claim(&self, transactional_id: &str) -> Result<Completing<'_>, TxnError> {
        if !self
            .completing
            .borrow_mut()
            .insert(transactional_id.to_owned())
        {
            return Err(TxnError::ConcurrentTransactions);
        }
        Ok(Completing {
            coordinator: self,
            transactional_id: transactional_id.to_owned(),
        })
    }

    /// [`TxnCoordinator::complete`] for a claimed transaction.
    async fn finish<H: TxnHost>(
        &self,
        shard: &H,
        transactional_id: &str,
        _claim: Completing<'_>,
    ) -> Result<(), TxnError> {
        let Some(metadata) = self.txns.borrow().get(transactional_id).cloned() else {
            return Ok(());
        };
        let commit = match metadata.state {
            TxnState::PrepareCommit => true,
            TxnState::PrepareAbort => false,
            _ => return Ok(()),
        };
        let mut partitions: Vec<(String, i32)> = metadata.partitions.iter().cloned().collect();
        partitions.sort();
        self.write_markers(
            shard,
            MarkerRoute::ToLeaders,
            metadata.producer_id,
            metadata.epoch,
            commit,
            partitions,
        )
        .await?;
        self.settle_offsets(shard, transactional_id, &metadata, commit)
            .await?;
        self.update(transactional_id, |m| {
            m.complete();
            Ok(((), true))
        })
        .await?;
        tracing::debug!(%transactional_id, commit, "transaction completed");
        Ok(())
    }

    /// Sends each partition's marker to the shard that owns it, on this node through the
    /// shards' channels and on another node through that node's cluster RPC, and waits for
    /// all. Any failure (a node down) fails the whole call; the transaction stays prepared
    /// and the timers task completes it again later, appending a second marker where one
    /// was written already (control batches of an ended transaction change nothing for a
    /// consumer, as when Kafka's coordinator retries WriteTxnMarkers).
    /// Also how a node answers another node's request for its own partitions.
    pub async fn write_markers<H: TxnHost>(
        &self,
        shard: &H,
        route: MarkerRoute,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        partitions: Vec<(String, i32)>,
    ) -> Result<(), TxnError> {
        let mut by_shard: BTreeMap<usize, Vec<(String, i32)>> = BTreeMap::new();
        let mut by_node: BTreeMap<u64, Vec<(String, i32)>> = BTreeMap::new();
        for (topic, partition) in partitions {
            let remote = match route {
                MarkerRoute::ToLeaders => shard.remote_node_of(&topic, partition),
                MarkerRoute::ThisNode => None,
            };
            if let Some(node) = remote {
                by_node.entry(node).or_default().push((topic, partition));
                continue;
            }
            let owner = shard.owner_of(&topic, partition);
            by_shard.entry(owner).or_default().push((topic, partition));
        }
        let local = by_shard.remove(&self.shard_id);
        let mut answers = Vec::new();
        for (owner, partitions) in by_shard {
            let (reply, answer) = oneshot::channel();
            self.send(
                owner,
                TxnMessage::WriteMarkers {
                    producer_id,
                    epoch,
                    commit,
                    partitions,
                    reply,
                },
            )
            .await?;
            answers.push(answer);
        }
        // Other nodes one after another (a cluster has few), while this shard writes its own.
        let remote = async {
            for (node, partitions) in by_node {
                shard
                    .write_remote_markers(node, producer_id, epoch, commit, partitions)
                    .await?;
            }
            Ok::<(), TxnError>(())
        };
        let local = async {
            match local {
                Some(partitions) => {
                    shard
                        .write_local_markers(producer_id, epoch, commit, partitions)
                        .await
                }
                None => Ok(()),
            }
        };
        let (remote, local) = futures_lite::future::zip(remote, local).await;
        local?;
        remote?;
        for answer in answers {
            answer.await.map_err(|_| TxnError::ShuttingDown)??;
        }
        Ok(())
    }

    /// In each group's coordinator, commits a committed transaction's offsets, or drops an
    /// aborted one's; either way they are no longer pending there.
    async fn settle_offsets<H: TxnHost>(
        &self,
        shard: &H,
        transactional_id: &str,
        metadata: &TxnMetadata,
        commit: bool,
    ) -> Result<(), TxnError> {
        let mut by_group: BTreeMap<&str, Vec<(String, i32, CommittedOffset)>> = BTreeMap::new();
        for group in &metadata.groups {
            by_group.entry(group).or_default();
        }
        for o in &metadata.offsets {
            by_group.entry(&o.group).or_default().push((
                o.topic.clone(),
                o.partition,
                o.offset.clone(),
            ));
        }
        for (group, mut offsets) in by_group {
            if !commit {
                offsets.clear();
            }
            let owner = crate::group::coordinator_shard(group, self.shard_count);
            if let Some(node) = shard.remote_group_node(group) {
                shard
                    .settle_remote_offsets(node, group, transactional_id, offsets)
                    .await?;
            } else if owner == self.shard_id {
                shard
                    .commit_local_offsets(group, transactional_id, offsets)
                    .await?;
            } else {
                let (reply, answer) = oneshot::channel();
                self.send(
                    owner,
                    TxnMessage::SettleOffsets {
                        group: group.to_owned(),
                        transactional_id: transactional_id.to_owned(),
                        offsets,
                        reply,
                    },
                )
                .await?;
                answer.await.map_err(|_| TxnError::ShuttingDown)??;
            }
        }
        Ok(())
    }

    /// Sends `message` to shard `shard_id`'s transaction inbox.
    pub async fn send(&self, shard_id: usize, message: TxnMessage) -> Result<(), TxnError> {
        let peer = self.peers.borrow().get(shard_id).cloned();
        match peer {
            Some(peer) => peer.send(message).await.map_err(|_| TxnError::ShuttingDown),
            None => Err(TxnError::ShuttingDown),
        }
    }

    /// Transactional ids whose transaction must be aborted (timed out at `now_ms`) or
    /// completed (a `Prepare*` state nobody is completing, e.g. after a restart).
    pub fn due(&self, now_ms: i64) -> (Vec<String>, Vec<String>) {
        let txns = self.txns.borrow();
        let completing = self.completing.borrow();
        let timed_out = txns
            .iter()
            .filter(|(_, m)| m.timed_out(now_ms))
            .map(|(id, _)| id.clone())
            .collect();
        let unfinished = txns
            .iter()
            .filter(|(id, m)| {
                matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
                    && !completing.contains(*id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        (timed_out, unfinished)
    }

    /// Aborts a transaction that outlived its timeout, bumping the epoch so that its producer
    /// is fenced (Kafka does the same).
    pub async fn abort_timed_out<H: TxnHost>(
        &self,
        shard: &H,
        transactional_id: &str,
    ) -> Result<(), TxnError> {
        let now = now_ms();
        let claim = self
            .update(transactional_id, |m| {
                if !m.timed_out(now) {
                    return Ok((None, false));
                }
                let claim = self.claim(transactional_id)?;
                m.fence_and_abort();
                Ok((Some(claim), true))
            })
            .await?;
        match claim {
            Some(claim) => {
                tracing::info!(%transactional_id, "aborting a transaction past its timeout");
                self.finish(shard, transactional_id, claim).await
            }
            None => Ok(()),
        }
    }

    /// Forgets transactional ids idle for `expiration_ms` with no transaction open (Kafka's
    /// `transactional.id.expiration.ms`); returns how many.
    pub fn expire_idle(&self, now_ms: i64, expiration_ms: i64) -> usize {
        let expired: Vec<String> = {
            let txns = self.txns.borrow();
            let completing = self.completing.borrow();
            txns.iter()
                .filter(|(id, m)| m.expired(now_ms, expiration_ms) && !completing.contains(*id))
                .map(|(id, _)| id.clone())
                .collect()
        };
        for transactional_id in &expired {
            // Not awaited: an expiry lost in a crash simply happens again.
            if let Err(e) = self.store.forget(transactional_id) {
                tracing::warn!(%transactional_id, error = %e, "recording an expiry failed");
                continue;
            }
            self.txns.borrow_mut().remove(transactional_id);
        }
        expired.len()
    }

    /// Compacts the state logs that grew large.
    pub async fn compact_if_large(&self) -> Result<(), TxnError> {
        self.store
            .compact_if_large(|partition| {
                self.txns
                    .borrow()
                    .iter()
                    .filter(|(id, _)| offsets_partition(id) == partition)
                    .map(|(id, m)| TxnRecord::Txn {
                        transactional_id: id.clone(),
                        metadata: m.clone(),
                    })
                    .collect()
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::clock::TestClock;

    #[test]
    fn a_transaction_is_due_for_abort_only_after_its_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_owned();
        let clock = TestClock::pinned_at(1_700_000_000_000);
        crate::io::block_on_local(async move {
            let coordinator = TxnCoordinator::new(&data_dir, 0, 1, crate::group::NodeKeys::ALL);
            coordinator.load().await.expect("load");
            let timeout_ms = 60_000;
            coordinator
                .txns
                .borrow_mut()
                .insert("tx".to_owned(), TxnMetadata::new(7, timeout_ms));
            coordinator
                .add("tx", (7, 0), &[("t".to_owned(), 0)], None)
                .await
                .expect("add");
            // The transaction started at the pinned time; no wall time passes in this test.
            clock.advance_ms(i64::from(timeout_ms));
            assert!(
                coordinator.due(now_ms()).0.is_empty(),
                "at its timeout: kept"
            );
            clock.advance_ms(1);
            assert_eq!(coordinator.due(now_ms()).0, ["tx"], "past it: aborted");
            coordinator.close().await;
        });
    }
}
