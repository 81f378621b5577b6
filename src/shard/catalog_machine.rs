//! The catalog as the cluster's metadata state machine (issue 17, docs/cluster.md).
//!
//! A Raft record is one [`MetaChange`]: a catalog change with its precondition, as shard 0's
//! [`CatalogOwner`](super::catalog_owner::CatalogOwner) validated it against its own copy of
//! the catalog. Every node's [`CatalogMachine`] applies committed records in log order to an
//! image of the replicated state (topics, broker configs, registered nodes, SCRAM
//! credentials, ACLs), which is also what a Raft snapshot holds, and hands what changed to
//! its shard 0 as [`Committed`]; shard 0 persists it and broadcasts it to its shards through
//! the same `ShardMessage::Apply` path a single node uses.
//!
//! Why changes with preconditions rather than whole catalog images: a follower's catalog can
//! lag the leader's, so an image built there would silently undo a change committed
//! meanwhile (two nodes creating two topics at once would keep only the later one). A change
//! states what it expects (`CreateTopic`: the name is free; `UpdateTopic`: the topic is still
//! `from`), and the machine decides, the same way on every node, whether it applies.
//!
//! Idempotence: a retried proposal may be committed twice, and after a restart every record
//! after the last snapshot is applied again. A second `CreateTopic` of the same id, an
//! `UpdateTopic` that finds the topic already `to`, and a `DeleteTopic` of a topic that is
//! gone are no-ops that answer "applied". Replayed records are also not handed to the shards
//! again: the catalog file records the index of the last record it reflects, and shard 0
//! skips anything at or below it (replaying "create t (id 1), delete t, create t (id 2)"
//! would otherwise wipe id 2's data).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::catalog::{CatalogChange, TopicEntry, TopicMeta};
use super::topic_config::TopicOverrides;
use crate::cluster::{MetaOutcome, MetaRecord, MetaStateMachine, NodeId};
use crate::security::acl::AclBinding;
use crate::security::sasl::scram_credential::ScramEntry;
use crate::security::sasl::SaslMechanism;
use crate::share::share_config::GroupOverrides;

/// One listener of a node as it advertises it: its host and each shard's port, by shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeListener {
    pub host: String,
    pub ports: Vec<u16>,
}

/// A node as it registered itself: its listeners, in the configured order (every node of a
/// cluster is expected to configure the same listeners).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node_id: NodeId,
    pub listeners: Vec<NodeListener>,
}

impl NodeInfo {
    pub fn shard_count(&self) -> usize {
        self.listeners.first().map_or(0, |l| l.ports.len())
    }
}

/// One metadata record: a change and, implicitly, its precondition (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaChange {
    /// A new topic: applies if no topic has its name.
    CreateTopic(TopicEntry),
    /// New partitions or configs: applies if the topic is still `from`.
    UpdateTopic { from: TopicEntry, to: TopicEntry },
    /// Applies if the topic named is the one with `id`.
    DeleteTopic { name: String, id: String },
    /// Dynamic configs of a broker resource ("" = cluster default); empty removes them.
    BrokerConfig {
        broker: String,
        overrides: TopicOverrides,
    },
    /// A node's advertised listeners, announced at each start.
    RegisterNode(NodeInfo),
    /// A user's SCRAM credential for one mechanism (salted keys, never a password): set, or
    /// removed when `credential` is `None` (removing one that is gone is a no-op).
    ScramCredential {
        user: String,
        mechanism: String,
        credential: Option<ScramEntry>,
    },
    /// ACLs added and removed. Adding one present or removing one absent is a no-op, so a
    /// record needs no precondition: the set it leaves is the same whatever came before.
    Acls {
        created: Vec<AclBinding>,
        deleted: Vec<AclBinding>,
    },
    /// A share group's config overrides; empty removes them. A whole value, so applying it
    /// twice leaves the same.
    GroupConfig {
        group: String,
        overrides: GroupOverrides,
    },
    /// A block of `count` producer ids for `node` (KRaft's AllocateProducerIds): the block
    /// starts at the cluster's next free id, or at `at_least` if that is higher (the ids a
    /// node handed out from its own file before it joined a cluster stay unused). Every
    /// commit takes a new block, so a retried proposal wastes ids but never repeats one.
    AllocateProducerIds {
        node: NodeId,
        count: i64,
        at_least: i64,
    },
}

