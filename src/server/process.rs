//! Process lifecycle: data dir lock, catalog load, shard start-up, the ready line,
//! signals, and an orderly shutdown that leaves every log flushed and marked clean.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use futures_channel::oneshot;

use super::panic_policy::PanicWatch;
use crate::cluster::ControlPlane;
use crate::config::BrokerConfig;
use crate::shard::catalog::{Catalog, CatalogError};
use crate::shard::catalog_machine::{
    CatalogMachine, Committed, MetaChange, NodeInfo, NodeListener,
};
use crate::shard::catalog_owner::{CatalogOwner, OwnerCluster};
use crate::shard::control::ShardMessage;
use crate::shard::producer_ids::ProducerIdAllocator;
use crate::shard::{control_loop, BrokerAddress, Shard};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data dir {path} is in use by another sluice process")]
    DataDirLocked { path: PathBuf },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("TLS: {0}")]
    Tls(#[from] crate::security::tls::TlsError),
    #[error("shard {shard_id}: {reason}")]
    Shard { shard_id: usize, reason: String },
    #[error(transparent)]
    Runtime(#[from] crate::io::runtime::RuntimeError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("signal handler: {0}")]
    Signals(std::io::Error),
    /// A thread panicked; the process exits with `panic_policy::PANIC_EXIT_CODE`.
    #[error("a thread panicked (see the log); exiting")]
    Panicked,
}

/// What a shard reports to the main thread while starting.
enum Startup {
    /// The bound address of each listener, in the configured order.
    Listening {
        shard_id: usize,
        addrs: Vec<SocketAddr>,
    },
    Failed {
        shard_id: usize,
        reason: String,
    },
}

pub fn run(config: BrokerConfig) -> Result<(), ServerError> {
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| ServerError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let _lock = lock_data_dir(&data_dir)?;
    let catalog = Catalog::load(&data_dir)?;
    // A cluster node runs the metadata Raft group on its own control-plane thread (issue 17,
    // docs/cluster.md), whose state machine hands committed catalog changes to shard 0; a
    // single node starts none of it and leaves its data dir as it was.
    let cluster = match &config.cluster {
        Some(peers) => {
            if config.shard_count as u64 > crate::constants::CLUSTER_SHARDS_PER_NODE_MAX {
                return Err(ServerError::Shard {
                    shard_id: config.shard_count - 1,
                    reason: format!(
                        "a cluster node runs at most {} shards",
                        crate::constants::CLUSTER_SHARDS_PER_NODE_MAX
                    ),
                });
            }
            let (committed_tx, committed_rx) = async_channel::unbounded();
            let plane = crate::cluster::ControlPlane::start(
                peers,
                &data_dir.join(RAFT_DIR),
                Box::new(CatalogMachine::new(committed_tx)),
            )?;
            tracing::info!(
                node_id = peers.node_id,
                cluster_addr = peers.own_addr(),
                "cluster mode: topics are replicated through the metadata Raft group"
            );
            Some((plane, committed_rx))
        }
        None => None,
    };
    let control_plane = cluster.as_ref().map(|(plane, _)| plane.clone());
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        data_dir = %data_dir.display(),
        listen = %config.listen,
        advertised_host = %config.advertised_host,
        admin_listen = %config.admin_listen,
        shards = config.shard_count,
        cpus = ?config.cpus,
        num_partitions = config.num_partitions,
        auto_create_topics = config.auto_create_topics,
        cluster_id = %config.cluster_id,
        log = ?config.log,
        topics = catalog.topics().count(),
        "starting sluice"
    );
    let metrics = Arc::new(crate::metrics::MetricsRegistry::new(config.shard_count));
    let panic_watch = PanicWatch::install(Arc::clone(&metrics), config.shard_count);
    // Not fatal: a second broker on the host (or a test) must still serve Kafka clients.
    let admin_tls = match &config.admin_tls {
        Some(settings) => Some(Arc::new(settings.load().map_err(ServerError::Tls)?)),
        None => None,
    };
    let admin = crate::admin_http::start(
        config.admin_listen,
        Arc::clone(&metrics),
        config.admin_token.clone(),
        admin_tls,
    )
    .inspect(|addr| tracing::info!(%addr, "admin endpoint: /metrics /health /ready"))
    .inspect_err(|e| tracing::error!(error = %e, "admin endpoint disabled"))
    .ok();

    // Loaded before any shard starts, so a bad certificate stops the broker at once.
    let tls = match &config.tls {
        Some(settings) => Some(Arc::new(
            crate::security::tls::TlsReloader::new(settings.clone()).map_err(ServerError::Tls)?,
        )),
        None => None,
    };
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .map_err(ServerError::Signals)?;

    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&shutdown)).map_err(ServerError::Signals)?;
    }

    let shard_count = config.shard_count;
    let (admin_tx, admin_rx) = async_channel::unbounded();
    let (shard_txs, shard_rxs): (Vec<_>, Vec<_>) =
        (0..shard_count).map(|_| async_channel::unbounded()).unzip();
    let (brokers_txs, brokers_rxs): (Vec<_>, Vec<_>) =
        (0..shard_count).map(|_| async_channel::bounded(1)).unzip();
    let (share_txs, share_rxs): (Vec<_>, Vec<_>) =
        (0..shard_count).map(|_| async_channel::unbounded()).unzip();
    let (txn_txs, txn_rxs): (Vec<_>, Vec<_>) =
        (0..shard_count).map(|_| async_channel::unbounded()).unzip();
    let (replica_stream_txs, replica_stream_rxs): (Vec<_>, Vec<_>) =
        (0..shard_count).map(|_| async_channel::unbounded()).unzip();
    if let Some(plane) = &control_plane {
        plane.set_node_handler(crate::shard::txn_remote::node_handler(
            txn_txs.clone(),
            share_txs.clone(),
        ));
        plane.set_replica_stream_handler(Arc::new(move |from, shard, purpose, fd| {
            // A shard index this node does not have: the socket closes with the message.
            if let Some(tx) = replica_stream_txs.get(shard) {
                let _ = tx.try_send((from, purpose, fd));
            }
        }));
    }
    let (startup_tx, startup_rx) = mpsc::channel::<Startup>();
    let (exit_tx, exit_rx) = mpsc::channel::<usize>();

    let shutdown_txs = shard_txs.clone();
    let config = Arc::new(config);
    let cpus = config.cpus.clone();
    let wiring = ShardWiring {
        config: Arc::clone(&config),
        catalog,
        admin_tx,
        admin_rx,
        shard_txs,
        shard_rxs,
        brokers_rxs,
        share_txs,
        share_rxs,
        txn_txs,
        txn_rxs,
        replica_stream_rxs,
        startup_tx,
        metrics: Arc::clone(&metrics),
        tls: tls.clone(),
        cluster,
    };
    let shard_main = move |shard_id: usize| {
        let wiring = wiring.clone();
        let exit_tx = exit_tx.clone();
        async move {
            PanicWatch::enter_shard(shard_id);
            shard_main(shard_id, wiring).await;
            // The main thread may already be gone; a failed send changes nothing.
            let _ = exit_tx.send(shard_id);
        }
    };
    let threads = crate::io::start_shards(
        shard_count,
        (!cpus.is_empty()).then_some(&cpus[..]),
        shard_main,
    )?;

    // Gather every shard's address, then tell all shards the full broker list.
    let mut addrs = vec![None; shard_count];
    let startup_deadline = Instant::now() + SHARD_STARTUP_TIMEOUT;
    while addrs.iter().any(Option::is_none) {
        if panic_watch.panicked() {
            return Err(ServerError::Panicked);
        }
        match startup_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Startup::Listening { shard_id, addrs: a }) => addrs[shard_id] = Some(a),
            Ok(Startup::Failed { shard_id, reason }) => {
                return Err(ServerError::Shard { shard_id, reason })
            }
            Err(_) if Instant::now() < startup_deadline => {}
            Err(_) => {
                return Err(ServerError::Shard {
                    shard_id: addrs.iter().position(Option::is_none).unwrap_or(0),
                    reason: format!("did not start within {SHARD_STARTUP_TIMEOUT:?}"),
                })
            }
        }
    }
    // Per listener, every shard as a broker: a client learns the brokers of the listener
    // it connected on (Kafka's listener-name semantics).
    let listener_brokers: Vec<Vec<BrokerAddress>> = config
        .listeners
        .iter()
        .enumerate()
        .map(|(index, listener)| {
            addrs
                .iter()
                .enumerate()
                .filter_map(|(shard_id, addrs)| {
                    let addr = addrs.as_ref()?.get(index)?;
                    Some(BrokerAddress {
                        node_id: crate::shard::broker_id(
                            config.cluster.as_ref().map(|peers| peers.node_id),
                            shard_id,
                        ),
                        host: listener.advertised_host.clone(),
                        port: addr.port(),
                    })
                })
                .collect()
        })
        .collect();
    for tx in &brokers_txs {
        // A shard that already exited is reported through exit_rx below.
        let _ = tx.send_blocking(listener_brokers.clone());
    }
    if let Some(plane) = &control_plane {
        // Every start announces this node's listeners (ports may be ephemeral); other nodes
        // list its shards as brokers once the record is committed.
        let node = NodeInfo {
            node_id: plane.node_id(),
            listeners: config
                .listeners
                .iter()
                .zip(&listener_brokers)
                .map(|(listener, brokers)| NodeListener {
                    host: listener.advertised_host.clone(),
                    ports: brokers.iter().map(|b| b.port).collect(),
                })
                .collect(),
        };
        plane.announce(MetaChange::RegisterNode(node).encode());
    }
    let brokers = listener_brokers.first().cloned().unwrap_or_default();
    let others: Vec<String> = config
        .listeners
        .iter()
        .zip(&listener_brokers)
        .map(|(listener, brokers)| {
            let ports: Vec<String> = brokers.iter().map(|b| b.port.to_string()).collect();
            format!(
                "{}://{}:{}",
                listener.protocol,
                listener.advertised_host,
                ports.join("+")
            )
        })
        .collect();
    let listing: Vec<String> = brokers
        .iter()
        .map(|b| format!("{}@{}:{}", b.node_id, b.host, b.port))
        .collect();
    // Ready before the line is out, so whoever waits for the line finds /ready up.
    metrics.set_ready(true);
    println!(
        "sluice ready bootstrap={}:{} brokers={} listeners={}{}",
        brokers
            .first()
            .map_or(config.advertised_host.as_str(), |b| b.host.as_str()),
        brokers.first().map_or(0, |b| b.port),
        listing.join(","),
        others.join(","),
        admin.map_or_else(String::new, |addr| format!(" admin={addr}"))
    );
    tracing::info!(brokers = %listing.join(","), "ready");

    // Run until a signal arrives, a thread panics, or a shard stops on its own (a failure).
    let mut exited = vec![false; shard_count];
    while !shutdown.load(Ordering::Relaxed) && !panic_watch.panicked() {
        if reload.swap(false, Ordering::Relaxed) {
            reload_tls(tls.as_deref());
        }
        if let Ok(shard_id) = exit_rx.recv_timeout(Duration::from_millis(100)) {
            exited[shard_id] = true;
            break;
        }
    }
    let failed_shard = exited.iter().position(|&e| e);
    tracing::info!("shutting down: flushing logs");
    metrics.set_ready(false);
    let mut closing = Vec::with_capacity(shutdown_txs.len());
    for (shard_id, tx) in shutdown_txs.iter().enumerate() {
        let (reply, done) = oneshot::channel();
        if tx.send_blocking(ShardMessage::Shutdown { reply }).is_ok() {
            closing.push((shard_id, done));
        }
    }
    // A shard that stopped or panicked never answers (its inbox outlives it in the other
    // shards' wiring), so stop waiting for it once it is known to be gone.
    while !closing.is_empty() {
        while let Ok(shard_id) = exit_rx.try_recv() {
            exited[shard_id] = true;
        }
        closing.retain_mut(|(shard_id, done)| {
            !exited[*shard_id]
                && !panic_watch.shard_panicked(*shard_id)
                && matches!(done.try_recv(), Ok(None))
        });
        if !closing.is_empty() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let joined = threads.join();
    if let Some(plane) = &control_plane {
        plane.shutdown();
    }
    if panic_watch.panicked() {
        return Err(ServerError::Panicked);
    }
    joined?;
    tracing::info!("stopped");
    match failed_shard {
        Some(shard_id) => Err(ServerError::Shard {
            shard_id,
            reason: "stopped unexpectedly".to_owned(),
        }),
        None => Ok(()),
    }
}

