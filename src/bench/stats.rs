//! Counters and HDR latency histograms. Each client thread records into its own
//! [`Recorder`] (no sharing on the hot path) and ships a [`Snapshot`] to the main thread every
//! reporting interval, which resets the recorder's interval state.

use std::time::Instant;

use hdrhistogram::Histogram;

use super::batch_builder::BatchMeta;

/// Latencies are kept in nanoseconds, 3 significant digits, up to an hour.
const LATENCY_NS_MAX: u64 = 3_600_000_000_000;
/// A batch's ack latency is recorded as at most this many evenly spaced, weighted samples.
const ACK_SAMPLES_PER_BATCH_MAX: u64 = 64;

/// The bench's monotonic clock; every thread shares one base so stamps compare across threads.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            base: Instant::now(),
        }
    }

    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("static histogram bounds are valid")
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub sent_msgs: u64,
    pub sent_bytes: u64,
    pub acked_msgs: u64,
    pub acked_bytes: u64,
    pub consumed_msgs: u64,
    pub consumed_bytes: u64,
    pub errors: u64,
    /// Transactional mode: transactions committed and the messages they held.
    pub committed_txns: u64,
    pub committed_msgs: u64,
    /// Fixed rate: how far (ns) the producers' schedule fell behind at worst. A large value
    /// means the client, not the broker, limited the offered load in that interval.
    pub schedule_lag_ns_max: u64,
}

impl Counters {
    pub fn add(&mut self, other: &Counters) {
        self.sent_msgs += other.sent_msgs;
        self.sent_bytes += other.sent_bytes;
        self.acked_msgs += other.acked_msgs;
        self.acked_bytes += other.acked_bytes;
        self.consumed_msgs += other.consumed_msgs;
        self.consumed_bytes += other.consumed_bytes;
        self.errors += other.errors;
        self.committed_txns += other.committed_txns;
        self.committed_msgs += other.committed_msgs;
        self.schedule_lag_ns_max = self.schedule_lag_ns_max.max(other.schedule_lag_ns_max);
    }
}

/// One thread's measurements since its last snapshot.
pub struct Recorder {
    pub counters: Counters,
    pub ack_latency: Histogram<u64>,
    pub e2e_latency: Histogram<u64>,
    pub last_error: Option<String>,
}

/// What a thread sends to the main thread every interval.
pub struct Snapshot {
    pub thread_id: usize,
    pub counters: Counters,
    pub ack_latency: Histogram<u64>,
    pub e2e_latency: Histogram<u64>,
    pub last_error: Option<String>,
    /// The thread has finished (its producers and consumers returned).
    pub finished: bool,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            counters: Counters::default(),
            ack_latency: latency_histogram(),
            e2e_latency: latency_histogram(),
            last_error: None,
        }
    }

    /// Records the acknowledgement at `now_ns` of every message in a batch. Messages' intended
    /// send times are spread evenly between the batch's first and last.
    pub fn record_ack(&mut self, meta: &BatchMeta, now_ns: u64) {
        let n = u64::from(meta.record_count);
        if n == 0 {
            return;
        }
        self.counters.acked_msgs += n;
        self.counters.acked_bytes += meta.payload_bytes;
        let span = meta.last_intended_ns.saturating_sub(meta.first_intended_ns);
        let samples = n.min(ACK_SAMPLES_PER_BATCH_MAX);
        for k in 0..samples {
            let weight = n / samples + u64::from(k < n % samples);
            let at = if samples > 1 {
                meta.first_intended_ns + span * k / (samples - 1)
            } else {
                meta.first_intended_ns
            };
            self.ack_latency
                .saturating_record_n(now_ns.saturating_sub(at).max(1), weight);
        }
    }

    pub fn record_e2e(&mut self, stamp_ns: u64, now_ns: u64) {
        self.e2e_latency
            .saturating_record(now_ns.saturating_sub(stamp_ns).max(1));
    }

    pub fn error(&mut self, error: String) {
        self.counters.errors += 1;
        self.last_error = Some(error);
    }

    pub fn take(&mut self, thread_id: usize, finished: bool) -> Snapshot {
        let snapshot = Snapshot {
            thread_id,
            counters: self.counters,
            ack_latency: self.ack_latency.clone(),
            e2e_latency: self.e2e_latency.clone(),
            last_error: self.last_error.take(),
            finished,
        };
        self.counters = Counters::default();
        self.ack_latency.reset();
        self.e2e_latency.reset();
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_acks_weigh_every_message() {
        let mut recorder = Recorder::new();
        let meta = BatchMeta {
            record_count: 1000,
            payload_bytes: 100_000,
            first_intended_ns: 0,
            last_intended_ns: 999_000,
        };
        recorder.record_ack(&meta, 1_000_000);
        assert_eq!(recorder.ack_latency.len(), 1000);
        assert_eq!(recorder.counters.acked_msgs, 1000);
        let p0 = recorder.ack_latency.value_at_quantile(0.0);
        let p100 = recorder.ack_latency.max();
        assert!((900..=1_100).contains(&p0), "{p0}");
        assert!((999_000..=1_001_000).contains(&p100), "{p100}");
    }
}
