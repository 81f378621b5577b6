//! The per-shard group coordinator: every group whose id maps to this shard, and this
//! shard's offsets logs. Handlers call it synchronously; answers that must wait (a JoinGroup
//! until the rebalance completes, a commit until it is durable) come back as futures.
//!
//! Concurrency contract: owned by one shard (`!Send`); all state is behind `RefCell`s that
//! are never borrowed across an `.await`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;

use super::classic_group::{
    ClassicGroup, ClassicState, JoinRequest, JoinResult, Pending, SyncResult,
};
use super::consumer_group::{ConsumerGroup, HeartbeatRequest, HeartbeatResult, Partitions};
use super::offset_record::{CommittedOffset, OffsetRecord};
use super::offset_store::OffsetStore;
use super::{
    coordinator_shard, offsets_partition, Durable, GroupConfig, GroupError, NodeKeys, TopicCatalog,
    GROUP_ID_BYTES_MAX,
};
use crate::replica::state_partitions::Serving;
use crate::replica::Replica;

/// How often offsets of empty groups are checked for expiry (Kafka:
/// `offsets.retention.check.interval.ms`).
const OFFSETS_EXPIRY_CHECK_MS: i64 = 60_000;

pub enum Group {
    Classic(Box<ClassicGroup>),
    Consumer(Box<ConsumerGroup>),
}

impl Group {
    fn has_members(&self) -> bool {
        match self {
            Group::Classic(g) => !g.is_empty(),
            Group::Consumer(g) => !g.members.is_empty(),
        }
    }
}

/// A KIP-848 consumer group's `consumer.session.timeout.ms` and
/// `consumer.heartbeat.interval.ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerGroupTimeouts {
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: i32,
}

/// One row of ListGroups.
#[derive(Debug, Clone)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
    /// "classic" or "consumer" ("share" for the share groups listed beside them).
    pub group_type: String,
}

impl GroupListing {
    /// ListGroups' filters: an empty filter lets every group through; names compare
    /// case-insensitively, as in Kafka.
    pub fn matches(&self, states: &[String], types: &[String]) -> bool {
        let any = |filter: &[String], value: &str| {
            filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
        };
        any(states, &self.state) && any(types, &self.group_type)
    }
}

#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Classic groups: the member's protocol metadata and assignment as the client sent them.
    pub metadata: Bytes,
    pub assignment: Bytes,
    /// Consumer groups: the member's assignment, subscriptions and epoch.
    pub partitions: Partitions,
    pub target: Partitions,
    pub subscribed: BTreeSet<String>,
    pub subscribed_regex: Option<String>,
    pub member_epoch: i32,
    pub rack_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol_data: String,
    pub group_type: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<MemberDescription>,
}

/// Who commits, for the generation checks.
#[derive(Debug, Clone)]
pub struct CommitIdentity {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The generation (classic) or member epoch (consumer); -1 outside the group protocol.
    pub generation_or_epoch: i32,
    /// The request version carries KIP-848 member epochs (OffsetCommit v9+).
    pub member_epochs: bool,
}

pub struct GroupCoordinator {
    shard_id: usize,
    shard_count: usize,
    /// The group ids this node serves (all of them on a single node).
    node_keys: NodeKeys,
    config: GroupConfig,
    groups: RefCell<HashMap<String, Group>>,
    offsets: OffsetStore,
    loaded: Cell<bool>,
    next_expiry_check_ms: Cell<i64>,
}

impl GroupCoordinator {
    pub fn new(
        data_dir: &Path,
        shard_id: usize,
        shard_count: usize,
        node_keys: NodeKeys,
        config: GroupConfig,
    ) -> Self {
        let offsets = OffsetStore::new(
            data_dir,
            shard_id,
            shard_count,
            config.offsets_compact_bytes,
        );
        GroupCoordinator {
            shard_id,
            shard_count,
            node_keys,
            config,
            groups: RefCell::new(HashMap::new()),
            offsets,
            loaded: Cell::new(false),
            next_expiry_check_ms: Cell::new(0),
        }
    }

