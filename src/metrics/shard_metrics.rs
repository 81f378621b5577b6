//! `ShardMetrics`: one shard's counters and histograms, kept in a thread-local.
//!
//! Concurrency contract: each shard is one thread, so its metrics are plain `Cell`s and
//! `RefCell`s that only that thread touches. Updates are a TLS lookup plus an add; nothing
//! here allocates on the hot path except the first time a partition or an (api, error code)
//! pair is seen. The publisher task copies them out once per second (see `crate::shard::metrics_publisher`).

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use fnv::FnvHashMap;
use hdrhistogram::Histogram;

/// API keys 0..API_SLOTS-1 are counted individually; anything larger lands in the last slot.
pub(crate) const API_SLOTS: usize = 128;

/// Kafka's API key numbers for the two APIs with latency histograms.
pub(crate) const API_PRODUCE: i16 = 0;
pub(crate) const API_FETCH: i16 = 1;

/// Latencies are recorded in microseconds, up to a minute (longer ones saturate).
const LATENCY_US_MAX: u64 = 60_000_000;
/// Records per group commit, up to ten million.
const BATCH_RECORDS_MAX: u64 = 10_000_000;
/// Two significant figures: 1% precision, ~20 KiB per histogram.
const HISTOGRAM_SIGFIGS: u8 = 2;

/// Upper bounds of the latency buckets, in microseconds (exported in seconds).
pub(crate) const LATENCY_BOUNDS_US: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Upper bounds of the group-commit size buckets, in records.
pub(crate) const BATCH_BOUNDS_RECORDS: &[u64] = &[
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 50_000, 100_000,
];

/// The shard's histograms, in the order of [`HISTOGRAMS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hist {
    ProduceLatency,
    ProduceAcksAllLatency,
    ProduceAcks1Latency,
    ProduceDurableWait,
    FetchLatency,
    FsyncLatency,
    CommitRound,
    LogWrite,
    WrittenToDurable,
    GroupCommitRecords,
}

pub(crate) const HISTOGRAM_COUNT: usize = 10;

/// How one histogram is kept and exported.
pub(crate) struct HistogramSpec {
    pub name: &'static str,
    pub help: &'static str,
    /// From recorded units to exported ones (microseconds to seconds: 1e6).
    pub divisor: f64,
    /// The largest value recorded (larger ones saturate).
    pub max: u64,
    /// Upper bounds of the exported buckets, in recorded units.
    pub bounds: &'static [u64],
}

const fn latency_spec(name: &'static str, help: &'static str) -> HistogramSpec {
    HistogramSpec {
        name,
        help,
        divisor: 1e6,
        max: LATENCY_US_MAX,
        bounds: LATENCY_BOUNDS_US,
    }
}

/// Indexed by [`Hist`]. The produce-path ones decompose an acks=all answer: the request's
/// time in the broker = (append) + write + wait for a commit round + fsync + answer.
pub(crate) const HISTOGRAMS: [HistogramSpec; HISTOGRAM_COUNT] = [
    latency_spec(
        "sluice_produce_latency_seconds",
        "Produce requests, from frame read to answer written (acks=all includes the fsync).",
    ),
    latency_spec(
        "sluice_produce_acks_all_latency_seconds",
        "acks=all produce requests, from frame read to answer written.",
    ),
    latency_spec(
        "sluice_produce_acks_1_latency_seconds",
        "acks=1 produce requests, from frame read to answer written.",
    ),
    latency_spec(
        "sluice_produce_durable_wait_seconds",
        "acks=all produce requests, from append to every partition of the request durable.",
    ),
    latency_spec(
        "sluice_fetch_latency_seconds",
        "Fetch requests, from frame read to answer written (long-poll waits included).",
    ),
    latency_spec(
        "sluice_fsync_latency_seconds",
        "fdatasync of a partition's active segment (each file's own).",
    ),
    latency_spec(
        "sluice_commit_round_seconds",
        "Group-commit rounds, from their first fdatasync submitted to their last one done.",
    ),
    latency_spec(
        "sluice_log_write_seconds",
        "O_DIRECT writes of queued batches to a segment file.",
    ),
    latency_spec(
        "sluice_written_to_durable_seconds",
        "Per partition, from a write completing to its high watermark covering it (waiting for a round, and the round).",
    ),
    HistogramSpec {
        name: "sluice_group_commit_records",
        help: "Records made durable by one fsync (group-commit batch size).",
        divisor: 1.0,
        max: BATCH_RECORDS_MAX,
        bounds: BATCH_BOUNDS_RECORDS,
    },
];

