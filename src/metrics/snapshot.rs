//! Plain, `Send` copies of a shard's metrics, published once per second for the admin thread.

use std::time::Instant;

use hdrhistogram::Histogram;

use super::shard_metrics::{
    Distribution, PartitionCounters, ShardMetrics, API_SLOTS, HISTOGRAMS, HISTOGRAM_COUNT,
};

/// Quantiles reported for the most recent publish interval, and since the start.
pub(crate) const RECENT_QUANTILES: &[f64] = &[0.5, 0.99, 0.999, 1.0];

/// A Prometheus histogram: cumulative counts per upper bound (same units as recorded).
#[derive(Debug, Clone, Default)]
pub struct HistogramSnapshot {
    pub buckets: Vec<(u64, u64)>,
    pub count: u64,
    pub sum: u64,
    /// (quantile, value) over the last publish interval; empty when nothing was recorded.
    pub recent: Vec<(f64, u64)>,
    /// (quantile, value) since the shard started, at the histogram's precision (the buckets
    /// are too coarse to tell 0.3 ms from 0.9 ms); empty when nothing was recorded.
    pub overall: Vec<(f64, u64)>,
}

impl HistogramSnapshot {
    /// `previous` is the histogram as of the last publish, to compute recent quantiles.
    pub(crate) fn of(
        distribution: &Distribution,
        bounds: &[u64],
        previous: Option<&Histogram<u64>>,
    ) -> HistogramSnapshot {
        let histogram = &distribution.histogram;
        let mut buckets: Vec<(u64, u64)> = bounds.iter().map(|&b| (b, 0)).collect();
        for value in histogram.iter_recorded() {
            let at = histogram.lowest_equivalent(value.value_iterated_to());
            for (bound, count) in buckets.iter_mut() {
                if at <= *bound {
                    *count += value.count_at_value();
                }
            }
        }
        let mut recent = Vec::new();
        let mut window = histogram.clone();
        let subtracted = match previous {
            Some(previous) => window.subtract(previous).is_ok(),
            None => true,
        };
        if subtracted && !window.is_empty() {
            recent = RECENT_QUANTILES
                .iter()
                .map(|&q| (q, window.value_at_quantile(q)))
                .collect();
        }
        let overall = if histogram.is_empty() {
            Vec::new()
        } else {
            RECENT_QUANTILES
                .iter()
                .map(|&q| (q, histogram.value_at_quantile(q)))
                .collect()
        };
        HistogramSnapshot {
            buckets,
            count: histogram.len(),
            sum: distribution.sum,
            recent,
            overall,
        }
    }
}

/// The log's own gauges for one partition.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogGauges {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub log_end_offset: i64,
    pub size_bytes: u64,
    pub segment_count: usize,
}

#[derive(Debug, Clone)]
pub struct PartitionSnapshot {
    pub topic: String,
    pub partition: i32,
    pub bytes_in: u64,
    pub messages_in: u64,
    pub bytes_out: u64,
    pub messages_out: u64,
    pub log: LogGauges,
}

/// A committed consumer-group offset, from the group's coordinator shard.
#[derive(Debug, Clone)]
pub struct GroupOffsetSnapshot {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub committed_offset: i64,
}

#[derive(Debug, Clone)]
pub struct ShardSnapshot {
    pub shard_id: usize,
    pub taken_at: Instant,
    /// (api key, requests), non-zero only.
    pub requests: Vec<(i16, u64)>,
    /// ((api key, error code), answers), non-zero only.
    pub errors: Vec<((i16, i16), u64)>,
    pub network_bytes_in: u64,
    pub network_bytes_out: u64,
    pub connections_active: u64,
    pub connections_accepted: u64,
    pub connections_refused: u64,
    /// (in use, bound) of the shard's in-flight request bytes.
    pub inflight_bytes: Option<(u64, u64)>,
    pub partitions: Vec<PartitionSnapshot>,
    pub group_offsets: Vec<GroupOffsetSnapshot>,
    /// In the order of `HISTOGRAMS` (indexed by `Hist`).
    pub histograms: Vec<HistogramSnapshot>,
}

/// The histograms as of the previous publish, for recent quantiles.
pub(crate) struct PreviousHistograms([Option<Histogram<u64>>; HISTOGRAM_COUNT]);

impl Default for PreviousHistograms {
    fn default() -> PreviousHistograms {
        PreviousHistograms(std::array::from_fn(|_| None))
    }
}

impl ShardSnapshot {
    /// Copies the counters out of `metrics`. `logs` are this shard's partitions with their
    /// gauges; counters of partitions no longer here are dropped.
    pub(crate) fn take(
        shard_id: usize,
        metrics: &ShardMetrics,
        logs: Vec<(String, i32, LogGauges)>,
        group_offsets: Vec<GroupOffsetSnapshot>,
        previous: &mut PreviousHistograms,
    ) -> ShardSnapshot {
        let requests = (0..API_SLOTS)
            .filter_map(|slot| {
                let count = metrics.requests[slot].get();
                let api_key = i16::try_from(slot).ok()?;
                (count > 0).then_some((api_key, count))
            })
            .collect();
        let mut errors: Vec<_> = metrics
            .errors
            .borrow()
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        errors.sort_unstable();
        let mut counters = metrics.partitions.borrow_mut();
        counters.retain(|topic, _| logs.iter().any(|(t, _, _)| t == topic));
        let partitions = logs
            .into_iter()
            .map(|(topic, partition, log)| {
                let c = counters
                    .get(&topic)
                    .and_then(|parts| parts.get(usize::try_from(partition).ok()?))
                    .copied()
                    .unwrap_or_else(PartitionCounters::default);
                PartitionSnapshot {
                    topic,
                    partition,
                    bytes_in: c.bytes_in,
                    messages_in: c.messages_in,
                    bytes_out: c.bytes_out,
                    messages_out: c.messages_out,
                    log,
                }
            })
            .collect();
        drop(counters);
        let inflight_bytes = metrics.inflight.borrow().as_ref().map(|probe| {
            let available = (probe.available)();
            (
                probe.bytes_max.saturating_sub(available) as u64,
                probe.bytes_max as u64,
            )
        });
        let histograms = metrics
            .histograms
            .iter()
            .zip(previous.0.iter_mut())
            .zip(HISTOGRAMS.iter())
            .map(|((d, prev), spec)| {
                let d: std::cell::Ref<'_, Distribution> = d.borrow();
                let snapshot = HistogramSnapshot::of(&d, spec.bounds, prev.as_ref());
                *prev = Some(d.histogram.clone());
                snapshot
            })
            .collect();
        ShardSnapshot {
            shard_id,
            taken_at: Instant::now(),
            requests,
            errors,
            network_bytes_in: metrics.network_bytes_in.get(),
            network_bytes_out: metrics.network_bytes_out.get(),
            connections_active: metrics.connections_active.get(),
            connections_accepted: metrics.connections_accepted.get(),
            connections_refused: metrics.connections_refused.get(),
            inflight_bytes,
            partitions,
            group_offsets,
            histograms,
        }
    }
}
