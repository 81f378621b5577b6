//! The workload every client thread runs (shared, read-only) and the run's control flags.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};

use super::batch_builder::Compression;
use super::stats::Clock;
use crate::client::txn_admin::TransactionalProducer;

/// How messages get keys, as in the OpenMessaging Benchmark's `keyDistributor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyDistribution {
    /// No key; each producer fills one partition's batch, then moves to the next (Kafka's
    /// sticky partitioner).
    None,
    /// Keys `key-0..key-N` in turn; the partition follows the key.
    RoundRobin,
    /// A random key of `key-0..key-N` per message; the partition follows the key.
    Random,
}

/// Everything a producer or consumer task needs to know, fixed for the run.
#[derive(Debug, Clone)]
pub struct Workload {
    pub topic: String,
    /// Broker addresses, indexed by broker index (not node id).
    pub broker_addrs: Vec<String>,
    /// The broker index leading each partition.
    pub partition_broker: Vec<usize>,
    pub message_bytes: usize,
    pub batch_bytes: usize,
    pub linger_ns: u64,
    pub acks: i16,
    pub compression: Compression,
    pub keys: KeyDistribution,
    pub key_count: usize,
    /// Messages per second for each producer; `None` = as fast as possible.
    pub producer_rate: Option<f64>,
    pub in_flight_max: usize,
    pub buffer_bytes: u64,
    pub request_bytes_max: usize,
    pub fetch_bytes_max: i32,
    pub partition_fetch_bytes_max: i32,
    pub fetch_wait_ms: i32,
    /// Consumers start only once producers are done, from where the run started.
    pub catch_up: bool,
    /// `--transactions`: each producer's identity, indexed by producer id; empty otherwise.
    pub transactional: Vec<TransactionalProducer>,
    pub transaction_records: u64,
    /// `--security-protocol SSL`: the TLS client configuration of every connection.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    pub produce_version: i16,
    pub fetch_version: i16,
}

/// Run-wide flags the main thread flips and the client threads read.
#[derive(Debug)]
pub struct Control {
    pub clock: Clock,
    pub stop_producing: AtomicBool,
    pub producers_running: AtomicUsize,
    /// Catch-up mode: consumers wait for this.
    pub consumers_go: AtomicBool,
    pub stop_consuming: AtomicBool,
    /// Clock time of the latest fetch answer that carried records.
    pub last_consume_ns: AtomicU64,
}

impl Control {
    pub fn new(producer_count: usize) -> Control {
        Control {
            clock: Clock::new(),
            stop_producing: AtomicBool::new(false),
            producers_running: AtomicUsize::new(producer_count),
            consumers_go: AtomicBool::new(false),
            stop_consuming: AtomicBool::new(false),
            last_consume_ns: AtomicU64::new(0),
        }
    }
}

/// A small fast PRNG for key choice and filler (xorshift64*); quality is irrelevant here.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

/// Filler for message values: words from a small vocabulary, so that compression has about
/// as much to do as on log lines.
pub fn filler(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "GET",
        "POST",
        "/api/v1/orders",
        "200",
        "404",
        "user",
        "session",
        "latency_ms",
        "ok",
        "error",
        "timeout",
        "shard",
        "partition",
        "offset",
        "commit",
        "region=eu-west",
    ];
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
        out.push(b' ');
        if rng.below(8) == 0 {
            out.extend_from_slice(format!("{}", rng.next_u64() % 100_000).as_bytes());
        }
    }
    out.truncate(len);
    out
}