/// A histogram plus the exact sum Prometheus wants (hdrhistogram only keeps the mean).
pub(crate) struct Distribution {
    pub histogram: Histogram<u64>,
    pub sum: u64,
}

impl Distribution {
    fn new(max: u64) -> Distribution {
        Distribution {
            histogram: Histogram::new_with_bounds(1, max, HISTOGRAM_SIGFIGS)
                .expect("constant histogram bounds are valid"),
            sum: 0,
        }
    }

    fn record(&mut self, value: u64) {
        self.histogram.saturating_record(value.max(1));
        self.sum = self.sum.saturating_add(value);
    }
}

/// Counters of one partition on this shard.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PartitionCounters {
    pub bytes_in: u64,
    pub messages_in: u64,
    pub bytes_out: u64,
    pub messages_out: u64,
}

/// Reports the shard's in-flight request bytes (the bound, and a probe for what is free).
pub(crate) struct InflightProbe {
    pub bytes_max: usize,
    pub available: Box<dyn Fn() -> usize>,
}

pub(crate) struct ShardMetrics {
    pub requests: [Cell<u64>; API_SLOTS],
    /// (api key, error code) → count. Only non-zero codes are counted.
    pub errors: RefCell<FnvHashMap<(i16, i16), u64>>,
    pub network_bytes_in: Cell<u64>,
    pub network_bytes_out: Cell<u64>,
    pub connections_active: Cell<u64>,
    pub connections_accepted: Cell<u64>,
    pub connections_refused: Cell<u64>,
    /// topic → counters indexed by partition number.
    pub partitions: RefCell<FnvHashMap<String, Vec<PartitionCounters>>>,
    /// Indexed by [`Hist`]; [`HISTOGRAMS`] describes each.
    pub histograms: [RefCell<Distribution>; HISTOGRAM_COUNT],
    pub inflight: RefCell<Option<InflightProbe>>,
}

impl ShardMetrics {
    fn new() -> ShardMetrics {
        ShardMetrics {
            requests: std::array::from_fn(|_| Cell::new(0)),
            errors: RefCell::new(FnvHashMap::default()),
            network_bytes_in: Cell::new(0),
            network_bytes_out: Cell::new(0),
            connections_active: Cell::new(0),
            connections_accepted: Cell::new(0),
            connections_refused: Cell::new(0),
            partitions: RefCell::new(FnvHashMap::default()),
            histograms: std::array::from_fn(|i| RefCell::new(Distribution::new(HISTOGRAMS[i].max))),
            inflight: RefCell::new(None),
        }
    }

    fn record(&self, histogram: Hist, value: u64) {
        self.histograms[histogram as usize]
            .borrow_mut()
            .record(value);
    }

    fn partition(&self, topic: &str, partition: i32, update: impl FnOnce(&mut PartitionCounters)) {
        let Ok(index) = usize::try_from(partition) else {
            return;
        };
        let mut partitions = self.partitions.borrow_mut();
        let counters = match partitions.get_mut(topic) {
            Some(counters) => counters,
            None => partitions.entry(topic.to_owned()).or_default(),
        };
        if counters.len() <= index {
            counters.resize(index + 1, PartitionCounters::default());
        }
        update(&mut counters[index]);
    }
}

thread_local! {
    static METRICS: ShardMetrics = ShardMetrics::new();
}

/// Runs `f` on this thread's metrics.
pub(crate) fn with<R>(f: impl FnOnce(&ShardMetrics) -> R) -> R {
    METRICS.with(f)
}

fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().wrapping_add(n));
}

