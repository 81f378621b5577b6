//! Shard 0's catalog authority: validates admin requests one at a time, persists the new
//! catalog, then broadcasts the change to every shard and waits for all of them, so that
//! a topic is usable on every shard by the time CreateTopics answers.
//!
//! In a cluster (docs/cluster.md) the validated change is proposed to the metadata Raft
//! group instead of persisted here; every node's `CatalogMachine` hands committed changes
//! back to its shard 0, which persists and broadcasts them as above, so this node and every
//! other apply the same changes in the same order. SCRAM credentials and ACLs go the same
//! way: AlterUserScramCredentials, CreateAcls and DeleteAcls on any node are proposed
//! (forwarded to the leader) and applied by every node.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use futures_channel::oneshot;
use uuid::Uuid;

use super::broker_config;
use super::catalog::{validate_topic_name, Catalog, CatalogChange, TopicEntry, TopicMeta};
use super::catalog_machine::{ChangeOutcome, Committed, MetaChange, NodeInfo, Users};
use super::control::{
    AdminError, AdminRequest, ConfigEdit, ConfigOp, NewPartitions, NewTopic, ScramChange,
    ShardMessage,
};
use super::placement;
use super::producer_ids::{self, ProducerIdAllocator};
use super::topic_config;
use crate::cluster::{ClusterError, ControlPlane, NodeId};
use crate::constants::TOPIC_PARTITIONS_MAX;
use crate::log::LogConfig;
use crate::security::acl::{AclBinding, AclFilter};
use crate::security::sasl::scram_credential::ScramEntry;

pub struct CatalogOwner {
    catalog: Catalog,
    producer_ids: ProducerIdAllocator,
    data_dir: PathBuf,
    log_defaults: LogConfig,
    shards: Vec<async_channel::Sender<ShardMessage>>,
    cluster: Option<OwnerCluster>,
}

/// Shard 0's end of the metadata Raft group.
pub struct OwnerCluster {
    pub plane: ControlPlane,
    /// What the node's `CatalogMachine` applied, in log order.
    pub committed: async_channel::Receiver<Committed>,
    /// The nodes registered so far, by id: where new partitions go.
    nodes: BTreeMap<NodeId, NodeInfo>,
    /// What is left of the producer id block the metadata group gave this node. Held in
    /// memory only: after a restart the node asks for a new block, so the rest of this one
    /// is never handed out (as in KRaft).
    producer_ids: Range<i64>,
}

impl OwnerCluster {
    pub fn new(plane: ControlPlane, committed: async_channel::Receiver<Committed>) -> OwnerCluster {
        OwnerCluster {
            plane,
            committed,
            nodes: BTreeMap::new(),
            producer_ids: 0..0,
        }
    }

    /// Nodes for partitions `first..count` of `topic`: round-robin over the registered nodes
    /// from a start the name picks, so topics do not all begin on the same node. With
    /// `replicas` above 1, also each partition's replica nodes: the partition's node (its
    /// preferred leader) and the next ones round the ring, so leaders spread like the
    /// partitions did. More replicas than registered nodes is INVALID_REPLICATION_FACTOR.
    fn place(
        &self,
        topic: &str,
        first: i32,
        count: i32,
        replicas: i16,
    ) -> Result<(Vec<NodeId>, Vec<Vec<NodeId>>), AdminError> {
        let nodes: Vec<NodeId> = self.nodes.keys().copied().collect();
        if nodes.is_empty() {
            return Err(AdminError::NotController(
                "no node has registered with the cluster yet".to_owned(),
            ));
        }
        let replicas = usize::try_from(replicas).unwrap_or(1).max(1);
        if replicas > nodes.len() {
            return Err(AdminError::InvalidReplicationFactor(format!(
                "Unable to replicate the partition {replicas} time(s): The target replication factor of {replicas} cannot be reached because only {} node(s) are registered.",
                nodes.len()
            )));
        }
        let start = usize::try_from(super::fnv_hash(topic) % nodes.len() as u64).unwrap_or(0);
        let at =
            |p: i32, k: usize| nodes[(start + usize::try_from(p).unwrap_or(0) + k) % nodes.len()];
        let placed = (first..count).map(|p| at(p, 0)).collect();
        let replica_nodes = if replicas > 1 {
            (first..count)
                .map(|p| (0..replicas).map(|k| at(p, k)).collect())
                .collect()
        } else {
            Vec::new()
        };
        Ok((placed, replica_nodes))
    }

