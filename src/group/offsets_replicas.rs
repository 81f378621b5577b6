//! Offsets partitions as replicated partitions (a cluster of several nodes, issue 17).
//!
//! Partition `p` of the internal topic [`OFFSETS_TOPIC`] holds the offsets records of the
//! groups that hash to `p` ([`super::offsets_partition`]), as Kafka's `__consumer_offsets`
//! does, and the coordinator of those groups is whichever node leads that partition's Raft
//! group: when a node dies, its groups move with the leadership, and their offsets with them.
//!
//! A shard attaches the replica of each offsets partition it hosts. The leader serves the
//! partition's groups only once it has read their offsets from the partition log in the term
//! it leads ([`Serving::Loading`] until then): the log holds only committed records, and a
//! leader is readable only once it has applied an entry of its own term, so the view it
//! loads holds every offset any earlier leader acknowledged. A commit is proposed as an
//! entry and acknowledged once a majority has it durable. A lost leadership, or a new term,
//! drops the view; whoever leads next reads the log again.
//!
//! Concurrency contract: owned by one shard (`!Send`), like the replicas it holds.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;

use super::{Durable, GroupError};
use crate::log::PartitionLog;
use crate::replica::{Replica, ReplicaError};

/// The internal topic holding committed offsets in a cluster (Kafka's name: tools and
/// clients know it as internal).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Whether this shard answers for the groups of an offsets partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    /// It leads the partition and has loaded its offsets in this term.
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

struct Attached {
    replica: Rc<Replica>,
    /// The term whose leadership loaded the partition's offsets, while that view is held.
    loaded_term: Option<u64>,
}

/// The replicas of the offsets partitions a shard hosts.
#[derive(Default)]
pub struct OffsetsReplicas {
    partitions: RefCell<BTreeMap<u32, Attached>>,
}

impl OffsetsReplicas {
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

    /// The partition log to load `partition`'s offsets from.
    pub fn log(&self, partition: u32) -> Option<PartitionLog> {
        let partitions = self.partitions.borrow();
        Some(partitions.get(&partition)?.replica.partition().clone())
    }

    /// Records that `partition`'s offsets were loaded while it was led in `term`; a
    /// leadership lost meanwhile leaves it unloaded (the next look loads it again).
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

