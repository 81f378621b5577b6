//! `sluice bench`: a Kafka-protocol load generator written for speed, with workloads shaped
//! like the OpenMessaging Benchmark's.
//!
//! - `batch_builder` hand-builds RecordBatch v2 bytes (CRC32C, optional compression) straight
//!   into per-partition buffers; the consumer side reads the send stamps back.
//! - `wire` is a pipelined connection on the shard executor (`crate::io`).
//! - `producer`: open-loop schedule (coordinated-omission free), sticky or keyed
//!   partitioning, one connection per broker id with several requests in flight.
//! - `transaction_session`: `--transactions` mode, the producer's transaction coordinator
//!   calls (AddPartitionsToTxn, EndTxn); batches then carry producer id, epoch and sequence.
//! - `consumer`: one fetch loop per (consumer, broker); end-to-end latency per message.
//! - `stats` / `report`: per-thread HDR histograms shipped to the main thread each second;
//!   a progress line, a final table and JSON (`perf/plot.py` draws the PNGs).
//!
//! Setup (topic creation, metadata, start offsets) uses the blocking `crate::client`; the load
//! runs on `--threads` glommio executors started with `crate::io::start_shards`.

mod batch_builder;
mod consumer;
mod error;
mod producer;
mod report;
mod stats;
mod transaction_session;
mod wire;
mod workload;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::client::admin::NewTopic;
use crate::client::txn_admin;
use crate::client::{Admin, Cluster, ConnectionConfig, Consumer, OffsetSpec};
use crate::protocol::ResponseError;
use crate::security::tls::TlsClientSettings;
use crate::security::SecurityProtocol;

pub use batch_builder::Compression;
pub use error::BenchError;
pub use workload::KeyDistribution;

use consumer::FetchAssignment;
use report::{Aggregate, IntervalPoint, LatencySummary, Report, Throughput};
use stats::{Recorder, Snapshot};
use workload::{Control, Workload};

const INTERVAL: Duration = Duration::from_secs(1);
/// The main thread reads an interval's snapshots this long after the threads took them.
const COLLECT_DELAY: Duration = Duration::from_millis(200);
/// After the producers finish, consumers get this long to read everything acknowledged.
const CONSUME_TAIL_TIMEOUT: Duration = Duration::from_secs(10);
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(300);
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// Kafka's idempotent producer keeps at most this many requests in flight per connection.
const TRANSACTIONAL_IN_FLIGHT_MAX: usize = 5;

/// Acknowledgement level, as in Kafka's `acks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acks(pub i16);

impl std::str::FromStr for Acks {
    type Err = String;
    fn from_str(s: &str) -> Result<Acks, String> {
        match s {
            "0" => Ok(Acks(0)),
            "1" => Ok(Acks(1)),
            "all" | "-1" => Ok(Acks(-1)),
            _ => Err(format!("acks must be 0, 1 or all, not {s:?}")),
        }
    }
}

/// The protocols the bench speaks: SASL is not implemented on its connections.
fn parse_bench_protocol(text: &str) -> Result<SecurityProtocol, String> {
    match SecurityProtocol::parse(text) {
        Some(p @ (SecurityProtocol::Plaintext | SecurityProtocol::Ssl)) => Ok(p),
        _ => Err(format!("the bench speaks PLAINTEXT or SSL, not {text:?}")),
    }
}

/// The TLS client configuration `--security-protocol SSL` asks for; `None` for PLAINTEXT.
fn tls_client_config(args: &BenchArgs) -> Result<Option<Arc<rustls::ClientConfig>>, BenchError> {
    if args.security_protocol == SecurityProtocol::Plaintext {
        if args.tls_ca.is_some() || args.tls_cert.is_some() {
            return Err(BenchError::Usage(
                "--tls-ca, --tls-cert and --tls-key need --security-protocol SSL".to_owned(),
            ));
        }
        return Ok(None);
    }
    let Some(ca) = args.tls_ca.clone() else {
        return Err(BenchError::Usage(
            "--security-protocol SSL needs --tls-ca".to_owned(),
        ));
    };
    let settings = TlsClientSettings {
        ca,
        cert_and_key: args.tls_cert.clone().zip(args.tls_key.clone()),
    };
    Ok(Some(Arc::new(settings.load()?)))
}