    /// The replication factor that gets replica nodes: the topic's, unless a manual
    /// assignment placed it (assigned partitions keep one copy, on their first broker).
    fn replicated(placement: &super::placement::Placement) -> i16 {
        if placement.replicas.is_empty() {
            placement.replication_factor
        } else {
            1
        }
    }
}

/// How long a proposer waits for its own node to apply a change the leader committed before
/// answering anyway (the change is committed; this node is just slow to hear of it).
const APPLY_WAIT: Duration = Duration::from_secs(10);

enum Next {
    Admin(AdminRequest),
    Committed(Committed),
}

fn cluster_error(error: ClusterError) -> AdminError {
    match error {
        ClusterError::Stopped => AdminError::ShuttingDown,
        other => AdminError::NotController(other.to_string()),
    }
}

impl CatalogOwner {
    pub fn new(
        catalog: Catalog,
        producer_ids: ProducerIdAllocator,
        data_dir: PathBuf,
        log_defaults: LogConfig,
        shards: Vec<async_channel::Sender<ShardMessage>>,
        cluster: Option<OwnerCluster>,
    ) -> CatalogOwner {
        CatalogOwner {
            catalog,
            producer_ids,
            data_dir,
            log_defaults,
            shards,
            cluster,
        }
    }

    pub async fn run(mut self, inbox: async_channel::Receiver<AdminRequest>) {
        loop {
            let next = match &self.cluster {
                None => inbox.recv().await.map(Next::Admin),
                Some(cluster) => {
                    let committed = cluster.committed.clone();
                    futures_lite::future::or(async { inbox.recv().await.map(Next::Admin) }, async {
                        committed.recv().await.map(Next::Committed)
                    })
                    .await
                }
            };
            match next {
                Ok(Next::Admin(request)) => self.handle(request).await,
                Ok(Next::Committed(committed)) => self.apply_committed(committed).await,
                Err(_) => return,
            }
        }
    }

    async fn handle(&mut self, request: AdminRequest) {
        // Replies are dropped only when the requesting connection has gone away.
        match request {
            AdminRequest::AllocateProducerId { reply } => {
                let _ = reply.send(self.allocate_producer_id().await);
            }
            AdminRequest::CreateTopics {
                topics,
                validate_only,
                reply,
            } => {
                let mut results = Vec::with_capacity(topics.len());
                for topic in topics {
                    results.push(self.create_topic(topic, validate_only).await);
                }
                let _ = reply.send(results);
            }
            AdminRequest::DeleteTopics { names, reply } => {
                let mut results = Vec::with_capacity(names.len());
                for name in names {
                    results.push(self.delete_topic(name).await);
                }
                let _ = reply.send(results);
            }
            AdminRequest::CreatePartitions {
                topics,
                validate_only,
                reply,
            } => {
                let mut results = Vec::with_capacity(topics.len());
                for topic in topics {
                    results.push(self.create_partitions(topic, validate_only).await);
                }
                let _ = reply.send(results);
            }
            AdminRequest::AlterTopicConfig {
                name,
                edit,
                validate_only,
                reply,
            } => {
                let _ = reply.send(self.alter_config(name, edit, validate_only).await);
            }
            AdminRequest::AlterBrokerConfig {
                broker,
                edit,
                validate_only,
                reply,
            } => {
                let outcome = self.alter_broker_config(broker, edit, validate_only).await;
                let _ = reply.send(outcome);
            }
            AdminRequest::AlterGroupConfig {
                group,
                overrides,
                reply,
            } => {
                let change = CatalogChange::GroupConfig { group, overrides };
                let _ = reply.send(self.commit(change).await);
            }
            AdminRequest::AlterScramCredentials { changes, reply } => {
                let mut results = Vec::with_capacity(changes.len());
                for change in changes {
                    results.push(self.alter_scram_credential(change).await);
                }
                let _ = reply.send(results);
            }
            AdminRequest::CreateAcls { acls, reply } => {
                let _ = reply.send(self.create_acls(acls).await);
            }
            AdminRequest::DeleteAcls { filters, reply } => {
                let _ = reply.send(self.delete_acls(filters).await);
            }
        }
    }

