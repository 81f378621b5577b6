//! A shard's share-group state: the share-partitions of the partitions it owns (with their
//! state logs and the members' share sessions), and the membership of the share groups it
//! coordinates. Other shards reach it only through [`ShareMessage`]s.
//!
//! Concurrency contract: owned by one shard (`!Send`); `RefCell`s are never borrowed
//! across an `.await`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::rc::Rc;

use bytes::Bytes;
use event_listener::Event;
use futures_channel::oneshot;
use uuid::Uuid;

use super::partition_shares::{OpenShares, PartitionShares};
pub use super::partition_shares::{PartitionSummary, ResetTarget};
use super::share_config::{GroupOverrides, ShareBrokerConfig, ShareGroupConfig};
use super::share_group::{HeartbeatRequest, HeartbeatResult, ShareGroup};
use super::share_partition::Outcome;
use super::share_session::{FetchSessionRequest, SessionClock, ShareSessionCache, TopicPartition};
use super::share_state_store::{partition_dir, SHARE_DIR};
use super::ShareError;
use crate::log::PartitionLog;
use crate::replica::Replica;

/// Requests between shards about share groups.
pub enum ShareMessage {
    /// Append a dead-letter batch to a partition this shard owns; answer once durable.
    AppendDeadLetter {
        topic: String,
        partition: i32,
        batch: Bytes,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// From a group's coordinator to every shard: `members` were removed from the group
    /// (their heartbeats stopped), so their share sessions go too.
    DropSessions { group: String, members: Vec<String> },
    /// To the group's coordinator: change its overrides (`None` deletes one).
    AlterGroupConfig {
        group: String,
        ops: Vec<(String, Option<String>)>,
        validate_only: bool,
        reply: oneshot::Sender<Result<(), ShareError>>,
    },
    /// From the coordinator to every shard: a group's new overrides.
    SetGroupConfig {
        group: String,
        overrides: GroupOverrides,
    },
    /// A summary of a group's share-partitions on this shard.
    DescribePartitions {
        group: String,
        reply: oneshot::Sender<Vec<PartitionSummary>>,
    },
    /// Move a group's start offset on partitions this shard owns, creating the group's
    /// share-partition where it has none yet; each answer names its partition.
    ResetStart {
        group: String,
        starts: Vec<PartitionStart>,
        reply: oneshot::Sender<Vec<StartMoved>>,
    },
    /// Forget a group's share-partitions on this shard (of `topics`, or all); answers the
    /// topics it had state for.
    DeleteGroup {
        group: String,
        topics: Option<BTreeSet<String>>,
        reply: oneshot::Sender<Result<BTreeSet<String>, ShareError>>,
    },
    /// To a coordinator at start-up: groups with share-partition state on the sender.
    /// Membership is not persisted, so without this a group whose members all left before
    /// a restart could be neither listed, described nor deleted.
    KnownGroups { groups: Vec<String> },
}

/// Where one partition's start offset goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStart {
    pub topic: String,
    pub partition: i32,
    pub to: ResetTarget,
}

/// The outcome of moving one partition's start offset. It carries its partition so that
/// an answer can never be matched to the wrong request.
#[derive(Debug)]
pub struct StartMoved {
    pub topic: String,
    pub partition: i32,
    pub result: Result<(), ShareError>,
}

/// Where a partition whose share state is on disk stands at start-up, as its shard sees it.
pub enum StoredPartition {
    /// Its log is on this shard: the state is opened beside it.
    Local {
        topic_id: Uuid,
        log: PartitionLog,
        replica: Option<Rc<Replica>>,
    },
    /// Its topic is gone and this shard would own the partition: the state is removed.
    DeletedHere,
    /// Another shard's to judge.
    Elsewhere,
}

pub struct ShareState {
    shard_id: usize,
    shard_count: usize,
    /// The share groups this node coordinates (all of them on a single node).
    node_keys: crate::group::NodeKeys,
    /// With replicated offsets (a cluster), share groups are coordinated where consumer
    /// groups of the same id are: FindCoordinator has one answer for both kinds.
    group_coordinator: Option<Rc<crate::group::GroupCoordinator>>,
    data_dir: PathBuf,
    defaults: ShareGroupConfig,
    record_locks_max: usize,
    overrides: RefCell<BTreeMap<String, GroupOverrides>>,
    /// By topic id, so that a topic deleted and created again under its name starts afresh.
    partitions: RefCell<HashMap<(Uuid, i32), Rc<PartitionShares>>>,
    /// Partitions whose state log is being opened, and the event that says it is done.
    opening: RefCell<HashMap<(Uuid, i32), Rc<Event>>>,
    /// Share sessions of the members fetching from this shard's partitions.
    sessions: RefCell<ShareSessionCache>,
    /// Share groups this shard coordinates.
    groups: RefCell<HashMap<String, ShareGroup>>,
    peers: RefCell<Vec<async_channel::Sender<ShareMessage>>>,
    closed: Cell<bool>,
}

