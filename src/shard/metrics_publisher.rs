//! The per-shard task that copies the shard's metrics into the registry once per second.
//! It runs on the shard's own executor, so it reads the thread-local metrics and the
//! shard's logs and groups without any synchronisation.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::metrics_registry::MetricsRegistry;
use crate::metrics::shard_metrics;
use crate::metrics::snapshot::{GroupOffsetSnapshot, LogGauges, PreviousHistograms, ShardSnapshot};
use crate::shard::Shard;

pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// Publishes at once, then every [`PUBLISH_INTERVAL`], until the task is dropped.
pub async fn run(shard: Rc<Shard>, registry: Arc<MetricsRegistry>) {
    let mut previous = PreviousHistograms::default();
    loop {
        registry.publish(take(&shard, &mut previous));
        crate::io::sleep(PUBLISH_INTERVAL).await;
    }
}

fn take(shard: &Shard, previous: &mut PreviousHistograms) -> ShardSnapshot {
    let logs = shard
        .named_logs()
        .into_iter()
        .map(|(topic, partition, log)| {
            let gauges = LogGauges {
                log_start_offset: log.log_start_offset(),
                high_watermark: log.high_watermark(),
                log_end_offset: log.log_end_offset(),
                size_bytes: log.size_bytes(),
                segment_count: log.segment_count(),
            };
            (topic, partition, gauges)
        })
        .collect();
    shard_metrics::with(|metrics| {
        ShardSnapshot::take(shard.id, metrics, logs, group_offsets(shard), previous)
    })
}

/// Committed offsets of the groups this shard coordinates.
fn group_offsets(shard: &Shard) -> Vec<GroupOffsetSnapshot> {
    let groups = shard.groups();
    let mut out = Vec::new();
    for listing in groups.list(&[], &[]) {
        let Ok(offsets) = groups.fetch_offsets(&listing.group_id, None) else {
            continue;
        };
        for (topic, partition, committed) in offsets {
            if let Some(committed) = committed {
                out.push(GroupOffsetSnapshot {
                    group: listing.group_id.clone(),
                    topic,
                    partition,
                    committed_offset: committed.offset,
                });
            }
        }
    }
    out
}
