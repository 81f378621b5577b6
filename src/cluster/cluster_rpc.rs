//! Inter-node RPC on the cluster port: a `u32` big-endian length, then a JSON body; one request
//! then one reply per exchange, on a connection each side keeps and reuses. openraft batches
//! entries into one AppendEntries and pipelines per follower, so frames need no batching here.
//! This file is the wire and the client side; `rpc_server` answers.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::cluster_status::ClusterStatus;
use super::meta_store::{MetaOutcome, MetaRecord, MetaTypes};
use super::peer_list::NodeId;
use crate::constants::CLUSTER_FRAME_BYTES_MAX;

/// How long to wait for a peer's TCP connect before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Serialize, Deserialize)]
pub enum RpcRequest {
    Append(AppendEntriesRequest<MetaTypes>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<MetaTypes>),
    /// A follower forwarding a metadata change to the leader.
    Propose(MetaRecord),
    /// This node's view of the group, for `sluice cluster status`.
    Status,
    /// A request for the receiving node's shards (transaction markers, KIP-890
    /// verification, transactional offsets), opaque here: the layer above encodes it and answers it through the
    /// node's [`NodeHandler`].
    Node(String),
    /// `sluice cluster add-node / remove-node`, carried out on the leader; `forwarded` once a
    /// follower passed it on (it is not passed on twice).
    Members {
        change: MemberChange,
        forwarded: bool,
    },
    /// Opens a partition replication stream from shard `shard` of node `from` to the same
    /// shard here: the server answers nothing and hands the connection to that shard, which
    /// reads the shard layer's replication frames from it (see [`ReplicaStreamHandler`]),
    /// or, for [`StreamPurpose::LogReads`], answers reads of its partition logs on it.
    ReplicaStream {
        from: NodeId,
        shard: usize,
        #[serde(default)]
        purpose: StreamPurpose,
    },
}

/// What a replication connection carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamPurpose {
    /// Raft messages, one way.
    #[default]
    RaftMessages,
    /// Requests for a partition log's batches and their answers: a snapshot's data.
    LogReads,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum RpcReply {
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// The log index the change was committed at and what applying it answered, or why it
    /// was not committed.
    Propose(Result<(u64, MetaOutcome), String>),
    Status(ClusterStatus),
    /// The node handler's answer, or why there was none.
    Node(Result<String, String>),
    /// What the membership change did, or why it was refused.
    Members(Result<String, String>),
    /// This node takes no part in Raft yet (it is deciding how to join, or fenced after losing
    /// its `raft/` dir): the sender backs off as from an unreachable node.
    Refused(String),
}

/// What a [`NodeHandler`] answers with: polled on the control-plane thread.
pub type NodeAnswer = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// Answers [`RpcRequest::Node`] bodies on this node: it hands the body to the shards
/// (through their channels) and resolves with their answer.
pub type NodeHandler = Arc<dyn Fn(String) -> NodeAnswer + Send + Sync>;

/// Where the node's handler is installed once its shards run (the RPC server starts first).
pub type NodeHandlerSlot = Arc<OnceLock<NodeHandler>>;

/// Takes a replication connection ([`RpcRequest::ReplicaStream`]) off the control plane:
/// (from node, shard, purpose, socket). Called on the control-plane thread; it must only
/// queue.
pub type ReplicaStreamHandler =
    Arc<dyn Fn(NodeId, usize, StreamPurpose, std::os::fd::OwnedFd) + Send + Sync>;

/// Where the replication handler is installed once the shards run.
pub type ReplicaStreamSlot = Arc<OnceLock<ReplicaStreamHandler>>;

/// One frame as [`write_frame`] sends it; public for a client that is not on tokio (a shard
/// opening a replication stream writes its handshake with its own socket).
pub fn encode_frame<T: Serialize>(body: &T) -> std::io::Result<Vec<u8>> {
    let bytes = serde_json::to_vec(body).map_err(std::io::Error::other)?;
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|len| *len as usize <= CLUSTER_FRAME_BYTES_MAX)
        .ok_or_else(|| std::io::Error::other("cluster frame too large"))?;
    let mut frame = Vec::with_capacity(4 + bytes.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&bytes);
    Ok(frame)
}

pub async fn write_frame<T: Serialize>(stream: &mut TcpStream, body: &T) -> std::io::Result<()> {
    stream.write_all(&encode_frame(body)?).await?;
    stream.flush().await
}