    /// A producer id no other node of the cluster (and no earlier life of this one) hands
    /// out: from this node's file on a single node, from a block the metadata group
    /// allocated in a cluster, whose ids each node would otherwise number from 0 alike.
    async fn allocate_producer_id(&mut self) -> Result<i64, AdminError> {
        let Some(cluster) = &mut self.cluster else {
            return self
                .producer_ids
                .allocate()
                .await
                .map_err(|e| AdminError::Storage(e.to_string()));
        };
        if cluster.producer_ids.is_empty() {
            let record = MetaChange::AllocateProducerIds {
                node: cluster.plane.node_id(),
                count: producer_ids::BLOCK_SIZE,
                at_least: self.producer_ids.reserved_end(),
            };
            let (_, outcome) = cluster
                .plane
                .propose(record.encode())
                .await
                .map_err(cluster_error)?;
            match ChangeOutcome::decode(&outcome) {
                ChangeOutcome::ProducerIds { first, end } => cluster.producer_ids = first..end,
                other => {
                    let reason = format!("producer id block refused: {other:?}");
                    return Err(AdminError::Storage(reason));
                }
            }
        }
        cluster
            .producer_ids
            .next()
            .ok_or_else(|| AdminError::Storage("empty producer id block".to_owned()))
    }

    async fn create_topic(
        &mut self,
        topic: NewTopic,
        validate_only: bool,
    ) -> Result<TopicMeta, AdminError> {
        validate_topic_name(&topic.name).map_err(AdminError::InvalidTopicName)?;
        if self.catalog.get(&topic.name).is_some() {
            return Err(AdminError::TopicExists(topic.name));
        }
        if !(1..=TOPIC_PARTITIONS_MAX).contains(&topic.partition_count) {
            return Err(AdminError::InvalidPartitions(format!(
                "{} is not in 1..={TOPIC_PARTITIONS_MAX}",
                topic.partition_count
            )));
        }
        topic_config::log_config(&self.log_defaults, &topic.overrides)
            .map_err(|e| AdminError::InvalidConfig(e.to_string()))?;
        let mut meta = TopicMeta {
            name: topic.name,
            id: Uuid::new_v4(),
            partition_count: topic.partition_count,
            overrides: topic.overrides,
            placement: topic.placement,
        };
        if let Some(cluster) = &self.cluster {
            let replicas = OwnerCluster::replicated(&meta.placement);
            let (nodes, replica_nodes) =
                cluster.place(&meta.name, 0, meta.partition_count, replicas)?;
            meta.placement.nodes = nodes;
            meta.placement.replica_nodes = replica_nodes;
            meta.placement.pin_assigned_nodes();
        }
        if !validate_only {
            self.commit(CatalogChange::Upsert(meta.clone())).await?;
        }
        Ok(meta)
    }

    async fn delete_topic(&mut self, name: String) -> Result<(), AdminError> {
        if self.catalog.get(&name).is_none() {
            return Err(AdminError::UnknownTopic(name));
        }
        self.commit(CatalogChange::Delete { name }).await
    }