impl ShareState {
    pub fn new(
        data_dir: &std::path::Path,
        shard_id: usize,
        shard_count: usize,
        node_keys: crate::group::NodeKeys,
        config: &ShareBrokerConfig,
    ) -> ShareState {
        ShareState {
            shard_id,
            shard_count: shard_count.max(1),
            node_keys,
            group_coordinator: None,
            data_dir: data_dir.to_owned(),
            defaults: config.group_defaults.clone(),
            record_locks_max: config.partition_record_locks_max,
            overrides: RefCell::new(BTreeMap::new()),
            partitions: RefCell::new(HashMap::new()),
            opening: RefCell::new(HashMap::new()),
            sessions: RefCell::new(ShareSessionCache::new(config.sessions_max)),
            groups: RefCell::new(HashMap::new()),
            peers: RefCell::new(Vec::new()),
            closed: Cell::new(false),
        }
    }

    pub fn shard_id(&self) -> usize {
        self.shard_id
    }

    /// Coordinates the share groups `groups` coordinates the consumer groups of (a cluster
    /// whose offsets are replicated: see `group::offsets_replicas`).
    pub fn follow_group_coordinator(mut self, groups: Rc<crate::group::GroupCoordinator>) -> Self {
        self.group_coordinator = Some(groups);
        self
    }

    /// Connects this shard to every shard's share inbox (index = shard id).
    pub fn connect(&self, peers: Vec<async_channel::Sender<ShareMessage>>) {
        *self.peers.borrow_mut() = peers;
    }

    /// Sends `message` to shard `shard_id`.
    pub async fn send(&self, shard_id: usize, message: ShareMessage) -> Result<(), ShareError> {
        let peer = self.peers.borrow().get(shard_id).cloned();
        match peer {
            Some(peer) => peer
                .send(message)
                .await
                .map_err(|_| ShareError::ShuttingDown),
            None => Err(ShareError::ShuttingDown),
        }
    }

    pub fn shard_count(&self) -> usize {
        self.shard_count
    }

    /// Reads the stored group configs and opens the state logs of the partitions this
    /// shard owns, as `place` tells. State left behind by a deleted topic (by a crash during
    /// the deletion, or by a broker from before topic ids were recorded) is removed by the
    /// shard that would own its partition.
    pub async fn load(
        &self,
        place: impl Fn(&str, i32) -> StoredPartition,
    ) -> Result<(), ShareError> {
        *self.overrides.borrow_mut() = super::share_config::load_overrides(&self.data_dir)?;
        let root = self.data_dir.join(SHARE_DIR);
        let names: Vec<String> = match std::fs::read_dir(&root) {
            Ok(entries) => entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(ShareError::Storage(format!("listing {root:?}: {e}"))),
        };
        for name in names {
            let Some((topic, partition)) = name.rsplit_once('-') else {
                continue;
            };
            let Ok(partition) = partition.parse::<i32>() else {
                continue;
            };
            match place(topic, partition) {
                StoredPartition::Local {
                    topic_id,
                    log,
                    replica,
                } => {
                    self.partition_shares(topic, topic_id, partition, log, replica)
                        .await?;
                }
                StoredPartition::DeletedHere => {
                    tracing::info!(%topic, partition, "removing the share state of a deleted topic");
                    super::share_state_store::remove_dir(&root.join(&name)).await?;
                }
                StoredPartition::Elsewhere => {}
            }
        }
        self.announce_known_groups().await
    }

