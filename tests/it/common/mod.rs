//! Shared harness for the integration tests: runs the real `sluice` binary on a temporary data
//! directory and talks to it with stock Kafka clients (the `rdkafka` crate and kcat).
//!
//! Nothing here sleeps for correctness. Every wait polls a condition against a generous deadline
//! that only exists to turn a hang into a readable failure.
//!
//! Not every helper is used by a scenario at all times, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod cli;
pub mod prerequisite;
pub mod raw;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, DeliveryResult, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tempfile::TempDir;

/// How long the broker may take from spawn to its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a graceful shutdown may take before the test calls it a hang.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default deadline for client operations (produce + flush, consume-until-count, admin calls).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// How to start the broker. `Default` is two shards, one partition per auto-created topic,
/// auto-creation on, ephemeral ports, 8 MiB segments.
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    pub shards_count: usize,
    pub num_partitions: u32,
    pub auto_create_topics: bool,
    /// Choose a free consecutive port range up front so that a restart listens on the same
    /// addresses and existing clients can reconnect. Otherwise every shard picks an ephemeral port.
    pub fixed_ports: bool,
    /// Small, so tests roll segments and never preallocate gigabytes per partition.
    pub segment_bytes: u64,
    /// Run in the temp dir without `--data-dir`, so the broker uses its default `./data`.
    pub default_data_dir: bool,
    /// Create the data dir under this directory instead of the system temp dir (e.g. a small
    /// filesystem a full-disk test mounted).
    pub data_parent: Option<PathBuf>,
    pub extra_args: Vec<String>,
    /// Environment variables set for the broker, after the harness's own (`NO_COLOR`,
    /// `RUST_LOG`); an empty value removes the variable.
    pub envs: Vec<(String, String)>,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        Self {
            shards_count: 2,
            num_partitions: 1,
            auto_create_topics: true,
            fixed_ports: false,
            segment_bytes: 8 * 1024 * 1024,
            default_data_dir: false,
            data_parent: None,
            extra_args: Vec::new(),
            envs: Vec::new(),
        }
    }
}

/// What the broker announced on its ready line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyLine {
    pub bootstrap: String,
    /// `(broker id, host:port)` per shard.
    pub brokers: Vec<(i32, String)>,
}

impl ReadyLine {
    /// Parses `sluice ready bootstrap=HOST:PORT brokers=0@HOST:PORT0,1@HOST:PORT1`.
    pub fn parse(line: &str) -> Option<ReadyLine> {
        let rest = line.trim().strip_prefix("sluice ready ")?;
        let mut bootstrap = None;
        let mut brokers = None;
        for field in rest.split_whitespace() {
            if let Some(value) = field.strip_prefix("bootstrap=") {
                bootstrap = Some(value.to_string());
            } else if let Some(value) = field.strip_prefix("brokers=") {
                let mut list = Vec::new();
                for entry in value.split(',') {
                    let (id, addr) = entry.split_once('@')?;
                    list.push((id.parse().ok()?, addr.to_string()));
                }
                brokers = Some(list);
            }
        }
        Some(ReadyLine {
            bootstrap: bootstrap?,
            brokers: brokers?,
        })
    }
}

/// A running `sluice serve` process. Killed (SIGKILL) on drop if still running.
pub struct Broker {
    options: BrokerOptions,
    data_dir: TempDir,
    log_dir: TempDir,
    listen_port: u16,
    child: Option<Child>,
    ready: Option<ReadyLine>,
    starts_count: u32,
    stdout_rx: Option<Receiver<String>>,
}

impl Broker {
    /// Starts a broker with default options and waits for its ready line.
    pub fn start() -> Broker {
        Broker::start_with(BrokerOptions::default())
    }