    async fn create_partitions(
        &mut self,
        topic: NewPartitions,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let NewPartitions {
            name,
            count,
            assignments,
        } = topic;
        let Some(current) = self.catalog.get(&name) else {
            return Err(AdminError::UnknownTopic(name));
        };
        // Kafka's messages for a count that does not grow.
        if count == current.partition_count {
            return Err(AdminError::InvalidPartitions(format!(
                "Topic already has {count} partition(s)."
            )));
        }
        if count < current.partition_count || count > TOPIC_PARTITIONS_MAX {
            return Err(AdminError::InvalidPartitions(format!(
                "The topic {name} currently has {} partition(s); {count} would not be an increase (at most {TOPIC_PARTITIONS_MAX}).",
                current.partition_count
            )));
        }
        let mut meta = current.clone();
        if let Some(assignments) = assignments {
            // Each shard is a broker (see `placement`).
            let placed = placement::check_new_partitions(
                count - meta.partition_count,
                &assignments,
                &self.broker_ids(),
                meta.placement.replication_factor,
            )?;
            let first_new = usize::try_from(meta.partition_count).unwrap_or(0);
            meta.placement.replicas.resize(first_new, Vec::new());
            meta.placement.replicas.extend(placed);
        }
        if let Some(cluster) = &self.cluster {
            // Topics from before the node joined a cluster keep every partition local.
            if meta.placement.nodes.len() == usize::try_from(meta.partition_count).unwrap_or(0) {
                let replicated = usize::try_from(meta.partition_count).ok()
                    == Some(meta.placement.replica_nodes.len())
                    && !meta.placement.replica_nodes.is_empty();
                let replicas = if replicated {
                    meta.placement.replication_factor
                } else {
                    1
                };
                let (placed, replica_nodes) =
                    cluster.place(&name, meta.partition_count, count, replicas)?;
                meta.placement.nodes.extend(placed);
                meta.placement.replica_nodes.extend(replica_nodes);
                meta.placement.pin_assigned_nodes();
            }
        }
        meta.partition_count = count;
        if validate_only {
            return Ok(());
        }
        self.commit(CatalogChange::Upsert(meta)).await
    }

    /// Every broker id an assignment may name: this node's shards, or in a cluster every
    /// registered node's (see `Shard::broker_ids`).
    fn broker_ids(&self) -> Vec<i32> {
        match &self.cluster {
            None => (0..self.shards.len())
                .map(|s| super::broker_id(None, s))
                .collect(),
            Some(cluster) => cluster
                .nodes
                .values()
                .flat_map(|n| (0..n.shard_count()).map(|s| super::cluster_broker_id(n.node_id, s)))
                .collect(),
        }
    }

    async fn alter_config(
        &mut self,
        name: String,
        edit: ConfigEdit,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let Some(current) = self.catalog.get(&name) else {
            return Err(AdminError::UnknownTopic(name));
        };
        let mut meta = current.clone();
        match edit {
            ConfigEdit::Replace(overrides) => meta.overrides = overrides,
            ConfigEdit::Incremental(ops) => {
                for op in ops {
                    match &op {
                        ConfigOp::Set(key, value) => {
                            meta.overrides.insert(key.clone(), value.clone());
                        }
                        ConfigOp::Delete(key) => {
                            meta.overrides.remove(key);
                        }
                        ConfigOp::Append(key, items) | ConfigOp::Subtract(key, items) => {
                            let append = matches!(op, ConfigOp::Append(..));
                            let current = topic_config::effective_value(
                                &self.log_defaults,
                                &meta.overrides,
                                key,
                            );
                            let value = topic_config::edit_list(key, &current, items, append)
                                .map_err(|e| AdminError::InvalidConfig(e.to_string()))?;
                            meta.overrides.insert(key.clone(), value);
                        }
                    }
                }
            }
        }
        topic_config::log_config(&self.log_defaults, &meta.overrides)
            .map_err(|e| AdminError::InvalidConfig(e.to_string()))?;
        if validate_only {
            return Ok(());
        }
        self.commit(CatalogChange::Upsert(meta)).await
    }

    async fn alter_broker_config(
        &mut self,
        broker: String,
        edit: ConfigEdit,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let overrides = match edit {
            ConfigEdit::Replace(overrides) => overrides,
            ConfigEdit::Incremental(ops) => {
                let cluster = self.catalog.broker_overrides("");
                let inherited = |name: &str| {
                    cluster
                        .get(name)
                        .filter(|_| !broker.is_empty())
                        .cloned()
                        .or_else(|| broker_config::static_value(&self.log_defaults, name))
                };
                broker_config::edit(self.catalog.broker_overrides(&broker), ops, inherited)
                    .map_err(AdminError::InvalidConfig)?
            }
        };
        // Kafka answers INVALID_REQUEST here, not INVALID_CONFIG (KAFKA-13609).
        broker_config::validate(&overrides).map_err(AdminError::InvalidRequest)?;
        // A default every topic would refuse must not get in, or no topic could open.
        let defaults = broker_config::topic_defaults(&overrides, &overrides);
        topic_config::log_config(&self.log_defaults, &defaults)
            .map_err(|e| AdminError::InvalidRequest(e.to_string()))?;
        if validate_only {
            return Ok(());
        }
        self.commit(CatalogChange::BrokerConfig { broker, overrides })
            .await
    }