    /// Proposes `batches` (offsets records, each a RecordBatch) to `partition`'s group; the
    /// future resolves once all are committed. Only a serving leader proposes.
    pub fn propose(
        &self,
        group: &str,
        partition: u32,
        batches: Vec<Bytes>,
        now_ms: i64,
    ) -> Result<Durable, GroupError> {
        match self.serving(partition) {
            Serving::Yes => {}
            Serving::Loading => return Err(GroupError::LoadInProgress),
            Serving::No => return Err(GroupError::NotCoordinator(group.to_owned())),
        }
        let replica = match self.partitions.borrow().get(&partition) {
            Some(attached) => Rc::clone(&attached.replica),
            None => return Err(GroupError::NotCoordinator(group.to_owned())),
        };
        let group = group.to_owned();
        let not_committed = |error: ReplicaError, group: &str| match error {
            // The entry may still commit under the next leader; the client retries
            // against it (an offset commit is idempotent).
            ReplicaError::NotLeader { .. } | ReplicaError::Closed { .. } => {
                GroupError::NotCoordinator(group.to_owned())
            }
            other => GroupError::Storage(other.to_string()),
        };
        let commits = batches
            .iter()
            .map(|batch| replica.propose(batch, now_ms))
            .collect::<Result<Vec<_>, ReplicaError>>()
            .map_err(|e| not_committed(e, &group))?;
        Ok(Box::pin(async move {
            for commit in commits {
                commit.await.map_err(|e| not_committed(e, &group))?;
            }
            Ok(())
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::group::offset_record::CommittedOffset;
    use crate::group::{offsets_partition, GroupConfig, GroupCoordinator, NodeKeys};
    use crate::log::LogConfig;
    use crate::replica::{GroupKey, LogRead, RaftMessage, ReplicaConfig, ReplicaTransport};

    /// A group of one voter: it elects itself and commits alone, so leadership is under the
    /// test's control (campaign, close) without a network.
    struct NoPeers;

    impl ReplicaTransport for NoPeers {
        fn send(&self, _group: &GroupKey, _messages: Vec<RaftMessage>) {}

        fn read_log(&self, _: &GroupKey, from: u64, _: i64, _: usize) -> LogRead {
            Box::pin(async move { Err(format!("node {from} unreachable")) })
        }
    }

    const GROUP: &str = "orders";

    /// Opens the replica of `GROUP`'s offsets partition in `dir` and runs it.
    async fn open_replica(dir: &Path) -> (Rc<Replica>, crate::io::Task<()>) {
        let partition = i32::try_from(offsets_partition(GROUP)).expect("small");
        let log = PartitionLog::open(dir.join("log"), LogConfig::default())
            .await
            .expect("open partition log");
        let replica = Replica::open(
            GroupKey::new(OFFSETS_TOPIC, partition),
            ReplicaConfig::new(1, vec![1]),
            dir.join("raft"),
            log,
            Rc::new(NoPeers),
        )
        .await
        .expect("open replica");
        let replica = Rc::new(replica);
        let running = Rc::clone(&replica);
        let task = crate::io::spawn(async move {
            let _ = running.run().await;
        });
        (replica, task)
    }

    async fn lead(replica: &Replica) {
        replica.campaign().expect("campaign");
        for _ in 0..500 {
            if replica.is_readable_leader() {
                return;
            }
            crate::io::sleep(std::time::Duration::from_millis(2)).await;
        }
        panic!("a lone voter did not become a readable leader");
    }

    fn offset(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 1,
        }
    }

    fn commit(coordinator: &GroupCoordinator, group: &str, partition: i32, at: i64) -> Durable {
        let who = crate::group::group_coordinator::CommitIdentity {
            member_id: String::new(),
            group_instance_id: None,
            generation_or_epoch: -1,
            member_epochs: false,
        };
        coordinator
            .commit(group, &who, vec![("t".to_owned(), partition, offset(at))])
            .expect("commit accepted")
    }

    fn fetched(coordinator: &GroupCoordinator, group: &str) -> Vec<(i32, i64)> {
        coordinator
            .fetch_offsets(group, None)
            .expect("fetch")
            .into_iter()
            .filter_map(|(_, p, o)| Some((p, o?.offset)))
            .collect()
    }

    fn coordinator(dir: &Path) -> GroupCoordinator {
        GroupCoordinator::new(dir, 0, 1, NodeKeys::ALL, GroupConfig::default())
            .with_replicated_offsets()
    }

    /// The coordinator answers for a group only while leading its offsets partition with the
    /// offsets read back from the log in that term; a later leader (here the same node,
    /// reopened) finds every acknowledged commit and deletion in the log.
    #[test]
    fn offsets_are_served_by_the_loaded_leader_and_read_back_from_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir = dir.path().to_owned();
        crate::io::block_on_local(async move {
            let partition = offsets_partition(GROUP);
            // Another group of the same offsets partition, deleted below.
            let doomed = (0..)
                .map(|i| format!("doomed-{i}"))
                .find(|g| offsets_partition(g) == partition)
                .expect("a group of the same partition");

            let (replica, task) = open_replica(&dir).await;
            let first = coordinator(&dir);
            first.load().await.expect("load");
            first.attach_offsets_replica(partition, Rc::clone(&replica));
            assert!(matches!(
                first.fetch_offsets(GROUP, None),
                Err(GroupError::NotCoordinator(_))
            ));
            lead(&replica).await;
            assert!(
                matches!(
                    first.fetch_offsets(GROUP, None),
                    Err(GroupError::LoadInProgress)
                ),
                "a leader that has not read the log yet does not answer"
            );
            first.follow_offsets_leaders().await;
            assert_eq!(fetched(&first, GROUP), vec![]);
            commit(&first, GROUP, 0, 5).await.expect("committed");
            commit(&first, GROUP, 1, 7).await.expect("committed");
            commit(&first, GROUP, 0, 9).await.expect("committed");
            commit(&first, &doomed, 0, 3).await.expect("committed");
            first
                .delete(&doomed)
                .expect("delete")
                .await
                .expect("deleted");
            assert_eq!(fetched(&first, GROUP), vec![(0, 9), (1, 7)]);
            assert_eq!(fetched(&first, &doomed), vec![]);

            // Leadership gone (the replica stops): the groups are dropped, not answered.
            replica.close().await.expect("close");
            drop(task);
            first.follow_offsets_leaders().await;
            assert!(matches!(
                first.fetch_offsets(GROUP, None),
                Err(GroupError::NotCoordinator(_))
            ));
            replica.partition().close().await.expect("close log");
            drop(replica);

            // The next leader knows only what the log holds.
            let (replica, _task) = open_replica(&dir).await;
            let second = coordinator(&dir);
            second.load().await.expect("load");
            second.attach_offsets_replica(partition, Rc::clone(&replica));
            lead(&replica).await;
            second.follow_offsets_leaders().await;
            assert_eq!(fetched(&second, GROUP), vec![(0, 9), (1, 7)]);
            assert!(
                matches!(second.describe(&doomed), Ok(d) if d.state == "Dead"),
                "the deleted group's offsets stay deleted"
            );
        });
    }
}
