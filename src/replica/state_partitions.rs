//! Internal state kept in replicated partitions, as Kafka keeps it in internal topics
//! (`__consumer_offsets`, `__transaction_state`; issue 17).
//!
//! Partition `p` of such a topic holds the state records of the keys that hash to `p`, and
//! whichever node leads `p`'s Raft group serves those keys: when a node dies, its keys move
//! with the leadership, and their state with them.
//!
//! A shard attaches the replica of each state partition it hosts. The leader serves the
//! partition's keys only once its owner has read their state from the partition log in the
//! term it leads ([`Serving::Loading`] until then): the log holds only committed records,
//! and a leader is readable only once it has applied an entry of its own term, so the view
//! it loads holds every change any earlier leader acknowledged. A change is proposed as an
//! entry and acknowledged once a majority has it durable. A lost leadership, or a new term,
//! drops the view; whoever leads next reads the log again.
//!
//! Concurrency contract: owned by one shard (`!Send`), like the replicas it holds.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;

use super::{Replica, ReplicaError};
use crate::log::PartitionLog;

/// Whether this shard answers for the keys of a state partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    /// It leads the partition and has loaded its state in this term.
    Yes,
    /// It leads the partition but has not loaded it yet (COORDINATOR_LOAD_IN_PROGRESS).
    Loading,
    /// Another node leads it, or no node does yet (NOT_COORDINATOR: look it up again).
    No,
}

/// What changed since the last look: partitions whose loaded view must go, and partitions
/// to load, with the term they are led in.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LeadershipChanges {
    pub lost: Vec<u32>,
    pub gained: Vec<(u32, u64)>,
}

/// Why a change was not proposed, or did not commit.
#[derive(Debug)]
pub enum NotProposed {
    /// This shard leads the partition but has not loaded it.
    Loading,
    /// This shard does not lead the partition, or lost the leadership (or stopped) before
    /// the change committed: it may still commit under the next leader, and the client
    /// retries there (state changes are whole states, so a repeat is harmless).
    NotLeader,
    /// The replica failed otherwise (its disk).
    Replica(ReplicaError),
}

impl From<ReplicaError> for NotProposed {
    fn from(error: ReplicaError) -> NotProposed {
        match error {
            ReplicaError::NotLeader { .. } | ReplicaError::Closed { .. } => NotProposed::NotLeader,
            other => NotProposed::Replica(other),
        }
    }
}

/// Resolves once every proposed batch is committed.
pub type Proposed = Pin<Box<dyn Future<Output = Result<(), NotProposed>>>>;

struct Attached {
    replica: Rc<Replica>,
    /// The term whose leadership loaded the partition's state, while that view is held.
    loaded_term: Option<u64>,
}

/// The replicas of the state partitions (of one internal topic) a shard hosts.
#[derive(Default)]
pub struct StatePartitions {
    partitions: RefCell<BTreeMap<u32, Attached>>,
}

impl StatePartitions {
    pub fn attach(&self, partition: u32, replica: Rc<Replica>) {
        self.partitions.borrow_mut().insert(
            partition,
            Attached {
                replica,
                loaded_term: None,
            },
        );
    }

    /// Forgets the replica of `partition` (its topic was deleted); whether it was attached.
    pub fn detach(&self, partition: u32) -> bool {
        self.partitions.borrow_mut().remove(&partition).is_some()
    }

    pub fn serving(&self, partition: u32) -> Serving {
        let partitions = self.partitions.borrow();
        let Some(attached) = partitions.get(&partition) else {
            return Serving::No;
        };
        let replica = &attached.replica;
        if !replica.is_leader() || replica.is_closed() {
            return Serving::No;
        }
        if replica.is_readable_leader() && attached.loaded_term == Some(replica.term()) {
            Serving::Yes
        } else {
            Serving::Loading
        }
    }

    /// Partitions whose view is stale (leadership lost, or a new term) and partitions led
    /// and readable but not loaded in their current term. Views reported lost are
    /// considered dropped from here on.
    pub fn leadership_changes(&self) -> LeadershipChanges {
        let mut changes = LeadershipChanges::default();
        for (partition, attached) in self.partitions.borrow_mut().iter_mut() {
            let replica = &attached.replica;
            let leads = replica.is_readable_leader() && !replica.is_closed();
            let current = leads && attached.loaded_term == Some(replica.term());
            if attached.loaded_term.is_some() && !current {
                attached.loaded_term = None;
                changes.lost.push(*partition);
            }
            if leads && !current {
                changes.gained.push((*partition, replica.term()));
            }
        }
        changes
    }

    /// The partition log to load `partition`'s state from.
    pub fn log(&self, partition: u32) -> Option<PartitionLog> {
        let partitions = self.partitions.borrow();
        Some(partitions.get(&partition)?.replica.partition().clone())
    }

    /// Records that `partition`'s state was loaded while it was led in `term`; false (and
    /// nothing recorded) when the leadership was lost meanwhile: the next look loads it
    /// again.
    pub fn mark_loaded(&self, partition: u32, term: u64) -> bool {
        let mut partitions = self.partitions.borrow_mut();
        let Some(attached) = partitions.get_mut(&partition) else {
            return false;
        };
        let replica = &attached.replica;
        if replica.is_readable_leader() && replica.term() == term {
            attached.loaded_term = Some(term);
            true
        } else {
            false
        }
    }

    /// Proposes `batches` (state records, each a RecordBatch) to `partition`'s group; the
    /// future resolves once all are committed. Only a serving leader proposes.
    pub fn propose(
        &self,
        partition: u32,
        batches: Vec<Bytes>,
        now_ms: i64,
    ) -> Result<Proposed, NotProposed> {
        match self.serving(partition) {
            Serving::Yes => {}
            Serving::Loading => return Err(NotProposed::Loading),
            Serving::No => return Err(NotProposed::NotLeader),
        }
        let replica = match self.partitions.borrow().get(&partition) {
            Some(attached) => Rc::clone(&attached.replica),
            None => return Err(NotProposed::NotLeader),
        };
        let commits = batches
            .iter()
            .map(|batch| replica.propose(batch, now_ms))
            .collect::<Result<Vec<_>, ReplicaError>>()?;
        Ok(Box::pin(async move {
            for commit in commits {
                commit.await?;
            }
            Ok(())
        }))
    }
}
