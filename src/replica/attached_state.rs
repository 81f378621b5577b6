//! State a partition's replicas keep beside its log and change through the partition's own
//! Raft group: share-group delivery state (`share::share_state`). A change is an entry like
//! a record set, but applying it hands its bytes to the [`AttachedState`] instead of the
//! partition log, so every replica holds the same state in the same order as the records it
//! describes, and the partition's next leader has it.
//!
//! The state keeps its own log. The applied checkpoint (which lets the Raft log be
//! compacted) is recorded only once that log has every change up to it on disk too, so a
//! change is never in neither place. Changes after the checkpoint are applied again at a
//! restart: a state whose changes are absolute ("these offsets are now acknowledged") ends
//! up the same after re-applying a suffix of them in order.
//!
//! The state is opened lazily (most partitions have none), so changes applied before it is
//! attached wait here, in order, and hold back the checkpoint until it is.
//!
//! A follower that installs a Raft snapshot lacks the changes compacted away with the
//! entries: it reads the leader's whole state as changes ([`AttachedState::snapshot`])
//! and applies them before the snapshot counts as installed. The leader's state may be
//! ahead of the snapshot's index; the entries after it are then applied again, which
//! leaves the same state for the same reason a restart's replay does.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;

use crate::log::PartitionLog;

/// Where an applied change can be awaited: the state's own log and the change's last offset.
pub type DurableMark = (PartitionLog, i64);

/// The receiver of a partition's committed state changes, on every replica.
pub trait AttachedState {
    /// Applies one committed change (as proposed with `Replica::propose_state`). An error is
    /// the state's disk failing: the replica stops, as when its partition log fails.
    fn apply(&self, change: Bytes) -> Result<Option<DurableMark>, String>;

    /// The committed state as changes that rebuild it on a replica applying them in order
    /// over whatever it holds.
    fn snapshot(&self) -> Result<Vec<Bytes>, String>;
}

#[derive(Default)]
pub(super) struct Attachment {
    state: RefCell<Option<Rc<dyn AttachedState>>>,
    /// Committed changes applied before anything was attached, oldest first.
    waiting: RefCell<Vec<Bytes>>,
    /// Fires when the first change starts waiting, and when a state is attached.
    arrived: event_listener::Event,
    /// The durability of the last change applied.
    last: RefCell<Option<DurableMark>>,
}

impl Attachment {
    pub fn apply(&self, change: Bytes) -> Result<(), String> {
        let state = self.state.borrow().clone();
        match state {
            Some(state) => self.note(state.apply(change)?),
            None => {
                self.waiting.borrow_mut().push(change);
                self.arrived.notify(usize::MAX);
            }
        }
        Ok(())
    }

    /// Attaches `state` and applies the changes waiting for it; returns the last one's mark.
    pub fn attach(&self, state: Rc<dyn AttachedState>) -> Result<Option<DurableMark>, String> {
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        for change in waiting {
            self.note(state.apply(change)?);
        }
        *self.state.borrow_mut() = Some(state);
        self.arrived.notify(usize::MAX);
        Ok(self.last_mark())
    }

    /// The attached state's snapshot; `None` when nothing is attached.
    pub fn snapshot(&self) -> Option<Result<Vec<Bytes>, String>> {
        let state = self.state.borrow().clone()?;
        Some(state.snapshot())
    }

    /// Resolves once a state is attached.
    pub async fn attached(&self) {
        self.wait_until(Self::is_attached).await
    }

    /// Resolves once `holds` does; `arrived` fires on every change it can see.
    async fn wait_until(&self, holds: impl Fn(&Self) -> bool) {
        loop {
            let listener = self.arrived.listen();
            if holds(self) {
                return;
            }
            listener.await;
        }
    }

    fn note(&self, mark: Option<DurableMark>) {
        if mark.is_some() {
            *self.last.borrow_mut() = mark;
        }
    }

    pub fn is_attached(&self) -> bool {
        self.state.borrow().is_some()
    }

    pub fn has_waiting(&self) -> bool {
        !self.waiting.borrow().is_empty()
    }

    /// Queues changes the restart walk found applied after the checkpoint.
    pub fn replay_later(&self, changes: Vec<Bytes>) {
        if !changes.is_empty() {
            self.waiting.borrow_mut().extend(changes);
            self.arrived.notify(usize::MAX);
        }
    }

    /// Resolves once a change waits for a state to be attached.
    pub async fn changes_waiting(&self) {
        self.wait_until(Self::has_waiting).await
    }

    pub fn last_mark(&self) -> Option<DurableMark> {
        self.last.borrow().clone()
    }
}

/// Whether the change `mark` names is on disk.
pub(super) fn is_durable(mark: &Option<DurableMark>) -> bool {
    match mark {
        Some((log, offset)) => log.durable_offset() > *offset,
        None => true,
    }
}