    pub fn start_with(options: BrokerOptions) -> Broker {
        let listen_port = if options.fixed_ports {
            free_port_range(options.shards_count)
        } else {
            0
        };
        let mut data_dir = tempfile::Builder::new();
        data_dir.prefix("sluice-data-");
        let data_dir = match &options.data_parent {
            Some(parent) => data_dir.tempdir_in(parent),
            None => data_dir.tempdir(),
        }
        .expect("create temp data dir");
        let mut broker = Broker {
            options,
            data_dir,
            log_dir: tempfile::Builder::new()
                .prefix("sluice-log-")
                .tempdir()
                .expect("create temp log dir"),
            listen_port,
            child: None,
            ready: None,
            starts_count: 0,
            stdout_rx: None,
        };
        broker.spawn_and_wait_ready();
        broker
    }

    pub fn bootstrap(&self) -> &str {
        &self
            .ready
            .as_ref()
            .expect("broker is not running")
            .bootstrap
    }

    pub fn ready_line(&self) -> &ReadyLine {
        self.ready.as_ref().expect("broker is not running")
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    pub fn options(&self) -> &BrokerOptions {
        &self.options
    }

    /// The broker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The broker's resident set size (VmRSS) in bytes, read from /proc.
    pub fn rss_bytes(&self) -> u64 {
        let pid = self.pid().expect("broker is not running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .expect("read /proc/PID/status of the broker");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .expect("VmRSS line in /proc/PID/status");
        kib * 1024
    }

    /// The stderr of the current (or last) broker process.
    pub fn stderr(&self) -> String {
        read_tail(&self.stderr_path(self.starts_count), 64 * 1024)
    }

    fn stderr_path(&self, start: u32) -> PathBuf {
        self.log_dir.path().join(format!("broker-{start}.stderr"))
    }

    /// Panics (showing the broker's stderr) if the process has exited.
    pub fn assert_alive(&mut self) {
        let child = self.child.as_mut().expect("broker was stopped");
        if let Some(status) = child.try_wait().expect("try_wait on broker") {
            panic!(
                "broker exited unexpectedly with {status}\n--- broker stderr ---\n{}",
                self.stderr()
            );
        }
    }

    /// If the broker process has exited, forgets it (so `restart` works) and describes how it
    /// ended, with the tail of its stderr.
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        let status = child.try_wait().expect("try_wait on broker")?;
        self.child = None;
        self.ready = None;
        let stderr = read_tail(&self.stderr_path(self.starts_count), 256 * 1024);
        // Show the panic message if there is one, else the end of stderr.
        let from = stderr
            .find("panicked at")
            .or_else(|| stderr.find("memory allocation"))
            .map(|i| stderr[..i].rfind('\n').map_or(0, |n| n + 1))
            .unwrap_or_else(|| stderr.len().saturating_sub(2048));
        let shown: String = stderr[from..].chars().take(2048).collect();
        Some(format!("broker exited with {status}; stderr:\n{shown}"))
    }

    /// Waits up to `timeout` for the broker to exit on its own; its exit status, if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = wait_child(self.child.as_mut()?, timeout)?;
        self.child = None;
        self.ready = None;
        Some(status)
    }

    /// The stderr file of the current (or last) broker process.
    pub fn stderr_file(&self) -> PathBuf {
        self.stderr_path(self.starts_count)
    }

    /// SIGTERM, then wait for a clean exit. Panics on a non-zero exit or a hang.
    pub fn stop_graceful(&mut self) {
        self.stop_with_signal("TERM");
    }

