//! The per-shard group timers task: session expiry, rebalance and sync deadlines, offsets
//! expiry and offsets-log compaction for the groups this shard coordinates.

use std::rc::Rc;
use std::time::Duration;

use super::{GroupCoordinator, TopicCatalog};

/// Resolution of every group deadline.
pub const GROUP_TICK: Duration = Duration::from_millis(100);
/// How often offsets logs are checked for compaction.
const COMPACTION_CHECK_TICKS: u32 = 600;

/// Runs until the task is dropped. `topics` is the shard's catalog (KIP-848 assignments
/// follow partition counts and, for regex subscriptions, the topic names).
pub async fn run(coordinator: Rc<GroupCoordinator>, topics: Rc<dyn TopicCatalog>) {
    let mut ticks: u32 = 0;
    loop {
        crate::io::sleep(GROUP_TICK).await;
        coordinator.follow_offsets_leaders().await;
        coordinator.tick(&*topics, crate::io::clock::now_ms());
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(COMPACTION_CHECK_TICKS) {
            coordinator.compact_offsets().await;
        }
    }
}
