//! Load drivers for the peers sluice is compared with, shaped like `sluice bench` and writing
//! the same JSON report (so perf/compare and perf/plot.py treat every target alike):
//!
//! - `redis`: Redis Streams. Each producer pipelines `XADD` commands (`--batch` per
//!   round trip, `--pipeline` round trips in flight); each consumer reads with
//!   `XREADGROUP ... NOACK` (no pending-entries list, like auto-commit). Durability is the
//!   server's AOF setting (`appendfsync everysec|always`), chosen by perf/compare.
//! - `nats`: NATS JetStream, one file-storage stream per partition. Producers keep
//!   `--pipeline` publishes awaiting their PubAck; consumers are pull consumers with
//!   `AckPolicy::None` starting at new messages.
//!
//! - `rdkafka`: a Kafka broker (sluice) through librdkafka, the stock client most Kafka
//!   tooling is built on: `FutureProducer` (`--acks`, `--linger-ms`, `--batch-bytes`,
//!   `--compression`) with up to `--pipeline` deliveries outstanding, and a consumer per
//!   `--consumers` assigned its share of partitions at their end. The topic must exist.
//!
//! Every message value starts with its intended send time (ns on one monotonic clock in this
//! process); ack latency and end-to-end latency are measured from it, so a fixed `--rate`
//! is open loop and free of coordinated omission. How far a producer fell behind its schedule
//! is reported as `schedule_lag_ms_max`, as `sluice bench` does: when it is large, the load
//! generator (not the server) may be what the latency shows.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    Redis,
    Nats,
    Rdkafka,
}

#[derive(Debug, Clone, Parser)]
#[command(about = "Redis Streams / NATS JetStream load driver for sluice's peer comparison")]
struct Args {
    target: Target,
    /// redis://host:port or nats://host:port
    #[arg(long)]
    url: String,
    /// Streams (Redis) or JetStream streams (NATS), like Kafka partitions.
    #[arg(long, default_value_t = 1)]
    partitions: usize,
    #[arg(long, default_value_t = 100)]
    message_size: usize,
    #[arg(long, default_value_t = 1)]
    producers: usize,
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Messages per round trip (Redis pipeline length).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Round trips (Redis) or unacknowledged publishes (NATS) in flight per producer.
    #[arg(long, default_value_t = 8)]
    pipeline: usize,
    /// Messages per second over all producers; 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    #[arg(long, default_value_t = 2.0)]
    warmup_secs: f64,
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    #[arg(long)]
    label: Option<String>,
    #[arg(long, short)]
    quiet: bool,
    /// Names are prefixed with this (a fresh one per run keeps runs apart).
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// rdkafka: the topic (must exist with `--partitions` partitions).
    #[arg(long, default_value = "bench")]
    topic: String,
    /// rdkafka: acks (0, 1, all).
    #[arg(long, default_value = "1")]
    acks: String,
    /// rdkafka: linger.ms.
    #[arg(long, default_value_t = 1.0)]
    linger_ms: f64,
    /// rdkafka: batch.size.
    #[arg(long, default_value_t = 131072)]
    batch_bytes: usize,
    /// rdkafka: compression.type.
    #[arg(long, default_value = "none")]
    compression: String,
}

const STAMP: usize = 8;

struct Stats {
    acked: u64,
    consumed: u64,
    errors: u64,
    last_error: Option<String>,
    ack: Histogram<u64>,
    e2e: Histogram<u64>,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            acked: 0,
            consumed: 0,
            errors: 0,
            last_error: None,
            ack: hist(),
            e2e: hist(),
        }
    }
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds")
}

struct Shared {
    base: Instant,
    stop_producing: AtomicBool,
    stop_consuming: AtomicBool,
    producers_running: AtomicU64,
    /// The largest lag behind schedule since the last report tick (ns).
    lag_max_ns: AtomicU64,
    stats: Mutex<Stats>,
}