    /// Sends `signal` (`TERM` or `INT`), then waits for exit code 0 within `SHUTDOWN_TIMEOUT`.
    pub fn stop_with_signal(&mut self, signal: &str) {
        self.signal(signal);
        let Some(mut child) = self.child.take() else {
            return;
        };
        self.ready = None;
        match wait_child(&mut child, SHUTDOWN_TIMEOUT) {
            Some(status) => assert!(
                status.success(),
                "broker did not exit cleanly on SIG{signal}: {status}\n--- broker stderr ---\n{}",
                self.stderr()
            ),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker did not exit within {SHUTDOWN_TIMEOUT:?} of SIG{signal}\n--- broker stderr ---\n{}",
                    self.stderr()
                );
            }
        }
    }

    /// Sends `signal` (`kill -SIGNAL`) to the running broker and returns at once; nothing if
    /// it is not running. `STOP` freezes every thread of the process, as a network partition
    /// would cut the node off: its sockets stay open and take requests, and nothing is
    /// answered until `CONT`.
    pub fn signal(&self, signal: &str) {
        let Some(pid) = self.pid() else {
            return;
        };
        let status = Command::new("sh")
            .args(["-c", &format!("kill -{signal} {pid}")])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// SIGKILL: no chance to flush anything not already durable.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        self.ready = None;
        child.kill().expect("SIGKILL broker");
        child.wait().expect("reap broker");
        // A killed process's io_uring instances are torn down by a kernel worker after the
        // process is reaped; until then, pending accepts keep the listening sockets open and a
        // restart on the same ports fails with EADDRINUSE. Wait until the ports are free.
        if self.listen_port != 0 {
            let base = self.listen_port;
            let count = self.options.shards_count as u16;
            let started = Instant::now();
            wait_until(
                "the killed broker's ports to be released",
                SHUTDOWN_TIMEOUT,
                || {
                    let held: Vec<TcpListener> = (0..count)
                        .map_while(|i| {
                            TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], base + i))).ok()
                        })
                        .collect();
                    held.len() == usize::from(count)
                },
            );
            eprintln!(
                "ports {base}..{} released {:?} after SIGKILL",
                base + count,
                started.elapsed()
            );
        }
    }

    /// Starts the broker again on the same data dir (and, with `fixed_ports`, the same ports).
    pub fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "stop or kill the broker before restart"
        );
        self.spawn_and_wait_ready();
    }

    fn spawn_and_wait_ready(&mut self) {
        self.starts_count += 1;
        let stderr_path = self.stderr_path(self.starts_count);
        let stderr_file = File::create(&stderr_path).expect("create stderr file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command.arg("serve");
        if self.options.default_data_dir {
            command.current_dir(self.data_dir.path());
        } else {
            command.arg("--data-dir").arg(self.data_dir.path());
        }
        command
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.listen_port))
            .arg("--shards")
            .arg(self.options.shards_count.to_string())
            .arg("--num-partitions")
            .arg(self.options.num_partitions.to_string())
            .arg("--auto-create-topics")
            .arg(self.options.auto_create_topics.to_string())
            .arg("--segment-bytes")
            .arg(self.options.segment_bytes.to_string())
            .args(&self.options.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_file));
        // Parallel tests each run a broker; the admin endpoint's fixed default would collide.
        if !self
            .options
            .extra_args
            .iter()
            .any(|a| a.starts_with("--admin-listen"))
        {
            command.arg("--admin-listen").arg("127.0.0.1:0");
        }
        // The CI environment must not change what the tests start.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SLUICE_") {
                command.env_remove(key);
            }
        }
        command.env("NO_COLOR", "1");
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        for (key, value) in &self.options.envs {
            if value.is_empty() {
                command.env_remove(key);
            } else {
                command.env(key, value);
            }
        }
        let mut child = command.spawn().expect("spawn sluice binary");
        let stdout = child.stdout.take().expect("broker stdout");
        let (tx, rx) = mpsc::channel();
        // Keep draining stdout for the life of the process so the broker never blocks on a pipe.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Receiver gone: keep reading so the pipe stays drained.
                    continue;
                }
            }
        });
        self.child = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        let mut seen = Vec::new();
        let ready = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(ready) = ReadyLine::parse(&line) {
                        break ready;
                    }
                    seen.push(line);
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
            }
            let child = self.child.as_mut().expect("child just spawned");
            if let Some(status) = child.try_wait().expect("try_wait on broker") {
                self.child = None;
                panic!(
                    "broker exited with {status} before its ready line\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    seen.join("\n"),
                    self.stderr()
                );
            }
            if Instant::now() > deadline {
                let mut child = self.child.take().expect("child just spawned");
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "no ready line within {READY_TIMEOUT:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    seen.join("\n"),
                    self.stderr()
                );
            }
        };
        assert_eq!(
            ready.brokers.len(),
            self.options.shards_count,
            "ready line should list one broker per shard: {ready:?}"
        );
        if self.options.fixed_ports {
            // Listed by shard; a cluster node's broker ids are node_id * 1000 + shard.
            for (shard, (id, addr)) in ready.brokers.iter().enumerate() {
                // The host is whatever is advertised; the port must be PORT+shard.
                let expected = format!(":{}", usize::from(self.listen_port) + shard);
                assert!(
                    addr.ends_with(&expected),
                    "shard {shard} (broker {id}) should listen on PORT+{shard}: {addr}"
                );
            }
        }
        self.stdout_rx = Some(rx);
        self.ready = Some(ready);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "--- broker stderr (start #{}) ---\n{}",
                self.starts_count,
                self.stderr()
            );
        }
    }
}