    /// In a cluster of several nodes: offsets live in the replicated offsets partitions
    /// (attached with [`Self::attach_offsets_replica`]), and this shard coordinates the
    /// groups of the partitions it leads, instead of those `node_keys` hash to this node.
    pub fn with_replicated_offsets(mut self) -> Self {
        self.offsets.replicate();
        self
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Hands this shard's replica of offsets partition `partition` to the coordinator.
    pub fn attach_offsets_replica(&self, partition: u32, replica: Rc<Replica>) {
        if let Some(replicas) = self.offsets.replicas() {
            replicas.attach(partition, replica);
        }
    }

    /// Forgets the replica of offsets partition `partition` and the groups it held.
    pub fn detach_offsets_replica(&self, partition: u32) {
        if let Some(replicas) = self.offsets.replicas() {
            if replicas.detach(partition) {
                self.forget_partition(partition);
            }
        }
    }

    /// Follows the leadership of the replicated offsets partitions (called by the timers
    /// task): drops the groups of partitions led elsewhere now, and loads the offsets of
    /// partitions this shard has come to lead.
    pub async fn follow_offsets_leaders(&self) {
        let changes = self.offsets.leadership_changes();
        for partition in &changes.lost {
            tracing::info!(
                partition,
                "offsets partition led elsewhere; its groups move"
            );
            self.forget_partition(*partition);
        }
        for (partition, term) in changes.gained {
            // Whatever the previous term left in memory is stale.
            self.forget_partition(partition);
            match self.offsets.load_partition(partition, term).await {
                Ok(groups) => {
                    tracing::info!(partition, term, groups, "offsets partition loaded")
                }
                Err(e) => tracing::warn!(partition, error = %e, "loading an offsets partition"),
            }
        }
    }

    /// Drops the groups of offsets partition `partition` and their offsets; members waiting
    /// on a join or sync are answered (COORDINATOR_NOT_AVAILABLE) and look it up again.
    fn forget_partition(&self, partition: u32) {
        self.groups.borrow_mut().retain(|id, group| {
            if offsets_partition(id) != partition {
                return true;
            }
            if let Group::Classic(group) = group {
                group.shut_down();
            }
            false
        });
        self.offsets.drop_partition(partition);
    }

    /// Replays this shard's offsets logs; requests are refused with LoadInProgress until then.
    pub async fn load(&self) -> Result<(), GroupError> {
        self.offsets.load().await?;
        self.loaded.set(true);
        Ok(())
    }

    /// Answers every parked request and closes the offsets logs.
    pub async fn close(&self) {
        self.loaded.set(false);
        for group in self.groups.borrow_mut().values_mut() {
            if let Group::Classic(group) = group {
                group.shut_down();
            }
        }
        self.offsets.close().await;
    }

    /// Whether this shard coordinates `group_id`: it hashes to this shard, on this node (in
    /// a cluster: this node leads its offsets partition; it may still be loading it).
    pub fn is_coordinator(&self, group_id: &str) -> bool {
        coordinator_shard(group_id, self.shard_count) == self.shard_id
            && self.node_keys_own(group_id)
            && self.offsets.serving(group_id) != Serving::No
    }

    /// Replicated offsets follow leadership, not the node hash.
    fn node_keys_own(&self, group_id: &str) -> bool {
        self.offsets.replicas().is_some() || self.node_keys.owns(group_id)
    }

    fn check(&self, group_id: &str) -> Result<(), GroupError> {
        if group_id.is_empty() || group_id.len() > GROUP_ID_BYTES_MAX {
            return Err(GroupError::InvalidGroupId);
        }
        if !self.is_coordinator(group_id) {
            return Err(GroupError::NotCoordinator(group_id.to_owned()));
        }
        if !self.loaded.get() || self.offsets.serving(group_id) == Serving::Loading {
            return Err(GroupError::LoadInProgress);
        }
        Ok(())
    }

    // ---- classic protocol -------------------------------------------------------------

    pub fn join(
        &self,
        group_id: &str,
        request: JoinRequest,
        now_ms: i64,
    ) -> Result<Pending<JoinResult>, GroupError> {
        self.check(group_id)?;
        let config = &self.config;
        if !(config.session_timeout_ms_min..=config.session_timeout_ms_max)
            .contains(&request.session_timeout_ms)
        {
            return Err(GroupError::InvalidSessionTimeout {
                got: request.session_timeout_ms,
                min: config.session_timeout_ms_min,
                max: config.session_timeout_ms_max,
            });
        }
        let mut groups = self.groups.borrow_mut();
        if !request.member_id.is_empty() && !groups.contains_key(group_id) {
            return Err(GroupError::UnknownMemberId(request.member_id));
        }
        let group = groups.entry(group_id.to_owned()).or_insert_with(|| {
            Group::Classic(Box::new(ClassicGroup::new(group_id.to_owned(), now_ms)))
        });
        if let Group::Consumer(consumer) = group {
            if consumer.members.is_empty() {
                *group = Group::Classic(Box::new(ClassicGroup::new(group_id.to_owned(), now_ms)));
            } else {
                return Err(GroupError::InconsistentGroupProtocol);
            }
        }
        let Group::Classic(group) = group else {
            unreachable!("replaced above")
        };
        group.join(request, config, now_ms)
    }

    fn with_classic<T>(
        &self,
        group_id: &str,
        member_id: &str,
        f: impl FnOnce(&mut ClassicGroup) -> Result<T, GroupError>,
    ) -> Result<T, GroupError> {
        self.check(group_id)?;
        let mut groups = self.groups.borrow_mut();
        match groups.get_mut(group_id) {
            Some(Group::Classic(group)) => f(group),
            Some(Group::Consumer(_)) => Err(GroupError::InconsistentGroupProtocol),
            None => Err(GroupError::UnknownMemberId(member_id.to_owned())),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
        now_ms: i64,
    ) -> Result<Pending<SyncResult>, GroupError> {
        self.with_classic(group_id, member_id, |group| {
            group.sync(
                member_id,
                instance_id,
                generation_id,
                protocol,
                assignments,
                now_ms,
            )
        })
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        self.with_classic(group_id, member_id, |group| {
            group.heartbeat(member_id, instance_id, generation_id, now_ms)
        })
    }

    /// LeaveGroup: one result per `(member id, instance id)`.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
        now_ms: i64,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let member_id = members.first().map(|m| m.0.as_str()).unwrap_or_default();
        self.with_classic(group_id, member_id, |group| {
            Ok(members
                .iter()
                .map(|(member_id, instance)| {
                    group.leave(member_id, instance.as_deref(), &self.config, now_ms)
                })
                .collect())
        })
    }

    // ---- KIP-848 ----------------------------------------------------------------------

    /// ConsumerGroupHeartbeat. `timeouts` are the group's own session timeout and heartbeat
    /// interval (its group configs, or the broker's defaults).
    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        request: HeartbeatRequest,
        topics: &dyn TopicCatalog,
        timeouts: ConsumerGroupTimeouts,
        now_ms: i64,
    ) -> Result<HeartbeatResult, GroupError> {
        self.check(group_id)?;
        request.validate()?;
        let mut groups = self.groups.borrow_mut();
        // Kafka creates a consumer group only on a join (epoch 0).
        if request.member_epoch != 0 && !groups.contains_key(group_id) {
            return Err(GroupError::GroupIdNotFound(group_id.to_owned()));
        }
        let group = groups.entry(group_id.to_owned()).or_insert_with(|| {
            Group::Consumer(Box::new(ConsumerGroup::new(group_id.to_owned(), now_ms)))
        });
        if let Group::Classic(classic) = group {
            if classic.is_empty() {
                *group = Group::Consumer(Box::new(ConsumerGroup::new(group_id.to_owned(), now_ms)));
            } else {
                return Err(GroupError::GroupIdUsedByOtherProtocol(group_id.to_owned()));
            }
        }
        let Group::Consumer(group) = group else {
            unreachable!("replaced above")
        };
        let config = GroupConfig {
            consumer_session_timeout_ms: timeouts.session_timeout_ms,
            consumer_heartbeat_interval_ms: timeouts.heartbeat_interval_ms,
            ..self.config.clone()
        };
        group.heartbeat(request, topics, &config, now_ms)
    }