/// What applying a [`MetaChange`] answered, sent back to the proposer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeOutcome {
    Applied,
    TopicExists,
    UnknownTopic,
    /// The topic changed since the proposer read it; the request may be retried.
    Conflict,
    /// The record could not be decoded or holds an impossible topic.
    Invalid(String),
    /// The producer ids `first..end`, the requesting node's alone.
    ProducerIds {
        first: i64,
        end: i64,
    },
}

impl MetaChange {
    pub fn encode(&self) -> MetaRecord {
        MetaRecord {
            // Only strings, numbers, maps and lists: serialising cannot fail.
            body: serde_json::to_string(self).unwrap_or_default(),
        }
    }
}

impl ChangeOutcome {
    pub fn decode(outcome: &MetaOutcome) -> ChangeOutcome {
        serde_json::from_str(&outcome.body)
            .unwrap_or_else(|e| ChangeOutcome::Invalid(format!("outcome {:?}: {e}", outcome.body)))
    }

    fn encode(&self) -> MetaOutcome {
        MetaOutcome {
            body: serde_json::to_string(self).unwrap_or_default(),
        }
    }
}

/// What a committed record changed on this node, for shard 0 to persist and broadcast.
#[derive(Debug)]
pub enum Committed {
    /// The catalog changes of the record at `index` (none when it was a no-op or refused;
    /// shard 0 still learns that `index` is applied).
    Changes {
        index: u64,
        changes: Vec<CatalogChange>,
    },
    /// A snapshot installed at `index`: the whole replicated catalog.
    Image {
        index: u64,
        topics: Vec<TopicMeta>,
        brokers: BTreeMap<String, TopicOverrides>,
        users: Users,
        acls: Vec<AclBinding>,
        groups: BTreeMap<String, GroupOverrides>,
    },
    /// Every registered node (after a registration or a snapshot).
    Nodes(Vec<NodeInfo>),
}

/// SCRAM credentials by user, then mechanism.
pub type Users = BTreeMap<String, BTreeMap<SaslMechanism, crate::security::sasl::ScramCredential>>;

/// The replicated state; its JSON is the Raft snapshot.
#[derive(Debug, Default, Serialize, Deserialize)]
struct MetaImage {
    topics: BTreeMap<String, TopicEntry>,
    brokers: BTreeMap<String, TopicOverrides>,
    nodes: BTreeMap<NodeId, NodeInfo>,
    /// SCRAM credentials by user, then mechanism name (absent in snapshots of the second
    /// slice, which kept them node-local).
    #[serde(default)]
    users: BTreeMap<String, BTreeMap<String, ScramEntry>>,
    #[serde(default)]
    acls: Vec<AclBinding>,
    /// Share-group config overrides (absent in snapshots from before they were replicated).
    #[serde(default)]
    groups: BTreeMap<String, GroupOverrides>,
    /// The first producer id no block has taken yet (absent before the fourth slice, when
    /// each node allocated from its own file).
    #[serde(default)]
    next_producer_id: i64,
    /// The metadata group's members (voters and learners) as of the last membership entry
    /// applied; `None` before the fifth slice, when every registered node was one. A
    /// registered node that is no longer a member (`sluice cluster remove-node`) keeps its
    /// registration, so it is listed again as soon as it is added back, but is neither listed
    /// as a broker nor given new partitions meanwhile.
    #[serde(default)]
    members: Option<BTreeSet<NodeId>>,
}

