//! A shard: one core's executor and everything it owns — its partitions' logs and its
//! replica of the topic catalog. Connections on the shard share it through `Rc`; nothing
//! here is `Send`, and no lock is taken on the data path.

pub mod admin_error;
pub mod broker_config;
pub mod catalog;
pub mod catalog_machine;
pub mod catalog_owner;
pub mod control;
pub mod dead_letter;
pub mod internal_topics;
pub mod kafka_topic_configs;
pub mod log_cleaner_task;
pub mod metrics_publisher;
pub mod placement;
pub mod producer_ids;
pub mod replica_host;
pub mod replica_net;
pub mod share_admin;
pub mod share_inbox;
pub mod share_remote;
pub mod share_timers;
pub mod topic_config;
pub mod txn_host;
pub mod txn_inbox;
pub mod txn_remote;
pub mod txn_timers;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use futures_channel::oneshot;

use crate::config::BrokerConfig;
use crate::log::{LogConfig, PartitionLog};
use crate::security::sasl::{CredentialSource, SaslMechanism, ScramCredential};
use crate::share::share_state::StoredPartition;
use catalog::{Catalog, CatalogChange, TopicMeta};
use control::{AdminError, AdminRequest, ShardMessage};
use placement::owner_shard;
use topic_config::TopicOverrides;

use crate::security::acl::{self, AclBinding, AclFilter, AclOperation, ResourceType};
use crate::security::Session;

fn requester(session: &Session) -> acl::Requester<'_> {
    acl::Requester {
        principal: &session.principal,
        host: session.peer_ip(),
    }
}

/// The address a shard advertises as its own broker.
#[derive(Debug, Clone)]
pub struct BrokerAddress {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
}

/// Where a partition lives relative to this shard.
pub enum PartitionLookup {
    Local(PartitionLog),
    /// The topic exists but this partition belongs to another shard (or does not exist).
    NotHere,
    UnknownTopic,
}

pub struct Shard {
    pub id: usize,
    pub config: Arc<BrokerConfig>,
    /// The brokers (one per shard) as the first listener advertises them.
    pub brokers: Vec<BrokerAddress>,
    /// The same brokers per listener, in the configured listener order.
    pub listener_brokers: Vec<Vec<BrokerAddress>>,
    catalog: RefCell<Catalog>,
    /// Logs of the partitions this shard owns, by topic then partition index.
    logs: RefCell<HashMap<String, HashMap<i32, PartitionLog>>>,
    admin: async_channel::Sender<AdminRequest>,
    /// Coordinator of the consumer groups that hash to this shard.
    groups: std::rc::Rc<crate::group::GroupCoordinator>,
    /// Share groups: this shard's share-partitions and the share groups it coordinates.
    share: std::rc::Rc<crate::share::ShareState>,
    /// Coordinator of the transactional ids that hash to this shard.
    txn: crate::txn::TxnCoordinator,
    /// This node's place in a cluster; `None` on a single node.
    cluster: Option<ShardCluster>,
    /// Replicas of the replicated partitions this shard hosts (see `replica_host`).
    replicas: RefCell<HashMap<(String, i32), replica_host::Hosted>>,
    /// Internal topics whose creation is under way (see `internal_topics`).
    creating_internal_topics: RefCell<std::collections::HashSet<&'static str>>,
}

/// What a shard of a cluster node knows of the cluster.
struct ShardCluster {
    node_id: crate::cluster::NodeId,
    plane: crate::cluster::ControlPlane,
    /// Every registered node (this one included once it has registered).
    nodes: RefCell<Vec<catalog_machine::NodeInfo>>,
    /// The replicas' transport to the same shard of other nodes.
    net: std::rc::Rc<replica_net::ReplicaNet>,
}

/// A stable hash of a name, the same on every node and every version (placement depends on it).
pub(crate) fn fnv_hash(text: &str) -> u64 {
    use std::hash::Hasher;
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(text.as_bytes());
    hasher.finish()
}

