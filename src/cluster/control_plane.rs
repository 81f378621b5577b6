//! The control plane: a thread per node with a current-thread tokio runtime that runs the
//! metadata Raft group and its RPC server. openraft needs tokio; keeping it on this one thread
//! leaves the shards' glommio executors untouched. Shards reach it through
//! [`ControlPlane`], whose futures resolve through `futures_channel::oneshot`, which any
//! executor can poll.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use futures_channel::oneshot;
use openraft::storage::Adaptor;
use openraft::{BasicNode, Config, Raft};

use super::cluster_rpc::{
    self, ClusterNetwork, NodeHandler, NodeHandlerSlot, ReplicaStreamHandler, ReplicaStreamSlot,
    RpcReply, RpcRequest,
};
use super::cluster_status::ClusterStatus;
use super::join_gate::{self, JoinGate};
use super::meta_store::{MetaOutcome, MetaRecord, MetaStateMachine, MetaStore, MetaTypes};
use super::peer_list::{NodeId, PeerList};
use super::replica_leaders::ReplicaLeaders;
use super::rpc_server::{self, Served};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    #[error("raft dir {path}: {source}")]
    Storage {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cluster port {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("control plane: {0}")]
    Raft(String),
    /// No leader is known (an election is under way): Kafka's NOT_CONTROLLER, retriable.
    #[error("no metadata leader")]
    NoLeader,
    #[error("control plane stopped")]
    Stopped,
    /// A node-to-node request got no answer (the node is down or not ready), or its
    /// handler refused it: retriable.
    #[error("node {node}: {reason}")]
    Peer { node: NodeId, reason: String },
}

/// Raft timings for a metadata group on one LAN: a lost leader is noticed in well under a
/// second and replaced within a few.
fn raft_config() -> Config {
    Config {
        cluster_name: "sluice-metadata".to_string(),
        heartbeat_interval: 150,
        election_timeout_min: 600,
        election_timeout_max: 1200,
        ..Config::default()
    }
}

/// What stops the control-plane thread, and the thread to join.
type Running = (oneshot::Sender<()>, JoinHandle<()>);

/// A handle on the node's control plane; clone it freely, send it to any thread.
#[derive(Clone)]
pub struct ControlPlane {
    raft: Raft<MetaTypes>,
    runtime: tokio::runtime::Handle,
    node_id: NodeId,
    /// Every initial member's cluster address, for node-to-node requests to a node the
    /// membership does not name (yet).
    peers: Arc<BTreeMap<NodeId, String>>,
    served: Served,
    stop: Arc<std::sync::Mutex<Option<Running>>>,
}

