//! Process lifecycle: data dir lock, catalog load, shard start-up, the ready line,
//! signals, and an orderly shutdown that leaves every log flushed and marked clean.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use futures_channel::oneshot;

use crate::config::BrokerConfig;
use crate::shard::catalog::{Catalog, CatalogError};
use crate::shard::catalog_owner::CatalogOwner;
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
    #[error("shard {shard_id}: {reason}")]
    Shard { shard_id: usize, reason: String },
    #[error(transparent)]
    Runtime(#[from] crate::io::runtime::RuntimeError),
    #[error("signal handler: {0}")]
    Signals(std::io::Error),
}

/// What a shard reports to the main thread while starting.
enum Startup {
    Listening { shard_id: usize, addr: SocketAddr },
    Failed { shard_id: usize, reason: String },
}

pub fn run(config: BrokerConfig) -> Result<(), ServerError> {
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| ServerError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let _lock = lock_data_dir(&data_dir)?;
    let catalog = Catalog::load(&data_dir)?;
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
    // Not fatal: a second broker on the host (or a test) must still serve Kafka clients.
    let admin = crate::admin_http::start(config.admin_listen, Arc::clone(&metrics))
        .inspect(|addr| tracing::info!(%addr, "admin endpoint: /metrics /health /ready"))
        .inspect_err(|e| tracing::error!(error = %e, "admin endpoint disabled"))
        .ok();

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
        startup_tx,
        metrics: Arc::clone(&metrics),
    };
    let shard_main = move |shard_id: usize| {
        let wiring = wiring.clone();
        let exit_tx = exit_tx.clone();
        async move {
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
    while addrs.iter().any(Option::is_none) {
        match startup_rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Startup::Listening { shard_id, addr }) => addrs[shard_id] = Some(addr),
            Ok(Startup::Failed { shard_id, reason }) => {
                return Err(ServerError::Shard { shard_id, reason })
            }
            Err(_) => {
                return Err(ServerError::Shard {
                    shard_id: addrs.iter().position(Option::is_none).unwrap_or(0),
                    reason: "did not start within 120 s".to_owned(),
                })
            }
        }
    }
    let brokers: Vec<BrokerAddress> = addrs
        .iter()
        .enumerate()
        .filter_map(|(shard_id, addr)| {
            addr.map(|addr| BrokerAddress {
                node_id: i32::try_from(shard_id).unwrap_or(i32::MAX),
                host: config.advertised_host.clone(),
                port: addr.port(),
            })
        })
        .collect();
    for tx in &brokers_txs {
        // A shard that already exited is reported through exit_rx below.
        let _ = tx.send_blocking(brokers.clone());
    }
    let listing: Vec<String> = brokers
        .iter()
        .map(|b| format!("{}@{}:{}", b.node_id, b.host, b.port))
        .collect();
    // Ready before the line is out, so whoever waits for the line finds /ready up.
    metrics.set_ready(true);
    println!(
        "sluice ready bootstrap={}:{} brokers={}{}",
        config.advertised_host,
        brokers.first().map_or(0, |b| b.port),
        listing.join(","),
        admin.map_or_else(String::new, |addr| format!(" admin={addr}"))
    );
    tracing::info!(brokers = %listing.join(","), "ready");

    // Run until a signal arrives or a shard stops on its own (which is a failure).
    let mut failed_shard = None;
    while !shutdown.load(Ordering::Relaxed) {
        if let Ok(shard_id) = exit_rx.recv_timeout(Duration::from_millis(100)) {
            failed_shard = Some(shard_id);
            break;
        }
    }
    tracing::info!("shutting down: flushing logs");
    metrics.set_ready(false);
    let mut closed = Vec::with_capacity(shutdown_txs.len());
    for tx in &shutdown_txs {
        let (reply, done) = oneshot::channel();
        if tx.send_blocking(ShardMessage::Shutdown { reply }).is_ok() {
            closed.push(done);
        }
    }
    for done in closed {
        // A shard that died drops its reply; join() below reports it.
        let _ = futures_lite::future::block_on(done);
    }
    threads.join()?;
    tracing::info!("stopped");
    match failed_shard {
        Some(shard_id) => Err(ServerError::Shard {
            shard_id,
            reason: "stopped unexpectedly".to_owned(),
        }),
        None => Ok(()),
    }
}