    // ---- offsets ----------------------------------------------------------------------

    /// OffsetCommit's group and member checks, as Kafka's `OffsetMetadataManager`.
    fn validate_commit(&self, group_id: &str, who: &CommitIdentity) -> Result<(), GroupError> {
        let groups = self.groups.borrow();
        match groups.get(group_id) {
            Some(Group::Classic(group)) => group.validate_commit(
                &who.member_id,
                who.group_instance_id.as_deref(),
                who.generation_or_epoch,
            ),
            Some(Group::Consumer(group)) => {
                group.validate_commit(&who.member_id, who.generation_or_epoch, who.member_epochs)
            }
            // Kafka creates an empty "simple" group for a commit from outside the group
            // protocol; an empty group accepts such commits, with or without a member id.
            None if who.generation_or_epoch < 0 => Ok(()),
            // A group known only by its offsets is that empty simple group: no members.
            None if self.offsets.has_offsets(group_id) => {
                Err(GroupError::UnknownMemberId(who.member_id.clone()))
            }
            None if who.member_epochs => Err(GroupError::GroupIdNotFound(group_id.to_owned())),
            // Before v9, Kafka answers ILLEGAL_GENERATION for a group it does not know.
            None => Err(GroupError::IllegalGeneration {
                expected: -1,
                got: who.generation_or_epoch,
            }),
        }
    }