impl ControlPlane {
    /// Starts the control-plane thread: opens `raft_dir`, binds this node's cluster port and
    /// starts Raft. A node with no Raft state yet first asks its peers what it is (see
    /// `join_gate`): on a brand-new cluster it proposes the initial membership from `peers`.
    pub fn start(
        peers: &PeerList,
        raft_dir: &Path,
        machine: Box<dyn MetaStateMachine>,
    ) -> Result<ControlPlane, ClusterError> {
        let store = MetaStore::open(raft_dir, machine).map_err(|source| ClusterError::Storage {
            path: raft_dir.to_path_buf(),
            source,
        })?;
        let addr = peers.own_addr().to_string();
        let listener =
            std::net::TcpListener::bind(&addr).map_err(|source| ClusterError::Listen {
                addr: addr.clone(),
                source,
            })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| ClusterError::Listen { addr, source })?;
        let node_id = peers.node_id;
        let gate = join_gate::gate_for(store.is_pristine());
        let node_handler = NodeHandlerSlot::default();
        let served_handler = Arc::clone(&node_handler);
        let served_peers = peers.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("control-plane-{node_id}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(ClusterError::Raft(e.to_string())));
                        return;
                    }
                };
                let serving = Serving {
                    peers: served_peers,
                    store,
                    listener,
                    gate,
                    handler: served_handler,
                };
                runtime.block_on(run(serving, ready_tx, stop_rx));
            })
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        let (served, runtime) = ready_rx.recv().map_err(|_| ClusterError::Stopped)??;
        Ok(ControlPlane {
            raft: served.raft.clone(),
            runtime,
            node_id,
            peers: Arc::new(peers.peers.clone()),
            served,
            stop: Arc::new(std::sync::Mutex::new(Some((stop_tx, thread)))),
        })
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Commits `record` through the Raft leader (forwarding to it from a follower) and returns
    /// its log index and what applying it answered once committed there. Safe to await from a
    /// glommio shard.
    pub async fn propose(&self, record: MetaRecord) -> Result<(u64, MetaOutcome), ClusterError> {
        let (tx, rx) = oneshot::channel();
        let raft = self.raft.clone();
        self.runtime.spawn(async move {
            let _ = tx.send(propose_on_control_plane(raft, record).await);
        });
        rx.await.map_err(|_| ClusterError::Stopped)?
    }

    /// Proposes `record` in the background, retrying until it is committed or the control
    /// plane stops: for announcements (node registration) that must land once a leader exists.
    pub fn announce(&self, record: MetaRecord) {
        let raft = self.raft.clone();
        self.runtime.spawn(async move {
            loop {
                match propose_on_control_plane(raft.clone(), record.clone()).await {
                    Ok((index, _)) => {
                        tracing::info!(index, "cluster announcement committed");
                        return;
                    }
                    Err(e) => tracing::debug!(error = %e, "cluster announcement: retrying"),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }

    /// Installs what answers other nodes' [`RpcRequest::Node`] requests here. The first
    /// call wins; until then they are refused (retriable for the caller).
    pub fn set_node_handler(&self, handler: NodeHandler) {
        let _ = self.served.handler.set(handler);
    }

    /// Installs what takes replication connections peers open to this node's shards. The
    /// first call wins; until then such connections are closed (the peer reconnects).
    pub fn set_replica_stream_handler(&self, handler: ReplicaStreamHandler) {
        let _ = self.served.replica_streams.set(handler);
    }

    /// The partition leaders this node's replicas know (see [`ReplicaLeaders`]).
    pub fn replica_leaders(&self) -> &ReplicaLeaders {
        &self.served.leaders
    }

    /// Node `node`'s cluster address: from the committed membership, else the initial peers.
    pub fn peer_addr(&self, node: NodeId) -> Option<String> {
        let member = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow();
            let membership = metrics.membership_config.membership();
            membership.get_node(&node).map(|n| n.addr.clone())
        };
        member.or_else(|| self.peers.get(&node).cloned())
    }

    /// Sends `body` to node `node`'s handler and returns its answer. Safe to await from a
    /// glommio shard. One attempt: the caller decides whether and when to retry.
    pub async fn call_node(&self, node: NodeId, body: String) -> Result<String, ClusterError> {
        let peer = |reason: String| ClusterError::Peer { node, reason };
        let addr = self
            .peer_addr(node)
            .ok_or_else(|| peer("not a member of the cluster".to_owned()))?;
        let (tx, rx) = oneshot::channel();
        self.runtime.spawn(async move {
            let request = RpcRequest::Node(body);
            let call = cluster_rpc::call_once(&addr, &request);
            let reply = match tokio::time::timeout(NODE_CALL_WAIT, call).await {
                Ok(Ok(RpcReply::Node(reply))) => reply,
                Ok(Ok(_)) => Err("the peer answered a different request".to_owned()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {NODE_CALL_WAIT:?}")),
            };
            let _ = tx.send(reply);
        });
        rx.await.map_err(|_| ClusterError::Stopped)?.map_err(peer)
    }

    /// The metadata leader this node knows of, if any (cheap: reads openraft's metrics).
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    pub fn status(&self) -> ClusterStatus {
        self.served.status()
    }

    /// Stops Raft and the RPC server and joins the thread. Later calls do nothing.
    pub fn shutdown(&self) {
        let stopping = self
            .stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((stop_tx, thread)) = stopping {
            let _ = stop_tx.send(());
            // A panic on the control plane was already reported by the panic hook.
            let _ = thread.join();
        }
    }
}

type Ready = Result<(Served, tokio::runtime::Handle), ClusterError>;

/// What the control-plane thread serves.
struct Serving {
    peers: PeerList,
    store: MetaStore,
    listener: std::net::TcpListener,
    gate: JoinGate,
    handler: NodeHandlerSlot,
}

async fn run(serving: Serving, ready: std::sync::mpsc::Sender<Ready>, stop: oneshot::Receiver<()>) {
    let Serving {
        peers,
        store,
        listener,
        gate,
        handler,
    } = serving;
    let node_id = peers.node_id;
    let pristine = store.is_pristine();
    let started = async {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        let config = raft_config()
            .validate()
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        let (log_store, state_machine) = Adaptor::new(store.clone());
        let raft = Raft::new(
            node_id,
            Arc::new(config),
            ClusterNetwork,
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| ClusterError::Raft(e.to_string()))?;
        let served = Served {
            raft: raft.clone(),
            store,
            gate: gate.clone(),
            handler,
            replica_streams: ReplicaStreamSlot::default(),
            leaders: ReplicaLeaders::default(),
        };
        let server = tokio::spawn(rpc_server::serve(listener, served.clone()));
        // A node with Raft state carries on from it; one without asks its peers first.
        let settling = pristine.then(|| tokio::spawn(join_gate::settle(raft.clone(), peers, gate)));
        Ok::<_, ClusterError>((served, server, settling))
    }
    .await;
    let (served, server, settling) = match started {
        Ok(started) => started,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let raft = served.raft.clone();
    if ready
        .send(Ok((served, tokio::runtime::Handle::current())))
        .is_err()
    {
        return;
    }
    // Either a stop request or the handle being dropped ends the control plane.
    let _ = stop.await;
    server.abort();
    if let Some(settling) = settling {
        settling.abort();
    }
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "raft shutdown");
    }
}

/// How long a node waits for another node to answer a node-to-node request (markers wait for
/// an fsync there) before calling it unreachable; a silent peer (a network partition rather
/// than a dead process, whose connection closes) would otherwise hold the caller forever.
const NODE_CALL_WAIT: Duration = Duration::from_secs(30);

/// How long a follower waits for a metadata leader to appear before giving up on a proposal.
const LEADER_WAIT: Duration = Duration::from_secs(5);

async fn propose_on_control_plane(
    raft: Raft<MetaTypes>,
    record: MetaRecord,
) -> Result<(u64, MetaOutcome), ClusterError> {
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    loop {
        let forward = match raft.client_write(record.clone()).await {
            Ok(reply) => return Ok((reply.log_id.index, reply.data)),
            Err(e) => match e.forward_to_leader::<BasicNode>() {
                Some(forward) => forward.leader_node.clone(),
                None => return Err(ClusterError::Raft(e.to_string())),
            },
        };
        if let Some(leader) = forward {
            // If the leader changed under us or is unreachable, look again until the
            // deadline. A retry after a lost reply may commit the record twice, which is why
            // records must be idempotent (see MetaStateMachine::apply).
            let request = RpcRequest::Propose(record.clone());
            if let Ok(RpcReply::Propose(Ok(committed))) =
                cluster_rpc::call_once(&leader.addr, &request).await
            {
                return Ok(committed);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ClusterError::NoLeader);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Instant;

    /// Records applied bodies; the snapshot is the list, one per line.
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl MetaStateMachine for Recorder {
        fn apply(&mut self, _index: u64, record: &MetaRecord) -> MetaOutcome {
            self.0
                .lock()
                .expect("recorder lock")
                .push(record.body.clone());
            MetaOutcome::default()
        }
        fn snapshot(&self) -> String {
            self.0.lock().expect("recorder lock").join("\n")
        }
        fn restore(&mut self, _index: u64, snapshot: &str) -> Result<(), String> {
            *self.0.lock().expect("recorder lock") = snapshot.lines().map(str::to_string).collect();
            Ok(())
        }
    }

    struct TestNode {
        plane: ControlPlane,
        applied: Arc<Mutex<Vec<String>>>,
    }

    fn start(peers: &PeerList, dir: &Path) -> TestNode {
        let applied = Arc::new(Mutex::new(Vec::new()));
        let plane = ControlPlane::start(peers, dir, Box::new(Recorder(Arc::clone(&applied))))
            .expect("control plane starts");
        TestNode { plane, applied }
    }

    /// Waits (generously) until `done` holds; the bound is a timeout, not a measurement.
    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn agreed_leader(nodes: &[&TestNode]) -> Option<NodeId> {
        let leaders: Vec<_> = nodes.iter().map(|n| n.plane.status().leader).collect();
        let first = leaders[0]?;
        leaders.iter().all(|l| *l == Some(first)).then_some(first)
    }

    /// A port free now, below the kernel's ephemeral range: a port the kernel handed out
    /// (port 0) can be taken by another test's outgoing connection before the control plane
    /// binds it (AddrInUse, seen in CI).
    fn free_port() -> u16 {
        let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse().ok())
            .unwrap_or(32_768);
        let low: u16 = 10_000;
        let span = u128::from(ephemeral_low.saturating_sub(low).max(1));
        for _ in 0..1_000 {
            let offset = u16::try_from(uuid::Uuid::new_v4().as_u128() % span).unwrap_or(0);
            let port = low + offset;
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
        panic!("no free port below {ephemeral_low}");
    }

    fn record(body: &str) -> MetaRecord {
        MetaRecord {
            body: body.to_string(),
        }
    }

    /// Three control planes of one cluster, each with its own dir, once they agree on a leader.
    struct Three {
        dirs: Vec<tempfile::TempDir>,
        lists: Vec<PeerList>,
        nodes: Vec<TestNode>,
        leader: NodeId,
    }

    fn three_nodes() -> Three {
        let dirs: Vec<_> = (0..3)
            .map(|_| tempfile::tempdir().expect("temp dir"))
            .collect();
        let list = (1..=3)
            .map(|id| format!("{id}@127.0.0.1:{}", free_port()))
            .collect::<Vec<_>>()
            .join(",");
        let lists: Vec<_> = (1..=3)
            .map(|id| PeerList::parse(id, &list).expect("peer list"))
            .collect();
        let nodes: Vec<TestNode> = (0..3).map(|i| start(&lists[i], dirs[i].path())).collect();
        wait_for("a leader all agree on", || {
            agreed_leader(&nodes.iter().collect::<Vec<_>>()).is_some()
        });
        let leader = agreed_leader(&nodes.iter().collect::<Vec<_>>()).expect("a leader");
        Three {
            dirs,
            lists,
            nodes,
            leader,
        }
    }

    /// Runs `add-node` / `remove-node` on `node`'s control plane, as its RPC server would.
    fn change(node: &TestNode, change: super::super::MemberChange) -> Result<String, String> {
        let raft = node.plane.raft.clone();
        let task = node.plane.runtime.spawn(async move {
            super::super::membership_change::change_members(&raft, change, false).await
        });
        futures_lite::future::block_on(task).expect("the change task runs")
    }

    #[test]
    fn removal_refuses_a_lost_majority_and_the_last_voter() {
        use super::super::MemberChange::Remove;
        let Three {
            dirs,
            lists,
            mut nodes,
            leader,
        } = three_nodes();
        let l = usize::try_from(leader - 1).expect("ids are 1..=3");
        let (f1, f2) = match l {
            0 => (1, 2),
            1 => (0, 2),
            _ => (0, 1),
        };
        let id = |i: usize| i as u64 + 1;

        // One follower down: removing the other would leave {leader, down one}.
        nodes[f1].plane.shutdown();
        let refused = change(&nodes[l], Remove { node: id(f2) }).expect_err("refused");
        assert!(refused.contains("refusing to remove"), "{refused}");
        assert_eq!(nodes[l].plane.status().nodes.len(), 3, "nothing changed");

        // Back up: both removals go through, then the last voter stays.
        nodes[f1] = start(&lists[f1], dirs[f1].path());
        wait_for("the follower to be back", || {
            nodes[f1].plane.status().leader == Some(leader)
        });
        change(&nodes[l], Remove { node: id(f2) }).expect("second follower removed");
        change(&nodes[l], Remove { node: id(f1) }).expect("first follower removed");
        let refused = change(&nodes[l], Remove { node: leader }).expect_err("refused");
        assert!(refused.contains("last voter"), "{refused}");
        let refused = change(&nodes[l], Remove { node: 9 }).expect_err("refused");
        assert!(refused.contains("not a member"), "{refused}");
        assert_eq!(
            nodes[l]
                .plane
                .status()
                .nodes
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            [leader]
        );
        // The lone voter still commits.
        futures_lite::future::block_on(nodes[l].plane.propose(record("alone")))
            .expect("a single voter commits");
        for node in &nodes {
            node.plane.shutdown();
        }
    }

    #[test]
    fn three_nodes_elect_replicate_fail_over_and_catch_up() {
        let Three {
            dirs,
            lists,
            mut nodes,
            leader,
        } = three_nodes();
        let follower = nodes
            .iter()
            .position(|n| n.plane.node_id() != leader)
            .expect("a follower");
        futures_lite::future::block_on(nodes[follower].plane.propose(record("a")))
            .expect("a follower's proposal is forwarded and committed");
        wait_for("every node to apply a", || {
            nodes
                .iter()
                .all(|n| *n.applied.lock().expect("recorder lock") == ["a"])
        });

        // The leader goes away; the other two elect a new one and keep committing.
        let leader_index = usize::try_from(leader - 1).expect("ids are 1..=3");
        nodes[leader_index].plane.shutdown();
        let survivors: Vec<usize> = (0..3).filter(|i| *i != leader_index).collect();
        wait_for("a new leader among the survivors", || {
            let pair = [&nodes[survivors[0]], &nodes[survivors[1]]];
            agreed_leader(&pair).is_some_and(|l| l != leader)
        });
        futures_lite::future::block_on(nodes[survivors[0]].plane.propose(record("b")))
            .expect("the survivors commit");
        wait_for("the survivors to apply b", || {
            survivors
                .iter()
                .all(|i| *nodes[*i].applied.lock().expect("recorder lock") == ["a", "b"])
        });

        // The old leader comes back from its data dir and catches up.
        nodes[leader_index] = start(&lists[leader_index], dirs[leader_index].path());
        wait_for("the restarted node to catch up", || {
            *nodes[leader_index].applied.lock().expect("recorder lock") == ["a", "b"]
        });
        for node in &nodes {
            node.plane.shutdown();
        }
    }
}
