//! What `sluice cluster status` shows: this node's view of the metadata Raft group.

use std::collections::BTreeMap;

use openraft::{Raft, ServerState};
use serde::{Deserialize, Serialize};

use super::meta_store::MetaTypes;
use super::peer_list::NodeId;
use super::replica_leaders::PartitionStatus;

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
    /// Members that receive the log but do not vote (a node being added), by id.
    #[serde(default)]
    pub learners: BTreeMap<NodeId, String>,
    /// The log index of the membership this node knows (voters and learners above).
    #[serde(default)]
    pub membership_index: Option<u64>,
    /// On the leader: the last log index each other member has acknowledged (`None`: nothing
    /// yet). Empty on other nodes.
    #[serde(default)]
    pub replication: BTreeMap<NodeId, Option<u64>>,
    /// Whether this node refuses to take part because it lost its `raft/` dir (see
    /// `join_gate`): it must be removed and added again.
    #[serde(default)]
    pub fenced: bool,
    /// Raft requests this node refused while it was fenced or deciding how to join.
    #[serde(default)]
    pub refused: u64,
    /// Nodes the replicated state says have joined before (registered), by id.
    #[serde(default)]
    pub joined: Vec<NodeId>,
    /// The replicated partitions this node has a replica of: leader and term as its replica
    /// knows them and, where it leads, each follower's acknowledged index and lag.
    #[serde(default)]
    pub partitions: Vec<PartitionStatus>,
}

impl ClusterStatus {
    pub fn of(
        raft: &Raft<MetaTypes>,
        fenced: bool,
        refused: u64,
        joined: Vec<NodeId>,
        partitions: Vec<PartitionStatus>,
    ) -> ClusterStatus {
        let metrics = raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let addr = |id: NodeId| {
            let node = membership.get_node(&id);
            (id, node.map(|n| n.addr.clone()).unwrap_or_default())
        };
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
            nodes: membership.voter_ids().map(addr).collect(),
            learners: membership.learner_ids().map(addr).collect(),
            membership_index: metrics.membership_config.log_id().map(|l| l.index),
            replication: metrics
                .replication
                .iter()
                .flatten()
                .map(|(id, matched)| (*id, matched.map(|l| l.index)))
                .collect(),
            fenced,
            refused,
            joined,
            partitions,
        }
    }
}