/// The coordinator keys (group and transactional ids) this node serves: every key on a
/// single node; in a cluster, those whose hash picks this node among the configured peers,
/// a fixed set, so a key never moves when a node registers late or is down (its groups are
/// then unavailable, as with RF=1). `coordinator_broker` names the same node.
fn node_keys(cluster: Option<&crate::cluster::PeerList>) -> crate::group::NodeKeys {
    let Some(peers) = cluster else {
        return crate::group::NodeKeys::ALL;
    };
    // A node added later (not among the initial peers) coordinates nothing: the keys keep
    // hashing over the initial peers (docs/cluster.md, "Membership changes").
    let slot = peers.peers.keys().position(|id| *id == peers.node_id);
    crate::group::NodeKeys::slot(slot.unwrap_or(peers.peers.len()), peers.peers.len())
}

/// Whether group offsets and transaction state live in the replicated internal topics
/// (`group::OFFSETS_TOPIC`, `txn::txn_store::TXN_STATE_TOPIC`): in a cluster of two or more
/// initial peers, so groups and transactions outlive their coordinator's node (see
/// `internal_topics`). A cluster of one has nothing to replicate to.
fn replicated_internal_state(cluster: Option<&crate::cluster::PeerList>) -> bool {
    cluster.is_some_and(|peers| peers.peers.len() >= 2)
}

/// The leader of replicated `partition` of `meta` (replica nodes `nodes`) as this node's
/// replica of it last published; `None` while none is known (or this node hosts none).
fn known_leader(
    cluster: &ShardCluster,
    meta: &TopicMeta,
    partition: i32,
    nodes: &[crate::cluster::NodeId],
) -> Option<crate::cluster::NodeId> {
    cluster
        .plane
        .replica_leaders()
        .get(&meta.name, partition)
        .and_then(|leader| leader.node)
        .filter(|node| nodes.contains(node))
}

/// Shard `shard`'s Kafka broker id: the shard index on a single node, and
/// [`cluster_broker_id`] on a cluster node `node`.
pub fn broker_id(node: Option<crate::cluster::NodeId>, shard: usize) -> i32 {
    match node {
        Some(node_id) => cluster_broker_id(node_id, shard),
        None => i32::try_from(shard).unwrap_or(i32::MAX),
    }
}

/// A cluster node's shard `s` is Kafka broker `node_id * 1000 + s`.
pub fn cluster_broker_id(node_id: crate::cluster::NodeId, shard: usize) -> i32 {
    let id = node_id
        .saturating_mul(crate::constants::CLUSTER_SHARDS_PER_NODE_MAX)
        .saturating_add(shard as u64);
    i32::try_from(id).unwrap_or(i32::MAX)
}

impl Shard {
    pub fn new(
        id: usize,
        config: Arc<BrokerConfig>,
        brokers: Vec<BrokerAddress>,
        catalog: Catalog,
        admin: async_channel::Sender<AdminRequest>,
    ) -> Shard {
        let keys = node_keys(config.cluster.as_ref());
        let mut groups = crate::group::GroupCoordinator::new(
            &config.data_dir,
            id,
            config.shard_count,
            keys,
            config.group.clone(),
        );
        let replicated = replicated_internal_state(config.cluster.as_ref());
        if replicated {
            groups = groups.with_replicated_offsets();
        }
        let groups = Rc::new(groups);
        let mut share = crate::share::ShareState::new(
            &config.data_dir,
            id,
            config.shard_count,
            keys,
            &config.share,
        );
        if replicated {
            share = share.follow_group_coordinator(Rc::clone(&groups));
        }
        let share = std::rc::Rc::new(share);
        let mut txn =
            crate::txn::TxnCoordinator::new(&config.data_dir, id, config.shard_count, keys);
        if replicated {
            txn = txn.with_replicated_state();
        }
        Shard {
            id,
            config,
            brokers,
            listener_brokers: Vec::new(),
            catalog: RefCell::new(catalog),
            logs: RefCell::new(HashMap::new()),
            admin,
            groups,
            share,
            txn,
            cluster: None,
            replicas: RefCell::new(HashMap::new()),
            creating_internal_topics: RefCell::new(std::collections::HashSet::new()),
        }
    }

    /// Makes this shard one of a cluster node's: broker ids, placement and Metadata follow.
    /// Whether this node is part of a cluster (its catalog is the metadata Raft group's).
    pub fn in_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// In a cluster: hands the share-group configs of the catalog to the share state (they
    /// are metadata there; a single node keeps them in the share state's own files).
    pub fn load_group_configs(&self) {
        if !self.in_cluster() {
            return;
        }
        let catalog = self.catalog.borrow();
        for (group, overrides) in catalog.group_overrides() {
            self.share.set_group_config(group, overrides.clone());
        }
    }

