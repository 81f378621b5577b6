//! Whether this node takes part in the metadata Raft group yet, and the start-up decision
//! behind it for a node whose `raft/` dir is empty.
//!
//! A node that starts with no Raft state (no vote, no log, no snapshot) is one of three
//! things, and only its peers can tell which:
//! - one of the first members, and the cluster is being formed: it proposes the initial
//!   membership from `--peers` (openraft's `initialize`);
//! - a node the cluster has never heard from (a late first start, or a node to be added with
//!   `sluice cluster add-node`): the leader replicates to it from scratch;
//! - a member that lost its `raft/` dir (a wiped or replaced disk). It forgot its votes and the
//!   entries it acknowledged: letting it answer as before could elect two leaders in one term or
//!   lose a committed entry (openraft's FAQ, "wipe out the data of ONE node"), and the leader's
//!   openraft treats a follower whose log went backwards as a bug and stops (a panic in a debug
//!   build). Such a node is *fenced*: it refuses every Raft request (the leader backs off and
//!   retries) and logs what the operator must do, until the committed membership no longer has
//!   it as a voter (after `sluice cluster remove-node`); `add-node` then adds it back as a new
//!   learner, which the leader replicates to from nothing.
//!
//! Until it has decided, a node with an empty `raft/` refuses Raft requests too: the leader
//! of a running cluster may reach it before it has asked anyone.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, Raft};

use super::cluster_rpc::status_of;
use super::cluster_status::ClusterStatus;
use super::meta_store::MetaTypes;
use super::peer_list::{NodeId, PeerList};

const OPEN: u8 = 0;
const DECIDING: u8 = 1;
const FENCED: u8 = 2;

/// How often a deciding or fenced node asks its peers again.
const POLL_INTERVAL: Duration = Duration::from_millis(300);

/// Whether this node answers Raft requests; shared by the RPC server and the status.
#[derive(Clone, Default)]
pub struct JoinGate {
    state: Arc<AtomicU8>,
    /// Raft requests refused while closed (shown in the status: a test sees the leader try).
    refused: Arc<AtomicU64>,
}

impl JoinGate {
    fn set(&self, state: u8) {
        self.state.store(state, Ordering::Release);
    }