/// SIGHUP: reread the TLS certificate and key; new connections use them. A broken file is
/// logged and the old configuration stays.
fn reload_tls(tls: Option<&crate::security::tls::TlsReloader>) {
    match tls {
        None => tracing::info!("SIGHUP: no TLS listener; nothing to reload"),
        Some(tls) => match tls.reload() {
            Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: TLS reload failed; keeping the old certificate")
            }
        },
    }
}

/// Where a cluster node keeps its metadata Raft log, vote and snapshot, inside the data dir.
pub const RAFT_DIR: &str = "raft";

/// How long every shard together may take to open its partitions and listen.
const SHARD_STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// Everything the shards are connected by; each shard takes its own ends by index.
#[derive(Clone)]
struct ShardWiring {
    config: Arc<BrokerConfig>,
    catalog: Catalog,
    admin_tx: async_channel::Sender<crate::shard::control::AdminRequest>,
    admin_rx: async_channel::Receiver<crate::shard::control::AdminRequest>,
    shard_txs: Vec<async_channel::Sender<ShardMessage>>,
    shard_rxs: Vec<async_channel::Receiver<ShardMessage>>,
    brokers_rxs: Vec<async_channel::Receiver<Vec<Vec<BrokerAddress>>>>,
    share_txs: Vec<async_channel::Sender<crate::share::ShareMessage>>,
    share_rxs: Vec<async_channel::Receiver<crate::share::ShareMessage>>,
    txn_txs: Vec<async_channel::Sender<crate::txn::TxnMessage>>,
    txn_rxs: Vec<async_channel::Receiver<crate::txn::TxnMessage>>,
    /// Replication connections peers opened to each shard (see `shard::replica_net`).
    replica_stream_rxs: Vec<async_channel::Receiver<ReplicaStream>>,
    startup_tx: mpsc::Sender<Startup>,
    metrics: Arc<crate::metrics::MetricsRegistry>,
    tls: Option<Arc<crate::security::tls::TlsReloader>>,
    /// The control plane and, for shard 0, what its state machine committed.
    cluster: Option<(ControlPlane, async_channel::Receiver<Committed>)>,
}