    pub fn join_cluster(&mut self, plane: crate::cluster::ControlPlane) {
        let net = replica_net::ReplicaNet::new(plane.node_id(), self.id, plane.clone());
        self.cluster = Some(ShardCluster {
            node_id: plane.node_id(),
            plane,
            nodes: RefCell::new(Vec::new()),
            net: std::rc::Rc::new(net),
        });
    }

    /// The Kafka broker id of this node's shard `shard`.
    pub fn broker_id(&self, shard: usize) -> i32 {
        broker_id(self.cluster.as_ref().map(|c| c.node_id), shard)
    }

    /// Whether `partition` of `meta` lives on this node (always, on a single node): it is
    /// the partition's node, or one of its replica nodes.
    pub fn is_local(&self, meta: &TopicMeta, partition: i32) -> bool {
        let Some(cluster) = &self.cluster else {
            return true;
        };
        if let Some(nodes) = meta.placement.replicas_of(partition) {
            return nodes.contains(&cluster.node_id);
        }
        meta.placement
            .node_of(partition)
            .is_none_or(|node| node == cluster.node_id)
    }

    /// The broker leading `partition` of `meta`: a shard of the node it lives on; for a
    /// replicated partition, of the node its replica here knows as leader, else of its
    /// preferred leader (a node without a replica does not know better; leader placement
    /// through the metadata group is a later step).
    pub fn leader_broker(&self, meta: &TopicMeta, partition: i32) -> i32 {
        let Some(cluster) = &self.cluster else {
            return self.broker_id(meta.owner(partition, self.config.shard_count));
        };
        if let Some(nodes) = meta.placement.replicas_of(partition) {
            let known = known_leader(cluster, meta, partition, nodes);
            return self.broker_on(known.unwrap_or(nodes[0]), meta, partition);
        }
        match meta.placement.node_of(partition) {
            Some(node) => self.broker_on(node, meta, partition),
            None => self.broker_id(meta.owner(partition, self.config.shard_count)),
        }
    }

    /// The brokers holding a replica of a replicated `partition` (the same shard index on
    /// each replica node), in replica order; `None` when the partition has one copy.
    pub fn replica_brokers(&self, meta: &TopicMeta, partition: i32) -> Option<Vec<i32>> {
        self.cluster.as_ref()?;
        let nodes = meta.placement.replicas_of(partition)?;
        Some(
            nodes
                .iter()
                .map(|node| self.broker_on(*node, meta, partition))
                .collect(),
        )
    }

    /// The broker of node `node` that owns `partition` of `meta`.
    fn broker_on(&self, node: crate::cluster::NodeId, meta: &TopicMeta, partition: i32) -> i32 {
        let Some(cluster) = &self.cluster else {
            return self.broker_id(meta.owner(partition, self.config.shard_count));
        };
        if node == cluster.node_id {
            return self.broker_id(meta.owner(partition, self.config.shard_count));
        }
        let nodes = cluster.nodes.borrow();
        let shard_count = nodes
            .iter()
            .find(|n| n.node_id == node)
            .map_or(self.config.shard_count, |n| n.shard_count().max(1));
        cluster_broker_id(node, meta.owner(partition, shard_count))
    }

    /// The controller Metadata names: the metadata Raft leader's shard 0 in a cluster (-1
    /// while none is known), this node's shard 0 otherwise.
    pub fn controller_id(&self) -> i32 {
        match &self.cluster {
            Some(cluster) => cluster
                .plane
                .leader()
                .map_or(-1, |leader| cluster_broker_id(leader, 0)),
            None => 0,
        }
    }

    /// Every broker of the cluster as the session's listener advertises them: this node's
    /// shards, then every other registered node's, by broker id.
    pub fn cluster_brokers_for(&self, session: &Session) -> Vec<BrokerAddress> {
        let mut brokers = self.brokers_for(session).to_vec();
        if let Some(cluster) = &self.cluster {
            for node in cluster.nodes.borrow().iter() {
                if node.node_id == cluster.node_id {
                    continue;
                }
                let Some(listener) = node
                    .listeners
                    .get(session.listener)
                    .or_else(|| node.listeners.first())
                else {
                    continue;
                };
                for (shard, port) in listener.ports.iter().enumerate() {
                    brokers.push(BrokerAddress {
                        node_id: cluster_broker_id(node.node_id, shard),
                        host: listener.host.clone(),
                        port: *port,
                    });
                }
            }
            brokers.sort_by_key(|b| b.node_id);
        }
        brokers
    }

