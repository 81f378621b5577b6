//! Transaction requests between the nodes of a cluster (issue 17, fourth slice): a
//! transaction's coordinator has the node owning a partition write its marker (Kafka's
//! WriteTxnMarkers to the partition leader), and a partition's node asks the transaction's
//! coordinator node whether a first transactional batch belongs to the transaction (KIP-890
//! verification, Kafka's AddPartitionsToTxn with verify-only); a group's coordinator node
//! stages TxnOffsetCommit's offsets with the transaction's coordinator node, which settles
//! them with the group's node when the transaction ends. Both travel as JSON over the
//! cluster port (`RpcRequest::Node`) and, on the receiving node, as the same `TxnMessage`s
//! its shards already exchange, so the answering code is the single-node code.

use serde::{Deserialize, Serialize};

use super::Shard;
use crate::cluster::{NodeAnswer, NodeHandler, NodeId};
use crate::group::offset_record::CommittedOffset;
use crate::txn::txn_coordinator::Verified;
use crate::txn::txn_metadata::PendingOffset;
use crate::txn::{TxnError, TxnMessage};

#[derive(Debug, Serialize, Deserialize)]
enum NodeCall {
    /// End `producer_id`'s transaction in `partitions`, all of the receiving node.
    WriteMarkers {
        producer_id: i64,
        epoch: i16,
        commit: bool,
        partitions: Vec<(String, i32)>,
    },
    /// Are `partitions` in the transaction of `transactional_id`, which the receiving node
    /// coordinates?
    Verify {
        transactional_id: String,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
    },
    /// TxnOffsetCommit, from the group's coordinator node to the transaction's.
    StageOffsets {
        transactional_id: String,
        producer_id: i64,
        epoch: i16,
        offsets: Vec<WireOffset>,
    },
    /// The transaction ended: from its coordinator node to the group's, which commits
    /// `offsets` (none when it aborted) and forgets they were pending.
    SettleOffsets {
        group: String,
        transactional_id: String,
        offsets: Vec<WireOffset>,
    },
}

/// A transactional offset on the wire (`group` is unused when settling: the call names it).
#[derive(Debug, Serialize, Deserialize)]
struct WireOffset {
    group: String,
    topic: String,
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    commit_timestamp_ms: i64,
}

impl WireOffset {
    fn of(group: &str, topic: String, partition: i32, offset: CommittedOffset) -> WireOffset {
        WireOffset {
            group: group.to_owned(),
            topic,
            partition,
            offset: offset.offset,
            leader_epoch: offset.leader_epoch,
            metadata: offset.metadata,
            commit_timestamp_ms: offset.commit_timestamp_ms,
        }
    }

    fn committed(self) -> (String, i32, CommittedOffset) {
        let offset = CommittedOffset {
            offset: self.offset,
            leader_epoch: self.leader_epoch,
            metadata: self.metadata,
            commit_timestamp_ms: self.commit_timestamp_ms,
        };
        (self.topic, self.partition, offset)
    }