/// Polls `child` until it exits or `timeout` passes.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `condition` until it holds; panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A base port `p` such that `p..p+count` are all free on 127.0.0.1 right now, chosen below the
/// kernel's ephemeral range so that no client connection (of this or a parallel test) can take
/// one of them between this check and a broker restart.
pub fn free_port_range(count: usize) -> u16 {
    let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768);
    let low: u16 = 10_000;
    let high = ephemeral_low.saturating_sub(count as u16);
    assert!(
        high > low,
        "ephemeral port range starts too low: {ephemeral_low}"
    );
    for _ in 0..500 {
        let random = uuid::Uuid::new_v4().as_u128();
        let base = low + (random % u128::from(high - low)) as u16;
        let held: Vec<TcpListener> = (0..count as u16)
            .map_while(|i| TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], base + i))).ok())
            .collect();
        if held.len() == count {
            return base;
        }
    }
    panic!("no free range of {count} consecutive ports found below {ephemeral_low}");
}

fn read_tail(path: &Path, bytes_max: usize) -> String {
    let mut content = Vec::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.read_to_end(&mut content);
    }
    let start = content.len().saturating_sub(bytes_max);
    String::from_utf8_lossy(&content[start..]).into_owned()
}

/// A unique topic name per test so nothing depends on another test's leftovers.
pub fn topic_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

// ---------------------------------------------------------------------------------------------
// rdkafka helpers
// ---------------------------------------------------------------------------------------------

/// One delivery report, as seen by the producer.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The index the test passed when sending.
    pub id: usize,
    pub partition: i32,
    pub offset: i64,
    pub error: Option<String>,
}

/// Records every delivery report so a test can check exactly what was acknowledged.
#[derive(Clone, Default)]
pub struct DeliveryRecorder {
    pub deliveries: Arc<Mutex<Vec<Delivery>>>,
}

impl ClientContext for DeliveryRecorder {}

impl ProducerContext for DeliveryRecorder {
    type DeliveryOpaque = Box<usize>;

    fn delivery(&self, result: &DeliveryResult<'_>, id: Self::DeliveryOpaque) {
        let delivery = match result {
            Ok(message) => Delivery {
                id: *id,
                partition: message.partition(),
                offset: message.offset(),
                error: None,
            },
            Err((error, message)) => Delivery {
                id: *id,
                partition: message.partition(),
                offset: message.offset(),
                error: Some(error.to_string()),
            },
        };
        self.deliveries
            .lock()
            .expect("delivery lock poisoned")
            .push(delivery);
    }
}

pub type TestProducer = BaseProducer<DeliveryRecorder>;