    /// Whether Raft requests (append, vote, snapshot) are served; counts a refusal.
    pub fn admits(&self) -> bool {
        let open = self.state.load(Ordering::Acquire) == OPEN;
        if !open {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        open
    }

    pub fn fenced(&self) -> bool {
        self.state.load(Ordering::Acquire) == FENCED
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// What the peers' answers say about a node with an empty `raft/`.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Nobody has a log beyond the initial membership and a majority answered: form the cluster.
    Bootstrap,
    /// The leader does not count it as a member: wait for `add-node`.
    NotAMember,
    /// A member the cluster never heard from: follow the leader.
    Fresh,
    /// A member the cluster heard from before (registered, or acknowledged entries): it lost its
    /// log. `membership` is the index of the committed membership that still names it.
    Wiped { membership: Option<u64> },
    /// No leader is known yet (an election, or too few peers up): ask again.
    Undecided,
}

/// Decides what a node with an empty `raft/` is from its peers' statuses (`leader`: the
/// leader's own status, if one answered; `others`: every peer that answered).
fn verdict(
    me: NodeId,
    initial: &PeerList,
    leader: Option<&ClusterStatus>,
    others: &[ClusterStatus],
) -> Verdict {
    if let Some(leader) = leader {
        if !leader.nodes.contains_key(&me) && !leader.learners.contains_key(&me) {
            return Verdict::NotAMember;
        }
        let acknowledged = leader.replication.get(&me).is_some_and(Option::is_some);
        let registered = others.iter().any(|s| s.joined.contains(&me));
        return if acknowledged || registered {
            Verdict::Wiped {
                membership: leader.membership_index,
            }
        } else {
            Verdict::Fresh
        };
    }
    let formed = others.iter().any(|s| s.last_log_index.unwrap_or(0) > 0);
    // Counting itself: a majority of the initial members is needed to elect anyway.
    let answered = others.len() + 1;
    if initial.is_initial_member() && !formed && answered > initial.peers.len() / 2 {
        return Verdict::Bootstrap;
    }
    Verdict::Undecided
}

/// The statuses of every initial peer but this node that answers, and the leader's (asked
/// directly when it is not among them, e.g. a node added later).
async fn ask_peers(me: NodeId, peers: &PeerList) -> (Option<ClusterStatus>, Vec<ClusterStatus>) {
    let mut answered = Vec::new();
    for (id, addr) in &peers.peers {
        if *id != me {
            if let Some(status) = status_of(addr).await {
                answered.push(status);
            }
        }
    }
    let mut leader = answered.iter().find(|s| s.role == "Leader").cloned();
    if leader.is_none() {
        let named = answered.iter().find_map(|s| {
            let id = s.leader?;
            s.nodes.get(&id).or_else(|| s.learners.get(&id)).cloned()
        });
        if let Some(addr) = named {
            leader = status_of(&addr).await.filter(|s| s.role == "Leader");
        }
    }
    (leader, answered)
}

/// Decides, for a node that starts with no Raft state, whether it forms the cluster, follows
/// it or stays fenced, and opens the gate when it may take part. `gate` starts closed.
pub async fn settle(raft: Raft<MetaTypes>, peers: PeerList, gate: JoinGate) {
    let me = peers.node_id;
    let mut fenced_at: Option<Option<u64>> = None;
    loop {
        let (leader, others) = ask_peers(me, &peers).await;
        match (verdict(me, &peers, leader.as_ref(), &others), fenced_at) {
            (Verdict::Bootstrap, None) => {
                let members = peers
                    .peers
                    .iter()
                    .map(|(id, addr)| (*id, BasicNode::new(addr)))
                    .collect::<std::collections::BTreeMap<_, _>>();
                // Every first member proposes the same membership; a node that has a log
                // by now (a peer's leader reached it first) keeps it.
                match raft.initialize(members).await {
                    Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "forming the metadata group failed; retrying");
                        tokio::time::sleep(POLL_INTERVAL).await;
                        continue;
                    }
                }
                tracing::info!(node_id = me, "forming the cluster with the initial peers");
                gate.set(OPEN);
                return;
            }
            (Verdict::Fresh, None) => {
                tracing::info!(
                    node_id = me,
                    "joining the cluster as a member it has not heard from"
                );
                gate.set(OPEN);
                return;
            }
            (Verdict::NotAMember, _) => {
                tracing::info!(
                    node_id = me,
                    "not a member of the cluster: waiting to be added \
                     (`sluice cluster add-node {me}@{} --node <a member's cluster address>`)",
                    peers.own_addr()
                );
                gate.set(OPEN);
                return;
            }
            (Verdict::Wiped { membership }, None) => {
                tracing::error!(
                    node_id = me,
                    "this node starts with an empty raft/ dir but the cluster knows node {me}: \
                     it lost its metadata log and takes no part until it is re-added. Run \
                     `sluice cluster remove-node {me} --node <another member's cluster address>`, \
                     then `sluice cluster add-node {me}@{} --node <that address>`",
                    peers.own_addr()
                );
                gate.set(FENCED);
                fenced_at = Some(membership);
            }
            // Fenced: open once a membership committed after the fencing one has this node as a
            // learner only (removed, then added back, between two looks).
            (Verdict::Wiped { .. } | Verdict::Fresh, Some(at)) => {
                let readded = leader.as_ref().is_some_and(|l| {
                    !l.nodes.contains_key(&me)
                        && l.learners.contains_key(&me)
                        && l.membership_index != at
                });
                if readded {
                    tracing::info!(node_id = me, "re-added as a learner: following the leader");
                    gate.set(OPEN);
                    return;
                }
            }
            _ => {}
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A closed gate for a node with an empty `raft/`, an open one otherwise.
pub fn gate_for(pristine: bool) -> JoinGate {
    let gate = JoinGate::default();
    gate.set(if pristine { DECIDING } else { OPEN });
    gate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(me: NodeId) -> PeerList {
        PeerList::parse(me, "1@h:1,2@h:2,3@h:3").expect("peer list")
    }

    fn status(id: NodeId, role: &str, last: Option<u64>) -> ClusterStatus {
        ClusterStatus {
            node_id: id,
            role: role.to_owned(),
            leader: None,
            term: 1,
            last_log_index: last,
            applied_index: last,
            nodes: [
                (1, "h:1".to_owned()),
                (2, "h:2".to_owned()),
                (3, "h:3".to_owned()),
            ]
            .into_iter()
            .collect(),
            learners: Default::default(),
            membership_index: Some(0),
            replication: Default::default(),
            fenced: false,
            refused: 0,
            joined: Vec::new(),
            partitions: Vec::new(),
        }
    }

    #[test]
    fn forms_the_cluster_only_with_a_majority_and_no_log() {
        let empty = status(2, "Learner", None);
        let initialised = status(2, "Candidate", Some(0));
        assert_eq!(verdict(1, &peers(1), None, &[]), Verdict::Undecided);
        assert_eq!(verdict(1, &peers(1), None, &[empty]), Verdict::Bootstrap);
        assert_eq!(
            verdict(1, &peers(1), None, &[initialised]),
            Verdict::Bootstrap
        );
        let formed = status(2, "Follower", Some(4));
        assert_eq!(verdict(1, &peers(1), None, &[formed]), Verdict::Undecided);
    }

    #[test]
    fn a_member_the_leader_replicated_to_or_registered_is_wiped() {
        let mut leader = status(1, "Leader", Some(9));
        assert_eq!(
            verdict(3, &peers(3), Some(&leader), &[leader.clone()]),
            Verdict::Fresh
        );
        leader.replication.insert(3, Some(7));
        assert!(matches!(
            verdict(3, &peers(3), Some(&leader), &[leader.clone()]),
            Verdict::Wiped { .. }
        ));
        leader.replication.insert(3, None);
        let mut follower = status(2, "Follower", Some(9));
        follower.joined = vec![1, 2, 3];
        assert!(matches!(
            verdict(3, &peers(3), Some(&leader), &[leader.clone(), follower]),
            Verdict::Wiped { .. }
        ));
        leader.nodes.remove(&3);
        assert_eq!(
            verdict(3, &peers(3), Some(&leader), &[leader.clone()]),
            Verdict::NotAMember
        );
    }
}
