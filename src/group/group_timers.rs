//! The per-shard group timers task: session expiry, rebalance and sync deadlines, offsets
//! expiry and offsets-log compaction for the groups this shard coordinates.

use std::rc::Rc;
use std::time::Duration;

use super::GroupCoordinator;

/// Resolution of every group deadline.
pub const GROUP_TICK: Duration = Duration::from_millis(100);
/// How often offsets logs are checked for compaction.
const COMPACTION_CHECK_TICKS: u32 = 600;

/// Resolves a topic's current partition count.
pub type PartitionCount = dyn Fn(&str) -> Option<i32>;

/// Runs until the task is dropped. `partition_count` resolves a topic's current partition
/// count (for KIP-848 groups, whose assignment follows partition count changes).
pub async fn run(coordinator: Rc<GroupCoordinator>, partition_count: Rc<PartitionCount>) {
    let mut ticks: u32 = 0;
    loop {
        crate::io::sleep(GROUP_TICK).await;
        coordinator.tick(&*partition_count, crate::server::connection::now_ms());
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(COMPACTION_CHECK_TICKS) {
            coordinator.compact_offsets().await;
        }
    }
}