/// A producer with acks=all and no idempotence, plus `overrides`.
pub fn producer(bootstrap: &str, overrides: &[(&str, &str)]) -> TestProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .set("enable.idempotence", "false");
    for (key, value) in overrides {
        config.set(*key, *value);
    }
    config
        .create_with_context(DeliveryRecorder::default())
        .expect("create producer")
}

/// One record to produce; `partition: None` lets the client partition by key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRecord {
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp_ms: Option<i64>,
}

impl TestRecord {
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> TestRecord {
        TestRecord {
            partition: None,
            key: Some(key.into()),
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp_ms: None,
        }
    }

    pub fn partition(mut self, partition: i32) -> TestRecord {
        self.partition = Some(partition);
        self
    }

    pub fn header(mut self, key: &str, value: Option<&[u8]>) -> TestRecord {
        self.headers
            .push((key.to_string(), value.map(<[u8]>::to_vec)));
        self
    }

    pub fn timestamp_ms(mut self, timestamp_ms: i64) -> TestRecord {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }
}

/// Sends every record, flushes, and returns the deliveries in send order.
/// Panics if any delivery failed or the flush did not finish within `CLIENT_TIMEOUT`.
pub fn produce_all(producer: &TestProducer, topic: &str, records: &[TestRecord]) -> Vec<Delivery> {
    let deliveries = try_produce_all(producer, topic, records);
    let failed: Vec<_> = deliveries.iter().filter(|d| d.error.is_some()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} deliveries failed, first: {:?}",
        failed.len(),
        records.len(),
        failed.first()
    );
    deliveries
}

/// Like `produce_all` but returns failed deliveries instead of panicking on them.
pub fn try_produce_all(
    producer: &TestProducer,
    topic: &str,
    records: &[TestRecord],
) -> Vec<Delivery> {
    let recorder = producer.context().deliveries.clone();
    let before = recorder.lock().expect("lock").len();
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    for (id, record) in records.iter().enumerate() {
        let mut headers = OwnedHeaders::new();
        for (key, value) in &record.headers {
            headers = headers.insert(rdkafka::message::Header {
                key,
                value: value.as_deref(),
            });
        }
        let mut base: BaseRecord<'_, [u8], [u8], Box<usize>> =
            BaseRecord::with_opaque_to(topic, Box::new(id)).headers(headers);
        if let Some(key) = &record.key {
            base = base.key(key.as_slice());
        }
        if let Some(value) = &record.value {
            base = base.payload(value.as_slice());
        }
        if let Some(partition) = record.partition {
            base = base.partition(partition);
        }
        if let Some(timestamp_ms) = record.timestamp_ms {
            base = base.timestamp(timestamp_ms);
        }
        loop {
            match producer.send(base) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    assert!(Instant::now() < deadline, "producer queue stayed full");
                    base = returned;
                    producer.poll(Duration::from_millis(10));
                }
                Err((error, _)) => panic!("send record {id} failed: {error}"),
            }
        }
    }
    let flushed = producer.flush(CLIENT_TIMEOUT);
    assert!(
        flushed.is_ok(),
        "producer flush did not finish: {flushed:?}"
    );
    wait_until("all delivery reports", CLIENT_TIMEOUT, || {
        producer.poll(Duration::from_millis(0));
        recorder.lock().expect("lock").len() - before >= records.len()
    });
    let mut deliveries: Vec<Delivery> = recorder.lock().expect("lock")[before..].to_vec();
    deliveries.sort_by_key(|d| d.id);
    deliveries
}

/// A consumer whose partitions are assigned explicitly; nothing is committed. librdkafka needs a
/// `group.id` for assign(), but with auto-commit off the group is never joined.
pub fn consumer(bootstrap: &str, overrides: &[(&str, &str)]) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", topic_name("sluice-tests"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "100");
    for (key, value) in overrides {
        config.set(*key, *value);
    }
    config.create().expect("create consumer")
}

/// A message as the consumer saw it, detached from librdkafka.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumed {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp_ms: Option<i64>,
}

