//! Aggregation on the main thread: per-interval lines, the measured totals, the final table
//! and the JSON file (which `perf/plot.py` turns into PNG plots).

use hdrhistogram::Histogram;
use serde::Serialize;

use super::stats::{latency_histogram, Counters, Snapshot};

/// Percentiles printed in the table.
const TABLE_PERCENTILES: &[f64] = &[50.0, 99.0, 99.9, 99.99];
/// Percentiles of the curve in the JSON (HDR style: dense towards the tail).
const CURVE_PERCENTILES: &[f64] = &[
    0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 55.0, 60.0, 65.0, 70.0, 75.0, 77.5, 80.0, 82.5, 85.0, 87.5,
    88.75, 90.0, 91.25, 92.5, 93.75, 95.0, 96.0, 96.875, 97.5, 98.0, 98.4375, 99.0, 99.2, 99.5,
    99.6, 99.7, 99.8, 99.9, 99.95, 99.97, 99.99, 99.995, 99.999, 99.9995, 99.9999, 100.0,
];

/// Sums of snapshots over one interval or over the measured window.
pub struct Aggregate {
    pub counters: Counters,
    pub ack_latency: Histogram<u64>,
    pub e2e_latency: Histogram<u64>,
}

impl Default for Aggregate {
    fn default() -> Self {
        Aggregate::new()
    }
}

impl Aggregate {
    pub fn new() -> Aggregate {
        Aggregate {
            counters: Counters::default(),
            ack_latency: latency_histogram(),
            e2e_latency: latency_histogram(),
        }
    }

    pub fn add_snapshot(&mut self, snapshot: &Snapshot) {
        self.counters.add(&snapshot.counters);
        // Both histograms have the same bounds, so adding cannot fail.
        self.ack_latency.add(&snapshot.ack_latency).ok();
        self.e2e_latency.add(&snapshot.e2e_latency).ok();
    }

    pub fn add(&mut self, other: &Aggregate) {
        self.counters.add(&other.counters);
        self.ack_latency.add(&other.ack_latency).ok();
        self.e2e_latency.add(&other.e2e_latency).ok();
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p75_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub p9999_ms: f64,
    pub max_ms: f64,
    /// `(percentile, latency_ms)` pairs for an HDR-style percentile plot.
    pub curve: Vec<(f64, f64)>,
}

pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl LatencySummary {
    pub fn of(histogram: &Histogram<u64>) -> LatencySummary {
        let at = |p: f64| ms(histogram.value_at_percentile(p));
        LatencySummary {
            count: histogram.len(),
            mean_ms: histogram.mean() / 1e6,
            p50_ms: at(50.0),
            p75_ms: at(75.0),
            p90_ms: at(90.0),
            p95_ms: at(95.0),
            p99_ms: at(99.0),
            p999_ms: at(99.9),
            p9999_ms: at(99.99),
            max_ms: ms(histogram.max()),
            curve: if histogram.is_empty() {
                Vec::new()
            } else {
                CURVE_PERCENTILES.iter().map(|&p| (p, at(p))).collect()
            },
        }
    }
}

/// One line of the time series.
#[derive(Debug, Clone, Serialize)]
pub struct IntervalPoint {
    pub t_s: f64,
    pub phase: &'static str,
    pub produce_msgs_per_s: f64,
    pub produce_mb_per_s: f64,
    pub consume_msgs_per_s: f64,
    pub consume_mb_per_s: f64,
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    pub e2e_p50_ms: f64,
    pub e2e_p99_ms: f64,
    pub errors: u64,
    pub schedule_lag_ms_max: f64,
}

impl IntervalPoint {
    pub fn of(t_s: f64, seconds: f64, phase: &'static str, agg: &Aggregate) -> IntervalPoint {
        let c = &agg.counters;
        IntervalPoint {
            t_s,
            phase,
            produce_msgs_per_s: c.acked_msgs as f64 / seconds,
            produce_mb_per_s: c.acked_bytes as f64 / seconds / 1e6,
            consume_msgs_per_s: c.consumed_msgs as f64 / seconds,
            consume_mb_per_s: c.consumed_bytes as f64 / seconds / 1e6,
            ack_p50_ms: ms(agg.ack_latency.value_at_percentile(50.0)),
            ack_p99_ms: ms(agg.ack_latency.value_at_percentile(99.0)),
            e2e_p50_ms: ms(agg.e2e_latency.value_at_percentile(50.0)),
            e2e_p99_ms: ms(agg.e2e_latency.value_at_percentile(99.0)),
            errors: c.errors,
            schedule_lag_ms_max: ms(c.schedule_lag_ns_max),
        }
    }

