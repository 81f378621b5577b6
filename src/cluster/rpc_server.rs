//! The cluster port's server: answers peers' Raft requests (unless this node takes no part
//! yet, see `join_gate`), forwarded proposals, status, membership changes and node-to-node
//! requests for the shards.

use std::time::Duration;

use openraft::Raft;
use tokio::net::{TcpListener, TcpStream};

use super::cluster_rpc::{
    read_frame, write_frame, NodeHandlerSlot, ReplicaStreamSlot, RpcReply, RpcRequest,
};
use super::cluster_status::ClusterStatus;
use super::join_gate::JoinGate;
use super::membership_change::change_members;
use super::meta_store::{MetaStore, MetaTypes};

/// What the RPC server answers from: the node's Raft, its storage (for the status), its
/// join gate and its node handler.
#[derive(Clone)]
pub struct Served {
    pub raft: Raft<MetaTypes>,
    pub store: MetaStore,
    pub gate: JoinGate,
    pub handler: NodeHandlerSlot,
    pub replica_streams: ReplicaStreamSlot,
    /// The node's replicated partitions as its replicas see them (shared by its shards).
    pub leaders: super::ReplicaLeaders,
}

impl Served {
    pub fn status(&self) -> ClusterStatus {
        ClusterStatus::of(
            &self.raft,
            self.gate.fenced(),
            self.gate.refused(),
            self.store.joined_nodes(),
            self.leaders.statuses(),
        )
    }

    /// Why a Raft request is not served, if it is not: the node is deciding how to join or
    /// fenced, or (a vote) the candidate is not a voter here, e.g. a removed node that never
    /// learnt it was removed and would otherwise disrupt the group with ever higher terms.
    fn refusal(&self, request: &RpcRequest) -> Option<String> {
        let raft_request = matches!(
            request,
            RpcRequest::Append(_) | RpcRequest::Vote(_) | RpcRequest::Snapshot(_)
        );
        if raft_request && !self.gate.admits() {
            return Some(
                if self.gate.fenced() {
                    "fenced: this node lost its raft state and must be removed and added again"
                } else {
                    "deciding how to join the cluster"
                }
                .to_owned(),
            );
        }
        let RpcRequest::Vote(vote) = request else {
            return None;
        };
        let candidate = vote.vote.leader_id().voted_for()?;
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let is_voter = membership.voter_ids().any(|id| id == candidate);
        // A node with no membership yet cannot tell; openraft decides as usual.
        let knows = membership.voter_ids().next().is_some();
        (knows && !is_voter).then(|| format!("node {candidate} is not a voter"))
    }
}

/// Serves peers' requests on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, served: Served) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of descriptors or the like: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let served = served.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_connection(stream, served).await {
                if e.kind() != std::io::ErrorKind::UnexpectedEof {
                    tracing::debug!(%peer, error = %e, "cluster connection closed");
                }
            }
        });
    }
}

async fn serve_connection(mut stream: TcpStream, served: Served) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    loop {
        let request: RpcRequest = read_frame(&mut stream).await?;
        if let RpcRequest::ReplicaStream {
            from,
            shard,
            purpose,
        } = request
        {
            return hand_over(stream, &served, from, shard, purpose);
        }
        if let Some(reason) = served.refusal(&request) {
            write_frame(&mut stream, &RpcReply::Refused(reason)).await?;
            continue;
        }
        let raft = &served.raft;
        let reply = match request {
            RpcRequest::Append(rpc) => RpcReply::Append(raft.append_entries(rpc).await),
            RpcRequest::Vote(rpc) => RpcReply::Vote(raft.vote(rpc).await),
            RpcRequest::Snapshot(rpc) => RpcReply::Snapshot(raft.install_snapshot(rpc).await),
            RpcRequest::Propose(record) => RpcReply::Propose(
                raft.client_write(record)
                    .await
                    .map(|r| (r.log_id.index, r.data))
                    .map_err(|e| e.to_string()),
            ),
            RpcRequest::Status => RpcReply::Status(served.status()),
            RpcRequest::Node(body) => RpcReply::Node(match served.handler.get() {
                Some(handle) => handle(body).await,
                None => Err("the node's shards are not running yet".to_owned()),
            }),
            RpcRequest::Members { change, forwarded } => {
                RpcReply::Members(change_members(raft, change, forwarded).await)
            }
            // Taken above: the connection left this loop.
            RpcRequest::ReplicaStream { .. } => RpcReply::Refused("unexpected".to_owned()),
        };
        write_frame(&mut stream, &reply).await?;
    }
}

/// Gives a replication connection to the shard it names (its frames are the shard layer's,
/// read on that shard's executor, off this thread). Nothing is buffered here: `read_frame`
/// read exactly the handshake, so the first replication frame is still in the socket.
fn hand_over(
    stream: TcpStream,
    served: &Served,
    from: super::NodeId,
    shard: usize,
    purpose: super::StreamPurpose,
) -> std::io::Result<()> {
    let Some(handler) = served.replica_streams.get() else {
        // The shards are not running yet: dropping the socket makes the peer reconnect.
        return Ok(());
    };
    let stream = stream.into_std()?;
    // glommio drives the socket through io_uring, which expects a blocking socket.
    stream.set_nonblocking(false)?;
    handler(from, shard, purpose, std::os::fd::OwnedFd::from(stream));
    Ok(())
}
