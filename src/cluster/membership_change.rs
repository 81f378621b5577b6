//! `sluice cluster add-node / remove-node`: changing the metadata group's voters at runtime,
//! on the leader (a follower forwards the request once).
//!
//! - add: the node becomes a learner (openraft `add_learner`), the leader waits until it has
//!   caught up, then promotes it (`change_membership`, joint consensus inside openraft);
//! - remove: `change_membership` without it (a learner is simply dropped).
//!
//! Both refuse, with a readable reason, a change that could not commit: removing the last
//! voter, or one after which (or during which, in the joint configuration) too few voters
//! answer to form a majority. "Answers" means the node replied to a status request within a
//! second and is not fenced; the leader counts itself.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::{BasicNode, ChangeMembers, Raft, ServerState};

use super::cluster_rpc::{call_once, status_of, MemberChange, RpcReply, RpcRequest};
use super::meta_store::MetaTypes;
use super::peer_list::NodeId;

/// How long a new learner may take to catch up before add-node gives up (it stays a learner).
const CATCH_UP_WAIT: Duration = Duration::from_secs(60);

/// How long a membership change may take to commit.
const COMMIT_WAIT: Duration = Duration::from_secs(30);

/// Carries out `change` if this node leads, else forwards it to the leader (once: a request
/// that was forwarded already is not forwarded again). Answers what happened, for the CLI.
pub async fn change_members(
    raft: &Raft<MetaTypes>,
    change: MemberChange,
    forwarded: bool,
) -> Result<String, String> {
    let metrics = raft.metrics().borrow().clone();
    if metrics.state != ServerState::Leader {
        let member = metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == metrics.id);
        if !member {
            // A removed node may still believe in a stale leader (or itself).
            return Err(format!(
                "node {} is not a voter of the metadata group (removed, or not added yet): \
                 send the request to a member's cluster address",
                metrics.id
            ));
        }
        let leader = metrics
            .current_leader
            .ok_or("no metadata leader is known (an election is under way); try again")?;
        if forwarded {
            return Err(format!(
                "node {} is not the metadata leader (leadership moved); try again",
                metrics.id
            ));
        }
        let addr = metrics
            .membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
            .ok_or_else(|| format!("the leader, node {leader}, has no known address"))?;
        let request = RpcRequest::Members {
            change,
            forwarded: true,
        };
        return match call_once(&addr, &request).await {
            Ok(RpcReply::Members(answer)) => answer,
            Ok(_) => Err(format!("the leader at {addr} answered another request")),
            Err(e) => Err(format!("the leader at {addr}: {e}")),
        };
    }
    match change {
        MemberChange::Add { node, addr } => add(raft, node, addr).await,
        MemberChange::Remove { node } => remove(raft, node).await,
    }
}

fn majority(of: usize) -> usize {
    of / 2 + 1
}

/// The voters in `voters` that answer (the leader itself always does).
async fn answering(raft: &Raft<MetaTypes>, voters: &BTreeSet<NodeId>) -> BTreeSet<NodeId> {
    let metrics = raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership().clone();
    let mut alive = BTreeSet::new();
    for id in voters {
        if *id == metrics.id {
            alive.insert(*id);
            continue;
        }
        let Some(node) = membership.get_node(id) else {
            continue;
        };
        if status_of(&node.addr).await.is_some_and(|s| !s.fenced) {
            alive.insert(*id);
        }
    }
    alive
}

/// Refuses going from voters `before` to `after` unless a majority of each answers (the
/// joint configuration needs both).
async fn check_quorum(
    raft: &Raft<MetaTypes>,
    what: &str,
    before: &BTreeSet<NodeId>,
    after: &BTreeSet<NodeId>,
    also_alive: Option<NodeId>,
) -> Result<(), String> {
    let mut alive = answering(raft, &before.union(after).copied().collect()).await;
    alive.extend(also_alive);
    for (set, name) in [(before, "current"), (after, "new")] {
        let up: BTreeSet<NodeId> = set.intersection(&alive).copied().collect();
        if up.len() < majority(set.len()) {
            return Err(format!(
                "refusing to {what}: the {name} voters {set:?} need {} answering to commit, \
                 but only {up:?} answer",
                majority(set.len())
            ));
        }
    }
    Ok(())
}