    /// OffsetCommit: checks the committer, appends the offsets and returns a future that
    /// resolves once they are durable. Per-partition checks are the handler's.
    pub fn commit(
        &self,
        group_id: &str,
        who: &CommitIdentity,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<Durable, GroupError> {
        self.check(group_id)?;
        self.validate_commit(group_id, who)?;
        self.append_commits(group_id, offsets)
    }

    /// TxnOffsetCommit (KIP-447): checks the committer as OffsetCommit does. The offsets are
    /// committed only when the transaction commits ([`Self::commit_transaction_offsets`]).
    pub fn check_transaction_commit(
        &self,
        group_id: &str,
        who: &CommitIdentity,
    ) -> Result<(), GroupError> {
        self.check(group_id)?;
        self.validate_commit(group_id, who)
    }

    /// Commits the offsets of a committed transaction; its committer was checked when the
    /// offsets were sent, and the group may have rebalanced since.
    pub fn commit_transaction_offsets(
        &self,
        group_id: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<Durable, GroupError> {
        self.check(group_id)?;
        self.append_commits(group_id, offsets)
    }

    fn append_commits(
        &self,
        group_id: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<Durable, GroupError> {
        if offsets.is_empty() {
            return Ok(Box::pin(async { Ok(()) }));
        }
        let records = offsets
            .into_iter()
            .map(|(topic, partition, offset)| OffsetRecord::Commit {
                group: group_id.to_owned(),
                topic,
                partition,
                offset,
            })
            .collect();
        self.offsets.append(group_id, records)
    }

    /// OffsetFetch v9's member checks: only KIP-848 groups check them (Kafka's
    /// `validateOffsetFetch`); an unknown group simply has no offsets.
    pub fn check_fetch_member(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), GroupError> {
        self.check(group_id)?;
        match self.groups.borrow().get(group_id) {
            Some(Group::Consumer(group)) => group.validate_fetch(member_id, member_epoch),
            Some(Group::Classic(_)) | None => Ok(()),
        }
    }

    /// Committed offsets of `group_id`: of the given partitions, or all when `None`.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<Vec<(String, i32, Option<CommittedOffset>)>, GroupError> {
        self.check(group_id)?;
        Ok(match partitions {
            Some(topics) => topics
                .into_iter()
                .flat_map(|(topic, parts)| {
                    parts.into_iter().map(move |p| {
                        let committed = self.offsets.committed(group_id, &topic, p);
                        (topic.clone(), p, committed)
                    })
                })
                .collect(),
            None => self
                .offsets
                .group_offsets(group_id)
                .into_iter()
                .map(|((topic, p), o)| (topic, p, Some(o)))
                .collect(),
        })
    }

    /// OffsetDelete: partitions of topics the group's members subscribe to are refused.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<(Vec<Result<(), GroupError>>, Durable), GroupError> {
        self.check(group_id)?;
        let subscribed = self.subscribed_topics(group_id);
        let exists =
            self.groups.borrow().contains_key(group_id) || self.offsets.has_offsets(group_id);
        if !exists {
            return Err(GroupError::GroupIdNotFound(group_id.to_owned()));
        }
        let mut results = Vec::with_capacity(partitions.len());
        let mut records = Vec::new();
        for (topic, partition) in partitions {
            if subscribed.contains(&topic) {
                results.push(Err(GroupError::SubscribedToTopic(group_id.to_owned())));
                continue;
            }
            if self
                .offsets
                .committed(group_id, &topic, partition)
                .is_some()
            {
                records.push(OffsetRecord::Delete {
                    group: group_id.to_owned(),
                    topic,
                    partition,
                });
            }
            results.push(Ok(()));
        }
        let durable = if records.is_empty() {
            Box::pin(async { Ok(()) })
        } else {
            self.offsets.append(group_id, records)?
        };
        Ok((results, durable))
    }

    /// Topics the group's active members subscribe to (classic "consumer" groups: decoded
    /// from their subscription metadata).
    fn subscribed_topics(&self, group_id: &str) -> BTreeSet<String> {
        match self.groups.borrow().get(group_id) {
            Some(Group::Consumer(group)) => group.subscribed_topics(),
            Some(Group::Classic(group)) if group.protocol_type.as_deref() == Some("consumer") => {
                let protocol = group.protocol_name.clone().unwrap_or_default();
                group
                    .members
                    .values()
                    .filter_map(|m| m.metadata(&protocol))
                    .flat_map(|metadata| decode_subscription(metadata.clone()))
                    .collect()
            }
            _ => BTreeSet::new(),
        }
    }

    // ---- admin ------------------------------------------------------------------------

    /// ListGroups: this shard's groups, including groups known only by their offsets. Only
    /// groups it coordinates: offsets a cluster node kept from before it was one are not
    /// its to list (the group's coordinator lists the group).
    pub fn list(&self, states: &[String], types: &[String]) -> Vec<GroupListing> {
        let mut listed: BTreeMap<String, GroupListing> = BTreeMap::new();
        for (id, group) in self.groups.borrow().iter() {
            let listing = match group {
                Group::Classic(g) => GroupListing {
                    group_id: id.clone(),
                    protocol_type: self.classic_protocol_type(id, g),
                    state: g.state.name().to_owned(),
                    group_type: "classic".to_owned(),
                },
                Group::Consumer(g) => GroupListing {
                    group_id: id.clone(),
                    protocol_type: "consumer".to_owned(),
                    state: g.state_name().to_owned(),
                    group_type: "consumer".to_owned(),
                },
            };
            listed.insert(id.clone(), listing);
        }
        // A group known only by its offsets is Kafka's "simple" group, created by commits
        // from outside the group protocol: it has no protocol type.
        for id in self.offsets.groups() {
            listed.entry(id.clone()).or_insert(GroupListing {
                group_id: id,
                protocol_type: String::new(),
                state: "Empty".to_owned(),
                group_type: "classic".to_owned(),
            });
        }
        listed
            .into_values()
            .filter(|l| {
                self.node_keys_own(&l.group_id)
                    && self.offsets.serving(&l.group_id) == Serving::Yes
                    && l.matches(states, types)
            })
            .collect()
    }

    /// A classic group's protocol type. A group emptied by its members' leaving forgets
    /// it (`ClassicGroup::complete_join`), but Kafka keeps it: such a group still holding
    /// offsets is a former consumer group. (A group known only by offsets, never joined
    /// since start-up, is a simple group: no protocol type.)
    fn classic_protocol_type(&self, group_id: &str, group: &ClassicGroup) -> String {
        match &group.protocol_type {
            Some(protocol_type) => protocol_type.clone(),
            None if self.offsets.has_offsets(group_id) => "consumer".to_owned(),
            None => String::new(),
        }
    }

    pub fn describe(&self, group_id: &str) -> Result<GroupDescription, GroupError> {
        self.check(group_id)?;
        let groups = self.groups.borrow();
        let description = match groups.get(group_id) {
            Some(Group::Classic(g)) => {
                let protocol = g.protocol_name.clone().unwrap_or_default();
                GroupDescription {
                    group_id: group_id.to_owned(),
                    state: g.state.name().to_owned(),
                    protocol_type: self.classic_protocol_type(group_id, g),
                    protocol_data: protocol.clone(),
                    group_type: "classic".to_owned(),
                    group_epoch: g.generation_id,
                    assignment_epoch: g.generation_id,
                    assignor: protocol.clone(),
                    members: g
                        .members
                        .values()
                        .map(|m| MemberDescription {
                            member_id: m.member_id.clone(),
                            group_instance_id: m.group_instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            metadata: m.metadata(&protocol).cloned().unwrap_or_default(),
                            assignment: if g.state == ClassicState::Stable {
                                m.assignment.clone()
                            } else {
                                Bytes::new()
                            },
                            partitions: Partitions::new(),
                            target: Partitions::new(),
                            subscribed: BTreeSet::new(),
                            subscribed_regex: None,
                            member_epoch: g.generation_id,
                            rack_id: None,
                        })
                        .collect(),
                }
            }
            Some(Group::Consumer(g)) => GroupDescription {
                group_id: group_id.to_owned(),
                state: g.state_name().to_owned(),
                protocol_type: "consumer".to_owned(),
                protocol_data: g.assignor_name(),
                group_type: "consumer".to_owned(),
                group_epoch: g.group_epoch,
                assignment_epoch: g.assignment_epoch,
                assignor: g.assignor_name(),
                members: g
                    .members
                    .values()
                    .map(|m| MemberDescription {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        metadata: Bytes::new(),
                        assignment: Bytes::new(),
                        partitions: m.assigned.clone(),
                        target: g.target.get(&m.member_id).cloned().unwrap_or_default(),
                        subscribed: m.subscribed.clone(),
                        subscribed_regex: m.subscribed_regex.clone(),
                        member_epoch: m.member_epoch,
                        rack_id: m.rack_id.clone(),
                    })
                    .collect(),
            },
            None if self.offsets.has_offsets(group_id) => GroupDescription {
                group_id: group_id.to_owned(),
                state: "Empty".to_owned(),
                protocol_type: String::new(),
                protocol_data: String::new(),
                group_type: "classic".to_owned(),
                group_epoch: 0,
                assignment_epoch: 0,
                assignor: String::new(),
                members: Vec::new(),
            },
            None => {
                // Kafka describes an unknown group as Dead with no members.
                GroupDescription {
                    group_id: group_id.to_owned(),
                    state: "Dead".to_owned(),
                    protocol_type: String::new(),
                    protocol_data: String::new(),
                    group_type: "classic".to_owned(),
                    group_epoch: 0,
                    assignment_epoch: 0,
                    assignor: String::new(),
                    members: Vec::new(),
                }
            }
        };
        Ok(description)
    }

    /// DeleteGroups of one group: refused while it has members; its offsets are deleted
    /// durably.
    pub fn delete(&self, group_id: &str) -> Result<Durable, GroupError> {
        self.check(group_id)?;
        let known = {
            let groups = self.groups.borrow();
            if groups.get(group_id).is_some_and(Group::has_members) {
                return Err(GroupError::NonEmptyGroup(group_id.to_owned()));
            }
            groups.contains_key(group_id)
        };
        let has_offsets = self.offsets.has_offsets(group_id);
        if !known && !has_offsets {
            return Err(GroupError::GroupIdNotFound(group_id.to_owned()));
        }
        self.groups.borrow_mut().remove(group_id);
        if !has_offsets {
            return Ok(Box::pin(async { Ok(()) }));
        }
        self.offsets.append(
            group_id,
            vec![OffsetRecord::GroupDeleted {
                group: group_id.to_owned(),
            }],
        )
    }

    // ---- timers -----------------------------------------------------------------------

    /// Expires sessions and rebalance deadlines, drops dead groups and (once a minute)
    /// expires offsets of groups that have been empty longer than the retention.
    pub fn tick(&self, topics: &dyn TopicCatalog, now_ms: i64) {
        if !self.loaded.get() {
            return;
        }
        {
            let mut groups = self.groups.borrow_mut();
            for group in groups.values_mut() {
                match group {
                    Group::Classic(g) => g.tick(&self.config, now_ms),
                    Group::Consumer(g) => g.tick(topics, now_ms),
                }
            }
            // Empty groups without offsets are forgotten (Kafka's Dead state).
            groups.retain(|id, g| g.has_members() || self.offsets.has_offsets(id));
        }
        if now_ms >= self.next_expiry_check_ms.get() {
            self.next_expiry_check_ms
                .set(now_ms + OFFSETS_EXPIRY_CHECK_MS);
            self.expire_offsets(now_ms);
        }
    }

    fn expire_offsets(&self, now_ms: i64) {
        let retention = self.config.offsets_retention_ms;
        let expired: Vec<String> = self
            .offsets
            .groups()
            .into_iter()
            .filter(|id| {
                let groups = self.groups.borrow();
                let (active, empty_since) = match groups.get(id) {
                    Some(Group::Classic(g)) => (!g.is_empty(), g.state_since_ms),
                    Some(Group::Consumer(g)) => (!g.members.is_empty(), g.state_since_ms),
                    None => (false, 0),
                };
                let last_commit = self.offsets.last_commit_ms(id).unwrap_or(0);
                !active && now_ms.saturating_sub(empty_since.max(last_commit)) > retention
            })
            .collect();
        for group_id in expired {
            tracing::info!(group = %group_id, "offsets expired");
            let record = OffsetRecord::GroupDeleted {
                group: group_id.clone(),
            };
            match self.offsets.append(&group_id, vec![record]) {
                // Expiry needs no acknowledgement; a lost tombstone is re-written next check.
                Ok(durable) => {
                    crate::io::spawn(async move {
                        if let Err(e) = durable.await {
                            tracing::warn!(error = %e, "offsets expiry");
                        }
                    })
                    .detach();
                }
                Err(e) => tracing::warn!(group = %group_id, error = %e, "offsets expiry"),
            }
            self.groups.borrow_mut().remove(&group_id);
        }
    }

    /// Rewrites large offsets logs as snapshots (one at a time; called by the timers task).
    pub async fn compact_offsets(&self) {
        if let Err(e) = self.offsets.compact_if_large().await {
            tracing::warn!(shard_id = self.shard_id, error = %e, "offsets compaction failed");
        }
    }
}

/// Topics of a classic consumer's subscription metadata (ConsumerProtocolSubscription).
fn decode_subscription(mut metadata: Bytes) -> Vec<String> {
    use bytes::Buf;
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    if metadata.remaining() < 2 {
        return Vec::new();
    }
    let version = metadata.get_i16().clamp(0, 3);
    match ConsumerProtocolSubscription::decode(&mut metadata, version) {
        Ok(subscription) => subscription.topics.iter().map(|t| t.to_string()).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_filters_compare_names_case_insensitively() {
        let listing = GroupListing {
            group_id: "g".to_owned(),
            protocol_type: "share".to_owned(),
            state: "Empty".to_owned(),
            group_type: "share".to_owned(),
        };
        let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert!(listing.matches(&[], &[]));
        assert!(listing.matches(&names(&["EMPTY"]), &names(&["Share"])));
        assert!(!listing.matches(&names(&["Stable"]), &[]));
        assert!(!listing.matches(&[], &names(&["consumer", "classic"])));
    }

    #[test]
    fn commits_to_a_group_without_members_follow_kafka() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_owned();
        crate::io::block_on_local(async move {
            let coordinator =
                GroupCoordinator::new(&data_dir, 0, 1, NodeKeys::ALL, GroupConfig::default());
            coordinator.load().await.expect("load");
            let who = |member_id: &str, generation_or_epoch, member_epochs| CommitIdentity {
                member_id: member_id.to_owned(),
                group_instance_id: None,
                generation_or_epoch,
                member_epochs,
            };
            let offset = vec![(
                "t".to_owned(),
                0,
                CommittedOffset {
                    offset: 1,
                    leader_epoch: -1,
                    metadata: String::new(),
                    commit_timestamp_ms: 0,
                },
            )];
            let refusal = |group: &str, who: CommitIdentity| {
                coordinator.commit(group, &who, Vec::new()).err()
            };
            assert_eq!(
                refusal("unknown", who("m", 3, true)),
                Some(GroupError::GroupIdNotFound("unknown".into()))
            );
            assert!(matches!(
                refusal("unknown", who("m", 3, false)),
                Some(GroupError::IllegalGeneration { got: 3, .. })
            ));
            // A member id set by the client, epoch -1: Kafka's simple group.
            coordinator
                .commit("simple", &who("client-made-id", -1, true), offset)
                .expect("commit")
                .await
                .expect("durable");
            assert_eq!(
                refusal("simple", who("client-made-id", 0, true)),
                Some(GroupError::UnknownMemberId("client-made-id".into()))
            );
            assert_eq!(
                coordinator
                    .commit(
                        "x".repeat(GROUP_ID_BYTES_MAX + 1).as_str(),
                        &who("", -1, true),
                        Vec::new()
                    )
                    .err(),
                Some(GroupError::InvalidGroupId)
            );
            coordinator.close().await;
        });
    }

    #[test]
    fn offsets_of_an_empty_group_expire_after_the_retention() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_owned();
        crate::io::block_on_local(async move {
            let config = GroupConfig {
                offsets_retention_ms: 1_000,
                ..GroupConfig::default()
            };
            let coordinator = GroupCoordinator::new(&data_dir, 0, 1, NodeKeys::ALL, config);
            coordinator.load().await.expect("load");
            let simple = CommitIdentity {
                member_id: String::new(),
                group_instance_id: None,
                generation_or_epoch: -1,
                member_epochs: true,
            };
            let offset = |commit_timestamp_ms| CommittedOffset {
                offset: 5,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms,
            };
            for (group, committed_at) in [("old", 0), ("recent", 10_000)] {
                coordinator
                    .commit(
                        group,
                        &simple,
                        vec![("t".to_owned(), 0, offset(committed_at))],
                    )
                    .expect("commit")
                    .await
                    .expect("durable");
            }
            coordinator.tick(&BTreeMap::new(), 10_500);
            let fetched = |group| coordinator.fetch_offsets(group, None).expect("fetch").len();
            assert_eq!(fetched("old"), 0, "expired");
            assert_eq!(fetched("recent"), 1, "kept");
            coordinator.close().await;
        });
    }

    #[test]
    fn a_cluster_node_refuses_groups_of_another_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_owned();
        crate::io::block_on_local(async move {
            // Node slot 1 of 3, one shard: a group hashing to another slot is not its own.
            let keys = NodeKeys::slot(1, 3);
            let coordinator = GroupCoordinator::new(&data_dir, 0, 1, keys, GroupConfig::default());
            coordinator.load().await.expect("load");
            let foreign = (0..100)
                .map(|i| format!("group-{i}"))
                .find(|g| NodeKeys::slot_of(g, 3) != 1)
                .expect("some group hashes elsewhere");
            assert!(!coordinator.is_coordinator(&foreign));
            assert_eq!(
                coordinator.fetch_offsets(&foreign, None).err(),
                Some(GroupError::NotCoordinator(foreign.clone()))
            );
            assert!(coordinator.list(&[], &[]).is_empty());
            coordinator.close().await;
        });
    }
}