impl Consumed {
    pub fn from_message(message: &BorrowedMessage<'_>) -> Consumed {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Consumed {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
            timestamp_ms: message.timestamp().to_millis(),
        }
    }
}

/// Assigns `(partition, offset)` pairs of `topic`.
pub fn assign(consumer: &BaseConsumer, topic: &str, starts: &[(i32, i64)]) {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in starts {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .expect("add partition offset");
    }
    consumer.assign(&list).expect("assign");
}

/// Polls until exactly `count` messages arrived, then keeps polling briefly to catch extras
/// (duplicates or records past what was produced). Panics on a persistent error or on timeout.
pub fn consume_count(consumer: &BaseConsumer, count: usize, timeout: Duration) -> Vec<Consumed> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(count);
    let mut errors: Vec<String> = Vec::new();
    while out.len() < count {
        if Instant::now() > deadline {
            panic!(
                "consumed {} of {count} messages within {timeout:?}; last errors: {:?}",
                out.len(),
                &errors[errors.len().saturating_sub(5)..]
            );
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => out.push(Consumed::from_message(&message)),
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(error)) => errors.push(error.to_string()),
        }
    }
    // Anything arriving now is more than was produced.
    let drain_until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < drain_until {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
            out.push(Consumed::from_message(&message));
        }
    }
    out
}

/// Asserts that `consumed` is exactly `records` on the given partitions, in offset order
/// per partition, with keys, values and headers intact.
pub fn assert_partition_contents(consumed: &[Consumed], expected: &[(i32, i64, &TestRecord)]) {
    assert_eq!(
        consumed.len(),
        expected.len(),
        "consumed {} messages, expected {}",
        consumed.len(),
        expected.len()
    );
    let mut by_partition: std::collections::BTreeMap<i32, Vec<&Consumed>> = Default::default();
    for message in consumed {
        by_partition
            .entry(message.partition)
            .or_default()
            .push(message);
    }
    let mut expected_by_partition: std::collections::BTreeMap<i32, Vec<(i64, &TestRecord)>> =
        Default::default();
    for (partition, offset, record) in expected {
        expected_by_partition
            .entry(*partition)
            .or_default()
            .push((*offset, record));
    }
    for list in expected_by_partition.values_mut() {
        list.sort_by_key(|(offset, _)| *offset);
    }
    assert_eq!(
        by_partition.keys().collect::<Vec<_>>(),
        expected_by_partition.keys().collect::<Vec<_>>(),
        "partitions consumed vs produced"
    );
    for (partition, messages) in &by_partition {
        let wanted = &expected_by_partition[partition];
        for (i, (message, (offset, record))) in messages.iter().zip(wanted.iter()).enumerate() {
            assert_eq!(
                message.offset, *offset,
                "partition {partition} message #{i}: offset (consumed order must be offset order)"
            );
            assert_eq!(
                message.key, record.key,
                "partition {partition} offset {offset}: key"
            );
            assert_eq!(
                message.value, record.value,
                "partition {partition} offset {offset}: value"
            );
            assert_eq!(
                message.headers, record.headers,
                "partition {partition} offset {offset}: headers"
            );
            if let Some(timestamp_ms) = record.timestamp_ms {
                assert_eq!(
                    message.timestamp_ms,
                    Some(timestamp_ms),
                    "partition {partition} offset {offset}: timestamp"
                );
            }
        }
    }
}

/// Creates a topic through the Kafka CreateTopics API.
pub fn create_topic(bootstrap: &str, topic: &str, partitions_count: i32) {
    create_topic_with_configs(bootstrap, topic, partitions_count, &[]);
}