fn voters_of(raft: &Raft<MetaTypes>) -> BTreeSet<NodeId> {
    let metrics = raft.metrics().borrow().clone();
    metrics.membership_config.membership().voter_ids().collect()
}

async fn add(raft: &Raft<MetaTypes>, node: NodeId, addr: String) -> Result<String, String> {
    let metrics = raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership().clone();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    if voters.contains(&node) {
        return Err(format!(
            "node {node} is already a voter; a node that lost its data is removed first \
             (sluice cluster remove-node {node})"
        ));
    }
    if let Some(known) = membership.get_node(&node).filter(|n| n.addr != addr) {
        return Err(format!(
            "node {node} is a learner at {}; remove it first to give it another address",
            known.addr
        ));
    }
    let added = tokio::time::timeout(
        COMMIT_WAIT,
        raft.add_learner(node, BasicNode::new(&addr), false),
    )
    .await
    .map_err(|_| format!("adding node {node} as a learner did not commit within {COMMIT_WAIT:?}"))?
    .map_err(|e| format!("adding node {node} as a learner: {e}"))?;
    tracing::info!(node, %addr, index = added.log_id.index, "learner added; waiting for it to catch up");
    let target = added.log_id.index;
    let caught_up = raft
        .wait(Some(CATCH_UP_WAIT))
        .metrics(
            |m| {
                m.replication
                    .as_ref()
                    .and_then(|r| r.get(&node))
                    .is_some_and(|matched| matched.is_some_and(|l| l.index >= target))
            },
            "the new learner to catch up",
        )
        .await;
    if caught_up.is_err() {
        return Err(format!(
            "node {node} was added as a learner but did not catch up within {CATCH_UP_WAIT:?}: \
             is it running with cluster address {addr}? It stays a learner: run add-node again \
             once it runs, or remove-node {node}"
        ));
    }
    let before = voters_of(raft);
    let mut after = before.clone();
    after.insert(node);
    check_quorum(
        raft,
        &format!("promote node {node}"),
        &before,
        &after,
        Some(node),
    )
    .await?;
    tokio::time::timeout(
        COMMIT_WAIT,
        raft.change_membership(ChangeMembers::AddVoterIds([node].into()), false),
    )
    .await
    .map_err(|_| format!("promoting node {node} did not commit within {COMMIT_WAIT:?}"))?
    .map_err(|e| format!("promoting node {node}: {e}"))?;
    tracing::info!(node, "node promoted to voter");
    Ok(format!("node {node} ({addr}) caught up and is a voter"))
}

async fn remove(raft: &Raft<MetaTypes>, node: NodeId) -> Result<String, String> {
    let metrics = raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership().clone();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let change = if voters.contains(&node) {
        if voters.len() == 1 {
            return Err(format!(
                "refusing to remove node {node}: it is the last voter"
            ));
        }
        let mut after = voters.clone();
        after.remove(&node);
        check_quorum(raft, &format!("remove node {node}"), &voters, &after, None).await?;
        ChangeMembers::RemoveVoters([node].into())
    } else if membership.get_node(&node).is_some() {
        ChangeMembers::RemoveNodes([node].into())
    } else {
        return Err(format!("node {node} is not a member of the cluster"));
    };
    tokio::time::timeout(COMMIT_WAIT, raft.change_membership(change, false))
        .await
        .map_err(|_| format!("removing node {node} did not commit within {COMMIT_WAIT:?}"))?
        .map_err(|e| format!("removing node {node}: {e}"))?;
    tracing::info!(node, "node removed from the metadata group");
    Ok(format!("node {node} is no longer a member"))
}
