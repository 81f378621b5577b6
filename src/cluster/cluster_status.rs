//! What `sluice cluster status` shows: this node's view of the metadata Raft group.

use std::collections::BTreeMap;

use openraft::{Raft, ServerState};
use serde::{Deserialize, Serialize};

use super::meta_store::MetaTypes;
use super::peer_list::NodeId;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterStatus {
    pub node_id: NodeId,
    /// "Leader", "Follower", "Candidate", "Learner" or "Shutdown".
    pub role: String,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    /// The last log index applied to the state machine; every applied entry is committed.
    pub applied_index: Option<u64>,
    /// The voters, by id, with their cluster addresses.
    pub nodes: BTreeMap<NodeId, String>,
}

impl ClusterStatus {
    pub fn of(raft: &Raft<MetaTypes>) -> ClusterStatus {
        let metrics = raft.metrics().borrow().clone();
        ClusterStatus {
            node_id: metrics.id,
            role: match metrics.state {
                ServerState::Leader => "Leader",
                ServerState::Follower => "Follower",
                ServerState::Candidate => "Candidate",
                ServerState::Learner => "Learner",
                ServerState::Shutdown => "Shutdown",
            }
            .to_string(),
            leader: metrics.current_leader,
            term: metrics.current_term,
            last_log_index: metrics.last_log_index,
            applied_index: metrics.last_applied.map(|l| l.index),
            nodes: metrics
                .membership_config
                .nodes()
                .map(|(id, node)| (*id, node.addr.clone()))
                .collect(),
        }
    }
}