/// Load generator arguments (OpenMessaging Benchmark workload knobs).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Bootstrap broker(s), host:port[,host:port].
    #[arg(
        short = 'b',
        long,
        default_value = "127.0.0.1:9092",
        env = "SLUICE_BOOTSTRAP"
    )]
    pub bootstrap: String,
    /// PLAINTEXT or SSL (TLS on every connection, checked against --tls-ca).
    #[arg(long, default_value = "PLAINTEXT", value_parser = parse_bench_protocol)]
    pub security_protocol: SecurityProtocol,
    /// PEM CA certificates that sign the brokers' certificates (SSL).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate chain, for listeners that ask for one (SSL; with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Topic; default: a fresh `sluice-bench-<pid>-<time>`.
    #[arg(long)]
    pub topic: Option<String>,
    /// Partitions of the topic (when the bench creates it).
    #[arg(long, default_value_t = 16)]
    pub partitions: i32,
    /// Message value size in bytes (at least 8: the send stamp).
    #[arg(long, default_value_t = 100)]
    pub message_size: usize,
    /// Producer tasks in total (each with one connection per broker).
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Consumer tasks in total (partitions are split among them); 0 = produce only.
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Client threads (glommio executors) the producers and consumers are spread over.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// CPUs to pin client threads to, e.g. `1` or `0,1`; default: unpinned.
    #[arg(long, value_delimiter = ',')]
    pub cpus: Option<Vec<usize>>,
    /// Per-partition batch size in bytes (Kafka's batch.size).
    #[arg(long, default_value_t = 128 << 10)]
    pub batch_size: usize,
    /// Longest a batch waits to fill, in milliseconds (Kafka's linger.ms); fractions allowed.
    #[arg(long, default_value_t = 1.0)]
    pub linger_ms: f64,
    /// 0, 1 or all.
    #[arg(long, default_value = "1")]
    pub acks: Acks,
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
    #[arg(long, value_enum, default_value_t = KeyDistribution::None)]
    pub keys: KeyDistribution,
    /// Distinct keys for keyed distributions.
    #[arg(long, default_value_t = 1024)]
    pub key_count: usize,
    /// Target rate in messages/s over all producers (open loop); 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 2.0)]
    pub warmup_secs: f64,
    #[arg(long, default_value_t = 10.0)]
    pub duration_secs: f64,
    /// Produce requests in flight per connection.
    #[arg(long, default_value_t = 8)]
    pub max_in_flight: usize,
    /// Unacknowledged bytes per producer before generation pauses (Kafka's buffer.memory).
    #[arg(long, default_value_t = 32 << 20)]
    pub buffer_memory: u64,
    /// Largest produce request, in bytes of record batches.
    #[arg(long, default_value_t = 1 << 20)]
    pub request_max_bytes: usize,
    #[arg(long, default_value_t = 32 << 20)]
    pub fetch_max_bytes: i32,
    #[arg(long, default_value_t = 4 << 20)]
    pub partition_fetch_max_bytes: i32,
    #[arg(long, default_value_t = 100)]
    pub fetch_wait_ms: i32,
    /// Consumers start only when producing ends, reading the whole backlog (catch-up rate).
    #[arg(long)]
    pub catch_up: bool,
    /// Transactional producers (transactional id `sluice-bench-<pid>-<producer>`), each
    /// committing every `--transaction-records` messages. Needs `--acks all` and
    /// `--max-in-flight` at most 5, as Kafka's idempotent producer.
    #[arg(long)]
    pub transactions: bool,
    /// Messages per transaction in `--transactions` mode.
    #[arg(long, default_value_t = 1000)]
    pub transaction_records: u64,
    /// Transaction timeout in `--transactions` mode, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    pub transaction_timeout_ms: i32,
    /// Create the topic if it does not exist.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub create_topic: bool,
    /// Write the report as JSON to this file (plot it with perf/plot.py).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// A label stored in the JSON (e.g. the run's name in a comparison).
    #[arg(long)]
    pub label: Option<String>,
    /// No per-second progress lines.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[arg(long, default_value_t = 9, hide = true)]
    pub produce_version: i16,
    #[arg(long, default_value_t = 12, hide = true)]
    pub fetch_version: i16,
}