/// Everything the shards are connected by; each shard takes its own ends by index.
#[derive(Clone)]
struct ShardWiring {
    config: Arc<BrokerConfig>,
    catalog: Catalog,
    admin_tx: async_channel::Sender<crate::shard::control::AdminRequest>,
    admin_rx: async_channel::Receiver<crate::shard::control::AdminRequest>,
    shard_txs: Vec<async_channel::Sender<ShardMessage>>,
    shard_rxs: Vec<async_channel::Receiver<ShardMessage>>,
    brokers_rxs: Vec<async_channel::Receiver<Vec<BrokerAddress>>>,
    share_txs: Vec<async_channel::Sender<crate::share::ShareMessage>>,
    share_rxs: Vec<async_channel::Receiver<crate::share::ShareMessage>>,
    startup_tx: mpsc::Sender<Startup>,
    metrics: Arc<crate::metrics::MetricsRegistry>,
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
        startup_tx,
        metrics,
    } = wiring;
    let inbox = shard_rxs[shard_id].clone();
    let brokers_rx = brokers_rxs[shard_id].clone();
    let fail = |reason: String| {
        tracing::error!(shard_id, %reason, "shard failed to start");
        let _ = startup_tx.send(Startup::Failed { shard_id, reason });
    };
    let listen = shard_listen_addr(config.listen, shard_id);
    let listener = match bind_with_retry(listen).await {
        Ok(listener) => listener,
        Err(e) => return fail(format!("cannot listen on {listen}: {e}")),
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => return fail(format!("listener address: {e}")),
    };
    if shard_id == 0 {
        let producer_ids = match ProducerIdAllocator::open(&config.data_dir) {
            Ok(allocator) => allocator,
            Err(e) => return fail(e.to_string()),
        };
        let owner = CatalogOwner::new(
            catalog.clone(),
            producer_ids,
            config.data_dir.clone(),
            config.log.clone(),
            shard_txs,
        );
        crate::io::spawn(owner.run(admin_rx)).detach();
    }
    let startup_brokers = Vec::new();
    let shard = Rc::new(Shard::new(
        shard_id,
        Arc::clone(&config),
        startup_brokers,
        catalog,
        admin_tx,
    ));
    if let Err(e) = shard.open_owned_partitions().await {
        return fail(e.to_string());
    }
    if let Err(e) = shard.groups().load().await {
        return fail(format!("loading group offsets: {e}"));
    }
    shard.share().connect(share_txs);
    if let Err(e) = shard.share().load(&shard).await {
        return fail(format!("loading share-group state: {e}"));
    }
    if startup_tx
        .send(Startup::Listening { shard_id, addr })
        .is_err()
    {
        return;
    }
    let Ok(brokers) = brokers_rx.recv().await else {
        return;
    };
    let shard = match Rc::try_unwrap(shard) {
        Ok(mut shard) => {
            shard.brokers = brokers;
            Rc::new(shard)
        }
        Err(_) => return fail("shard state still shared at start-up".to_owned()),
    };
    tracing::info!(shard_id, %addr, partitions = shard.local_logs().len(), "shard serving");
    let accept = crate::io::spawn(super::connection::accept_loop(Rc::clone(&shard), listener));
    let retention = crate::io::spawn(super::connection::retention_loop(Rc::clone(&shard)));
    let publisher = crate::io::spawn(crate::metrics::metrics_publisher::run(
        Rc::clone(&shard),
        metrics,
    ));
    let group_timers = {
        let catalog = Rc::clone(&shard);
        let partition_count = move |topic: &str| catalog.topic(topic).map(|m| m.partition_count);
        crate::io::spawn(crate::group::group_timers::run(
            Rc::clone(shard.groups()),
            Rc::new(partition_count),
        ))
    };
    let share_inbox = crate::io::spawn(crate::share::share_inbox::run(
        Rc::clone(&shard),
        share_rxs[shard_id].clone(),
    ));
    let share_timers = crate::io::spawn(crate::share::share_timers::run(Rc::clone(&shard)));
    let shutdown = control_loop(Rc::clone(&shard), inbox).await;
    // Stop accepting first; connections already open keep being served while the logs
    // flush, so acks=all produces in flight are answered once their fsync completes.
    drop(accept);
    drop(retention);
    drop(publisher);
    drop(group_timers);
    drop(share_inbox);
    drop(share_timers);
    shard.share().close().await;
    shard.close_all().await;
    shard.groups().close().await;
    if let Some(reply) = shutdown {
        let _ = reply.send(()); // the main thread may have given up waiting
    }
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
fn lock_data_dir(data_dir: &std::path::Path) -> Result<std::fs::File, ServerError> {
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