    async fn alter_scram_credential(&mut self, change: ScramChange) -> Result<(), AdminError> {
        let exists = self
            .catalog
            .scram_credential(&change.user, change.mechanism)
            .is_some();
        if change.credential.is_none() && !exists {
            return Err(AdminError::NoScramCredential);
        }
        self.commit(CatalogChange::ScramCredential {
            user: change.user,
            mechanism: change.mechanism,
            credential: change.credential,
        })
        .await
    }

    async fn create_acls(&mut self, acls: Vec<AclBinding>) -> Result<(), AdminError> {
        let mut created: Vec<AclBinding> = Vec::with_capacity(acls.len());
        for acl in acls {
            if !self.catalog.acls().contains(&acl) && !created.contains(&acl) {
                created.push(acl);
            }
        }
        if created.is_empty() {
            return Ok(());
        }
        self.commit(CatalogChange::Acls {
            created,
            deleted: Vec::new(),
        })
        .await
    }

    async fn delete_acls(
        &mut self,
        filters: Vec<AclFilter>,
    ) -> Result<Vec<Vec<AclBinding>>, AdminError> {
        let matched: Vec<Vec<AclBinding>> = filters
            .iter()
            .map(|filter| {
                let acls = self.catalog.acls().iter();
                acls.filter(|acl| filter.matches(acl)).cloned().collect()
            })
            .collect();
        let mut deleted: Vec<AclBinding> = Vec::new();
        for acl in matched.iter().flatten() {
            if !deleted.contains(acl) {
                deleted.push(acl.clone());
            }
        }
        if !deleted.is_empty() {
            self.commit(CatalogChange::Acls {
                created: Vec::new(),
                deleted,
            })
            .await?;
        }
        Ok(matched)
    }

    /// Persists `change`, then applies it on every shard. The file is written first so a
    /// crash never leaves shards serving a topic that a restart would forget. In a cluster,
    /// the change is committed through Raft first and comes back through `apply_committed`.
    async fn commit(&mut self, change: CatalogChange) -> Result<(), AdminError> {
        let Some(cluster) = &self.cluster else {
            return self.commit_locally(change).await;
        };
        let record = match &change {
            CatalogChange::Upsert(meta) => match self.catalog.get(&meta.name) {
                Some(current) if current.id == meta.id => MetaChange::UpdateTopic {
                    from: TopicEntry::of(current),
                    to: TopicEntry::of(meta),
                },
                _ => MetaChange::CreateTopic(TopicEntry::of(meta)),
            },
            CatalogChange::Delete { name } => match self.catalog.get(name) {
                Some(current) => MetaChange::DeleteTopic {
                    name: name.clone(),
                    id: current.id.to_string(),
                },
                None => return Err(AdminError::UnknownTopic(name.clone())),
            },
            CatalogChange::BrokerConfig { broker, overrides } => MetaChange::BrokerConfig {
                broker: broker.clone(),
                overrides: overrides.clone(),
            },
            CatalogChange::ScramCredential {
                user,
                mechanism,
                credential,
            } => MetaChange::ScramCredential {
                user: user.clone(),
                mechanism: mechanism.name().to_owned(),
                credential: credential.as_ref().map(|c| ScramEntry::new(*mechanism, c)),
            },
            // DeleteAcls matched its filters against this node's copy; a binding another node
            // created meanwhile is not deleted (it was not there when the filter ran).
            CatalogChange::Acls { created, deleted } => MetaChange::Acls {
                created: created.clone(),
                deleted: deleted.clone(),
            },
            CatalogChange::GroupConfig { group, overrides } => MetaChange::GroupConfig {
                group: group.clone(),
                overrides: overrides.clone(),
            },
        };
        let (index, outcome) = cluster
            .plane
            .propose(record.encode())
            .await
            .map_err(cluster_error)?;
        self.await_applied(index).await;
        let name = match &change {
            CatalogChange::Upsert(meta) => meta.name.clone(),
            CatalogChange::Delete { name } => name.clone(),
            _ => String::new(),
        };
        match ChangeOutcome::decode(&outcome) {
            ChangeOutcome::Applied => Ok(()),
            ChangeOutcome::TopicExists => Err(AdminError::TopicExists(name)),
            ChangeOutcome::UnknownTopic => Err(AdminError::UnknownTopic(name)),
            ChangeOutcome::Conflict => Err(AdminError::NotController(format!(
                "topic {name} changed concurrently; retry"
            ))),
            ChangeOutcome::Invalid(reason) => Err(AdminError::InvalidRequest(reason)),
            ChangeOutcome::ProducerIds { .. } => Err(AdminError::InvalidRequest(format!(
                "a catalog change of {name:?} answered with producer ids"
            ))),
        }
    }