/// One shard's life: bind, open its partitions, serve until told to shut down.
async fn shard_main(shard_id: usize, wiring: ShardWiring) {
    let ShardWiring {
        config,
        catalog,
        admin_tx,
        admin_rx,
        shard_txs,
        shard_rxs,
        brokers_rxs,
        share_txs,
        share_rxs,
        txn_txs,
        txn_rxs,
        replica_stream_rxs,
        startup_tx,
        metrics,
        tls,
        cluster,
    } = wiring;
    let inbox = shard_rxs[shard_id].clone();
    let brokers_rx = brokers_rxs[shard_id].clone();
    let fail = |reason: String| {
        tracing::error!(shard_id, %reason, "shard failed to start");
        let _ = startup_tx.send(Startup::Failed { shard_id, reason });
    };
    let mut listeners = Vec::with_capacity(config.listeners.len());
    let mut addrs = Vec::with_capacity(config.listeners.len());
    for (index, listener_config) in config.listeners.iter().enumerate() {
        let listen = shard_listen_addr(listener_config.listen, shard_id);
        let listener = match bind_with_retry(listen).await {
            Ok(listener) => listener,
            Err(e) => return fail(format!("cannot listen on {listen}: {e}")),
        };
        match listener.local_addr() {
            Ok(addr) => addrs.push(addr),
            Err(e) => return fail(format!("listener address: {e}")),
        }
        let tls = match (listener_config.protocol.uses_tls(), &tls) {
            (false, _) => None,
            (true, Some(tls)) => Some(Arc::clone(tls)),
            (true, None) => return fail(format!("{listen}: a TLS listener without a certificate")),
        };
        listeners.push(super::connection::Listener {
            index,
            protocol: listener_config.protocol,
            socket: listener,
            tls,
        });
    }
    if shard_id == 0 {
        let owner_cluster = cluster
            .clone()
            .map(|(plane, committed)| OwnerCluster::new(plane, committed));
        if let Err(reason) =
            start_catalog_owner(&config, catalog.clone(), shard_txs, admin_rx, owner_cluster)
        {
            return fail(reason);
        }
    }
    let shard = match open_shard(
        shard_id,
        Arc::clone(&config),
        catalog,
        admin_tx,
        share_txs,
        txn_txs,
        cluster.map(|(plane, _)| plane),
    )
    .await
    {
        Ok(shard) => shard,
        Err(reason) => return fail(reason),
    };
    if startup_tx
        .send(Startup::Listening {
            shard_id,
            addrs: addrs.clone(),
        })
        .is_err()
    {
        return;
    }
    let Ok(brokers) = brokers_rx.recv().await else {
        return;
    };
    let mut shard = shard;
    shard.brokers = brokers.first().cloned().unwrap_or_default();
    shard.listener_brokers = brokers;
    let shard = Rc::new(shard);
    tracing::info!(
        shard_id,
        ?addrs,
        partitions = shard.local_logs().len(),
        "shard serving"
    );
    let accept = super::connection::accept_all(&shard, listeners);
    let publisher = crate::io::spawn(crate::shard::metrics_publisher::run(
        Rc::clone(&shard),
        metrics,
    ));
    let tasks = ShardTasks::spawn(
        &shard,
        share_rxs[shard_id].clone(),
        txn_rxs[shard_id].clone(),
    );
    let replication = cluster_replication(&shard, replica_stream_rxs[shard_id].clone());
    let shutdown = control_loop(Rc::clone(&shard), inbox).await;
    drop(replication);
    // Stop accepting first; connections already open keep being served while the logs
    // flush, so acks=all produces in flight are answered once their fsync completes.
    drop(accept);
    drop(publisher);
    drop(tasks);
    close_shard(&shard).await;
    if let Some(reply) = shutdown {
        let _ = reply.send(()); // the main thread may have given up waiting
    }
}

