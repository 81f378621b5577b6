//! The shard's log-cleaner task: every `LOG_CLEANER_CHECK_INTERVAL` it gives each compacted
//! log the shard owns one cleaning pass (see `log::PartitionLog::clean`), one log at a time,
//! with one key index for the whole shard. It runs in its own low-share task queue, so the
//! request path keeps the core when both have work.

use std::rc::Rc;

use crate::constants::{LOG_CLEANER_CHECK_INTERVAL, LOG_CLEANER_OFFSET_MAP_BYTES};
use crate::io::clock::now_ms;
use crate::log::{LogError, OffsetMap};

use super::Shard;

pub async fn run(shard: Rc<Shard>) {
    // Allocated at the first compacted log, so shards without one never pay for it.
    let mut map: Option<OffsetMap> = None;
    loop {
        crate::io::sleep(LOG_CLEANER_CHECK_INTERVAL).await;
        for (topic, partition, log) in shard.named_logs() {
            if !log.is_compacted() {
                continue;
            }
            let map =
                map.get_or_insert_with(|| OffsetMap::with_budget(LOG_CLEANER_OFFSET_MAP_BYTES));
            match log.clean(now_ms(), map).await {
                Ok(summary) if summary.segments_rewritten > 0 => {
                    tracing::info!(
                        shard_id = shard.id,
                        topic,
                        partition,
                        segments = summary.segments_rewritten,
                        bytes_before = summary.bytes_before,
                        bytes_after = summary.bytes_after,
                        records_removed = summary.records_removed,
                        "log cleaned"
                    );
                }
                Ok(_) | Err(LogError::Closed) => {}
                Err(error) => {
                    tracing::warn!(shard_id = shard.id, topic, partition, %error, "log cleaning failed");
                }
            }
        }
    }
}
