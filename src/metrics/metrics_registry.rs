//! `MetricsRegistry`: where shards leave their once-a-second snapshots for the admin thread.
//!
//! Concurrency contract: the only lock is the snapshot table's mutex, taken once per second
//! by each shard's publisher and once per scrape by the admin thread — never on the data path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::snapshot::ShardSnapshot;

/// A shard whose last snapshot is older than this is reported unhealthy (its reactor stalled).
pub const SNAPSHOT_STALE_AFTER: Duration = Duration::from_secs(10);

pub struct MetricsRegistry {
    shards: Mutex<Vec<Option<ShardSnapshot>>>,
    ready: AtomicBool,
    /// Set by the panic hook: the process is on its way out (see `server::panic_policy`).
    panicked: AtomicBool,
    /// When the broker first became ready.
    ready_at: OnceLock<Instant>,
    started_at: Instant,
}

impl MetricsRegistry {
    pub fn new(shard_count: usize) -> MetricsRegistry {
        MetricsRegistry {
            shards: Mutex::new(vec![None; shard_count]),
            ready: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            ready_at: OnceLock::new(),
            started_at: Instant::now(),
        }
    }

    pub fn publish(&self, snapshot: ShardSnapshot) {
        // A panic while holding the lock leaves plain data behind; keep using it.
        let mut shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = shards.get_mut(snapshot.shard_id) {
            *slot = Some(snapshot);
        }
    }

    /// The latest snapshot of every shard (`None` for a shard that has not published yet).
    pub fn snapshots(&self) -> Vec<Option<ShardSnapshot>> {
        self.shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Set once every shard listens (the ready line is out); cleared when shutdown begins.
    pub fn set_ready(&self, ready: bool) {
        if ready {
            self.ready_at.get_or_init(Instant::now);
        }
        self.ready.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Marks the process as failing for good: `/health` answers 503 until it exits.
    pub fn set_panicked(&self) {
        self.panicked.store(true, Ordering::Release);
    }

    pub fn panicked(&self) -> bool {
        self.panicked.load(Ordering::Acquire)
    }

    pub fn uptime(&self) -> Duration {
        self.started_at.elapsed()
    }

    /// Shards whose reactor has not published for [`SNAPSHOT_STALE_AFTER`] (counted from
    /// readiness: before that, shards are still opening their partitions).
    pub fn stalled_shards(&self) -> Vec<usize> {
        let Some(ready_at) = self.ready_at.get() else {
            return Vec::new();
        };
        let never_published_is_stalled = ready_at.elapsed() > SNAPSHOT_STALE_AFTER;
        self.snapshots()
            .iter()
            .enumerate()
            .filter(|(_, s)| match s {
                Some(s) => s.taken_at.elapsed() > SNAPSHOT_STALE_AFTER,
                None => never_published_is_stalled,
            })
            .map(|(i, _)| i)
            .collect()
    }
}