impl Shared {
    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
    fn lagged(&self, ns: u64) {
        self.lag_max_ns.fetch_max(ns, Ordering::Relaxed);
    }
    fn error(&self, e: String) {
        let mut s = self.stats.lock().expect("stats lock");
        s.errors += 1;
        s.last_error = Some(e);
    }
    fn acked(&self, stamps: &[u64]) {
        let now = self.now();
        let mut s = self.stats.lock().expect("stats lock");
        s.acked += stamps.len() as u64;
        for &t in stamps {
            s.ack.saturating_record(now.saturating_sub(t).max(1));
        }
    }
    fn consumed(&self, stamps: &[u64]) {
        let now = self.now();
        let latencies: Vec<u64> = stamps.iter().map(|&t| now.saturating_sub(t)).collect();
        self.consumed_latencies(&latencies);
    }
    /// End-to-end latencies taken as each message arrived: a consumer that records them in
    /// batches must not add the batch's wait to them.
    fn consumed_latencies(&self, latencies: &[u64]) {
        let mut s = self.stats.lock().expect("stats lock");
        s.consumed += latencies.len() as u64;
        for &l in latencies {
            s.e2e.saturating_record(l.max(1));
        }
    }
}

/// Requests in flight, each a task of its own: it is sent, and its answer timed, as soon as
/// the runtime can, not when its producer next polls (a future in a `FuturesUnordered` does
/// nothing until polled, which at a low rate is when the pipeline is full).
type InFlight = FuturesUnordered<tokio::task::JoinHandle<Result<(), String>>>;

/// Waits for one request in flight to finish.
async fn reap_one(in_flight: &mut InFlight) -> Result<(), String> {
    match in_flight.next().await {
        Some(joined) => joined.map_err(|e| e.to_string())?,
        None => Ok(()),
    }
}

fn payload(size: usize, stamp: u64, filler: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(size.max(STAMP));
    v.extend_from_slice(&stamp.to_le_bytes());
    v.extend_from_slice(&filler[..size.saturating_sub(STAMP)]);
    v
}

fn stamp_of(value: &[u8]) -> Option<u64> {
    value.get(..STAMP).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
}

/// Intended send times of the next messages due for one producer (open loop), or `n` times
/// "now" at the maximum rate.
struct Schedule {
    interval_ns: Option<f64>,
    next: f64,
}

impl Schedule {
    fn due(&mut self, now: u64, max: usize) -> Vec<u64> {
        match self.interval_ns {
            None => vec![now; max],
            Some(interval) => {
                let mut out = Vec::new();
                while out.len() < max && self.next <= now as f64 {
                    out.push(self.next as u64);
                    self.next += interval;
                }
                out
            }
        }
    }
    /// How late the producer is for its next message (0 at the maximum rate).
    fn lag(&self, now: u64) -> u64 {
        match self.interval_ns {
            None => 0,
            Some(_) => now.saturating_sub(self.next as u64),
        }
    }
    fn wait(&self, now: u64) -> Duration {
        match self.interval_ns {
            None => Duration::ZERO,
            Some(_) => Duration::from_nanos((self.next as u64).saturating_sub(now)),
        }
    }
}

fn filler(len: usize) -> Vec<u8> {
    let words = [&b"GET "[..], b"/api/v1/orders ", b"200 ", b"user ", b"latency_ms ", b"ok "];
    let mut out = Vec::new();
    let mut i = 7usize;
    while out.len() < len + 16 {
        i = i.wrapping_mul(1103515245).wrapping_add(12345);
        out.extend_from_slice(words[(i >> 8) % words.len()]);
    }
    out
}

// ---------------------------------------------------------------- Redis Streams

async fn redis_setup(args: &Args) -> redis::RedisResult<()> {
    let client = redis::Client::open(args.url.as_str())?;
    let mut con = client.get_multiplexed_async_connection().await?;
    for p in 0..args.partitions {
        let stream = format!("{}-{p}", args.prefix);
        let _: redis::Value = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&stream)
            .arg("g")
            .arg("$")
            .arg("MKSTREAM")
            .query_async(&mut con)
            .await?;
    }
    Ok(())
}