    /// Applies what the node's state machine committed, in order, until the record at `index`
    /// (this owner's own proposal) is applied here too, so that the topic is usable on this
    /// node's shards when the admin request answers.
    async fn await_applied(&mut self, index: u64) {
        let deadline = std::time::Instant::now() + APPLY_WAIT;
        while self.catalog.applied_index() < index {
            let Some(cluster) = &self.cluster else { return };
            let committed = cluster.committed.clone();
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let next = futures_lite::future::or(async { committed.recv().await.ok() }, async {
                crate::io::sleep(left).await;
                None
            })
            .await;
            match next {
                Some(committed) => self.apply_committed(committed).await,
                None => {
                    tracing::warn!(index, "a committed metadata change is not applied here yet");
                    return;
                }
            }
        }
    }

    /// Persists and broadcasts what the metadata Raft group committed. Records at or below
    /// the index the catalog file already reflects are replays after a restart: skipped.
    async fn apply_committed(&mut self, committed: Committed) {
        match committed {
            Committed::Changes { index, changes } => {
                if index > self.catalog.applied_index() {
                    self.apply_changes(index, changes).await;
                }
            }
            Committed::Image {
                index,
                topics,
                brokers,
                users,
                acls,
                groups,
            } => {
                if index > self.catalog.applied_index() {
                    let mut changes = self.catalog_diff(&topics, &brokers);
                    changes.extend(self.security_diff(&users, acls));
                    changes.extend(self.group_config_diff(&groups));
                    self.apply_changes(index, changes).await;
                }
            }
            Committed::Nodes(nodes) => {
                if let Some(cluster) = &mut self.cluster {
                    cluster.nodes = nodes.iter().map(|n| (n.node_id, n.clone())).collect();
                }
                for shard in &self.shards {
                    // A shard that stopped is shutting down with the rest.
                    let _ = shard.send(ShardMessage::Nodes(nodes.clone())).await;
                }
            }
        }
    }

    /// The changes that turn this node's catalog into a snapshot's topics and broker configs.
    fn catalog_diff(
        &self,
        topics: &[TopicMeta],
        brokers: &BTreeMap<String, topic_config::TopicOverrides>,
    ) -> Vec<CatalogChange> {
        let mut changes = Vec::new();
        for current in self.catalog.topics() {
            if !topics.iter().any(|t| t.name == current.name) {
                let name = current.name.clone();
                changes.push(CatalogChange::Delete { name });
            }
        }
        for topic in topics {
            if self.catalog.get(&topic.name) != Some(topic) {
                changes.push(CatalogChange::Upsert(topic.clone()));
            }
        }
        for (broker, overrides) in self.catalog.all_broker_overrides() {
            if !brokers.contains_key(broker) && !overrides.is_empty() {
                changes.push(CatalogChange::BrokerConfig {
                    broker: broker.clone(),
                    overrides: Default::default(),
                });
            }
        }
        for (broker, overrides) in brokers {
            if self.catalog.broker_overrides(broker) != *overrides {
                changes.push(CatalogChange::BrokerConfig {
                    broker: broker.clone(),
                    overrides: overrides.clone(),
                });
            }
        }
        changes
    }