fn api_slot(api_key: i16) -> usize {
    usize::try_from(api_key).map_or(API_SLOTS - 1, |k| k.min(API_SLOTS - 1))
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

/// Times one request from the moment its frame was read until its answer was written
/// (or it was dropped). Produce and fetch latencies go to their histograms on drop.
#[must_use = "the latency is recorded when the timer is dropped"]
pub struct RequestTimer {
    api_key: i16,
    started: Instant,
    /// A produce request's acks, once its handler has run (see [`RequestTimer::take_acks`]).
    acks: Option<i16>,
}

thread_local! {
    /// The acks of the produce request the handler on this thread ran last; read back right
    /// after it returns (no await between), so no other request can have overwritten it.
    static PRODUCE_ACKS: std::cell::Cell<Option<i16>> = const { std::cell::Cell::new(None) };
}

/// The produce handler tells the request's timer its acks (see [`RequestTimer::take_acks`]).
pub fn produce_acks(acks: i16) {
    PRODUCE_ACKS.with(|a| a.set(Some(acks)));
}

impl RequestTimer {
    /// Counts a request (by the API key in its frame) and its bytes, and starts its timer.
    /// `frame` is the request without its 4-byte size prefix.
    pub fn start(frame: &[u8]) -> RequestTimer {
        let api_key = match frame {
            [high, low, ..] => i16::from_be_bytes([*high, *low]),
            _ => -1,
        };
        with(|m| {
            add(&m.requests[api_slot(api_key)], 1);
            add(&m.network_bytes_in, frame.len() as u64 + 4);
        });
        PRODUCE_ACKS.with(|a| a.set(None));
        RequestTimer {
            api_key,
            started: Instant::now(),
            acks: None,
        }
    }

    /// Call right after the request's handler returned: a produce request's latency then
    /// also goes to the histogram of its acks.
    pub fn take_acks(&mut self) {
        self.acks = PRODUCE_ACKS.with(|a| a.take());
    }
}

impl Drop for RequestTimer {
    fn drop(&mut self) {
        if !matches!(self.api_key, API_PRODUCE | API_FETCH) {
            return;
        }
        let elapsed_us = micros(self.started.elapsed());
        with(|m| match self.api_key {
            API_PRODUCE => {
                m.record(Hist::ProduceLatency, elapsed_us);
                match self.acks {
                    Some(-1) => m.record(Hist::ProduceAcksAllLatency, elapsed_us),
                    Some(1) => m.record(Hist::ProduceAcks1Latency, elapsed_us),
                    _ => {}
                }
            }
            API_FETCH => m.record(Hist::FetchLatency, elapsed_us),
            _ => {}
        });
    }
}

/// Counts bytes written to a client socket.
pub fn bytes_sent(bytes: usize) {
    with(|m| add(&m.network_bytes_out, bytes as u64));
}

/// Keeps the shard's open-connection gauge up while alive.
#[must_use = "the connection is counted as open while the guard lives"]
pub struct ConnectionGuard(());

impl ConnectionGuard {
    pub fn open() -> ConnectionGuard {
        with(|m| {
            add(&m.connections_active, 1);
            add(&m.connections_accepted, 1);
        });
        ConnectionGuard(())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        with(|m| {
            m.connections_active
                .set(m.connections_active.get().saturating_sub(1))
        });
    }
}

/// A connection turned away at the shard's connection limit.
pub fn connection_refused() {
    with(|m| add(&m.connections_refused, 1));
}

/// Counts a non-zero Kafka error code answered for `api_key` (per partition, where the
/// API answers per partition).
pub fn error_code(api_key: i16, code: i16) {
    if code != 0 {
        with(|m| *m.errors.borrow_mut().entry((api_key, code)).or_insert(0) += 1);
    }
}

/// A produce appended `bytes` of record batches holding `messages` records.
pub fn produced(topic: &str, partition: i32, bytes: usize, messages: i64) {
    let messages = u64::try_from(messages).unwrap_or(0);
    with(|m| {
        m.partition(topic, partition, |c| {
            c.bytes_in = c.bytes_in.wrapping_add(bytes as u64);
            c.messages_in = c.messages_in.wrapping_add(messages);
        })
    });
}

/// A fetch answered with these record-batch chunks (whole batches).
pub fn fetched(topic: &str, partition: i32, chunks: &[bytes::Bytes]) {
    if chunks.is_empty() {
        return;
    }
    let bytes: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    let messages = batch_record_count(chunks);
    with(|m| {
        m.partition(topic, partition, |c| {
            c.bytes_out = c.bytes_out.wrapping_add(bytes);
            c.messages_out = c.messages_out.wrapping_add(messages);
        })
    });
}

/// One fdatasync of a partition log took `elapsed` and made `records` records durable.
pub fn fsync_completed(elapsed: Duration, records: i64) {
    with(|m| {
        m.record(Hist::FsyncLatency, micros(elapsed));
        if let Ok(records) = u64::try_from(records) {
            if records > 0 {
                m.record(Hist::GroupCommitRecords, records);
            }
        }
    });
}

/// Records a duration on one of the shard's latency histograms.
pub fn latency(histogram: Hist, elapsed: Duration) {
    with(|m| m.record(histogram, micros(elapsed)));
}

/// Lets the snapshot report the shard's in-flight request bytes against their bound.
pub fn track_inflight_bytes(bytes_max: usize, available: impl Fn() -> usize + 'static) {
    with(|m| {
        *m.inflight.borrow_mut() = Some(InflightProbe {
            bytes_max,
            available: Box::new(available),
        })
    });
}

/// Sums the record counts of the v2 RecordBatches in the concatenation of `chunks` (whole
/// batches, as the log returns them; a chunk boundary may fall inside a batch header).
/// Reads only the headers' batchLength and recordsCount.
pub(crate) fn batch_record_count<C: AsRef<[u8]>>(chunks: &[C]) -> u64 {
    use crate::protocol::batch_layout::{
        LOG_OVERHEAD, OFFSET_LENGTH as LENGTH_AT, OFFSET_RECORDS_COUNT as RECORD_COUNT_AT,
    };
    let total: usize = chunks.iter().map(|c| c.as_ref().len()).sum();
    let mut cursor = ChunkCursor {
        chunks,
        index: 0,
        start: 0,
    };
    let mut records = 0u64;
    let mut position = 0usize;
    while position + RECORD_COUNT_AT + 4 <= total {
        let (Some(length), Some(count)) = (
            cursor.read_i32(position + LENGTH_AT),
            cursor.read_i32(position + RECORD_COUNT_AT),
        ) else {
            break;
        };
        let Ok(length) = usize::try_from(length) else {
            break;
        };
        records += u64::try_from(count).unwrap_or(0);
        position = position.saturating_add(LOG_OVERHEAD).saturating_add(length);
    }
    records
}

/// Reads bytes at increasing offsets of a chunk sequence without concatenating it.
struct ChunkCursor<'a, C> {
    chunks: &'a [C],
    index: usize,
    /// Offset of `chunks[index]` in the concatenation.
    start: usize,
}