    fn pending(self) -> PendingOffset {
        let group = self.group.clone();
        let (topic, partition, offset) = self.committed();
        PendingOffset {
            group,
            topic,
            partition,
            offset,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
enum NodeReply {
    /// Markers written, offsets staged or settled.
    Done(Result<(), WireTxnError>),
    Verified(Result<WireVerified, WireTxnError>),
}

/// [`Verified`] on the wire.
type WireVerified = Vec<((String, i32), Result<(), WireTxnError>)>;

/// A [`TxnError`] on the wire: the cases whose Kafka codes differ, and the rest as text
/// (all retriable where they arrive).
#[derive(Debug, Serialize, Deserialize)]
enum WireTxnError {
    Abortable,
    InvalidTxnState,
    Fenced { got: i16, current: i16 },
    Mapping { transactional_id: String, got: i64 },
    NotCoordinator(String),
    Other(String),
}

impl WireTxnError {
    fn of(error: &TxnError) -> WireTxnError {
        match error {
            TxnError::TransactionAbortable => WireTxnError::Abortable,
            TxnError::InvalidTxnState(_) => WireTxnError::InvalidTxnState,
            TxnError::ProducerFenced { got, current } => WireTxnError::Fenced {
                got: *got,
                current: *current,
            },
            TxnError::InvalidProducerIdMapping {
                transactional_id,
                got,
            } => WireTxnError::Mapping {
                transactional_id: transactional_id.clone(),
                got: *got,
            },
            TxnError::NotCoordinator(id) => WireTxnError::NotCoordinator(id.clone()),
            other => WireTxnError::Other(other.to_string()),
        }
    }

    fn into_error(self) -> TxnError {
        match self {
            WireTxnError::Abortable => TxnError::TransactionAbortable,
            WireTxnError::InvalidTxnState => {
                TxnError::InvalidTxnState("refused by the transaction's coordinator node")
            }
            WireTxnError::Fenced { got, current } => TxnError::ProducerFenced { got, current },
            WireTxnError::Mapping {
                transactional_id,
                got,
            } => TxnError::InvalidProducerIdMapping {
                transactional_id,
                got,
            },
            WireTxnError::NotCoordinator(id) => TxnError::NotCoordinator(id),
            WireTxnError::Other(reason) => TxnError::Markers(reason),
        }
    }
}

/// What answers other nodes' transaction requests on this node: markers go to shard 0,
/// whose coordinator hands each partition to the shard owning it; verification goes to the
/// shard coordinating the transactional id. `txn` is every shard's transaction inbox.
/// Share-group calls (`share_remote`) go to `share`, every shard's share inbox.
pub fn node_handler(
    txn: Vec<async_channel::Sender<TxnMessage>>,
    share: Vec<async_channel::Sender<crate::share::ShareMessage>>,
) -> NodeHandler {
    std::sync::Arc::new(move |body: String| -> NodeAnswer {
        let (txn, share) = (txn.clone(), share.clone());
        Box::pin(async move {
            if let Some(answered) = super::share_remote::answer_body(&share, &body).await {
                return answered;
            }
            let call: NodeCall = serde_json::from_str(&body).map_err(|e| e.to_string())?;
            let reply = answer(&txn, call).await?;
            serde_json::to_string(&reply).map_err(|e| e.to_string())
        })
    })
}

async fn answer(
    txn: &[async_channel::Sender<TxnMessage>],
    call: NodeCall,
) -> Result<NodeReply, String> {
    let done =
        |result: Result<(), TxnError>| NodeReply::Done(result.map_err(|e| WireTxnError::of(&e)));
    match call {
        NodeCall::WriteMarkers {
            producer_id,
            epoch,
            commit,
            partitions,
        } => {
            // Any shard splits them over the node's shards; shard 0 always exists.
            let written = ask(txn.first(), |reply| TxnMessage::WriteMarkers {
                producer_id,
                epoch,
                commit,
                partitions,
                reply,
            });
            Ok(done(written.await?))
        }
        NodeCall::Verify {
            transactional_id,
            producer_id,
            epoch,
            partitions,
        } => {
            let coordinator = crate::txn::coordinator_shard(&transactional_id, txn.len());
            let verified = ask(txn.get(coordinator), |reply| TxnMessage::Verify {
                transactional_id,
                producer_id,
                epoch,
                partitions,
                reply,
            });
            let wire = verified
                .await?
                .map(|results| {
                    let results = results.into_iter();
                    let results = results.map(|(p, r)| (p, r.map_err(|e| WireTxnError::of(&e))));
                    results.collect()
                })
                .map_err(|e| WireTxnError::of(&e));
            Ok(NodeReply::Verified(wire))
        }
        NodeCall::StageOffsets {
            transactional_id,
            producer_id,
            epoch,
            offsets,
        } => {
            let coordinator = crate::txn::coordinator_shard(&transactional_id, txn.len());
            let staged = ask(txn.get(coordinator), |reply| TxnMessage::StageOffsets {
                transactional_id,
                producer_id,
                epoch,
                offsets: offsets.into_iter().map(WireOffset::pending).collect(),
                reply,
            });
            Ok(done(staged.await?))
        }
        NodeCall::SettleOffsets {
            group,
            transactional_id,
            offsets,
        } => {
            let coordinator = crate::group::coordinator_shard(&group, txn.len());
            let settled = ask(txn.get(coordinator), |reply| TxnMessage::SettleOffsets {
                group,
                transactional_id,
                offsets: offsets.into_iter().map(WireOffset::committed).collect(),
                reply,
            });
            Ok(done(settled.await?))
        }
    }
}

/// Sends the message `make` builds to a shard's transaction inbox and waits for its reply.
async fn ask<T>(
    inbox: Option<&async_channel::Sender<TxnMessage>>,
    make: impl FnOnce(futures_channel::oneshot::Sender<T>) -> TxnMessage,
) -> Result<T, String> {
    let inbox = inbox.ok_or("no such shard")?;
    let (reply, answered) = futures_channel::oneshot::channel();
    let stopped = |_| "the node is shutting down".to_owned();
    inbox
        .send(make(reply))
        .await
        .map_err(|_| "a shard stopped")?;
    answered.await.map_err(stopped)
}

impl Shard {
    /// The cluster node `topic`-`partition` lives on, if that is another node: for a
    /// replicated partition, its leader as this node's replica knows it (none known: this
    /// node, whose replica then refuses and the caller retries), or the preferred leader
    /// when this node hosts no replica.
    pub fn remote_node_of(&self, topic: &str, partition: i32) -> Option<NodeId> {
        let cluster = self.cluster.as_ref()?;
        let meta = self.topic(topic)?;
        let node = match meta.placement.replicas_of(partition) {
            Some(nodes) => match super::known_leader(cluster, &meta, partition, nodes) {
                Some(leader) => leader,
                None if nodes.contains(&cluster.node_id) => return None,
                None => *nodes.first()?,
            },
            None => meta.placement.node_of(partition)?,
        };
        (node != cluster.node_id).then_some(node)
    }

    /// The node coordinating group or transactional id `key`, if that is another node.
    pub fn remote_coordinator_node(&self, key: &str) -> Option<NodeId> {
        let (cluster, peers) = (self.cluster.as_ref()?, self.config.cluster.as_ref()?);
        let ids: Vec<NodeId> = peers.peers.keys().copied().collect();
        let node = *ids.get(crate::group::NodeKeys::slot_of(key, ids.len()))?;
        (node != cluster.node_id).then_some(node)
    }

    async fn call_node(&self, node: NodeId, call: &NodeCall) -> Result<NodeReply, TxnError> {
        let cluster = self.cluster.as_ref().ok_or(TxnError::ShuttingDown)?;
        let body = serde_json::to_string(call).map_err(|e| TxnError::Markers(e.to_string()))?;
        let answer = cluster
            .plane
            .call_node(node, body)
            .await
            .map_err(|e| TxnError::Markers(e.to_string()))?;
        serde_json::from_str(&answer).map_err(|e| TxnError::Markers(e.to_string()))
    }

    /// [`crate::txn::txn_host::TxnHost::write_remote_markers`].
    pub(super) async fn markers_on_node(
        &self,
        node: NodeId,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        partitions: Vec<(String, i32)>,
    ) -> Result<(), TxnError> {
        let call = NodeCall::WriteMarkers {
            producer_id,
            epoch,
            commit,
            partitions,
        };
        self.call_node_done(node, &call).await
    }

    /// TxnOffsetCommit's offsets, staged with the transaction on node `node`, which
    /// coordinates `transactional_id`.
    pub async fn stage_offsets_on_node(
        &self,
        node: NodeId,
        transactional_id: String,
        (producer_id, epoch): (i64, i16),
        offsets: Vec<PendingOffset>,
    ) -> Result<(), TxnError> {
        let offsets = offsets.into_iter();
        let call = NodeCall::StageOffsets {
            transactional_id,
            producer_id,
            epoch,
            offsets: offsets
                .map(|o| WireOffset::of(&o.group, o.topic, o.partition, o.offset))
                .collect(),
        };
        self.call_node_done(node, &call).await
    }

    /// [`crate::txn::txn_host::TxnHost::settle_remote_offsets`].
    pub(super) async fn settle_offsets_on_node(
        &self,
        node: NodeId,
        group: &str,
        transactional_id: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), TxnError> {
        let offsets = offsets.into_iter();
        let call = NodeCall::SettleOffsets {
            group: group.to_owned(),
            transactional_id: transactional_id.to_owned(),
            offsets: offsets
                .map(|(topic, partition, offset)| WireOffset::of(group, topic, partition, offset))
                .collect(),
        };
        self.call_node_done(node, &call).await
    }

    async fn call_node_done(&self, node: NodeId, call: &NodeCall) -> Result<(), TxnError> {
        match self.call_node(node, call).await? {
            NodeReply::Done(done) => done.map_err(WireTxnError::into_error),
            NodeReply::Verified(_) => Err(TxnError::Markers(format!(
                "node {node} answered with a verification"
            ))),
        }
    }

    /// KIP-890 verification by node `node`, which coordinates `transactional_id`.
    pub async fn verify_on_node(
        &self,
        node: NodeId,
        transactional_id: String,
        (producer_id, epoch): (i64, i16),
        partitions: Vec<(String, i32)>,
    ) -> Result<Verified, TxnError> {
        let call = NodeCall::Verify {
            transactional_id,
            producer_id,
            epoch,
            partitions,
        };
        match self.call_node(node, &call).await? {
            NodeReply::Verified(verified) => {
                let verified = verified.map_err(WireTxnError::into_error)?;
                let verified = verified.into_iter();
                Ok(verified
                    .map(|(p, r)| (p, r.map_err(WireTxnError::into_error)))
                    .collect())
            }
            NodeReply::Done(_) => Err(TxnError::Markers(format!(
                "node {node} answered a verification with no result"
            ))),
        }
    }
}
