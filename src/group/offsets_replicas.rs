//! Offsets partitions as replicated partitions (a cluster of several nodes, issue 17):
//! partition `p` of the internal topic [`OFFSETS_TOPIC`] holds the offsets records of the
//! groups that hash to `p` ([`super::offsets_partition`]), as Kafka's `__consumer_offsets`
//! does, and the coordinator of those groups is whichever node leads that partition's Raft
//! group (see [`crate::replica::state_partitions`] for loading and serving).

use crate::replica::state_partitions::NotProposed;

use super::GroupError;

/// The internal topic holding committed offsets in a cluster (Kafka's name: tools and
/// clients know it as internal).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A change to `group`'s offsets that was not proposed or did not commit, as the group
/// coordinator answers it: a lost leadership is NOT_COORDINATOR, and the client commits
/// again at the next coordinator (an offset commit is idempotent).
pub fn not_proposed(error: NotProposed, group: &str) -> GroupError {
    match error {
        NotProposed::Loading => GroupError::LoadInProgress,
        NotProposed::NotLeader => GroupError::NotCoordinator(group.to_owned()),
        NotProposed::Replica(e) => GroupError::Storage(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use std::rc::Rc;

    use super::*;
    use crate::group::offset_record::CommittedOffset;
    use crate::group::{offsets_partition, GroupConfig, GroupCoordinator, NodeKeys};
    use crate::group::{Durable, GroupError};
    use crate::log::LogConfig;
    use crate::log::PartitionLog;
    use crate::replica::Replica;
    use crate::replica::{GroupKey, LogRead, RaftMessage, ReplicaConfig, ReplicaTransport};

    /// A group of one voter: it elects itself and commits alone, so leadership is under the
    /// test's control (campaign, close) without a network.
    struct NoPeers;

    impl ReplicaTransport for NoPeers {
        fn send(&self, _group: &GroupKey, _messages: Vec<RaftMessage>) {}

        fn read_state(&self, _: &GroupKey, _: u64) -> crate::replica::StateRead {
            Box::pin(async { Ok(Vec::new()) })
        }

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
            running
                .run()
                .await
                .expect("the replica runs until it is closed");
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