/// Creates a topic with topic configs (e.g. `cleanup.policy`) through CreateTopics.
pub fn create_topic_with_configs(
    bootstrap: &str,
    topic: &str,
    partitions_count: i32,
    configs: &[(&str, &str)],
) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("create admin client");
    let mut new_topic = NewTopic::new(topic, partitions_count, TopicReplication::Fixed(1));
    for (key, value) in configs {
        new_topic = new_topic.set(key, value);
    }
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let results = futures_lite::future::block_on(admin.create_topics([&new_topic], &options))
        .expect("CreateTopics request");
    for result in results {
        if let Err((name, code)) = result {
            panic!("CreateTopics {name} failed: {code:?}");
        }
    }
}

/// Partition count and leader broker ids for `topic`, as the broker's Metadata reports them.
pub fn topic_leaders(consumer: &BaseConsumer, topic: &str) -> Result<Vec<(i32, i32)>, String> {
    let metadata = consumer
        .fetch_metadata(Some(topic), CLIENT_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let Some(entry) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(format!("topic {topic} missing from Metadata response"));
    };
    if let Some(error) = entry.error() {
        return Err(format!("{:?}", RDKafkaErrorCode::from(error)));
    }
    let mut leaders: Vec<(i32, i32)> = entry
        .partitions()
        .iter()
        .map(|p| (p.id(), p.leader()))
        .collect();
    leaders.sort();
    Ok(leaders)
}

// ---------------------------------------------------------------------------------------------
// kcat
// ---------------------------------------------------------------------------------------------

/// The result of one kcat run; stdout went to a file so big outputs cannot fill a pipe.
pub struct KcatOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs kcat with `args`, feeding `stdin_path` if given, and kills it after `timeout`.
pub fn run_kcat(args: &[&str], stdin_path: Option<&Path>, timeout: Duration) -> KcatOutput {
    let dir = tempfile::tempdir().expect("kcat temp dir");
    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    let stdin = match stdin_path {
        Some(path) => Stdio::from(File::open(path).expect("open kcat input")),
        None => Stdio::null(),
    };
    let mut child = Command::new("kcat")
        .args(args)
        // cargo test puts the build's library dirs on LD_LIBRARY_PATH, and rdkafka-sys leaves
        // its vendored librdkafka.so.1 there (built without zstd). kcat must use its own.
        .env_remove("LD_LIBRARY_PATH")
        .stdin(stdin)
        .stdout(Stdio::from(
            File::create(&stdout_path).expect("kcat stdout"),
        ))
        .stderr(Stdio::from(
            File::create(&stderr_path).expect("kcat stderr"),
        ))
        .spawn()
        .expect("spawn kcat (is it installed? .ci/run installs it)");
    let status = match wait_child(&mut child, timeout) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "kcat {args:?} did not finish within {timeout:?}\n--- kcat stderr ---\n{}",
                read_tail(&stderr_path, 16 * 1024)
            );
        }
    };
    KcatOutput {
        status,
        stdout: std::fs::read(&stdout_path).expect("read kcat stdout"),
        stderr: read_tail(&stderr_path, 64 * 1024),
    }
}

/// Writes `lines` to a new temp file (kept alive by the returned handle).
pub fn write_lines(lines: impl Iterator<Item = String>) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp input file");
    {
        let mut writer = std::io::BufWriter::new(file.as_file_mut());
        for line in lines {
            writer.write_all(line.as_bytes()).expect("write input");
            writer.write_all(b"\n").expect("write input");
        }
        writer.flush().expect("flush input");
    }
    file
}

/// The address of the shard leading `topic`/`partition`, from Metadata and the ready line.
pub fn leader_address(broker: &Broker, topic: &str, partition: i32) -> String {
    let probe = consumer(broker.bootstrap(), &[]);
    let mut leaders = Err(String::new());
    wait_until("the topic's leaders in Metadata", CLIENT_TIMEOUT, || {
        leaders = topic_leaders(&probe, topic);
        leaders.is_ok()
    });
    let leaders = leaders.expect("leaders");
    let (_, leader) = leaders
        .iter()
        .find(|(p, _)| *p == partition)
        .unwrap_or_else(|| panic!("partition {partition} missing from {leaders:?}"));
    broker
        .ready_line()
        .brokers
        .iter()
        .find(|(id, _)| id == leader)
        .map(|(_, address)| address.clone())
        .unwrap_or_else(|| {
            panic!(
                "leader {leader} is not a shard of {:?}",
                broker.ready_line()
            )
        })
}

