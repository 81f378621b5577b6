//! Shard-level group commit without rounds: every partition of the shard with data written
//! but not yet durable has one fdatasync in flight, and its high watermark advances as soon
//! as *that* fdatasync ends, not when the slowest file of the shard is done.
//!
//! There is no timer, so nothing waits at low load. A segment writer reports each finished
//! write ([`written`]) and goes on writing. If the partition has no fdatasync running, one
//! starts at once; while one runs, whatever the partition writes meanwhile waits for its
//! next one, which starts as soon as the running one ends and covers all of it (one fsync in
//! flight per file, so a busy partition batches as much as the disk's latency lets it).
//! fdatasyncs of different partitions go to io_uring as their writes complete, so those that
//! overlap still share the journal commits they cause.
//!
//! Example: partitions p0 and p1 of a shard, idle. p0's writer writes offsets 0..=9: p0's
//! fdatasync starts (up to offset 10). While it runs, p0 writes 10..=19 and p1 writes 0..=4:
//! p1's fdatasync starts at once; p0's second one (up to 20) when its first ends, which
//! makes p0's high watermark 10 whether or not p1's has ended.
//!
//! Why not shared rounds (all pending files synced together, high watermarks advanced when
//! the round ends): a round ends with its slowest fdatasync, and data written during a round
//! waited for the whole next one, so a partition's wait was up to two rounds of the slowest
//! file of the shard. The price of going without: fdatasyncs of different files reach the
//! disk together less often, so fewer share an ext4 journal commit, and each took longer
//! at 50 % load (perf/RESULTS.md, "Where the acks=all ack latency goes").
//!
//! One group per executor thread, which is one shard (thread-per-core): every log the shard
//! opens with group commit shares it, including the broker's internal state logs. It holds
//! only weak references, so logs closed or dropped meanwhile are skipped.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::{Rc, Weak};
use std::time::Instant;

use crate::io::dma_file::DmaFile;
use crate::metrics::Hist;

use super::error::LogError;
use super::log_state::LogState;

thread_local! {
    static GROUP: Rc<CommitGroup> = Rc::new(CommitGroup::default());
}

#[derive(Default)]
struct CommitGroup {
    /// Partitions with written data that their running fdatasync (if any) does not cover,
    /// by the address of their state.
    pending: RefCell<HashMap<usize, Member>>,
    /// Partitions whose sync task is running (it will see anything added to `pending`).
    syncing: RefCell<HashSet<usize>>,
}

struct Member {
    state: Weak<RefCell<LogState>>,
    /// The file the partition wrote to last: data in earlier segments was fdatasynced when
    /// they were sealed.
    file: Weak<DmaFile>,
    /// When the oldest of the writes waiting for the partition's next fdatasync completed.
    since: Instant,
}

/// Records that `state` has written data (the last of it to `file`) that is not yet
/// durable; an fdatasync covering it starts now, or right after the partition's running one.
pub(crate) fn written(state: &Rc<RefCell<LogState>>, file: &Rc<DmaFile>) {
    let group = GROUP.with(Rc::clone);
    let key = Rc::as_ptr(state) as usize;
    {
        let mut pending = group.pending.borrow_mut();
        let since = pending.get(&key).map_or_else(Instant::now, |m| m.since);
        pending.insert(
            key,
            Member {
                state: Rc::downgrade(state),
                file: Rc::downgrade(file),
                since,
            },
        );
    }
    if group.syncing.borrow_mut().insert(key) {
        crate::io::spawn_in(crate::io::TaskClass::Produce, async move {
            group.sync_partition(key).await
        })
        .detach();
    }
}

/// Takes the partition out of `syncing` when its sync task ends, also when it is dropped with
/// its executor (a test's), so that the next executor on the thread starts syncs again.
struct SyncingGuard<'a>(&'a CommitGroup, usize);

impl Drop for SyncingGuard<'_> {
    fn drop(&mut self) {
        self.0.syncing.borrow_mut().remove(&self.1);
    }
}

impl CommitGroup {
    /// fdatasyncs the partition's file until nothing it wrote is left uncovered, advancing
    /// its durable offset and high watermark after each to what it had written when that
    /// fdatasync started.
    async fn sync_partition(&self, key: usize) {
        let _syncing = SyncingGuard(self, key);
        loop {
            let Some(member) = self.pending.borrow_mut().remove(&key) else {
                return;
            };
            let (Some(state), Some(file)) = (member.state.upgrade(), member.file.upgrade()) else {
                continue;
            };
            let covered = {
                let st = state.borrow();
                if st.failure.is_some() || st.written_offset() <= st.durable_offset() {
                    continue;
                }
                st.written_offset()
            };
            let started = Instant::now();
            let result = file.fdatasync().await;
            let elapsed = started.elapsed();
            let mut st = state.borrow_mut();
            match result {
                Ok(()) => {
                    let durable = st.durable_offset();
                    crate::metrics::fsync_completed(elapsed, covered - durable);
                    st.advance_durable(covered);
                    st.set_high_watermark(covered);
                    st.assert_offsets();
                    crate::metrics::latency(Hist::WrittenToDurable, member.since.elapsed());
                }
                Err(e) => {
                    let path = file.path().to_path_buf();
                    st.fail(&LogError::io(format!("fdatasync of {path:?}"), e));
                }
            }
        }
    }
}