    /// Tells each group's coordinator that the group has state here. The messages wait in
    /// the coordinators' inboxes until those start serving, right after start-up.
    async fn announce_known_groups(&self) -> Result<(), ShareError> {
        let mut by_coordinator: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
        for shares in self.all_partition_shares() {
            for group in shares.group_ids() {
                let coordinator = crate::group::coordinator_shard(&group, self.shard_count);
                by_coordinator.entry(coordinator).or_default().insert(group);
            }
        }
        for (shard_id, groups) in by_coordinator {
            let groups: Vec<String> = groups.into_iter().collect();
            if shard_id == self.shard_id {
                self.register_groups(groups);
            } else {
                self.send(shard_id, ShareMessage::KnownGroups { groups })
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.closed.set(true);
        let all: Vec<Rc<PartitionShares>> = self
            .partitions
            .borrow_mut()
            .drain()
            .map(|(_, p)| p)
            .collect();
        for shares in all {
            shares.close().await;
        }
    }

    // ---- group configs ----------------------------------------------------------------

    pub fn group_config(&self, group: &str) -> ShareGroupConfig {
        match self.overrides.borrow().get(group) {
            Some(overrides) => self.defaults.with_overrides(overrides),
            None => self.defaults.clone(),
        }
    }

    pub fn group_overrides(&self, group: &str) -> GroupOverrides {
        self.overrides
            .borrow()
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether this shard coordinates share group `group`: it hashes to this shard, on
    /// this node.
    pub fn is_coordinator(&self, group: &str) -> bool {
        match &self.group_coordinator {
            Some(groups) => groups.is_coordinator(group),
            None => {
                crate::group::coordinator_shard(group, self.shard_count) == self.shard_id
                    && self.node_keys.owns(group)
            }
        }
    }

    /// On the coordinator: validates and stores a group's config change, then tells every
    /// shard.
    pub async fn alter_group_config(
        &self,
        group: &str,
        ops: Vec<(String, Option<String>)>,
        validate_only: bool,
    ) -> Result<(), ShareError> {
        if !self.is_coordinator(group) {
            return Err(ShareError::NotCoordinator(group.to_owned()));
        }
        let overrides = self.edit_group_config(group, ops)?;
        if validate_only {
            return Ok(());
        }
        super::share_config::store_overrides(&self.data_dir, group, &overrides).await?;
        for shard_id in 0..self.shard_count {
            let message = ShareMessage::SetGroupConfig {
                group: group.to_owned(),
                overrides: overrides.clone(),
            };
            if shard_id == self.shard_id {
                self.set_group_config(group, overrides.clone());
            } else {
                self.send(shard_id, message).await?;
            }
        }
        Ok(())
    }

    /// A group's overrides with `ops` applied (`None` deletes one), each checked.
    pub fn edit_group_config(
        &self,
        group: &str,
        ops: Vec<(String, Option<String>)>,
    ) -> Result<GroupOverrides, ShareError> {
        let mut overrides = self.group_overrides(group);
        let mut check = self.defaults.clone();
        for (name, value) in ops {
            match value {
                Some(value) => {
                    check.set(&name, &value)?;
                    overrides.insert(name, value);
                }
                None => {
                    // Deleting an unknown name is refused like setting one. (The default
                    // itself is not re-checked: a broker default may lie outside the
                    // range a group's own value must keep to, as consumer.* may.)
                    self.default_value(&name)?;
                    overrides.remove(&name);
                }
            }
        }
        Ok(overrides)
    }

    fn default_value(&self, name: &str) -> Result<String, ShareError> {
        self.defaults
            .describe()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| ShareError::InvalidConfig(format!("unknown group config {name}")))
    }

    pub fn set_group_config(&self, group: &str, overrides: GroupOverrides) {
        let mut all = self.overrides.borrow_mut();
        if overrides.is_empty() {
            all.remove(group);
        } else {
            all.insert(group.to_owned(), overrides);
        }
    }

    // ---- membership (coordinator) -----------------------------------------------------

    pub fn heartbeat(
        &self,
        group: &str,
        request: HeartbeatRequest,
        topic: &dyn Fn(&str) -> Option<(Uuid, i32)>,
        now_ms: i64,
    ) -> Result<HeartbeatResult, ShareError> {
        if group.is_empty() {
            return Err(ShareError::InvalidGroupId);
        }
        if !self.is_coordinator(group) {
            return Err(ShareError::NotCoordinator(group.to_owned()));
        }
        let mut groups = self.groups.borrow_mut();
        let share_group = groups.entry(group.to_owned()).or_default();
        share_group.heartbeat(request, topic, now_ms)
    }

    pub fn describe_group(&self, group: &str) -> Result<ShareGroup, ShareError> {
        if !self.is_coordinator(group) {
            return Err(ShareError::NotCoordinator(group.to_owned()));
        }
        self.groups
            .borrow()
            .get(group)
            .cloned()
            .ok_or_else(|| ShareError::GroupIdNotFound(group.to_owned()))
    }

    /// On the coordinator: groups another shard found state for at start-up.
    pub fn register_groups(&self, groups: Vec<String>) {
        let mut known = self.groups.borrow_mut();
        for group in groups {
            if self.is_coordinator(&group) {
                known.entry(group).or_default();
            }
        }
    }

    /// Whether `group` is a share group this shard coordinates.
    pub fn has_group(&self, group: &str) -> bool {
        self.groups.borrow().contains_key(group)
    }

    /// On the coordinator: checks that `group` exists (or creates it, with `create`) and
    /// has no members, as changing its start offsets requires.
    pub fn check_empty_group(&self, group: &str, create: bool) -> Result<(), ShareError> {
        if group.is_empty() {
            return Err(ShareError::InvalidGroupId);
        }
        if !self.is_coordinator(group) {
            return Err(ShareError::NotCoordinator(group.to_owned()));
        }
        let members_count = self.groups.borrow().get(group).map(|g| g.members.len());
        match members_count {
            Some(0) => Ok(()),
            Some(_) => Err(ShareError::NonEmptyGroup(group.to_owned())),
            None if create => {
                self.groups
                    .borrow_mut()
                    .insert(group.to_owned(), ShareGroup::default());
                Ok(())
            }
            None => Err(ShareError::GroupIdNotFound(group.to_owned())),
        }
    }

    /// Share groups this shard coordinates, with their state.
    pub fn list_groups(&self) -> Vec<(String, &'static str)> {
        self.groups
            .borrow()
            .iter()
            .map(|(id, g)| (id.clone(), g.state()))
            .collect()
    }

    /// On the coordinator: forgets an empty group's membership and config.
    pub async fn forget_group(&self, group: &str) -> Result<(), ShareError> {
        self.forget_membership(group)?;
        super::share_config::store_overrides(&self.data_dir, group, &GroupOverrides::new()).await
    }

    /// On the coordinator: forgets an empty group's membership (in a cluster, its config is
    /// the cluster's metadata, removed there).
    pub fn forget_membership(&self, group: &str) -> Result<(), ShareError> {
        self.check_empty_group(group, false)?;
        self.groups.borrow_mut().remove(group);
        Ok(())
    }

    /// Removes members whose heartbeats stopped for the group's session timeout (timer
    /// task); returns them by group, for [`ShareState::drop_sessions_everywhere`].
    pub fn expire_members(&self, now_ms: i64) -> Vec<(String, Vec<String>)> {
        let ids: Vec<String> = self.groups.borrow().keys().cloned().collect();
        let mut expired = Vec::new();
        for group in ids {
            let timeout = self.group_config(&group).session_timeout_ms;
            let members = match self.groups.borrow_mut().get_mut(&group) {
                Some(g) => g.expire(timeout, now_ms),
                None => continue,
            };
            for member in &members {
                tracing::info!(%group, %member, "share group member session expired");
            }
            if !members.is_empty() {
                expired.push((group, members));
            }
        }
        expired
    }

    /// Drops the share sessions of expired `members` on every shard, this one included, so
    /// no shard keeps sessions of members that are gone. Their acquired records are not
    /// released: like Kafka, whose coordinator does not tell share-partition leaders about
    /// fenced members, they come back when their locks expire.
    pub async fn drop_sessions_everywhere(&self, group: &str, members: &[String]) {
        for shard_id in 0..self.shard_count {
            if shard_id == self.shard_id {
                self.drop_sessions(group, members);
                continue;
            }
            let message = ShareMessage::DropSessions {
                group: group.to_owned(),
                members: members.to_vec(),
            };
            if let Err(e) = self.send(shard_id, message).await {
                tracing::debug!(%group, shard_id, error = %e, "share sessions not dropped");
            }
        }
    }

    /// Drops `members`' share sessions on this shard.
    pub fn drop_sessions(&self, group: &str, members: &[String]) {
        let dropped = self.sessions.borrow_mut().drop_members(group, members);
        if dropped > 0 {
            tracing::debug!(%group, dropped, "dropped the share sessions of expired members");
        }
    }

    // ---- share-partitions (partition leader) ------------------------------------------

    /// The share state of a partition this shard owns, opening its state log on first use
    /// (and attaching it to `replica`, the partition's replica if it is replicated).
    pub async fn partition_shares(
        &self,
        topic: &str,
        topic_id: Uuid,
        partition: i32,
        log: PartitionLog,
        replica: Option<Rc<Replica>>,
    ) -> Result<Rc<PartitionShares>, ShareError> {
        let key = (topic_id, partition);
        loop {
            if self.closed.get() {
                return Err(ShareError::ShuttingDown);
            }
            if let Some(shares) = self.partitions.borrow().get(&key) {
                return Ok(Rc::clone(shares));
            }
            let pending = self.opening.borrow().get(&key).cloned();
            match pending {
                Some(event) => {
                    let listener = event.listen();
                    if self.opening.borrow().contains_key(&key) {
                        listener.await;
                    }
                }
                None => break,
            }
        }
        let event = Rc::new(Event::new());
        self.opening.borrow_mut().insert(key, Rc::clone(&event));
        let opened = PartitionShares::open(OpenShares {
            topic: topic.to_owned(),
            topic_id,
            partition,
            log,
            dir: partition_dir(&self.data_dir, topic, partition),
            record_locks_max: self.record_locks_max,
            replica,
        })
        .await;
        self.opening.borrow_mut().remove(&key);
        event.notify(usize::MAX);
        let shares = opened?;
        self.partitions.borrow_mut().insert(key, Rc::clone(&shares));
        Ok(shares)
    }

    /// A deleted topic: forgets its share-partitions on this shard and removes their state
    /// logs durably, so that a topic created again under its name starts with no state, and
    /// takes its partitions out of the share sessions. Runs after the catalog dropped the
    /// topic, so no new share-partition of it can be opened; those being opened are waited
    /// for. Requests that hold one already fail on its closed logs. `owned_partitions` are
    /// the topic's partitions this shard owns, whose state directories it removes even when
    /// they were not opened since start-up.
    pub async fn drop_topic(
        &self,
        topic: &str,
        topic_id: Uuid,
        owned_partitions: &[i32],
    ) -> Result<(), ShareError> {
        loop {
            let opening = self
                .opening
                .borrow()
                .iter()
                .find(|((id, _), _)| *id == topic_id)
                .map(|(_, event)| Rc::clone(event));
            let Some(event) = opening else { break };
            let listener = event.listen();
            let still_opening = self
                .opening
                .borrow()
                .values()
                .any(|e| Rc::ptr_eq(e, &event));
            if still_opening {
                listener.await;
            }
        }
        let dropped: Vec<Rc<PartitionShares>> = {
            let mut partitions = self.partitions.borrow_mut();
            let keys: Vec<(Uuid, i32)> = partitions
                .keys()
                .filter(|(id, _)| *id == topic_id)
                .copied()
                .collect();
            keys.iter()
                .filter_map(|key| partitions.remove(key))
                .collect()
        };
        self.sessions.borrow_mut().forget_topic(topic_id);
        for shares in &dropped {
            shares.delete().await?;
        }
        // Partitions whose state was never opened since start-up may still have a directory.
        for &partition in owned_partitions {
            let dir = partition_dir(&self.data_dir, topic, partition);
            super::share_state_store::remove_dir(&dir).await?;
        }
        Ok(())
    }

    /// Every partition's share state on this shard.
    pub fn all_partition_shares(&self) -> Vec<Rc<PartitionShares>> {
        self.partitions.borrow().values().cloned().collect()
    }

    /// Applies a ShareFetch to the member's share session (see [`ShareSessionCache::fetch`])
    /// and returns the partitions the fetch covers.
    pub fn fetch_session(
        &self,
        group: &str,
        member: &str,
        request: FetchSessionRequest<'_>,
    ) -> Result<Vec<TopicPartition>, ShareError> {
        let clock = SessionClock {
            now_ms: crate::io::clock::now_ms(),
            idle_ms_max: self.group_config(group).session_timeout_ms,
        };
        self.sessions
            .borrow_mut()
            .fetch(group, member, request, clock)
    }

    /// Applies a ShareAcknowledge to the member's share session (see
    /// [`ShareSessionCache::acknowledge`]); returns the partitions of a session it closes.
    pub fn acknowledge_session(
        &self,
        group: &str,
        member: &str,
        epoch: i32,
    ) -> Result<Vec<TopicPartition>, ShareError> {
        let now_ms = crate::io::clock::now_ms();
        self.sessions
            .borrow_mut()
            .acknowledge(group, member, epoch, now_ms)
    }

    /// A closed session: the member's locks on `partitions` are released.
    pub fn release_member(
        &self,
        group: &str,
        member: &str,
        partitions: &[Rc<PartitionShares>],
    ) -> Vec<(Rc<PartitionShares>, Outcome)> {
        let limit = self.group_config(group).delivery_count_limit;
        let now_ms = crate::io::clock::now_ms();
        partitions
            .iter()
            .filter_map(|shares| {
                let outcome =
                    shares.with_group(group, |sp| sp.release_locks(now_ms, Some(member), limit))?;
                Some((Rc::clone(shares), outcome))
            })
            .collect()
    }
}