pub async fn read_frame<T: for<'de> Deserialize<'de>>(
    stream: &mut TcpStream,
) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    // Checked before allocating: a peer (or anything else on the port) chooses this number.
    if len > CLUSTER_FRAME_BYTES_MAX {
        return Err(std::io::Error::other(format!(
            "cluster frame of {len} bytes"
        )));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map_err(std::io::Error::other)
}

/// A change of the metadata group's members (`sluice cluster add-node / remove-node`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MemberChange {
    Add { node: NodeId, addr: String },
    Remove { node: NodeId },
}

/// How long one node's status may take before it counts as not answering.
const STATUS_WAIT: Duration = Duration::from_secs(1);

/// One node's status over its cluster port, or `None` if it does not answer in time.
pub async fn status_of(addr: &str) -> Option<ClusterStatus> {
    let reply = tokio::time::timeout(STATUS_WAIT, call_once(addr, &RpcRequest::Status)).await;
    match reply {
        Ok(Ok(RpcReply::Status(status))) => Some(status),
        _ => None,
    }
}

/// One request/reply exchange on a fresh connection (used for forwarding proposals).
pub async fn call_once(addr: &str, request: &RpcRequest) -> std::io::Result<RpcReply> {
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    stream.set_nodelay(true)?;
    write_frame(&mut stream, request).await?;
    read_frame(&mut stream).await
}

/// Makes a [`PeerClient`] per target node for openraft's replication and elections.
pub struct ClusterNetwork;

impl RaftNetworkFactory<MetaTypes> for ClusterNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            stream: None,
        }
    }
}

/// A connection to one peer, opened on first use and reopened after any error.
pub struct PeerClient {
    target: NodeId,
    addr: String,
    stream: Option<TcpStream>,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, E>>;

impl PeerClient {
    async fn exchange(&mut self, request: &RpcRequest) -> std::io::Result<RpcReply> {
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => {
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.addr))
                    .await
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
                stream.set_nodelay(true)?;
                stream
            }
        };
        write_frame(&mut stream, request).await?;
        let reply = read_frame(&mut stream).await?;
        // Kept only after a whole exchange, so a half-read reply never poisons the next one.
        self.stream = Some(stream);
        Ok(reply)
    }

    async fn call<T, E: std::error::Error>(
        &mut self,
        request: RpcRequest,
        option: &RPCOption,
        pick: impl FnOnce(RpcReply) -> Option<Result<T, RaftError<NodeId, E>>>,
    ) -> RpcResult<T, RaftError<NodeId, E>> {
        let reply = tokio::time::timeout(option.hard_ttl(), self.exchange(&request)).await;
        let reply = match reply {
            Ok(Ok(reply)) => reply,
            // No connection at all (the node is down): openraft backs off before the next
            // attempt only for `Unreachable`; a network error is retried at once, which
            // spun the control-plane thread (thousands of attempts a second, three log lines
            // each) for as long as a follower was down.
            Ok(Err(e)) if connect_failed(&e) => {
                return Err(RPCError::Unreachable(Unreachable::new(&e)))
            }
            Ok(Err(e)) => return Err(RPCError::Network(NetworkError::new(&e))),
            Err(_) => {
                let e = std::io::Error::from(std::io::ErrorKind::TimedOut);
                return Err(RPCError::Network(NetworkError::new(&e)));
            }
        };
        if let RpcReply::Refused(reason) = reply {
            let e = std::io::Error::other(format!("node {}: {reason}", self.target));
            return Err(RPCError::Unreachable(Unreachable::new(&e)));
        }
        match pick(reply) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            None => {
                let e = std::io::Error::other("peer answered a different request");
                Err(RPCError::Network(NetworkError::new(&e)))
            }
        }
    }
}

/// Whether `exchange` failed to connect (rather than on an open connection): only connecting
/// is refused, and only the connect has a timeout of its own inside `exchange`.
fn connect_failed(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{
        AddrNotAvailable, ConnectionRefused, HostUnreachable, NetworkUnreachable, TimedOut,
    };
    matches!(
        e.kind(),
        ConnectionRefused | TimedOut | HostUnreachable | NetworkUnreachable | AddrNotAvailable
    )
}

impl RaftNetwork<MetaTypes> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<MetaTypes>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        self.call(RpcRequest::Append(rpc), &option, |r| match r {
            RpcReply::Append(r) => Some(r),
            _ => None,
        })
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<MetaTypes>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.call(RpcRequest::Snapshot(rpc), &option, |r| match r {
            RpcReply::Snapshot(r) => Some(r),
            _ => None,
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        self.call(RpcRequest::Vote(rpc), &option, |r| match r {
            RpcReply::Vote(r) => Some(r),
            _ => None,
        })
        .await
    }
}