/// What a background well-behaved client saw while a test abused the broker.
#[derive(Debug)]
pub struct HealthyReport {
    pub rounds_count: usize,
    pub messages_count: usize,
    pub round_max: Duration,
    pub failures: Vec<String>,
}

/// An rdkafka producer on its own connections that produces small acks=all rounds to `topic`
/// until stopped, timing each round; `finish` then reads everything back with a consumer and
/// checks that exactly what was acknowledged is there. The proof that other clients "see no
/// interruption": no failed delivery, no lost message, and every round within a bound.
pub struct HealthyClient {
    topic: String,
    bootstrap: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<thread::JoinHandle<HealthyReport>>,
}

impl HealthyClient {
    pub const ROUND_MESSAGES: usize = 20;

    pub fn start(broker: &Broker) -> HealthyClient {
        let topic = topic_name("healthy");
        create_topic(broker.bootstrap(), &topic, 2);
        let bootstrap = broker.bootstrap().to_string();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (topic, bootstrap, stop) = (topic.clone(), bootstrap.clone(), stop.clone());
            thread::spawn(move || {
                let producer = producer(&bootstrap, &[("message.timeout.ms", "30000")]);
                let mut report = HealthyReport {
                    rounds_count: 0,
                    messages_count: 0,
                    round_max: Duration::ZERO,
                    failures: Vec::new(),
                };
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let round = report.rounds_count;
                    let records: Vec<TestRecord> = (0..Self::ROUND_MESSAGES)
                        .map(|i| TestRecord::new(format!("r{round}"), format!("m{i}")))
                        .collect();
                    let started = Instant::now();
                    let deliveries = try_produce_all(&producer, &topic, &records);
                    report.round_max = report.round_max.max(started.elapsed());
                    report.rounds_count += 1;
                    report.messages_count += deliveries.len();
                    report
                        .failures
                        .extend(deliveries.iter().filter_map(|d| d.error.clone()).take(3));
                    thread::sleep(Duration::from_millis(20));
                }
                report
            })
        };
        HealthyClient {
            topic,
            bootstrap,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops producing, reads the topic back, and asserts nothing failed, nothing was lost and
    /// no round took longer than `round_bound`.
    pub fn finish(mut self, round_bound: Duration) -> HealthyReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let report = self
            .thread
            .take()
            .expect("started")
            .join()
            .expect("healthy client thread panicked");
        assert!(
            report.failures.is_empty(),
            "the well-behaved client saw failed deliveries: {report:?}"
        );
        assert!(report.rounds_count > 0, "the well-behaved client never ran");
        assert!(
            report.round_max <= round_bound,
            "a well-behaved produce round took {:?} (bound {round_bound:?}): {report:?}",
            report.round_max
        );
        let consumer = consumer(&self.bootstrap, &[]);
        assign(&consumer, &self.topic, &[(0, 0), (1, 0)]);
        let consumed = consume_count(&consumer, report.messages_count, CLIENT_TIMEOUT);
        assert_eq!(
            consumed.len(),
            report.messages_count,
            "the well-behaved client's messages read back"
        );
        eprintln!("well-behaved client: {report:?}");
        report
    }
}

impl Drop for HealthyClient {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether python3 can run `import` (e.g. `from confluent_kafka import Producer`). In CI
/// (`CI` set) a missing client fails the test; elsewhere the caller skips its scenario.
pub fn python_client_available(import: &str) -> bool {
    let available = Command::new("python3")
        .args(["-c", import])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 must be able to `{import}` (pip install 'confluent-kafka==2.16.*')"
        );
        eprintln!("skipping: python3 cannot `{import}`");
    }
    available
}
