//! The per-shard share timers task: member session expiry for the share groups this shard
//! coordinates (dropping the expired members' share sessions on every shard), record lock
//! expiry on its share-partitions, and state-log compaction.

use std::rc::Rc;
use std::time::Duration;

use crate::shard::Shard;

/// Resolution of lock and session deadlines.
pub const SHARE_TICK: Duration = Duration::from_millis(100);
/// How often state logs are checked for compaction.
const COMPACTION_CHECK_TICKS: u32 = 600;
/// A state log is rewritten as a snapshot once it grew this much since the last one.
const COMPACTION_BYTES: u64 = 4 << 20;

pub async fn run(shard: Rc<Shard>) {
    let mut ticks: u32 = 0;
    loop {
        crate::io::sleep(SHARE_TICK).await;
        let now_ms = crate::io::clock::now_ms();
        let share = shard.share();
        for (group, members) in share.expire_members(now_ms) {
            // Telling the other shards awaits their inboxes; the ticks go on meanwhile.
            let shard = Rc::clone(&shard);
            crate::io::spawn(async move {
                shard
                    .share()
                    .drop_sessions_everywhere(&group, &members)
                    .await;
            })
            .detach();
        }
        for shares in share.all_partition_shares() {
            for group in shares.group_ids() {
                let limit = share.group_config(&group).delivery_count_limit;
                let outcome = shares.with_group(&group, |sp| {
                    sp.has_locks()
                        .then(|| sp.release_locks(now_ms, None, limit))
                });
                let Some(Some(outcome)) = outcome else {
                    continue;
                };
                if outcome.released {
                    shares.notify_released();
                }
                if !outcome.dead_letters.is_empty() {
                    crate::io::spawn(super::dead_letter::dead_letter_logged(
                        Rc::clone(&shard),
                        Rc::clone(&shares),
                        group,
                        outcome.dead_letters,
                    ))
                    .detach();
                }
            }
        }
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(COMPACTION_CHECK_TICKS) {
            for shares in share.all_partition_shares() {
                if let Err(e) = shares.compact_if_needed(COMPACTION_BYTES).await {
                    tracing::warn!(topic = %shares.topic, partition = shares.partition, error = %e, "share state compaction failed");
                }
            }
        }
    }
}