async fn redis_producer(id: usize, args: Arc<Args>, shared: Arc<Shared>) {
    let result: Result<(), String> = async {
        let client = redis::Client::open(args.url.as_str()).map_err(|e| e.to_string())?;
        let con = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let filler = filler(args.message_size);
        let mut schedule = Schedule {
            interval_ns: (args.rate > 0.0).then(|| 1e9 * args.producers as f64 / args.rate),
            next: shared.now() as f64,
        };
        let mut in_flight = InFlight::new();
        let mut partition = id % args.partitions;
        while !shared.stop_producing.load(Ordering::Relaxed) {
            while in_flight.len() >= args.pipeline {
                reap_one(&mut in_flight).await?;
            }
            let now = shared.now();
            shared.lagged(schedule.lag(now));
            let stamps = schedule.due(now, args.batch);
            if stamps.is_empty() {
                tokio::time::sleep(schedule.wait(now).min(Duration::from_millis(1))).await;
                continue;
            }
            let stream = format!("{}-{partition}", args.prefix);
            partition = (partition + 1) % args.partitions;
            let mut pipe = redis::pipe();
            for &t in &stamps {
                pipe.cmd("XADD")
                    .arg(&stream)
                    .arg("*")
                    .arg("v")
                    .arg(payload(args.message_size, t, &filler))
                    .ignore();
            }
            let mut con = con.clone();
            let shared = Arc::clone(&shared);
            in_flight.push(tokio::spawn(async move {
                let r: redis::RedisResult<()> = pipe.query_async(&mut con).await;
                r.map_err(|e| e.to_string())?;
                shared.acked(&stamps);
                Ok(())
            }));
        }
        while !in_flight.is_empty() {
            reap_one(&mut in_flight).await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        shared.error(format!("redis producer {id}: {e}"));
    }
    shared.producers_running.fetch_sub(1, Ordering::SeqCst);
}

async fn redis_consumer(id: usize, args: Arc<Args>, shared: Arc<Shared>) {
    let result: redis::RedisResult<()> = async {
        let client = redis::Client::open(args.url.as_str())?;
        let mut con = client.get_multiplexed_async_connection().await?;
        let streams: Vec<String> = (id..args.partitions)
            .step_by(args.consumers)
            .map(|p| format!("{}-{p}", args.prefix))
            .collect();
        if streams.is_empty() {
            return Ok(());
        }
        while !shared.stop_consuming.load(Ordering::Relaxed) {
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP").arg("g").arg(format!("c{id}"));
            cmd.arg("COUNT").arg(1000).arg("BLOCK").arg(100).arg("NOACK");
            cmd.arg("STREAMS");
            for s in &streams {
                cmd.arg(s);
            }
            for _ in &streams {
                cmd.arg(">");
            }
            let reply: redis::Value = cmd.query_async(&mut con).await?;
            let mut stamps = Vec::new();
            collect_redis_stamps(&reply, &mut stamps);
            if !stamps.is_empty() {
                shared.consumed(&stamps);
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        shared.error(format!("redis consumer {id}: {e}"));
    }
}

/// Walks an XREADGROUP reply: [[stream, [[id, [field, value, ...]], ...]], ...].
fn collect_redis_stamps(reply: &redis::Value, out: &mut Vec<u64>) {
    use redis::Value;
    let items = match reply {
        Value::Array(items) => items.clone(),
        Value::Map(pairs) => pairs
            .iter()
            .flat_map(|(k, v)| [k.clone(), v.clone()])
            .collect(),
        _ => return,
    };
    let mut fields_next = false;
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::BulkString(bytes) if fields_next && i % 2 == 1 => {
                if let Some(stamp) = stamp_of(bytes) {
                    out.push(stamp);
                }
            }
            Value::BulkString(bytes) => fields_next = bytes.as_slice() == b"v",
            other => collect_redis_stamps(other, out),
        }
    }
}

// ---------------------------------------------------------------- NATS JetStream

async fn nats_setup(args: &Args) -> Result<(), String> {
    use async_nats::jetstream;
    let client = async_nats::connect(&args.url).await.map_err(|e| e.to_string())?;
    let js = jetstream::new(client);
    for p in 0..args.partitions {
        let name = format!("{}_{p}", args.prefix);
        js.create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("{}.{p}", args.prefix)],
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("creating stream {name}: {e}"))?;
    }
    Ok(())
}