    /// Every broker id a manual replica assignment may name: this node's shards, and in a
    /// cluster every registered node's.
    pub fn broker_ids(&self) -> Vec<i32> {
        let own = (0..self.config.shard_count).map(|s| self.broker_id(s));
        let mut ids: Vec<i32> = own.collect();
        if let Some(cluster) = &self.cluster {
            for node in cluster.nodes.borrow().iter() {
                if node.node_id != cluster.node_id {
                    let shards = 0..node.shard_count();
                    ids.extend(shards.map(|s| cluster_broker_id(node.node_id, s)));
                }
            }
        }
        ids
    }

    /// The broker coordinating a group or transactional id, as the session's listener
    /// advertises it: the shard its id hashes to (see `group::coordinator_shard`), on a
    /// single node this one; in a cluster on the node a second hash of the id picks among
    /// the configured peers (see [`node_keys`]).
    /// `None` while that node has not registered its listeners.
    pub fn coordinator_broker(&self, session: &Session, key: &str) -> Option<BrokerAddress> {
        let local = |shard_count: usize| crate::group::coordinator_shard(key, shard_count);
        let (Some(cluster), Some(peers)) = (&self.cluster, &self.config.cluster) else {
            return self
                .brokers_for(session)
                .get(local(self.config.shard_count))
                .cloned();
        };
        let ids: Vec<crate::cluster::NodeId> = peers.peers.keys().copied().collect();
        let node_id = *ids.get(crate::group::NodeKeys::slot_of(key, ids.len()))?;
        if node_id == cluster.node_id {
            return self
                .brokers_for(session)
                .get(local(self.config.shard_count))
                .cloned();
        }
        self.node_broker(session, node_id, local)
    }

    /// The address of shard `shard(shard count)` of another cluster node `node_id`, as the
    /// session's listener advertises it; `None` while that node has not registered.
    fn node_broker(
        &self,
        session: &Session,
        node_id: crate::cluster::NodeId,
        shard: impl FnOnce(usize) -> usize,
    ) -> Option<BrokerAddress> {
        let cluster = self.cluster.as_ref()?;
        let nodes = cluster.nodes.borrow();
        let node = nodes.iter().find(|n| n.node_id == node_id)?;
        let listener = node
            .listeners
            .get(session.listener)
            .or_else(|| node.listeners.first())?;
        let shard = shard(node.shard_count());
        Some(BrokerAddress {
            node_id: cluster_broker_id(node_id, shard),
            host: listener.host.clone(),
            port: *listener.ports.get(shard)?,
        })
    }

    fn set_nodes(&self, nodes: Vec<catalog_machine::NodeInfo>) {
        if let Some(cluster) = &self.cluster {
            *cluster.nodes.borrow_mut() = nodes;
        }
    }

    /// The brokers as advertised on the listener a session connected through.
    pub fn brokers_for(&self, session: &Session) -> &[BrokerAddress] {
        self.listener_brokers
            .get(session.listener)
            .map_or(&self.brokers[..], |brokers| &brokers[..])
    }

    pub fn txn(&self) -> &crate::txn::TxnCoordinator {
        &self.txn
    }

    pub fn groups(&self) -> &std::rc::Rc<crate::group::GroupCoordinator> {
        &self.groups
    }

    pub fn share(&self) -> &std::rc::Rc<crate::share::ShareState> {
        &self.share
    }

    /// This shard's Kafka broker id.
    pub fn node_id(&self) -> i32 {
        self.broker_id(self.id)
    }

    pub fn owner_of(&self, topic: &str, partition: i32) -> usize {
        let shard_count = self.config.shard_count;
        match self.catalog.borrow().get(topic) {
            Some(meta) => meta.owner(partition, shard_count),
            None => owner_shard(topic, partition, shard_count),
        }
    }