/// A replication connection a peer opened to a shard: its node, what it carries, its socket.
type ReplicaStream = (
    crate::cluster::NodeId,
    crate::cluster::StreamPurpose,
    std::os::fd::OwnedFd,
);

/// In a cluster, the shard's replica clock and its reader of peers' replication streams
/// (nothing on a single node). Dropping them stops both.
fn cluster_replication(
    shard: &Rc<Shard>,
    streams: async_channel::Receiver<ReplicaStream>,
) -> Vec<crate::io::Task<()>> {
    if shard.config.cluster.is_none() {
        return Vec::new();
    }
    vec![
        crate::io::spawn(crate::shard::replica_host::tick_loop(Rc::clone(shard))),
        crate::io::spawn(crate::shard::replica_net::accept_streams(
            Rc::clone(shard),
            streams,
        )),
    ]
}

/// Shard 0's catalog authority, spawned on the current executor.
pub(super) fn start_catalog_owner(
    config: &BrokerConfig,
    catalog: Catalog,
    shard_txs: Vec<async_channel::Sender<ShardMessage>>,
    admin_rx: async_channel::Receiver<crate::shard::control::AdminRequest>,
    cluster: Option<OwnerCluster>,
) -> Result<(), String> {
    let producer_ids = ProducerIdAllocator::open(&config.data_dir).map_err(|e| e.to_string())?;
    let owner = CatalogOwner::new(
        catalog,
        producer_ids,
        config.data_dir.clone(),
        config.log.clone(),
        shard_txs,
        cluster,
    );
    crate::io::spawn(owner.run(admin_rx)).detach();
    Ok(())
}

