//! Broker metrics: per-shard counters and histograms updated inline on the data path,
//! published once per second, and served in Prometheus text format by the admin endpoint.
//!
//! Design (thread-per-core, no locks on the data path):
//!
//! 1. Each shard thread keeps a [`shard_metrics`] thread-local: `Cell` counters and
//!    hdrhistograms. Hooks such as [`RequestTimer::start`], [`produced`], [`fetched`] and
//!    [`fsync_completed`] are a TLS access plus an add — no allocation, no formatting, no
//!    atomics. Because they are thread-local, the log layer can call them without knowing
//!    which shard it runs on.
//! 2. A publisher task per shard (`crate::shard::metrics_publisher`) copies them, with the shard's log
//!    gauges and committed group offsets, into a `Send` [`ShardSnapshot`] every second and
//!    leaves it in the [`MetricsRegistry`] (one mutex, touched only by publishers and scrapes).
//! 3. The admin HTTP thread (`crate::admin_http`) renders the latest snapshots with
//!    [`prometheus_text::render`]; scrapes therefore see values at most ~1 s old.

pub mod metrics_registry;
pub mod prometheus_text;
pub mod shard_metrics;
pub mod snapshot;

pub use metrics_registry::MetricsRegistry;
pub use shard_metrics::{
    bytes_sent, connection_refused, error_code, fetched, fsync_completed, latency, produce_acks,
    produced, track_inflight_bytes, ConnectionGuard, Hist, RequestTimer,
};
pub use snapshot::ShardSnapshot;