async fn nats_producer(id: usize, args: Arc<Args>, shared: Arc<Shared>) {
    let result: Result<(), String> = async {
        let client = async_nats::connect(&args.url).await.map_err(|e| e.to_string())?;
        let js = async_nats::jetstream::new(client);
        let filler = filler(args.message_size);
        let mut schedule = Schedule {
            interval_ns: (args.rate > 0.0).then(|| 1e9 * args.producers as f64 / args.rate),
            next: shared.now() as f64,
        };
        let mut in_flight = InFlight::new();
        let mut partition = id % args.partitions;
        let mut pending: Vec<u64> = Vec::new();
        while !shared.stop_producing.load(Ordering::Relaxed) {
            if pending.is_empty() {
                let now = shared.now();
                shared.lagged(schedule.lag(now));
                pending = schedule.due(now, args.batch);
                pending.reverse();
                if pending.is_empty() {
                    tokio::time::sleep(schedule.wait(now).min(Duration::from_millis(1))).await;
                    continue;
                }
            }
            while in_flight.len() >= args.pipeline {
                reap_one(&mut in_flight).await?;
            }
            let Some(t) = pending.pop() else { continue };
            let subject = format!("{}.{partition}", args.prefix);
            partition = (partition + 1) % args.partitions;
            let ack = js
                .publish(subject, Bytes::from(payload(args.message_size, t, &filler)))
                .await
                .map_err(|e| e.to_string())?;
            let shared = Arc::clone(&shared);
            in_flight.push(tokio::spawn(async move {
                ack.await.map_err(|e| e.to_string())?;
                shared.acked(&[t]);
                Ok(())
            }));
        }
        while !in_flight.is_empty() {
            reap_one(&mut in_flight).await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        shared.error(format!("nats producer {id}: {e}"));
    }
    shared.producers_running.fetch_sub(1, Ordering::SeqCst);
}

async fn nats_consumer(id: usize, args: Arc<Args>, shared: Arc<Shared>) {
    use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
    let result: Result<(), String> = async {
        let client = async_nats::connect(&args.url).await.map_err(|e| e.to_string())?;
        let js = async_nats::jetstream::new(client);
        let mut tasks = Vec::new();
        for p in (id..args.partitions).step_by(args.consumers) {
            let stream = js
                .get_stream(format!("{}_{p}", args.prefix))
                .await
                .map_err(|e| e.to_string())?;
            let consumer = stream
                .create_consumer(pull::Config {
                    deliver_policy: DeliverPolicy::New,
                    ack_policy: AckPolicy::None,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            let shared = Arc::clone(&shared);
            tasks.push(tokio::spawn(async move {
                let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
                let mut latencies = Vec::with_capacity(256);
                loop {
                    let next = tokio::time::timeout(Duration::from_millis(100), messages.next());
                    match next.await {
                        Ok(Some(Ok(m))) => {
                            if let Some(s) = stamp_of(&m.payload) {
                                latencies.push(shared.now().saturating_sub(s));
                            }
                            if latencies.len() >= 256 {
                                shared.consumed_latencies(&latencies);
                                latencies.clear();
                            }
                            continue;
                        }
                        Ok(Some(Err(e))) => return Err(e.to_string()),
                        Ok(None) => break,
                        Err(_) => {}
                    }
                    if !latencies.is_empty() {
                        shared.consumed_latencies(&latencies);
                        latencies.clear();
                    }
                    if shared.stop_consuming.load(Ordering::Relaxed) {
                        break;
                    }
                }
                Ok::<(), String>(())
            }));
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        shared.error(format!("nats consumer {id}: {e}"));
    }
}

// ---------------------------------------------------------------- librdkafka

fn rdkafka_bootstrap(args: &Args) -> String {
    args.url.trim_start_matches("kafka://").to_owned()
}

/// Delivery reports come back on librdkafka's poll thread, each carrying its message's
/// intended send time as the delivery opaque.
struct DeliveryContext {
    shared: Arc<Shared>,
}

impl rdkafka::ClientContext for DeliveryContext {}

impl rdkafka::producer::ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<u64>;
    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, stamp: Box<u64>) {
        match result {
            Ok(_) => self.shared.acked(&[*stamp]),
            Err((e, _)) => self.shared.error(format!("delivery failed: {e}")),
        }
    }
}

async fn rdkafka_producer(id: usize, args: Arc<Args>, shared: Arc<Shared>) {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    use rdkafka::ClientConfig;
    let worker_shared = Arc::clone(&shared);
    let worker = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let shared = worker_shared;
        let producer: ThreadedProducer<DeliveryContext> = ClientConfig::new()
            .set("bootstrap.servers", rdkafka_bootstrap(&args))
            .set("acks", &args.acks)
            .set("linger.ms", args.linger_ms.to_string())
            .set("batch.size", args.batch_bytes.to_string())
            .set("compression.type", &args.compression)
            .set("queue.buffering.max.kbytes", "65536")
            .set("queue.buffering.max.messages", args.pipeline.to_string())
            .set("enable.idempotence", "false")
            .create_with_context(DeliveryContext {
                shared: Arc::clone(&shared),
            })
            .map_err(|e| e.to_string())?;
        let filler = filler(args.message_size);
        let mut schedule = Schedule {
            interval_ns: (args.rate > 0.0).then(|| 1e9 * args.producers as f64 / args.rate),
            next: shared.now() as f64,
        };
        while !shared.stop_producing.load(Ordering::Relaxed) {
            let now = shared.now();
            shared.lagged(schedule.lag(now));
            let stamps = schedule.due(now, args.batch);
            if stamps.is_empty() {
                std::thread::sleep(schedule.wait(now).min(Duration::from_millis(1)));
                continue;
            }
            for t in stamps {
                let value = payload(args.message_size, t, &filler);
                let mut stamp = Box::new(t);
                loop {
                    let record: BaseRecord<'_, (), [u8], Box<u64>> =
                        BaseRecord::with_opaque_to(&args.topic, stamp).payload(&value[..]);
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                            // The queue is full: wait for deliveries (the message is late).
                            stamp = r.delivery_opaque;
                            std::thread::sleep(Duration::from_micros(200));
                        }
                        Err((e, _)) => return Err(e.to_string()),
                    }
                }
            }
        }
        producer
            .flush(Duration::from_secs(30))
            .map_err(|e| e.to_string())?;
        Ok(())
    });
    match worker.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => shared.error(format!("rdkafka producer {id}: {e}")),
        Err(e) => shared.error(format!("rdkafka producer {id}: {e}")),
    }
    shared.producers_running.fetch_sub(1, Ordering::SeqCst);
}