    /// Where a partition whose share state is on disk stands at start-up.
    pub fn stored_share_partition(&self, topic: &str, partition: i32) -> StoredPartition {
        match (self.partition(topic, partition), self.topic(topic)) {
            (PartitionLookup::Local(log), Some(meta)) => StoredPartition::Local {
                topic_id: meta.id,
                log,
                replica: self.replica(topic, partition),
            },
            (PartitionLookup::UnknownTopic, _) if self.owner_of(topic, partition) == self.id => {
                StoredPartition::DeletedHere
            }
            _ => StoredPartition::Elsewhere,
        }
    }

    pub fn topic(&self, name: &str) -> Option<TopicMeta> {
        self.catalog.borrow().get(name).cloned()
    }

    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<TopicMeta> {
        self.catalog.borrow().by_id(id).cloned()
    }

    pub fn topics(&self) -> Vec<TopicMeta> {
        self.catalog.borrow().topics().cloned().collect()
    }

    pub fn partition(&self, topic: &str, partition: i32) -> PartitionLookup {
        if let Some(log) = self
            .logs
            .borrow()
            .get(topic)
            .and_then(|parts| parts.get(&partition))
        {
            // A follower's log is not served: clients go to the leader (no KIP-392); nor is
            // a new leader's before it applied what its predecessors committed.
            if self
                .replica(topic, partition)
                .is_some_and(|replica| !replica.is_readable_leader())
            {
                return PartitionLookup::NotHere;
            }
            return PartitionLookup::Local(log.clone());
        }
        if self.catalog.borrow().get(topic).is_some() {
            PartitionLookup::NotHere
        } else {
            PartitionLookup::UnknownTopic
        }
    }

    /// Every log this shard owns (for retention, shutdown, metrics).
    pub fn local_logs(&self) -> Vec<PartitionLog> {
        self.logs
            .borrow()
            .values()
            .flat_map(|parts| parts.values().cloned())
            .collect()
    }

    /// Every log this shard owns with its topic and partition (for metrics).
    pub fn named_logs(&self) -> Vec<(String, i32, PartitionLog)> {
        let logs = self.logs.borrow();
        let named = logs.iter().flat_map(|(topic, parts)| {
            parts
                .iter()
                .map(|(p, log)| (topic.clone(), *p, log.clone()))
        });
        named.collect()
    }

    pub fn topic_log_config(&self, meta: &TopicMeta) -> Result<LogConfig, AdminError> {
        topic_config::log_config(&self.log_defaults(), &meta.overrides)
            .map_err(|e| AdminError::InvalidConfig(e.to_string()))
    }

    /// The broker's topic defaults with the dynamic broker configs that change them. The
    /// catalog owner refuses overrides that do not parse, so the fallback is for a catalog
    /// edited by hand.
    fn log_defaults(&self) -> LogConfig {
        let overrides = broker_config::topic_defaults(
            &self.broker_overrides(""),
            &self.broker_overrides(&self.id.to_string()),
        );
        topic_config::log_config(&self.config.log, &overrides)
            .unwrap_or_else(|_| self.config.log.clone())
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.config.data_dir.join(format!("{topic}-{partition}"))
    }

    /// Opens the logs of every partition this shard owns in the current catalog.
    pub async fn open_owned_partitions(&self) -> Result<(), AdminError> {
        for meta in self.topics() {
            self.open_partitions(&meta).await?;
        }
        Ok(())
    }

    async fn open_partitions(&self, meta: &TopicMeta) -> Result<(), AdminError> {
        let log_config = self.topic_log_config(meta)?;
        for partition in 0..meta.partition_count {
            if meta.owner(partition, self.config.shard_count) != self.id
                || !self.is_local(meta, partition)
            {
                continue;
            }
            let log_config = replicated_log_config(meta, partition, &log_config);
            let existing = self
                .logs
                .borrow()
                .get(&meta.name)
                .and_then(|parts| parts.get(&partition))
                .cloned();
            if let Some(log) = existing {
                log.update_config(log_config);
                self.open_replica(meta, partition, &log).await?;
                continue;
            }
            let dir = self.partition_dir(&meta.name, partition);
            let log = PartitionLog::open(dir, log_config).await.map_err(|e| {
                AdminError::Storage(format!("opening {}-{partition}: {e}", meta.name))
            })?;
            self.logs
                .borrow_mut()
                .entry(meta.name.clone())
                .or_default()
                .insert(partition, log.clone());
            self.open_replica(meta, partition, &log).await?;
        }
        Ok(())
    }

