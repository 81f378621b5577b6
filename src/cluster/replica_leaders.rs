//! The replicated partitions as this node's replicas see them: leader, term and, on the
//! leader, how far each follower has the Raft log. A replica lives on one shard, but
//! Metadata is answered by every shard of the node and `sluice cluster status` by the
//! control plane, so the owning shard publishes its replicas' views here (on change, at most
//! once per replica tick) and any thread reads them. A lock, not a message: neither reader
//! is the data path, and a reader wants the latest view, not a queue of them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::peer_list::NodeId;

/// What one replica knows of its partition's leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLeader {
    /// The leader's node, if one is known.
    pub node: Option<NodeId>,
    /// The Raft term (the partition's leader epoch).
    pub term: u64,
}

/// One replica's view of its partition group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView {
    pub leader: PartitionLeader,
    /// The replica's last Raft log index and commit index.
    pub last_index: u64,
    pub commit_index: u64,
    /// On the leader: the index each follower has acknowledged (its match), by node.
    pub matched: BTreeMap<NodeId, u64>,
}

/// A replicated partition in `sluice cluster status`: the view of this node's replica.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionStatus {
    pub topic: String,
    pub partition: i32,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_index: u64,
    pub commit_index: u64,
    /// On the leader: each follower's acknowledged index and its lag behind `last_index`.
    #[serde(default)]
    pub followers: BTreeMap<NodeId, FollowerStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FollowerStatus {
    pub matched: u64,
    pub lag: u64,
}

/// Partition views by (topic, partition); clone it freely (one map per node).
#[derive(Debug, Clone, Default)]
pub struct ReplicaLeaders {
    map: Arc<Mutex<HashMap<(String, i32), ReplicaView>>>,
}

impl ReplicaLeaders {
    pub fn get(&self, topic: &str, partition: i32) -> Option<PartitionLeader> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&(topic.to_owned(), partition)).map(|v| v.leader)
    }

    /// Records what changed (one lock for all of a tick's changes).
    pub fn update(&self, changes: Vec<((String, i32), ReplicaView)>) {
        if changes.is_empty() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.extend(changes);
    }

    /// Forgets a partition whose replica closed (its topic was deleted).
    pub fn remove(&self, topic: &str, partition: i32) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(&(topic.to_owned(), partition));
    }

    /// Every partition this node has a replica of, by topic and partition.
    pub fn statuses(&self) -> Vec<PartitionStatus> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let mut statuses: Vec<PartitionStatus> = map
            .iter()
            .map(|((topic, partition), view)| PartitionStatus {
                topic: topic.clone(),
                partition: *partition,
                leader: view.leader.node,
                term: view.leader.term,
                last_index: view.last_index,
                commit_index: view.commit_index,
                followers: view
                    .matched
                    .iter()
                    .map(|(node, matched)| {
                        let lag = view.last_index.saturating_sub(*matched);
                        (
                            *node,
                            FollowerStatus {
                                matched: *matched,
                                lag,
                            },
                        )
                    })
                    .collect(),
            })
            .collect();
        statuses.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        statuses
    }
}