/// A shard with its partitions, group offsets, share-group and transaction state loaded, not yet serving
/// (its broker list is still empty).
pub(super) async fn open_shard(
    shard_id: usize,
    config: Arc<BrokerConfig>,
    catalog: Catalog,
    admin_tx: async_channel::Sender<crate::shard::control::AdminRequest>,
    share_txs: Vec<async_channel::Sender<crate::share::ShareMessage>>,
    txn_txs: Vec<async_channel::Sender<crate::txn::TxnMessage>>,
    plane: Option<ControlPlane>,
) -> Result<Shard, String> {
    let mut shard = Shard::new(shard_id, config, Vec::new(), catalog, admin_tx);
    if let Some(plane) = plane {
        shard.join_cluster(plane);
    }
    shard
        .open_owned_partitions()
        .await
        .map_err(|e| e.to_string())?;
    shard
        .groups()
        .load()
        .await
        .map_err(|e| format!("loading group offsets: {e}"))?;
    shard.share().connect(share_txs);
    shard
        .share()
        .load(|topic, partition| shard.stored_share_partition(topic, partition))
        .await
        .map_err(|e| format!("loading share-group state: {e}"))?;
    shard.load_group_configs();
    shard.txn().connect(txn_txs);
    shard
        .txn()
        .load()
        .await
        .map_err(|e| format!("loading transaction state: {e}"))?;
    Ok(shard)
}