impl MetaImage {
    /// The registered nodes that are members: the brokers Metadata lists and placement uses.
    fn listed_nodes(&self) -> Vec<NodeInfo> {
        let member = |id: &NodeId| self.members.as_ref().is_none_or(|m| m.contains(id));
        self.nodes
            .values()
            .filter(|n| member(&n.node_id))
            .cloned()
            .collect()
    }

    fn decoded_users(&self) -> Result<Users, String> {
        let mut users = Users::new();
        for (user, entries) in &self.users {
            for entry in entries.values() {
                let (mechanism, credential) =
                    entry.decode().map_err(|e| format!("user {user}: {e}"))?;
                users
                    .entry(user.clone())
                    .or_default()
                    .insert(mechanism, credential);
            }
        }
        Ok(users)
    }
}

/// The metadata state machine of one node; lives on its control-plane thread.
pub struct CatalogMachine {
    image: MetaImage,
    shard0: async_channel::Sender<Committed>,
}

impl CatalogMachine {
    pub fn new(shard0: async_channel::Sender<Committed>) -> CatalogMachine {
        CatalogMachine {
            image: MetaImage::default(),
            shard0,
        }
    }

    fn send(&self, committed: Committed) {
        // Unbounded: never full. Closed only once shard 0 has stopped, at shutdown.
        if self.shard0.try_send(committed).is_err() {
            tracing::debug!("shard 0 has stopped; committed metadata not delivered");
        }
    }

    fn apply_change(&mut self, change: MetaChange) -> (ChangeOutcome, Vec<CatalogChange>) {
        let topics = &mut self.image.topics;
        match change {
            MetaChange::CreateTopic(entry) => {
                let meta = match entry.clone().into_meta() {
                    Ok(meta) => meta,
                    Err(e) => return (ChangeOutcome::Invalid(e), Vec::new()),
                };
                match topics.get(&meta.name) {
                    None => {
                        topics.insert(meta.name.clone(), entry);
                        (ChangeOutcome::Applied, vec![CatalogChange::Upsert(meta)])
                    }
                    // The same creation committed twice.
                    Some(existing) if *existing == entry => (ChangeOutcome::Applied, Vec::new()),
                    Some(_) => (ChangeOutcome::TopicExists, Vec::new()),
                }
            }
            MetaChange::UpdateTopic { from, to } => {
                let meta = match to.clone().into_meta() {
                    Ok(meta) => meta,
                    Err(e) => return (ChangeOutcome::Invalid(e), Vec::new()),
                };
                match topics.get(&meta.name) {
                    Some(current) if *current == from => {
                        topics.insert(meta.name.clone(), to);
                        (ChangeOutcome::Applied, vec![CatalogChange::Upsert(meta)])
                    }
                    Some(current) if *current == to => (ChangeOutcome::Applied, Vec::new()),
                    Some(_) => (ChangeOutcome::Conflict, Vec::new()),
                    None => (ChangeOutcome::UnknownTopic, Vec::new()),
                }
            }
            MetaChange::DeleteTopic { name, id } => {
                let matches = topics.get(&name).map(|t| TopicEntry::id(t) == id);
                match matches {
                    Some(true) => {
                        topics.remove(&name);
                        (ChangeOutcome::Applied, vec![CatalogChange::Delete { name }])
                    }
                    // Deleted already (a duplicate commit, or a concurrent delete).
                    None => (ChangeOutcome::Applied, Vec::new()),
                    Some(false) => (ChangeOutcome::UnknownTopic, Vec::new()),
                }
            }
            MetaChange::BrokerConfig { broker, overrides } => {
                if overrides.is_empty() {
                    self.image.brokers.remove(&broker);
                } else {
                    self.image.brokers.insert(broker.clone(), overrides.clone());
                }
                let change = CatalogChange::BrokerConfig { broker, overrides };
                (ChangeOutcome::Applied, vec![change])
            }
            MetaChange::RegisterNode(node) => {
                self.image.nodes.insert(node.node_id, node);
                self.send(Committed::Nodes(self.image.listed_nodes()));
                (ChangeOutcome::Applied, Vec::new())
            }
            MetaChange::ScramCredential {
                user,
                mechanism,
                credential,
            } => self.apply_scram(user, mechanism, credential),
            MetaChange::Acls { created, deleted } => {
                let acls = &mut self.image.acls;
                let deleted: Vec<AclBinding> =
                    deleted.into_iter().filter(|a| acls.contains(a)).collect();
                acls.retain(|a| !deleted.contains(a));
                let mut added = Vec::new();
                for acl in created {
                    if !acls.contains(&acl) {
                        acls.push(acl.clone());
                        added.push(acl);
                    }
                }
                let changes = if added.is_empty() && deleted.is_empty() {
                    Vec::new()
                } else {
                    vec![CatalogChange::Acls {
                        created: added,
                        deleted,
                    }]
                };
                (ChangeOutcome::Applied, changes)
            }
            MetaChange::GroupConfig { group, overrides } => {
                if overrides.is_empty() {
                    self.image.groups.remove(&group);
                } else {
                    self.image.groups.insert(group.clone(), overrides.clone());
                }
                let change = CatalogChange::GroupConfig { group, overrides };
                (ChangeOutcome::Applied, vec![change])
            }
            MetaChange::AllocateProducerIds {
                node,
                count,
                at_least,
            } => {
                let first = self.image.next_producer_id.max(at_least);
                let end = first.checked_add(count).filter(|_| count > 0);
                let Some(end) = end else {
                    let invalid = format!("no block of {count} producer ids from {first}");
                    return (ChangeOutcome::Invalid(invalid), Vec::new());
                };
                self.image.next_producer_id = end;
                tracing::debug!(node, first, end, "producer id block allocated");
                (ChangeOutcome::ProducerIds { first, end }, Vec::new())
            }
        }
    }