    /// The changes that turn this node's SCRAM credentials and ACLs into a snapshot's. A
    /// credential only this node has (`sluice user add --data-dir` on it) goes: the
    /// replicated state is the cluster's.
    fn security_diff(&self, users: &Users, acls: Vec<AclBinding>) -> Vec<CatalogChange> {
        let mut changes = Vec::new();
        for (user, mechanisms) in self.catalog.scram_users() {
            for (mechanism, _) in mechanisms {
                if !users.get(user).is_some_and(|m| m.contains_key(&mechanism)) {
                    changes.push(CatalogChange::ScramCredential {
                        user: user.to_owned(),
                        mechanism,
                        credential: None,
                    });
                }
            }
        }
        for (user, credentials) in users {
            for (mechanism, credential) in credentials {
                if self.catalog.scram_credential(user, *mechanism) != Some(credential) {
                    changes.push(CatalogChange::ScramCredential {
                        user: user.clone(),
                        mechanism: *mechanism,
                        credential: Some(credential.clone()),
                    });
                }
            }
        }
        let current = self.catalog.acls();
        let deleted: Vec<AclBinding> = current
            .iter()
            .filter(|a| !acls.contains(a))
            .cloned()
            .collect();
        let created: Vec<AclBinding> = acls.into_iter().filter(|a| !current.contains(a)).collect();
        if !created.is_empty() || !deleted.is_empty() {
            changes.push(CatalogChange::Acls { created, deleted });
        }
        changes
    }

    /// The changes that turn this node's share-group configs into a snapshot's.
    fn group_config_diff(
        &self,
        groups: &BTreeMap<String, crate::share::share_config::GroupOverrides>,
    ) -> Vec<CatalogChange> {
        let current = self.catalog.group_overrides();
        let removed = current
            .keys()
            .filter(|group| !groups.contains_key(*group))
            .map(|group| CatalogChange::GroupConfig {
                group: group.clone(),
                overrides: Default::default(),
            });
        let changed = groups
            .iter()
            .filter(|(group, overrides)| current.get(*group) != Some(*overrides))
            .map(|(group, overrides)| CatalogChange::GroupConfig {
                group: group.clone(),
                overrides: overrides.clone(),
            });
        removed.chain(changed).collect()
    }

    async fn apply_changes(&mut self, index: u64, changes: Vec<CatalogChange>) {
        if changes.is_empty() {
            // Nothing to persist: a replay of this index after a restart changes nothing.
            self.catalog.set_applied_index(index);
            return;
        }
        tracing::info!(
            index,
            changes = changes.len(),
            "applying committed metadata"
        );
        let mut next = self.catalog.clone();
        for change in &changes {
            next.apply(change);
        }
        next.set_applied_index(index);
        // A failed write leaves the older file and index: a restart replays from there.
        if let Err(e) = next.persist(&self.data_dir).await {
            tracing::error!(index, error = %e, "persisting a committed catalog change failed");
        }
        self.catalog = next;
        for change in changes {
            if let Err(e) = self.broadcast(change).await {
                tracing::error!(index, error = %e, "applying a committed catalog change failed");
            }
        }
    }

    async fn commit_locally(&mut self, change: CatalogChange) -> Result<(), AdminError> {
        let mut next = self.catalog.clone();
        next.apply(&change);
        next.persist(&self.data_dir)
            .await
            .map_err(|e| AdminError::Storage(e.to_string()))?;
        self.catalog = next;
        self.broadcast(change).await
    }

    /// Applies `change` on every shard and waits for all of them.
    async fn broadcast(&mut self, change: CatalogChange) -> Result<(), AdminError> {
        let mut answers = Vec::with_capacity(self.shards.len());
        for shard in &self.shards {
            let (reply, answer) = oneshot::channel();
            shard
                .send(ShardMessage::Apply {
                    change: change.clone(),
                    reply,
                })
                .await
                .map_err(|_| AdminError::ShuttingDown)?;
            answers.push(answer);
        }
        for answer in answers {
            answer.await.map_err(|_| AdminError::ShuttingDown)??;
        }
        Ok(())
    }
}