/// A serving shard's background work: retention, the log cleaner, group, share and
/// transaction timers, the share and transaction inboxes. Dropping it cancels them all.
pub(super) struct ShardTasks {
    _tasks: Vec<crate::io::Task<()>>,
}

impl ShardTasks {
    pub(super) fn spawn(
        shard: &Rc<Shard>,
        share_rx: async_channel::Receiver<crate::share::ShareMessage>,
        txn_rx: async_channel::Receiver<crate::txn::TxnMessage>,
    ) -> ShardTasks {
        let retention = crate::io::spawn_in(
            crate::io::TaskClass::Background,
            super::connection::retention_loop(Rc::clone(shard)),
        );
        let group_timers = crate::io::spawn(crate::group::group_timers::run(
            Rc::clone(shard.groups()),
            Rc::clone(shard) as Rc<dyn crate::group::TopicCatalog>,
        ));
        let share_inbox =
            crate::io::spawn(crate::shard::share_inbox::run(Rc::clone(shard), share_rx));
        let share_timers = crate::io::spawn(crate::shard::share_timers::run(Rc::clone(shard)));
        let log_cleaner = crate::io::spawn_background(
            "log-cleaner",
            crate::constants::LOG_CLEANER_SHARES,
            crate::shard::log_cleaner_task::run(Rc::clone(shard)),
        );
        let txn_inbox = crate::io::spawn(crate::shard::txn_inbox::run(Rc::clone(shard), txn_rx));
        let txn_timers = crate::io::spawn(crate::shard::txn_timers::run(Rc::clone(shard)));
        let frame_pool_release = crate::io::spawn(frame_pool_release_loop(shard.id));
        ShardTasks {
            _tasks: vec![
                retention,
                log_cleaner,
                group_timers,
                share_inbox,
                share_timers,
                txn_inbox,
                txn_timers,
                frame_pool_release,
            ],
        }
    }
}

/// How often a shard checks whether its frame pool has been idle (and frees it if so).
const FRAME_POOL_IDLE_CHECK: Duration = Duration::from_secs(10);

/// Background task: gives an idle shard's pooled request buffers back to the allocator.
async fn frame_pool_release_loop(shard_id: usize) {
    loop {
        crate::io::sleep(FRAME_POOL_IDLE_CHECK).await;
        let freed_bytes = crate::protocol::frame_pool::release_idle();
        if freed_bytes > 0 {
            tracing::debug!(shard_id, freed_bytes, "released idle frame pool");
        }
    }
}

/// Flushes and closes what a shard owns: share-group state, partition logs, group offsets,
/// transaction state.
pub(super) async fn close_shard(shard: &Shard) {
    shard.share().close().await;
    shard.close_all().await;
    shard.groups().close().await;
    shard.txn().close().await;
}

/// How long a restarting broker keeps trying a port that is still in use.
const BIND_RETRY_FOR: Duration = Duration::from_secs(5);

/// Binds, retrying EADDRINUSE for a few seconds: after a kill -9 the kernel tears down the
/// dead process's io_uring instances asynchronously, and until then its pending accepts keep
/// the listening sockets open, so an immediate restart on the same ports would fail.
async fn bind_with_retry(listen: SocketAddr) -> std::io::Result<crate::io::net::TcpListener> {
    let started = std::time::Instant::now();
    loop {
        match crate::io::net::bind_exclusive(listen) {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && started.elapsed() < BIND_RETRY_FOR =>
            {
                crate::io::sleep(Duration::from_millis(50)).await;
            }
            result => return result,
        }
    }
}

/// Shard `i` listens on the configured port plus `i`, or on an ephemeral port when it is 0.
fn shard_listen_addr(base: SocketAddr, shard_id: usize) -> SocketAddr {
    let mut addr = base;
    if base.port() != 0 {
        let offset = u16::try_from(shard_id).unwrap_or(u16::MAX);
        addr.set_port(base.port().saturating_add(offset));
    }
    addr
}

/// An advisory lock so that two brokers never share one data dir.
pub(crate) fn lock_data_dir(data_dir: &std::path::Path) -> Result<std::fs::File, ServerError> {
    let path = data_dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| ServerError::DataDir {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ServerError::DataDirLocked {
            path: data_dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(ServerError::DataDir { path, source }),
    }
}