    pub fn line(&self) -> String {
        format!(
            "[{:>5.0}s {:<7}] produce {:>9} msg/s {:>8.1} MB/s ack p50 {:>7.2} p99 {:>7.2} ms | consume {:>9} msg/s e2e p50 {:>7.2} p99 {:>7.2} ms{}",
            self.t_s,
            self.phase,
            human(self.produce_msgs_per_s),
            self.produce_mb_per_s,
            self.ack_p50_ms,
            self.ack_p99_ms,
            human(self.consume_msgs_per_s),
            self.e2e_p50_ms,
            self.e2e_p99_ms,
            if self.errors > 0 {
                format!(" | {} errors", self.errors)
            } else if self.schedule_lag_ms_max >= 10.0 {
                format!(" | client behind schedule by {:.0} ms", self.schedule_lag_ms_max)
            } else {
                String::new()
            }
        )
    }
}

/// Throughput over the measured window.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub msgs_per_s: f64,
    pub mb_per_s: f64,
    pub msgs: u64,
    pub seconds: f64,
}

impl Throughput {
    pub fn of(msgs: u64, bytes: u64, seconds: f64) -> Throughput {
        let seconds = seconds.max(1e-9);
        Throughput {
            msgs_per_s: msgs as f64 / seconds,
            mb_per_s: bytes as f64 / seconds / 1e6,
            msgs,
            seconds,
        }
    }
}

/// The whole result, written as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: Option<String>,
    pub target: &'static str,
    pub workload: serde_json::Value,
    pub produce: Throughput,
    pub consume: Throughput,
    /// Catch-up mode: the consumers' rate reading the backlog.
    pub catch_up: Option<Throughput>,
    pub produce_ack_latency: LatencySummary,
    pub end_to_end_latency: LatencySummary,
    pub errors: u64,
    pub last_error: Option<String>,
    /// Fixed rate: the worst lag of the producers' schedule in the measured window (ms).
    pub schedule_lag_ms_max: f64,
    /// Transactional mode: over the whole run, transactions committed and their messages.
    pub committed_transactions: u64,
    pub committed_msgs: u64,
    pub series: Vec<IntervalPoint>,
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "\n{:<18} {:>12} {:>10}\n",
            "throughput", "msgs/s", "MB/s"
        ));
        out.push_str(&format!(
            "{:<18} {:>12} {:>10.1}\n",
            "produce (acked)",
            human(self.produce.msgs_per_s),
            self.produce.mb_per_s
        ));
        out.push_str(&format!(
            "{:<18} {:>12} {:>10.1}\n",
            "consume",
            human(self.consume.msgs_per_s),
            self.consume.mb_per_s
        ));
        if self.committed_transactions > 0 {
            out.push_str(&format!(
                "{:<18} {:>12}   ({} msgs in the whole run)\n",
                "transactions", self.committed_transactions, self.committed_msgs
            ));
        }
        if let Some(catch_up) = &self.catch_up {
            out.push_str(&format!(
                "{:<18} {:>12} {:>10.1}   ({} msgs in {:.2} s)\n",
                "consume catch-up",
                human(catch_up.msgs_per_s),
                catch_up.mb_per_s,
                catch_up.msgs,
                catch_up.seconds
            ));
        }
        out.push_str(&format!("\n{:<18}", "latency (ms)"));
        for p in TABLE_PERCENTILES {
            out.push_str(&format!(" {:>9}", format!("p{p}")));
        }
        out.push_str(&format!(" {:>9} {:>10}\n", "max", "count"));
        for (name, summary) in [
            ("produce ack", &self.produce_ack_latency),
            ("end-to-end", &self.end_to_end_latency),
        ] {
            out.push_str(&format!("{name:<18}"));
            for v in [
                summary.p50_ms,
                summary.p99_ms,
                summary.p999_ms,
                summary.p9999_ms,
                summary.max_ms,
            ] {
                out.push_str(&format!(" {v:>9.3}"));
            }
            out.push_str(&format!(" {:>10}\n", summary.count));
        }
        if self.schedule_lag_ms_max >= 10.0 {
            out.push_str(&format!(
                "\nwarning: the client fell up to {:.0} ms behind its send schedule; latency includes that\n",
                self.schedule_lag_ms_max
            ));
        }
        if self.errors > 0 {
            out.push_str(&format!(
                "\nerrors: {} (last: {})\n",
                self.errors,
                self.last_error.as_deref().unwrap_or("?")
            ));
        }
        out
    }
}

/// 1234567.0 -> "1.23M".
pub fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.3}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}K", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}