impl<C: AsRef<[u8]>> ChunkCursor<'_, C> {
    fn byte(&mut self, at: usize) -> Option<u8> {
        while let Some(chunk) = self.chunks.get(self.index) {
            let chunk = chunk.as_ref();
            if at < self.start + chunk.len() {
                return chunk.get(at.checked_sub(self.start)?).copied();
            }
            self.start += chunk.len();
            self.index += 1;
        }
        None
    }

    fn read_i32(&mut self, at: usize) -> Option<i32> {
        let mut bytes = [0u8; 4];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = self.byte(at + i)?;
        }
        Some(i32::from_be_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: i32, payload: usize) -> Vec<u8> {
        use crate::protocol::batch_layout::{HEADER_BYTES, LOG_OVERHEAD, OFFSET_RECORDS_COUNT};
        let mut b = vec![0u8; HEADER_BYTES + payload];
        let length = i32::try_from(b.len() - LOG_OVERHEAD).expect("small");
        b[8..12].copy_from_slice(&length.to_be_bytes());
        b[OFFSET_RECORDS_COUNT..HEADER_BYTES].copy_from_slice(&records.to_be_bytes());
        b
    }

    #[test]
    fn counts_records_across_batches() {
        let mut chunk = batch(3, 10);
        chunk.extend(batch(5, 0));
        assert_eq!(batch_record_count(&[&chunk[..]]), 8);
        assert_eq!(batch_record_count(&[&chunk[..20]]), 0, "truncated header");
        // Chunk boundaries inside headers (the log splits broker-set fields from the body).
        let pieces = [&chunk[..16], &chunk[16..58], &chunk[58..90], &chunk[90..]];
        assert_eq!(batch_record_count(&pieces), 8);
    }

    #[test]
    fn counters_accumulate_per_partition() {
        produced("t", 2, 100, 4);
        produced("t", 2, 50, 1);
        with(|m| {
            let partitions = m.partitions.borrow();
            let c = partitions.get("t").expect("topic counted")[2];
            assert_eq!((c.bytes_in, c.messages_in), (150, 5));
        });
    }

    #[test]
    fn timer_records_latency_by_api() {
        drop(RequestTimer::start(&[0, 0, 0, 9]));
        drop(RequestTimer::start(&[0, 1, 0, 9]));
        drop(RequestTimer::start(&[0, 3, 0, 9]));
        with(|m| {
            assert_eq!(m.requests[0].get(), 1);
            assert_eq!(m.requests[3].get(), 1);
            let len = |h: Hist| m.histograms[h as usize].borrow().histogram.len();
            assert_eq!(len(Hist::ProduceLatency), 1);
            assert_eq!(len(Hist::FetchLatency), 1);
            assert_eq!(len(Hist::ProduceAcksAllLatency), 0, "acks not told");
        });
        let mut timer = RequestTimer::start(&[0, 0, 0, 9]);
        produce_acks(-1);
        timer.take_acks();
        drop(timer);
        with(|m| {
            let len = |h: Hist| m.histograms[h as usize].borrow().histogram.len();
            assert_eq!(len(Hist::ProduceAcksAllLatency), 1);
            assert_eq!(len(Hist::ProduceAcks1Latency), 0);
        });
    }
}