async fn rdkafka_consumer(id: usize, args: Arc<Args>, shared: Arc<Shared>) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
    // librdkafka's consumer is driven by polling; keep it on a blocking thread.
    let worker_shared = Arc::clone(&shared);
    let worker = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let shared = worker_shared;
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", rdkafka_bootstrap(&args))
            .set("group.id", format!("sluice-peers-{}", args.prefix))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "100")
            .set("fetch.max.bytes", "52428800")
            .set("max.partition.fetch.bytes", "4194304")
            .create()
            .map_err(|e| e.to_string())?;
        let mut assignment = TopicPartitionList::new();
        for p in (id..args.partitions).step_by(args.consumers) {
            assignment
                .add_partition_offset(&args.topic, p as i32, Offset::End)
                .map_err(|e| e.to_string())?;
        }
        consumer.assign(&assignment).map_err(|e| e.to_string())?;
        let mut latencies = Vec::with_capacity(1024);
        while !shared.stop_consuming.load(Ordering::Relaxed) {
            match consumer.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => {
                    if let Some(s) = m.payload().and_then(stamp_of) {
                        latencies.push(shared.now().saturating_sub(s));
                    }
                    if latencies.len() >= 1024 {
                        shared.consumed_latencies(&latencies);
                        latencies.clear();
                    }
                    continue;
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => {}
            }
            if !latencies.is_empty() {
                shared.consumed_latencies(&latencies);
                latencies.clear();
            }
        }
        if !latencies.is_empty() {
            shared.consumed_latencies(&latencies);
        }
        Ok(())
    });
    match worker.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => shared.error(format!("rdkafka consumer {id}: {e}")),
        Err(e) => shared.error(format!("rdkafka consumer {id}: {e}")),
    }
}

// ---------------------------------------------------------------- run and report