    /// A new topic (a new id) has no data yet, so a directory of one of its partitions is a
    /// deleted topic's of the same name that outlived it: DeleteTopics persists the catalog
    /// before the shards remove the logs, and a crash in between (or a removal the crash
    /// undid) leaves the directory. Opening it would hand the old records to the new topic.
    async fn remove_leftover_partitions(&self, meta: &TopicMeta) -> Result<(), AdminError> {
        for partition in 0..meta.partition_count {
            if self.owner_of(&meta.name, partition) != self.id || !self.is_local(meta, partition) {
                continue;
            }
            // A Raft log left behind would make the new topic's replica replay the old one's.
            self.remove_replica_dir(&meta.name, partition).await?;
            let dir = self.partition_dir(&meta.name, partition);
            if !crate::io::dma_file::exists(&dir) {
                continue;
            }
            tracing::warn!(
                ?dir,
                "removing a deleted topic's partition directory left behind"
            );
            let failed = |e| AdminError::Storage(format!("removing {dir:?}: {e}"));
            crate::io::dma_file::remove_dir_all(&dir).map_err(failed)?;
            crate::io::dma_file::sync_dir(&self.config.data_dir)
                .await
                .map_err(failed)?;
        }
        Ok(())
    }

    /// Applies a catalog change broadcast by shard 0: opens, reconfigures or deletes logs.
    pub async fn apply(&self, change: CatalogChange) -> Result<(), AdminError> {
        let deleted = match &change {
            CatalogChange::Delete { name } => self.topic(name),
            CatalogChange::Upsert(_)
            | CatalogChange::BrokerConfig { .. }
            | CatalogChange::ScramCredential { .. } => None,
            CatalogChange::Acls { .. } | CatalogChange::GroupConfig { .. } => None,
        };
        let created = match &change {
            CatalogChange::Upsert(meta) => self.topic(&meta.name).is_none_or(|m| m.id != meta.id),
            CatalogChange::Delete { .. }
            | CatalogChange::BrokerConfig { .. }
            | CatalogChange::ScramCredential { .. } => false,
            CatalogChange::Acls { .. } | CatalogChange::GroupConfig { .. } => false,
        };
        self.catalog.borrow_mut().apply(&change);
        match change {
            CatalogChange::Upsert(meta) => {
                if created {
                    self.remove_leftover_partitions(&meta).await?;
                }
                self.open_partitions(&meta).await
            }
            CatalogChange::Delete { name } => {
                // Before the logs: a replica applies into its partition log.
                self.drop_replicas_of(&name).await?;
                let removed = self.logs.borrow_mut().remove(&name);
                for (partition, log) in removed.into_iter().flatten() {
                    log.delete().await.map_err(|e| {
                        AdminError::Storage(format!("deleting {name}-{partition}: {e}"))
                    })?;
                }
                if let Some(meta) = deleted {
                    // Each leftover state directory is removed by one shard, picked by hash.
                    let owned: Vec<i32> = (0..meta.partition_count)
                        .filter(|&p| owner_shard(&meta.name, p, self.config.shard_count) == self.id)
                        .collect();
                    let dropped = self.share.drop_topic(&meta.name, meta.id, &owned);
                    dropped.await.map_err(|e| {
                        AdminError::Storage(format!("deleting the share state of {name}: {e}"))
                    })?;
                }
                Ok(())
            }
            // Live logs take the new defaults where their topic has no override.
            CatalogChange::BrokerConfig { .. } => {
                for meta in self.topics() {
                    self.open_partitions(&meta).await?;
                }
                Ok(())
            }
            // Credentials live in the catalog replica alone; SASL reads them from there.
            CatalogChange::ScramCredential { .. } => Ok(()),
            // The replica above is all the authorizer reads.
            CatalogChange::Acls { .. } => Ok(()),
            CatalogChange::GroupConfig { group, overrides } => {
                self.share.set_group_config(&group, overrides);
                Ok(())
            }
        }
    }

    /// Every user with SCRAM credentials, with their mechanisms and iteration counts.
    pub fn scram_users(&self) -> Vec<(String, Vec<(SaslMechanism, i32)>)> {
        let catalog = self.catalog.borrow();
        let users = catalog.scram_users();
        users.map(|(name, m)| (name.to_owned(), m)).collect()
    }

