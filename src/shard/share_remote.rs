//! Share-group administration between the nodes of a cluster (issue 17): a share group's
//! share-partitions live with the leaders of their partitions, on any node, so the
//! coordinator's DescribeShareGroupOffsets, DeleteShareGroupOffsets and DeleteGroups reach
//! the other nodes too. A call travels as JSON over the cluster port (`RpcRequest::Node`,
//! beside `txn_remote`'s) and, on the receiving node, as the `ShareMessage`s its shards
//! already answer for their own coordinator. Only partitions a node leads answer: a
//! follower's copy of the state is not served.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::Shard;
use crate::cluster::NodeId;
use crate::share::share_state::{PartitionSummary, ShareMessage};
use crate::share::ShareError;

/// A share-group request to another node. Variant names are distinct from `txn_remote`'s,
/// so a body is a share call exactly when it parses as one.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum ShareNodeCall {
    /// The group's share-partitions this node leads.
    ShareDescribe { group: String },
    /// Forget the group's share-partitions (of `topics`, or all) this node leads.
    ShareForget {
        group: String,
        topics: Option<BTreeSet<String>>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
enum ShareNodeReply {
    Described(Vec<PartitionSummary>),
    Forgotten(Result<BTreeSet<String>, ShareError>),
}

/// Answers a share call with this node's shards (`share`: every shard's share inbox); `None`
/// when `body` is not a share call.
pub(super) async fn answer_body(
    share: &[async_channel::Sender<ShareMessage>],
    body: &str,
) -> Option<Result<String, String>> {
    let call: ShareNodeCall = serde_json::from_str(body).ok()?;
    let reply = match call {
        ShareNodeCall::ShareDescribe { group } => {
            let mut summaries = Vec::new();
            for inbox in share {
                let asked = ask(inbox, |reply| ShareMessage::DescribePartitions {
                    group: group.clone(),
                    reply,
                });
                match asked.await {
                    Ok(found) => summaries.extend(found),
                    Err(e) => return Some(Err(e)),
                }
            }
            ShareNodeReply::Described(summaries)
        }
        ShareNodeCall::ShareForget { group, topics } => {
            let mut forgotten = BTreeSet::new();
            let mut failure = None;
            for inbox in share {
                let asked = ask(inbox, |reply| ShareMessage::DeleteGroup {
                    group: group.clone(),
                    topics: topics.clone(),
                    reply,
                });
                match asked.await {
                    Ok(Ok(topics)) => forgotten.extend(topics),
                    Ok(Err(e)) => failure = Some(e),
                    Err(e) => return Some(Err(e)),
                }
            }
            ShareNodeReply::Forgotten(failure.map_or(Ok(forgotten), Err))
        }
    };
    Some(serde_json::to_string(&reply).map_err(|e| e.to_string()))
}

async fn ask<T>(
    inbox: &async_channel::Sender<ShareMessage>,
    make: impl FnOnce(futures_channel::oneshot::Sender<T>) -> ShareMessage,
) -> Result<T, String> {
    let (reply, answered) = futures_channel::oneshot::channel();
    inbox
        .send(make(reply))
        .await
        .map_err(|_| "a shard stopped".to_owned())?;
    answered
        .await
        .map_err(|_| "the node is shutting down".to_owned())
}

impl Shard {
    /// The other registered nodes of the cluster (none on a single node).
    pub(super) fn other_nodes(&self) -> Vec<NodeId> {
        let Some(cluster) = &self.cluster else {
            return Vec::new();
        };
        let nodes = cluster.nodes.borrow();
        nodes
            .iter()
            .map(|n| n.node_id)
            .filter(|id| *id != cluster.node_id)
            .collect()
    }

    async fn call_share_node(
        &self,
        node: NodeId,
        call: &ShareNodeCall,
    ) -> Result<ShareNodeReply, ShareError> {
        let cluster = self.cluster.as_ref().ok_or(ShareError::ShuttingDown)?;
        let unreachable = |reason: String| ShareError::Storage(format!("node {node}: {reason}"));
        let body = serde_json::to_string(call).map_err(|e| unreachable(e.to_string()))?;
        let answer = cluster
            .plane
            .call_node(node, body)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        serde_json::from_str(&answer).map_err(|e| unreachable(e.to_string()))
    }

    /// The group's share-partitions that node `node` leads.
    pub(super) async fn describe_shares_on_node(
        &self,
        node: NodeId,
        group: &str,
    ) -> Result<Vec<PartitionSummary>, ShareError> {
        let call = ShareNodeCall::ShareDescribe {
            group: group.to_owned(),
        };
        match self.call_share_node(node, &call).await? {
            ShareNodeReply::Described(summaries) => Ok(summaries),
            ShareNodeReply::Forgotten(_) => Err(ShareError::Storage(format!(
                "node {node} answered a describe with a deletion"
            ))),
        }
    }

    /// Has node `node` forget the group's share-partitions it leads; the topics it had.
    pub(super) async fn forget_shares_on_node(
        &self,
        node: NodeId,
        group: &str,
        topics: Option<&BTreeSet<String>>,
    ) -> Result<BTreeSet<String>, ShareError> {
        let call = ShareNodeCall::ShareForget {
            group: group.to_owned(),
            topics: topics.cloned(),
        };
        match self.call_share_node(node, &call).await? {
            ShareNodeReply::Forgotten(forgotten) => forgotten,
            ShareNodeReply::Described(_) => Err(ShareError::Storage(format!(
                "node {node} answered a deletion with a describe"
            ))),
        }
    }
}