fn summary(h: &Histogram<u64>) -> serde_json::Value {
    let ms = |ns: u64| ns as f64 / 1e6;
    let at = |p: f64| ms(h.value_at_percentile(p));
    let curve: Vec<(f64, f64)> = if h.is_empty() {
        vec![]
    } else {
        [
            0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 92.5, 95.0,
            96.875, 98.0, 99.0, 99.5, 99.7, 99.9, 99.95, 99.99, 99.995, 99.999, 100.0,
        ]
        .iter()
        .map(|&p| (p, at(p)))
        .collect()
    };
    json!({
        "count": h.len(), "mean_ms": h.mean() / 1e6, "p50_ms": at(50.0), "p75_ms": at(75.0),
        "p90_ms": at(90.0), "p95_ms": at(95.0), "p99_ms": at(99.0), "p999_ms": at(99.9),
        "p9999_ms": at(99.99), "max_ms": ms(h.max()), "curve": curve,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Arc::new(Args::parse());
    let setup = match args.target {
        Target::Redis => redis_setup(&args).await.map_err(|e| e.to_string()),
        Target::Nats => nats_setup(&args).await,
        Target::Rdkafka => Ok(()),
    };
    if let Err(e) = setup {
        eprintln!("error: setup: {e}");
        std::process::exit(1);
    }
    let shared = Arc::new(Shared {
        base: Instant::now(),
        stop_producing: AtomicBool::new(false),
        stop_consuming: AtomicBool::new(false),
        producers_running: AtomicU64::new(args.producers as u64),
        lag_max_ns: AtomicU64::new(0),
        stats: Mutex::new(Stats::new()),
    });
    let mut consumers = Vec::new();
    for id in 0..args.consumers {
        let (a, s) = (Arc::clone(&args), Arc::clone(&shared));
        consumers.push(match args.target {
            Target::Redis => tokio::spawn(redis_consumer(id, a, s)),
            Target::Nats => tokio::spawn(nats_consumer(id, a, s)),
            Target::Rdkafka => tokio::spawn(rdkafka_consumer(id, a, s)),
        });
    }
    // Consumers subscribe (librdkafka: resolve the end offsets) before producing starts.
    tokio::time::sleep(Duration::from_millis(if args.target == Target::Rdkafka { 2000 } else { 300 })).await;
    let shared_base = Instant::now();
    let mut producers = Vec::new();
    for id in 0..args.producers {
        let (a, s) = (Arc::clone(&args), Arc::clone(&shared));
        producers.push(match args.target {
            Target::Redis => tokio::spawn(redis_producer(id, a, s)),
            Target::Nats => tokio::spawn(nats_producer(id, a, s)),
            Target::Rdkafka => tokio::spawn(rdkafka_producer(id, a, s)),
        });
    }
    let (mut m_acked, mut m_consumed, mut m_secs) = (0u64, 0u64, 0.0f64);
    let (mut all_acked, mut all_consumed) = (0u64, 0u64);
    let mut m_lag_ns = 0u64;
    let mut m_ack = hist();
    let mut m_e2e = hist();
    let mut series = Vec::new();
    let mut done_at: Option<f64> = None;
    let mut tick = 1u64;
    let produce_end = args.warmup_secs + args.duration_secs;
    let mb = args.message_size as f64 / 1e6;
    loop {
        let due = shared_base + Duration::from_secs(tick);
        tokio::time::sleep_until(due.into()).await;
        let t = tick as f64;
        let (acked, consumed, ack, e2e, errors) = {
            let mut s = shared.stats.lock().expect("stats lock");
            let out = (s.acked, s.consumed, s.ack.clone(), s.e2e.clone(), s.errors);
            s.acked = 0;
            s.consumed = 0;
            s.ack.reset();
            s.e2e.reset();
            out
        };
        let lag_ns = shared.lag_max_ns.swap(0, Ordering::Relaxed);
        all_acked += acked;
        all_consumed += consumed;
        let producing = !shared.stop_producing.load(Ordering::SeqCst);
        let phase = if t <= args.warmup_secs {
            "warmup"
        } else if producing && t <= produce_end {
            "measure"
        } else {
            "drain"
        };
        if phase == "measure" {
            m_acked += acked;
            m_consumed += consumed;
            m_secs += 1.0;
            m_ack.add(&ack).ok();
            m_e2e.add(&e2e).ok();
            m_lag_ns = m_lag_ns.max(lag_ns);
        }
        let point = json!({
            "t_s": t, "phase": phase,
            "produce_msgs_per_s": acked as f64, "produce_mb_per_s": acked as f64 * mb,
            "consume_msgs_per_s": consumed as f64, "consume_mb_per_s": consumed as f64 * mb,
            "ack_p50_ms": ack.value_at_percentile(50.0) as f64 / 1e6,
            "ack_p99_ms": ack.value_at_percentile(99.0) as f64 / 1e6,
            "e2e_p50_ms": e2e.value_at_percentile(50.0) as f64 / 1e6,
            "e2e_p99_ms": e2e.value_at_percentile(99.0) as f64 / 1e6,
            "errors": errors,
        });
        if !args.quiet {
            println!(
                "[{t:>5.0}s {phase:<7}] produce {:>10.0} msg/s ack p50 {:>7.2} p99 {:>7.2} ms | consume {:>10.0} msg/s e2e p50 {:>7.2} p99 {:>7.2} ms",
                acked as f64, point["ack_p50_ms"].as_f64().unwrap_or(0.0), point["ack_p99_ms"].as_f64().unwrap_or(0.0),
                consumed as f64, point["e2e_p50_ms"].as_f64().unwrap_or(0.0), point["e2e_p99_ms"].as_f64().unwrap_or(0.0),
            );
        }
        series.push(point);
        if t >= produce_end {
            shared.stop_producing.store(true, Ordering::SeqCst);
        }
        if shared.producers_running.load(Ordering::SeqCst) == 0 {
            let since = t - *done_at.get_or_insert(t);
            if args.consumers == 0 || all_consumed >= all_acked || since > 10.0 {
                shared.stop_consuming.store(true, Ordering::SeqCst);
                break;
            }
        }
        tick += 1;
    }
    for p in producers {
        p.await.ok();
    }
    for c in consumers {
        c.await.ok();
    }
    let s = shared.stats.lock().expect("stats lock");
    let secs = m_secs.max(1e-9);
    let report = json!({
        "label": args.label, "target": format!("{:?}", args.target).to_lowercase(),
        "workload": {
            "url": args.url, "partitions": args.partitions, "message_size": args.message_size,
            "producers": args.producers, "consumers": args.consumers, "batch": args.batch,
            "pipeline": args.pipeline, "rate": args.rate, "warmup_secs": args.warmup_secs,
            "duration_secs": args.duration_secs,
        },
        "produce": {"msgs_per_s": m_acked as f64 / secs, "mb_per_s": m_acked as f64 * mb / secs, "msgs": m_acked, "seconds": secs},
        "consume": {"msgs_per_s": m_consumed as f64 / secs, "mb_per_s": m_consumed as f64 * mb / secs, "msgs": m_consumed, "seconds": secs},
        "catch_up": null,
        "produce_ack_latency": summary(&m_ack),
        "end_to_end_latency": summary(&m_e2e),
        "errors": s.errors, "last_error": s.last_error, "series": series,
        "schedule_lag_ms_max": m_lag_ns as f64 / 1e6,
    });
    println!(
        "\n{:?}: produce {:.0} msg/s ({:.1} MB/s), consume {:.0} msg/s; ack p50 {:.3} p99 {:.3} ms; e2e p50 {:.3} p99 {:.3} ms; errors {}",
        args.target,
        m_acked as f64 / secs,
        m_acked as f64 * mb / secs,
        m_consumed as f64 / secs,
        m_ack.value_at_percentile(50.0) as f64 / 1e6,
        m_ack.value_at_percentile(99.0) as f64 / 1e6,
        m_e2e.value_at_percentile(50.0) as f64 / 1e6,
        m_e2e.value_at_percentile(99.0) as f64 / 1e6,
        s.errors
    );
    if let Some(e) = &s.last_error {
        eprintln!("last error: {e}");
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("error: writing {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    if s.errors > 0 {
        std::process::exit(1);
    }
}