    /// Whether the session may perform `operation` on a resource, by this shard's replica
    /// of the ACLs. Always true without `--authorizer acl`.
    pub fn authorize(
        &self,
        session: &Session,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let config = &self.config.authorizer;
        !config.enabled
            || acl::authorize(
                config,
                self.catalog.borrow().acls(),
                requester(session),
                operation,
                resource_type,
                name,
            )
    }

    /// Whether the session may perform `operation` on some resource of the type.
    pub fn authorize_any(
        &self,
        session: &Session,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        let config = &self.config.authorizer;
        !config.enabled
            || acl::authorize_any(
                config,
                self.catalog.borrow().acls(),
                requester(session),
                operation,
                resource_type,
            )
    }

    /// The KIP-430 bitfield for a resource, or `everything` (the bitfield of every
    /// operation the type supports) without an authorizer.
    pub fn authorized_operations(
        &self,
        session: &Session,
        resource_type: ResourceType,
        name: &str,
        everything: i32,
    ) -> i32 {
        let config = &self.config.authorizer;
        if !config.enabled {
            return everything;
        }
        acl::authorized_operations(
            config,
            self.catalog.borrow().acls(),
            requester(session),
            resource_type,
            name,
        )
    }

    /// The ACLs a filter selects (DescribeAcls).
    pub fn acls(&self, filter: &AclFilter) -> Vec<AclBinding> {
        let catalog = self.catalog.borrow();
        catalog
            .acls()
            .iter()
            .filter(|acl| filter.matches(acl))
            .cloned()
            .collect()
    }

    /// Dynamic config overrides of `broker` (an id, or "" for the cluster default).
    pub fn broker_overrides(&self, broker: &str) -> TopicOverrides {
        self.catalog.borrow().broker_overrides(broker)
    }

    /// Sends a request to the catalog owner and waits for its answer.
    pub async fn admin<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> AdminRequest,
    ) -> Result<T, AdminError> {
        let (reply, answer) = oneshot::channel();
        self.admin
            .send(make(reply))
            .await
            .map_err(|_| AdminError::ShuttingDown)?;
        answer.await.map_err(|_| AdminError::ShuttingDown)
    }

    /// Flushes and closes every owned log, marking a clean shutdown.
    pub async fn close_all(&self) {
        self.close_replicas().await;
        let logs: Vec<_> = self.logs.borrow_mut().drain().collect();
        for (topic, parts) in logs {
            for (partition, log) in parts {
                if let Err(e) = log.close().await {
                    tracing::error!(%topic, partition, error = %e, "closing partition log failed");
                }
            }
        }
    }
}

impl CredentialSource for Shard {
    fn scram_credential(&self, user: &str, mechanism: SaslMechanism) -> Option<ScramCredential> {
        self.catalog
            .borrow()
            .scram_credential(user, mechanism)
            .cloned()
    }
}

/// The shard's control loop: catalog changes, in arrival order, until a shutdown request,
/// whose reply it returns so the caller can stop accepting, close the logs, then answer.
pub async fn control_loop(
    shard: std::rc::Rc<Shard>,
    inbox: async_channel::Receiver<ShardMessage>,
) -> Option<oneshot::Sender<()>> {
    while let Ok(message) = inbox.recv().await {
        match message {
            ShardMessage::Apply { change, reply } => {
                let result = shard.apply(change).await;
                let _ = reply.send(result); // the requester may have gone; nothing to undo
            }
            ShardMessage::Nodes(nodes) => shard.set_nodes(nodes),
            ShardMessage::Shutdown { reply } => return Some(reply),
        }
    }
    None
}

/// The log config of `partition` of `meta`: the topic's, except that a replicated
/// partition's log is fdatasynced on an interval rather than in every commit round. Its
/// durable record is the Raft log, fsynced before anything is acknowledged, and its data
/// is committed before it is appended, so consumers may see it at once; a crash loses at
/// most the unsynced tail, which the replica applies again from the Raft log
/// (`Replica::open`). Half the files in each of a node's commit rounds.
fn replicated_log_config(meta: &TopicMeta, partition: i32, config: &LogConfig) -> LogConfig {
    let mut config = config.clone();
    if meta.placement.replicas_of(partition).is_some() {
        config.flush =
            crate::log::FlushPolicy::IntervalMs(crate::constants::REPLICA_PARTITION_LOG_FLUSH_MS);
    }
    config
}