    fn apply_scram(
        &mut self,
        user: String,
        mechanism: String,
        credential: Option<ScramEntry>,
    ) -> (ChangeOutcome, Vec<CatalogChange>) {
        let Some(parsed) = SaslMechanism::parse(&mechanism).filter(|m| m.scram_hash().is_some())
        else {
            let invalid = format!("unknown SCRAM mechanism {mechanism:?}");
            return (ChangeOutcome::Invalid(invalid), Vec::new());
        };
        let users = &mut self.image.users;
        let decoded = match credential {
            Some(entry) => match entry.decode() {
                Ok((m, decoded)) if m == parsed => {
                    let credentials = users.entry(user.clone()).or_default();
                    credentials.insert(mechanism, entry);
                    Some(decoded)
                }
                Ok(_) => {
                    let invalid = format!("credential of user {user} is not {mechanism}");
                    return (ChangeOutcome::Invalid(invalid), Vec::new());
                }
                Err(e) => return (ChangeOutcome::Invalid(e), Vec::new()),
            },
            None => {
                let removed = users.get_mut(&user).and_then(|c| c.remove(&mechanism));
                if users.get(&user).is_some_and(BTreeMap::is_empty) {
                    users.remove(&user);
                }
                if removed.is_none() {
                    // Removed already (a duplicate commit, or a concurrent delete).
                    return (ChangeOutcome::Applied, Vec::new());
                }
                None
            }
        };
        let change = CatalogChange::ScramCredential {
            user,
            mechanism: parsed,
            credential: decoded,
        };
        (ChangeOutcome::Applied, vec![change])
    }
}

impl MetaStateMachine for CatalogMachine {
    fn apply(&mut self, index: u64, record: &MetaRecord) -> MetaOutcome {
        let (outcome, changes) = match serde_json::from_str::<MetaChange>(&record.body) {
            Ok(change) => self.apply_change(change),
            // A record this version cannot read (written by a newer one): skipped the same
            // way on every node of this version, so their states stay equal.
            Err(e) => {
                tracing::error!(index, error = %e, "undecodable metadata record skipped");
                (ChangeOutcome::Invalid(e.to_string()), Vec::new())
            }
        };
        self.send(Committed::Changes { index, changes });
        outcome.encode()
    }

