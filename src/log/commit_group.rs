//! Shard-level group commit: one fdatasync round for every partition of the shard that has
//! data written but not yet durable, and the high watermarks of all of them advanced together
//! when the round ends.
//!
//! There is no timer, so nothing waits at low load. A segment writer reports each finished
//! write ([`written`]) and goes on writing. If no round is running, a round starts at once;
//! while one runs, whatever any partition writes meanwhile waits for the next round, which
//! starts as soon as the running one ends and takes all of it. The round's fdatasyncs go to
//! io_uring together, one per file, so on a journaling file system they share the journal
//! commits they cause instead of queueing one behind another. The rounds run in a task that
//! exists only while there is something to commit.
//!
//! Example: partitions p0 and p1 of a shard, idle. p0's writer writes offsets 0..=9: round 1
//! starts (p0 up to offset 10). While it runs, p0 writes 10..=19 and p1 writes 0..=4. Round 1
//! ends (p0's high watermark 10) and round 2 starts with p0 up to 20 and p1 up to 5: both
//! high watermarks advance together when it ends.
//!
//! One group per executor thread, which is one shard (thread-per-core): every log the shard
//! opens with group commit shares it, including the broker's internal state logs. It holds
//! only weak references, so logs closed or dropped meanwhile are skipped.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use crate::io::dma_file::DmaFile;
use crate::metrics::Hist;

use super::error::LogError;
use super::log_state::LogState;

thread_local! {
    static GROUP: Rc<CommitGroup> = Rc::new(CommitGroup::default());
}

#[derive(Default)]
struct CommitGroup {
    /// Partitions waiting for the next round, by the address of their state.
    pending: RefCell<HashMap<usize, Member>>,
    /// A rounds task is running (and will see anything added to `pending`).
    running: RefCell<bool>,
}

struct Member {
    state: Weak<RefCell<LogState>>,
    /// The file the partition wrote to last: data in earlier segments was fdatasynced when
    /// they were sealed.
    file: Weak<DmaFile>,
    /// When the oldest of the writes waiting for the next round completed.
    since: Instant,
}

/// Records that `state` has written data (the last of it to `file`) that is not yet
/// durable; a round covering it starts now, or right after the running one.
pub(crate) fn written(state: &Rc<RefCell<LogState>>, file: &Rc<DmaFile>) {
    let group = GROUP.with(Rc::clone);
    let mut pending = group.pending.borrow_mut();
    let key = Rc::as_ptr(state) as usize;
    let since = pending.get(&key).map_or_else(Instant::now, |m| m.since);
    pending.insert(
        key,
        Member {
            state: Rc::downgrade(state),
            file: Rc::downgrade(file),
            since,
        },
    );
    drop(pending);
    if !std::mem::replace(&mut *group.running.borrow_mut(), true) {
        crate::io::spawn_in(crate::io::TaskClass::Produce, async move {
            group.run_rounds().await
        })
        .detach();
    }
}

/// Clears `running` when the rounds task ends, also when it is dropped with its executor
/// (a test's), so that the next executor on the thread starts rounds again.
struct RunningGuard<'a>(&'a CommitGroup);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        *self.0.running.borrow_mut() = false;
    }
}

/// A partition in a round: its state, file, and the offset the round makes durable.
struct RoundMember {
    state: Rc<RefCell<LogState>>,
    file: Rc<DmaFile>,
    covered: i64,
    since: Instant,
}

impl CommitGroup {
    async fn run_rounds(&self) {
        let _running = RunningGuard(self);
        while !self.pending.borrow().is_empty() {
            self.round().await;
        }
    }

    /// fdatasyncs the file of every pending partition, then advances the durable offset and
    /// high watermark of each to what it had written when the round started.
    async fn round(&self) {
        let members: Vec<RoundMember> = std::mem::take(&mut *self.pending.borrow_mut())
            .into_values()
            .filter_map(|member| {
                let state = member.state.upgrade()?;
                let file = member.file.upgrade()?;
                let covered = {
                    let st = state.borrow();
                    if st.failure.is_some() || st.written_offset() <= st.durable_offset() {
                        return None;
                    }
                    st.written_offset()
                };
                Some(RoundMember {
                    state,
                    file,
                    covered,
                    since: member.since,
                })
            })
            .collect();
        let started = Instant::now();
        let results: Vec<(std::io::Result<()>, Duration)> = match members.as_slice() {
            [] => return,
            [one] => vec![timed_fdatasync(one.file.clone()).await],
            many => {
                // One task per file so that the fdatasyncs are at the disk together.
                let syncs: Vec<_> = many
                    .iter()
                    .map(|member| {
                        let file = member.file.clone();
                        crate::io::spawn_in(crate::io::TaskClass::Produce, timed_fdatasync(file))
                    })
                    .collect();
                let mut results = Vec::with_capacity(syncs.len());
                for sync in syncs {
                    results.push(sync.await);
                }
                results
            }
        };
        crate::metrics::latency(Hist::CommitRound, started.elapsed());
        for (member, (result, elapsed)) in members.iter().zip(results) {
            let mut st = member.state.borrow_mut();
            match result {
                Ok(()) => {
                    let durable = st.durable_offset();
                    crate::metrics::fsync_completed(elapsed, member.covered - durable);
                    st.advance_durable(member.covered);
                    st.set_high_watermark(member.covered);
                    st.assert_offsets();
                    crate::metrics::latency(Hist::WrittenToDurable, member.since.elapsed());
                }
                Err(e) => {
                    let path = member.file.path().to_path_buf();
                    st.fail(&LogError::io(format!("fdatasync of {path:?}"), e));
                }
            }
        }
    }
}

/// fdatasyncs `file`, and says how long that took (the file's own, not the round's).
async fn timed_fdatasync(file: Rc<DmaFile>) -> (std::io::Result<()>, Duration) {
    let started = Instant::now();
    let result = file.fdatasync().await;
    (result, started.elapsed())
}
