//! The leaders of replicated partitions as this node's replicas see them. A replica lives on
//! one shard, but Metadata is answered by every shard of the node, so the owning shard
//! publishes what its replicas know here (on change, at most once per replica tick) and any
//! shard reads it. A lock, not a message: Metadata is not the data path, and a reader wants
//! the latest value, not a queue of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::peer_list::NodeId;

/// What one replica knows of its partition's leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLeader {
    /// The leader's node, if one is known.
    pub node: Option<NodeId>,
    /// The Raft term (the partition's leader epoch).
    pub term: u64,
}

/// Partition leaders by (topic, partition); clone it freely (one map per node).
#[derive(Debug, Clone, Default)]
pub struct ReplicaLeaders {
    map: Arc<Mutex<HashMap<(String, i32), PartitionLeader>>>,
}

impl ReplicaLeaders {
    pub fn get(&self, topic: &str, partition: i32) -> Option<PartitionLeader> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&(topic.to_owned(), partition)).copied()
    }

    /// Records what changed (one lock for all of a tick's changes).
    pub fn update(&self, changes: Vec<((String, i32), PartitionLeader)>) {
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
}