    fn snapshot(&self) -> String {
        serde_json::to_string(&self.image).unwrap_or_default()
    }

    fn restore(&mut self, index: u64, snapshot: &str) -> Result<(), String> {
        self.image = if snapshot.is_empty() {
            MetaImage::default()
        } else {
            serde_json::from_str(snapshot).map_err(|e| e.to_string())?
        };
        let topics = self.image.topics.values().cloned();
        let topics = topics
            .map(TopicEntry::into_meta)
            .collect::<Result<Vec<_>, _>>()?;
        self.send(Committed::Image {
            index,
            topics,
            brokers: self.image.brokers.clone(),
            users: self.image.decoded_users()?,
            acls: self.image.acls.clone(),
            groups: self.image.groups.clone(),
        });
        self.send(Committed::Nodes(self.image.listed_nodes()));
        Ok(())
    }

    fn members(&mut self, index: u64, members: &BTreeSet<NodeId>) {
        if self.image.members.as_ref() == Some(members) {
            return;
        }
        tracing::info!(index, ?members, "metadata group membership applied");
        self.image.members = Some(members.clone());
        self.send(Committed::Nodes(self.image.listed_nodes()));
    }

    fn joined_nodes(&self) -> Vec<NodeId> {
        self.image.nodes.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::placement::Placement;

    fn topic(name: &str, partitions: i32) -> TopicEntry {
        TopicEntry::of(&TopicMeta {
            name: name.into(),
            id: uuid::Uuid::new_v4(),
            partition_count: partitions,
            overrides: TopicOverrides::new(),
            placement: Placement {
                nodes: vec![1; usize::try_from(partitions).unwrap_or(0)],
                ..Placement::default()
            },
        })
    }

    fn apply(machine: &mut CatalogMachine, index: u64, change: &MetaChange) -> ChangeOutcome {
        ChangeOutcome::decode(&machine.apply(index, &change.encode()))
    }

    #[test]
    fn records_are_idempotent_and_checked_against_their_precondition() {
        let (tx, rx) = async_channel::unbounded();
        let mut machine = CatalogMachine::new(tx);
        let first = topic("t", 2);
        let create = MetaChange::CreateTopic(first.clone());
        assert_eq!(apply(&mut machine, 1, &create), ChangeOutcome::Applied);
        // The same record committed twice changes nothing the second time.
        assert_eq!(apply(&mut machine, 2, &create), ChangeOutcome::Applied);
        let other = MetaChange::CreateTopic(topic("t", 1));
        assert_eq!(apply(&mut machine, 3, &other), ChangeOutcome::TopicExists);
        let mut grown = first.clone().into_meta().expect("valid");
        grown.partition_count = 3;
        grown.placement.nodes.push(2);
        let update = MetaChange::UpdateTopic {
            from: first.clone(),
            to: TopicEntry::of(&grown),
        };
        assert_eq!(apply(&mut machine, 4, &update), ChangeOutcome::Applied);
        assert_eq!(apply(&mut machine, 5, &update), ChangeOutcome::Applied);
        let stale = MetaChange::UpdateTopic {
            from: first.clone(),
            to: topic("t", 5),
        };
        assert_eq!(apply(&mut machine, 6, &stale), ChangeOutcome::Conflict);
        let delete = MetaChange::DeleteTopic {
            name: "t".into(),
            id: grown.id.to_string(),
        };
        assert_eq!(apply(&mut machine, 7, &delete), ChangeOutcome::Applied);
        assert_eq!(apply(&mut machine, 8, &delete), ChangeOutcome::Applied);

        // Shard 0 hears of every index, with a change only where one took effect.
        let mut changed = Vec::new();
        while let Ok(Committed::Changes { index, changes }) = rx.try_recv() {
            changed.push((index, changes.len()));
        }
        let expected = [
            (1, 1),
            (2, 0),
            (3, 0),
            (4, 1),
            (5, 0),
            (6, 0),
            (7, 1),
            (8, 0),
        ];
        assert_eq!(changed, expected);
    }

    #[test]
    fn a_snapshot_restores_the_same_state_on_another_node() {
        let (tx, _rx) = async_channel::unbounded();
        let mut leader = CatalogMachine::new(tx);
        apply(&mut leader, 1, &MetaChange::CreateTopic(topic("a", 3)));
        let node = NodeInfo {
            node_id: 2,
            listeners: vec![NodeListener {
                host: "h".into(),
                ports: vec![9092, 9093],
            }],
        };
        apply(&mut leader, 2, &MetaChange::RegisterNode(node.clone()));
        let (tx, rx) = async_channel::unbounded();
        let mut follower = CatalogMachine::new(tx);
        follower
            .restore(2, &leader.snapshot())
            .expect("snapshot restores");
        assert_eq!(follower.snapshot(), leader.snapshot());
        match rx.try_recv() {
            Ok(Committed::Image { index, topics, .. }) => {
                assert_eq!(index, 2);
                assert_eq!(topics.len(), 1);
            }
            other => panic!("expected an image, got {other:?}"),
        }
        assert!(matches!(rx.try_recv(), Ok(Committed::Nodes(nodes)) if nodes == [node]));
    }

    #[test]
    fn a_removed_node_is_not_listed_until_it_is_a_member_again() {
        let (tx, rx) = async_channel::unbounded();
        let mut machine = CatalogMachine::new(tx);
        let node = |node_id| NodeInfo {
            node_id,
            listeners: vec![NodeListener {
                host: "h".into(),
                ports: vec![9092],
            }],
        };
        machine.members(0, &[1, 2].into());
        apply(&mut machine, 1, &MetaChange::RegisterNode(node(1)));
        apply(&mut machine, 2, &MetaChange::RegisterNode(node(2)));
        machine.members(3, &[1].into());
        machine.members(4, &[1, 2].into());
        let listed: Vec<Vec<NodeId>> = std::iter::from_fn(|| rx.try_recv().ok())
            .filter_map(|c| match c {
                Committed::Nodes(nodes) => Some(nodes.iter().map(|n| n.node_id).collect()),
                _ => None,
            })
            .collect();
        assert_eq!(listed, [vec![], vec![1], vec![1, 2], vec![1], vec![1, 2]]);
        assert_eq!(
            machine.joined_nodes(),
            [1, 2],
            "registration outlives membership"
        );
        // A replayed membership entry changes nothing.
        machine.members(4, &[1, 2].into());
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn credentials_and_acls_replicate_idempotently_and_through_snapshots() {
        use crate::security::acl::{AclOperation, AclPermission, PatternType, ResourceType};
        use crate::security::sasl::ScramCredential;
        let (tx, rx) = async_channel::unbounded();
        let mut leader = CatalogMachine::new(tx);
        let credential = ScramCredential {
            salt: vec![1, 2, 3],
            iterations: 4096,
            stored_key: vec![4; 64],
            server_key: vec![5; 64],
        };
        let mechanism = SaslMechanism::ScramSha512;
        let set = MetaChange::ScramCredential {
            user: "alice".into(),
            mechanism: mechanism.name().into(),
            credential: Some(ScramEntry::new(mechanism, &credential)),
        };
        let acl = AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "orders".into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermission::Deny,
        };
        let create = MetaChange::Acls {
            created: vec![acl.clone()],
            deleted: Vec::new(),
        };
        assert_eq!(apply(&mut leader, 1, &set), ChangeOutcome::Applied);
        assert_eq!(apply(&mut leader, 2, &create), ChangeOutcome::Applied);
        // Committed twice: the second adds nothing.
        assert_eq!(apply(&mut leader, 3, &create), ChangeOutcome::Applied);
        let wrong = MetaChange::ScramCredential {
            user: "bob".into(),
            mechanism: "SCRAM-SHA-256".into(),
            credential: Some(ScramEntry::new(mechanism, &credential)),
        };
        assert!(matches!(
            apply(&mut leader, 4, &wrong),
            ChangeOutcome::Invalid(_)
        ));
        let mut changes = Vec::new();
        while let Ok(Committed::Changes { changes: c, .. }) = rx.try_recv() {
            changes.push(c);
        }
        assert!(matches!(
            &changes[0][..],
            [CatalogChange::ScramCredential { credential: Some(c), .. }] if *c == credential
        ));
        assert!(
            matches!(&changes[1][..], [CatalogChange::Acls { created, .. }] if *created == [acl.clone()])
        );
        assert!(changes[2].is_empty() && changes[3].is_empty());

        // A follower restoring the snapshot gets both.
        let (tx, rx) = async_channel::unbounded();
        let mut follower = CatalogMachine::new(tx);
        follower.restore(3, &leader.snapshot()).expect("restores");
        match rx.try_recv() {
            Ok(Committed::Image { users, acls, .. }) => {
                assert_eq!(users["alice"][&mechanism], credential);
                assert_eq!(acls, std::slice::from_ref(&acl));
            }
            other => panic!("expected an image, got {other:?}"),
        }

        // Removing twice, and removing what is gone, are no-ops after the first.
        let unset = MetaChange::ScramCredential {
            user: "alice".into(),
            mechanism: mechanism.name().into(),
            credential: None,
        };
        let delete = MetaChange::Acls {
            created: Vec::new(),
            deleted: vec![acl],
        };
        for index in [4, 5] {
            assert_eq!(apply(&mut follower, index, &unset), ChangeOutcome::Applied);
        }
        for index in [6, 7] {
            assert_eq!(apply(&mut follower, index, &delete), ChangeOutcome::Applied);
        }
        assert!(matches!(rx.try_recv(), Ok(Committed::Nodes(_))));
        let counts: Vec<usize> = std::iter::from_fn(|| match rx.try_recv() {
            Ok(Committed::Changes { changes, .. }) => Some(changes.len()),
            _ => None,
        })
        .collect();
        assert_eq!(counts, [1, 0, 1, 0]);
    }

    #[test]
    fn producer_id_blocks_never_overlap_and_survive_a_snapshot() {
        let (tx, _rx) = async_channel::unbounded();
        let mut leader = CatalogMachine::new(tx);
        let block = |node, at_least| MetaChange::AllocateProducerIds {
            node,
            count: 1000,
            at_least,
        };
        let first = apply(&mut leader, 1, &block(1, 0));
        assert_eq!(
            first,
            ChangeOutcome::ProducerIds {
                first: 0,
                end: 1000
            }
        );
        // The same proposal committed twice takes a second block: wasted, never repeated.
        let again = apply(&mut leader, 2, &block(1, 0));
        assert_eq!(
            again,
            ChangeOutcome::ProducerIds {
                first: 1000,
                end: 2000
            }
        );
        // A node that handed out ids from its own file before joining starts past them.
        let joined = apply(&mut leader, 3, &block(2, 5000));
        assert_eq!(
            joined,
            ChangeOutcome::ProducerIds {
                first: 5000,
                end: 6000
            }
        );
        let refused = MetaChange::AllocateProducerIds {
            node: 3,
            count: 0,
            at_least: 0,
        };
        assert!(matches!(
            apply(&mut leader, 4, &refused),
            ChangeOutcome::Invalid(_)
        ));
        // A node restoring the snapshot (a wiped node rejoining) continues after them.
        let (tx, _rx) = async_channel::unbounded();
        let mut follower = CatalogMachine::new(tx);
        follower.restore(4, &leader.snapshot()).expect("restores");
        let next = apply(&mut follower, 5, &block(3, 0));
        assert_eq!(
            next,
            ChangeOutcome::ProducerIds {
                first: 6000,
                end: 7000
            }
        );
    }
}