/// Entry point of `sluice bench`.
pub fn main(args: BenchArgs) -> ExitCode {
    match run(&args) {
        Ok(report) => {
            if report.errors > 0 {
                // Said on stderr too, so a `--quiet` run that fails says why.
                eprintln!(
                    "error: {} errors during the run (last: {})",
                    report.errors,
                    report.last_error.as_deref().unwrap_or("?")
                );
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What one client thread runs.
#[derive(Debug, Clone, Default)]
struct ThreadPlan {
    producers: Vec<usize>,
    fetchers: Vec<FetchAssignment>,
}

/// Runs the benchmark, printing progress and the table; returns the report.
pub fn run(args: &BenchArgs) -> Result<Report, BenchError> {
    validate(args)?;
    let topic = args.topic.clone().unwrap_or_else(|| {
        format!(
            "sluice-bench-{}-{}",
            std::process::id(),
            crate::io::clock::now_ms() % 1_000_000_000
        )
    });
    let (workload, plans) = setup(args, &topic)?;
    let workload = Arc::new(workload);
    let plans = Arc::new(plans);
    let control = Arc::new(Control::new(args.producers));
    let threads = plans.len();
    let (tx, rx) = mpsc::channel::<Snapshot>();
    let shard_threads = {
        let workload = Arc::clone(&workload);
        let control = Arc::clone(&control);
        let plans = Arc::clone(&plans);
        crate::io::start_shards(threads, args.cpus.as_deref(), move |thread_id| {
            client_thread(
                thread_id,
                plans[thread_id].clone(),
                Arc::clone(&workload),
                Arc::clone(&control),
                tx.clone(),
            )
        })?
    };
    let report = collect(args, &topic, &workload, &control, threads, &rx);
    control.stop_producing.store(true, Ordering::SeqCst);
    control.stop_consuming.store(true, Ordering::SeqCst);
    shard_threads.join()?;
    let report = report?;
    println!("{}", report.table());
    if let Some(path) = &args.json {
        let io = |source| BenchError::Output {
            path: path.display().to_string(),
            source,
        };
        let json = serde_json::to_vec_pretty(&report).map_err(|e| io(std::io::Error::other(e)))?;
        std::fs::write(path, json).map_err(io)?;
    }
    Ok(report)
}

fn validate(args: &BenchArgs) -> Result<(), BenchError> {
    let usage = |m: &str| Err(BenchError::Usage(m.to_owned()));
    if args.message_size < batch_builder::STAMP_BYTES {
        return usage("--message-size must be at least 8 (the send stamp)");
    }
    if args.producers == 0 && args.consumers == 0 {
        return usage("nothing to do: no producers and no consumers");
    }
    if args.threads == 0 || args.partitions <= 0 || args.max_in_flight == 0 {
        return usage("--threads, --partitions and --max-in-flight must be positive");
    }
    if args.rate < 0.0
        || args.linger_ms < 0.0
        || args.duration_secs <= 0.0
        || args.warmup_secs < 0.0
    {
        return usage("rates and times must not be negative, and the duration must be positive");
    }
    if args.catch_up && args.consumers == 0 {
        return usage("--catch-up needs consumers");
    }
    if args.transactions {
        if args.acks.0 != -1 || args.max_in_flight > TRANSACTIONAL_IN_FLIGHT_MAX {
            return usage("--transactions needs --acks all and --max-in-flight at most 5");
        }
        if args.transaction_records == 0 || args.transaction_timeout_ms <= 0 {
            return usage("--transaction-records and --transaction-timeout-ms must be positive");
        }
    }
    Ok(())
}

/// Creates the topic if needed, learns the broker layout and the consumers' start offsets.
fn setup(args: &BenchArgs, topic: &str) -> Result<(Workload, Vec<ThreadPlan>), BenchError> {
    let tls = tls_client_config(args)?;
    let config = ConnectionConfig {
        client_id: "sluice-bench".to_owned(),
        tls: tls.clone(),
        ..ConnectionConfig::default()
    };
    let mut admin = Admin::new(Cluster::connect(&args.bootstrap, config.clone())?);
    if args.create_topic {
        let new_topic = NewTopic {
            name: topic.to_owned(),
            partition_count: Some(args.partitions),
            replication_factor: Some(1),
            configs: Vec::new(),
        };
        match admin.create_topic(&new_topic) {
            Ok(()) => {}
            Err(e) if e.response_error() == Some(ResponseError::TopicAlreadyExists) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let started = std::time::Instant::now();
    let metadata = loop {
        admin.cluster().invalidate_topic(topic);
        let metadata = admin.cluster().topic(topic);
        if let Ok(m) = &metadata {
            if !m.partitions.is_empty() && m.partitions.iter().all(|p| p.leader_id >= 0) {
                break m.clone();
            }
        }
        if started.elapsed() > METADATA_TIMEOUT {
            return match metadata {
                Err(e) => Err(e.into()),
                Ok(m) => Err(BenchError::NoLeader {
                    topic: m.name,
                    partition: m
                        .partitions
                        .iter()
                        .find(|p| p.leader_id < 0)
                        .map_or(0, |p| p.partition),
                }),
            };
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut node_ids: Vec<i32> = metadata.partitions.iter().map(|p| p.leader_id).collect();
    node_ids.sort_unstable();
    node_ids.dedup();
    let mut broker_addrs = Vec::with_capacity(node_ids.len());
    for node_id in &node_ids {
        let broker = admin
            .cluster()
            .brokers()
            .find(|b| b.node_id == *node_id)
            .ok_or_else(|| BenchError::NoLeader {
                topic: topic.to_owned(),
                partition: -1,
            })?;
        broker_addrs.push(broker.addr());
    }
    let partition_count = metadata.partitions.len();
    let mut partition_broker = vec![0usize; partition_count];
    for p in &metadata.partitions {
        let index = usize::try_from(p.partition)
            .ok()
            .filter(|&i| i < partition_count)
            .ok_or_else(|| BenchError::Usage(format!("unexpected partition {}", p.partition)))?;
        partition_broker[index] = node_ids.binary_search(&p.leader_id).unwrap_or(0);
    }

    // Consumers start at the end of each partition (or, in catch-up mode, there too: the
    // backlog is what this run produces).
    let mut start_offsets = vec![0i64; partition_count];
    if args.consumers > 0 {
        let cluster = Cluster::connect(&args.bootstrap, config.clone())?;
        let mut offsets = Consumer::new(cluster, topic, Default::default());
        for (partition, slot) in start_offsets.iter_mut().enumerate() {
            *slot = offsets.list_offset(partition as i32, OffsetSpec::Latest)?;
        }
    }

    // Each transactional producer gets its id and epoch here, with the blocking client, so the
    // load threads start with their identity (and fence any leftover of an earlier run).
    let mut transactional = Vec::new();
    if args.transactions {
        let mut cluster = Cluster::connect(&args.bootstrap, config)?;
        for producer_id in 0..args.producers {
            let transactional_id = format!("sluice-bench-{}-{producer_id}", std::process::id());
            transactional.push(txn_admin::init_transactions(
                &mut cluster,
                &transactional_id,
                args.transaction_timeout_ms,
            )?);
        }
    }

    let threads = args.threads;
    let mut plans = vec![ThreadPlan::default(); threads];
    for producer_id in 0..args.producers {
        plans[producer_id % threads].producers.push(producer_id);
    }
    for consumer_id in 0..args.consumers {
        let mut by_broker: BTreeMap<usize, Vec<(i32, i64)>> = BTreeMap::new();
        for partition in (consumer_id..partition_count).step_by(args.consumers) {
            by_broker
                .entry(partition_broker[partition])
                .or_default()
                .push((partition as i32, start_offsets[partition]));
        }
        for (broker, partitions) in by_broker {
            plans[consumer_id % threads].fetchers.push(FetchAssignment {
                consumer_id,
                broker,
                partitions,
            });
        }
    }
    let rate = (args.rate > 0.0 && args.producers > 0).then(|| args.rate / args.producers as f64);
    let workload = Workload {
        topic: topic.to_owned(),
        broker_addrs,
        partition_broker,
        message_bytes: args.message_size,
        batch_bytes: args.batch_size,
        linger_ns: (args.linger_ms * 1e6) as u64,
        acks: args.acks.0,
        compression: args.compression,
        keys: args.keys,
        key_count: args.key_count.max(1),
        producer_rate: rate,
        in_flight_max: args.max_in_flight,
        buffer_bytes: args.buffer_memory,
        request_bytes_max: args.request_max_bytes,
        fetch_bytes_max: args.fetch_max_bytes,
        partition_fetch_bytes_max: args.partition_fetch_max_bytes,
        fetch_wait_ms: args.fetch_wait_ms,
        catch_up: args.catch_up,
        transactional,
        transaction_records: args.transaction_records,
        produce_version: args.produce_version,
        fetch_version: args.fetch_version,
        tls,
    };
    Ok((workload, plans))
}

/// The body of one client thread: its producers and fetch loops, plus a task that ships a
/// snapshot of its measurements every interval.
async fn client_thread(
    thread_id: usize,
    plan: ThreadPlan,
    workload: Arc<Workload>,
    control: Arc<Control>,
    tx: mpsc::Sender<Snapshot>,
) {
    let recorder = Rc::new(RefCell::new(Recorder::new()));
    let reporter = {
        let recorder = Rc::clone(&recorder);
        let control = Arc::clone(&control);
        let tx = tx.clone();
        crate::io::spawn(async move {
            let interval_ns = INTERVAL.as_nanos() as u64;
            let mut tick = 1u64;
            loop {
                let due = tick * interval_ns;
                let now = control.clock.now_ns();
                if due > now {
                    crate::io::sleep(Duration::from_nanos(due - now)).await;
                }
                if tx
                    .send(recorder.borrow_mut().take(thread_id, false))
                    .is_err()
                {
                    return;
                }
                tick += 1;
            }
        })
    };
    let mut tasks = Vec::new();
    for producer_id in plan.producers {
        tasks.push(crate::io::spawn(producer::run(
            producer_id,
            Arc::clone(&workload),
            Arc::clone(&control),
            Rc::clone(&recorder),
        )));
    }
    for assignment in plan.fetchers {
        tasks.push(crate::io::spawn(consumer::run(
            assignment,
            Arc::clone(&workload),
            Arc::clone(&control),
            Rc::clone(&recorder),
        )));
    }
    for task in tasks {
        task.await;
    }
    drop(reporter);
    let _ = tx.send(recorder.borrow_mut().take(thread_id, true)); // the main thread may be gone
}

/// The main thread's loop: sums each interval's snapshots, prints the progress line, flips
/// the run's phases, and builds the report.
fn collect(
    args: &BenchArgs,
    topic: &str,
    workload: &Workload,
    control: &Control,
    threads: usize,
    rx: &mpsc::Receiver<Snapshot>,
) -> Result<Report, BenchError> {
    let interval_s = INTERVAL.as_secs_f64();
    let warmup_end = args.warmup_secs;
    let produce_end = args.warmup_secs + args.duration_secs;
    let mut measured = Aggregate::new();
    let mut measured_seconds = 0.0;
    let mut all = stats::Counters::default();
    let mut series = Vec::new();
    let mut finished = 0usize;
    let mut last_error = None;
    let mut producers_done_at: Option<f64> = None;
    let mut catch_up_from: Option<(f64, u64)> = None;
    let mut consumed_at_end = 0u64;
    let mut tick = 1u64;
    if !args.quiet {
        println!(
            "sluice bench: topic {topic}, {} partitions on {} brokers, {} B messages, {} producers, {} consumers, acks={}, {}",
            workload.partition_broker.len(),
            workload.broker_addrs.len(),
            args.message_size,
            args.producers,
            args.consumers,
            if args.acks.0 == -1 { "all".to_owned() } else { args.acks.0.to_string() },
            if args.rate > 0.0 { format!("rate {} msg/s", report::human(args.rate)) } else { "max rate".to_owned() },
        );
    }
    while finished < threads {
        let mut interval = Aggregate::new();
        let due = INTERVAL * tick as u32 + COLLECT_DELAY;
        loop {
            let now = Duration::from_nanos(control.clock.now_ns());
            let Some(wait) = due.checked_sub(now) else {
                break;
            };
            match rx.recv_timeout(wait) {
                Ok(snapshot) => {
                    interval.add_snapshot(&snapshot);
                    if snapshot.last_error.is_some() {
                        last_error.clone_from(&snapshot.last_error);
                    }
                    if snapshot.finished {
                        finished += 1;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    finished = threads;
                    break;
                }
            }
        }
        let t = tick as f64 * interval_s;
        let producing = !control.stop_producing.load(Ordering::SeqCst);
        let phase = if t <= warmup_end {
            "warmup"
        } else if producing && t <= produce_end {
            "measure"
        } else if control.producers_running.load(Ordering::SeqCst) > 0 {
            "drain"
        } else {
            "consume"
        };
        all.add(&interval.counters);
        if phase == "measure" {
            measured.add(&interval);
            measured_seconds += interval_s;
        }
        let point = IntervalPoint::of(t, interval_s, phase, &interval);
        if !args.quiet {
            println!("{}", point.line());
        }
        series.push(point);

        if t >= produce_end {
            control.stop_producing.store(true, Ordering::SeqCst);
        }
        let producers_idle = control.producers_running.load(Ordering::SeqCst) == 0;
        if producers_idle && control.stop_producing.load(Ordering::SeqCst) {
            if producers_done_at.is_none() {
                producers_done_at = Some(t);
                if args.catch_up {
                    catch_up_from = Some((control.clock.now_ns() as f64 / 1e9, all.consumed_msgs));
                    control.consumers_go.store(true, Ordering::SeqCst);
                }
            }
            let since = t - producers_done_at.unwrap_or(t);
            let timeout = if args.catch_up {
                CATCH_UP_TIMEOUT
            } else {
                CONSUME_TAIL_TIMEOUT
            };
            let caught_up = args.consumers == 0 || all.consumed_msgs >= all.acked_msgs;
            if caught_up || since > timeout.as_secs_f64() {
                if !caught_up {
                    last_error = Some(format!(
                        "consumers read {} of {} acknowledged messages",
                        all.consumed_msgs, all.acked_msgs
                    ));
                    all.errors += 1;
                }
                consumed_at_end = all.consumed_msgs;
                control.stop_consuming.store(true, Ordering::SeqCst);
            }
        }
        tick += 1;
    }
    let catch_up = catch_up_from.map(|(from_s, consumed_before)| {
        let msgs = consumed_at_end.saturating_sub(consumed_before);
        let last = control.last_consume_ns.load(Ordering::SeqCst) as f64 / 1e9;
        Throughput::of(msgs, msgs * args.message_size as u64, last - from_s)
    });
    let c = &measured.counters;
    Ok(Report {
        label: args.label.clone(),
        target: "kafka",
        workload: serde_json::json!({
            "bootstrap": args.bootstrap,
            "topic": topic,
            "partitions": workload.partition_broker.len(),
            "brokers": workload.broker_addrs.len(),
            "message_size": args.message_size,
            "producers": args.producers,
            "consumers": args.consumers,
            "threads": args.threads,
            "batch_size": args.batch_size,
            "linger_ms": args.linger_ms,
            "acks": args.acks.0,
            "compression": args.compression,
            "keys": args.keys,
            "rate": args.rate,
            "warmup_secs": args.warmup_secs,
            "duration_secs": args.duration_secs,
            "max_in_flight": args.max_in_flight,
            "catch_up": args.catch_up,
            "transactions": args.transactions,
            "transaction_records": args.transactions.then_some(args.transaction_records),
        }),
        produce: Throughput::of(c.acked_msgs, c.acked_bytes, measured_seconds),
        consume: Throughput::of(c.consumed_msgs, c.consumed_bytes, measured_seconds),
        catch_up,
        produce_ack_latency: LatencySummary::of(&measured.ack_latency),
        end_to_end_latency: LatencySummary::of(&measured.e2e_latency),
        errors: all.errors,
        last_error,
        schedule_lag_ms_max: report::ms(c.schedule_lag_ns_max),
        committed_transactions: all.committed_txns,
        committed_msgs: all.committed_msgs,
        series,
    })
}
