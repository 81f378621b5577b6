//! Three replicas of one partition in one process, each with its own partition log and Raft
//! log on a temp dir, joined by an in-memory transport that can cut a replica off. Time is
//! Raft ticks the test gives, so nothing here depends on the machine's speed.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::rc::Rc;

use futures_lite::future;

use super::{Committed, GroupKey, RaftMessage, Replica, ReplicaConfig, ReplicaError};
use super::{LogRead, ReplicaTransport};
use crate::constants::RAFT_LOG_COMPACT_BYTES;
use crate::log::testing::{make_batch, make_batch_with, ProducerFields};
use crate::log::{AppendInfo, LogConfig, LogError, PartitionLog};
use crate::protocol::batch_layout::{
    LOG_OVERHEAD, OFFSET_ATTRIBUTES, OFFSET_BASE_TIMESTAMP, OFFSET_CRC, OFFSET_CRC_START,
    OFFSET_LENGTH,
};

const IDS: [u64; 3] = [1, 2, 3];
/// Plenty: an election takes at most 2 × 10 ticks plus a few rounds of messages.
const ROUNDS_MAX: usize = 3000;

/// Messages in flight, the replicas cut off from everyone, and each replica's partition log
/// (what a snapshot's data is read from).
#[derive(Default)]
struct Net {
    queue: RefCell<VecDeque<RaftMessage>>,
    cut: RefCell<HashSet<u64>>,
    logs: RefCell<HashMap<u64, PartitionLog>>,
    /// Log reads answered before every further one fails (None: no limit).
    reads_left: std::cell::Cell<Option<usize>>,
    /// A byte budget every read is held to (0: the reader's own).
    read_bytes: std::cell::Cell<usize>,
    /// Each replica's attached state, where the test attached one.
    states: RefCell<HashMap<u64, Rc<Recorder>>>,
}

impl ReplicaTransport for Net {
    fn send(&self, _group: &GroupKey, messages: Vec<RaftMessage>) {
        self.queue.borrow_mut().extend(messages);
    }

    fn read_state(&self, _group: &GroupKey, from: u64) -> super::StateRead {
        let state = self.states.borrow().get(&from).cloned();
        let cut = self.cut.borrow().contains(&from);
        Box::pin(async move {
            if cut {
                return Err(format!("node {from} unreachable"));
            }
            match state {
                Some(state) => super::attached_state::AttachedState::snapshot(&*state),
                None => Ok(Vec::new()),
            }
        })
    }

    fn read_log(&self, _group: &GroupKey, from: u64, offset: i64, max_bytes: usize) -> LogRead {
        let exhausted = self.reads_left.get() == Some(0);
        if let Some(left) = self.reads_left.get() {
            self.reads_left.set(Some(left.saturating_sub(1)));
        }
        let log = if self.cut.borrow().contains(&from) || exhausted {
            None
        } else {
            self.logs.borrow().get(&from).cloned()
        };
        let max_bytes = match self.read_bytes.get() {
            0 => max_bytes,
            limit => limit,
        };
        Box::pin(async move {
            let log = log.ok_or_else(|| format!("node {from} unreachable"))?;
            let read = log
                .read(offset.max(log.log_start_offset()), max_bytes)
                .await
                .map_err(|e| e.to_string())?;
            let bytes: Vec<u8> = read.chunks.iter().flat_map(|c| c.iter().copied()).collect();
            Ok(bytes::Bytes::from(bytes))
        })
    }
}

struct Cluster {
    dir: PathBuf,
    net: Rc<Net>,
    replicas: RefCell<Vec<Option<Rc<Replica>>>>,
    /// Replicas that receive messages but are not driven: they never persist or answer.
    held: RefCell<HashSet<u64>>,
    /// Replicas whose `drive` may fail (the replica then stops); others' failures panic.
    may_fail: RefCell<HashSet<u64>>,
    compact_bytes: u64,
    snapshot_attempts: std::cell::Cell<u32>,
}

fn group() -> GroupKey {
    GroupKey::new("t", 0)
}

/// A one-batch record set told apart by its timestamp.
fn records(tag: i64) -> Vec<u8> {
    make_batch(2, 40, tag)
}

impl Cluster {
    async fn start(dir: PathBuf, compact_bytes: u64) -> Cluster {
        let cluster = Cluster {
            dir,
            net: Rc::new(Net::default()),
            replicas: RefCell::new(vec![None, None, None]),
            held: RefCell::new(HashSet::new()),
            may_fail: RefCell::new(HashSet::new()),
            compact_bytes,
            snapshot_attempts: std::cell::Cell::new(crate::constants::REPLICA_SNAPSHOT_ATTEMPTS),
        };
        for id in IDS {
            cluster.open(id).await;
        }
        cluster
    }

    async fn open(&self, id: u64) {
        let base = self.dir.join(format!("node-{id}"));
        let partition = PartitionLog::open(base.join("t-0"), LogConfig::default())
            .await
            .expect("open partition log");
        self.net.logs.borrow_mut().insert(id, partition.clone());
        let replica = Replica::open(
            group(),
            ReplicaConfig {
                compact_bytes: self.compact_bytes,
                snapshot_attempts: self.snapshot_attempts.get(),
                ..ReplicaConfig::new(id, IDS.to_vec())
            },
            base.join("raft").join("t-0"),
            partition,
            self.net.clone(),
        )
        .await
        .expect("open replica");
        self.replicas.borrow_mut()[slot(id)] = Some(Rc::new(replica));
    }

    /// Stops replica `id` as a shutdown would: Raft log and partition log closed.
    async fn stop(&self, id: u64) {
        self.net.logs.borrow_mut().remove(&id);
        let replica = self.replicas.borrow_mut()[slot(id)]
            .take()
            .expect("running");
        replica.close().await.expect("close replica");
        replica.partition().close().await.expect("close partition");
    }

    fn replica(&self, id: u64) -> Rc<Replica> {
        self.replicas.borrow()[slot(id)].clone().expect("running")
    }

    fn live(&self) -> Vec<Rc<Replica>> {
        self.replicas.borrow().iter().flatten().cloned().collect()
    }

    fn cut(&self, id: u64) {
        self.net.cut.borrow_mut().insert(id);
    }

    fn heal(&self) {
        self.net.cut.borrow_mut().clear();
    }

    /// The leaders among replicas that are not cut off.
    fn leaders(&self) -> Vec<u64> {
        self.live()
            .iter()
            .filter(|r| r.is_leader() && !self.net.cut.borrow().contains(&r.id()))
            .map(|r| r.id())
            .collect()
    }

    /// Delivers every queued message (dropping those to or from a cut replica or a stopped
    /// one), then drives every running, unheld replica until it has nothing to do.
    async fn round(&self) {
        self.deliver();
        for replica in self.live() {
            if self.held.borrow().contains(&replica.id()) {
                continue;
            }
            loop {
                match replica.drive().await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) if self.may_fail.borrow().contains(&replica.id()) => {
                        eprintln!("replica {} stopped: {e}", replica.id());
                        break;
                    }
                    Err(e) => panic!("drive: {e:?}"),
                }
            }
        }
    }

    fn deliver(&self) {
        let messages: Vec<RaftMessage> = self.net.queue.borrow_mut().drain(..).collect();
        for message in messages {
            let cut = self.net.cut.borrow();
            if cut.contains(&message.from) || cut.contains(&message.to) {
                continue;
            }
            drop(cut);
            let target = self.replicas.borrow()[slot(message.to)].clone();
            if let Some(target) = target {
                // A message from an older term or a stale probe is Raft's to ignore.
                let _ = target.step(message);
            }
        }
    }

    fn tick(&self) {
        for replica in self.live() {
            replica.tick();
        }
    }

    /// Rounds with a tick each until `done` holds.
    async fn run_until(&self, what: &str, mut done: impl FnMut(&Cluster) -> bool) {
        for _ in 0..ROUNDS_MAX {
            if done(self) {
                return;
            }
            self.tick();
            self.round().await;
        }
        panic!("{what} did not happen in {ROUNDS_MAX} rounds");
    }

    /// Rounds without ticks: messages and disk only, so no election timer runs out.
    async fn settle(&self, rounds: usize) {
        for _ in 0..rounds {
            self.round().await;
        }
    }

    /// Delivers messages and lets the replicas' own `run` tasks work, `rounds` times, with
    /// no ticks.
    async fn pump(&self, rounds: usize) {
        for _ in 0..rounds {
            self.deliver();
            crate::io::runtime::yield_to_reactor().await;
        }
    }

    /// Proposes a one-batch record set per tag through `leader`, without waiting.
    fn propose_each(&self, leader: u64, tags: std::ops::RangeInclusive<i64>) {
        for tag in tags {
            drop(
                self.replica(leader)
                    .propose(&records(tag), 0)
                    .expect("propose"),
            );
        }
    }

    /// Proposes a ~1 KiB record set per tag through `leader`, a round after each.
    async fn propose_big(&self, leader: u64, tags: std::ops::RangeInclusive<i64>) {
        for tag in tags {
            drop(
                self.replica(leader)
                    .propose(&big_records(tag), 0)
                    .expect("propose"),
            );
            self.round().await;
        }
    }

    /// Runs until every running replica's high watermark is `end`.
    async fn run_until_all_at(&self, what: &str, end: i64) {
        self.run_until(what, |c| c.live().iter().all(|r| r.high_watermark() == end))
            .await;
    }

    async fn assert_every_log_holds(&self, expected: &[(i64, i64)]) {
        for replica in self.live() {
            assert_eq!(
                contents(&replica).await,
                expected,
                "replica {}",
                replica.id()
            );
        }
    }

    async fn elect(&self) -> u64 {
        self.run_until("an election", |c| c.leaders().len() == 1)
            .await;
        // Let the followers hear from the leader, so they name it.
        self.settle(3).await;
        self.leaders()[0]
    }
}

/// The first replica that is not `leader`.
fn a_follower(leader: u64) -> u64 {
    IDS.into_iter()
        .find(|id| *id != leader)
        .expect("three replicas")
}

fn slot(id: u64) -> usize {
    usize::try_from(id - 1).expect("small id")
}

/// The (base offset, tag) of every batch replica `r`'s partition log holds, once durable.
async fn contents(replica: &Replica) -> Vec<(i64, i64)> {
    let log = replica.partition();
    let end = log.log_end_offset();
    if end == 0 {
        return Vec::new();
    }
    log.wait_durable(end - 1).await.expect("durable");
    let read = log
        .read(log.log_start_offset(), usize::MAX / 2)
        .await
        .expect("read");
    // A chunk may be part of a batch (the broker's patched header prefix, then the rest).
    let bytes: Vec<u8> = read.chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let mut batches = Vec::new();
    {
        let mut rest = &bytes[..];
        while rest.len() >= LOG_OVERHEAD {
            let base = i64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
            let length = i32::from_be_bytes(
                rest[OFFSET_LENGTH..OFFSET_LENGTH + 4]
                    .try_into()
                    .expect("4 bytes"),
            );
            let tag = i64::from_be_bytes(
                rest[OFFSET_BASE_TIMESTAMP..OFFSET_BASE_TIMESTAMP + 8]
                    .try_into()
                    .expect("8 bytes"),
            );
            batches.push((base, tag));
            rest = &rest[LOG_OVERHEAD + usize::try_from(length).expect("length")..];
        }
    }
    batches
}

fn tags(batches: &[(i64, i64)]) -> Vec<i64> {
    batches.iter().map(|(_, tag)| *tag).collect()
}

/// The outcome of a proposal if it has one yet.
fn poll(committed: &mut Committed) -> Option<Result<AppendInfo, ReplicaError>> {
    future::block_on(future::poll_once(committed))
}

fn with_cluster<F: Future<Output = ()> + 'static>(test: impl FnOnce(Cluster) -> F + 'static) {
    with_compacting_cluster(RAFT_LOG_COMPACT_BYTES, test);
}

/// A cluster whose replicas compact their Raft logs after `compact_bytes` of growth.
fn with_compacting_cluster<F: Future<Output = ()> + 'static>(
    compact_bytes: u64,
    test: impl FnOnce(Cluster) -> F + 'static,
) {
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().to_owned();
    crate::io::block_on_local(async move {
        let cluster = Cluster::start(dir, compact_bytes).await;
        test(cluster).await;
    });
}

#[test]
fn three_replicas_elect_one_leader_and_replicate_batches_in_order() {
    with_cluster(|c| async move {
        let leader = c.elect().await;
        let followers: Vec<u64> = IDS.into_iter().filter(|id| *id != leader).collect();
        for follower in &followers {
            assert!(c.replica(*follower).propose(&records(1), 0).is_err_and(
                |e| matches!(e, ReplicaError::NotLeader { leader: Some(l), .. } if l == leader)
            ));
        }
        let mut proposals: Vec<Committed> = (1..=5)
            .map(|tag| {
                c.replica(leader)
                    .propose(&records(tag), 0)
                    .expect("propose")
            })
            .collect();
        c.run_until_all_at("all five applied everywhere", 10).await;
        for (i, proposal) in proposals.iter_mut().enumerate() {
            let info = poll(proposal).expect("resolved").expect("committed");
            assert_eq!(info.base_offset, 2 * i as i64);
            assert_eq!(info.last_offset, 2 * i as i64 + 1);
        }
        let expected: Vec<(i64, i64)> = (0..5).map(|i| (2 * i, i + 1)).collect();
        c.assert_every_log_holds(&expected).await;
    });
}

#[test]
fn a_new_leader_serves_reads_once_it_applied_an_entry_of_its_term() {
    with_cluster(|c| async move {
        c.run_until("an election", |c| c.leaders().len() == 1).await;
        let leader = c.leaders()[0];
        // Its first entry is not committed yet: what its predecessors committed may not be
        // in its partition log.
        assert!(!c.replica(leader).is_readable_leader());
        c.settle(5).await;
        assert!(c.replica(leader).is_readable_leader());
        for follower in IDS.into_iter().filter(|id| *id != leader) {
            assert!(!c.replica(follower).is_readable_leader());
        }
    });
}

#[test]
fn a_record_set_of_several_batches_becomes_one_entry_per_batch() {
    with_cluster(|c| async move {
        let leader = c.elect().await;
        let before = c.replica(leader).last_index();
        // Three batches in one record set, as a non-idempotent producer may send them.
        let set: Vec<u8> = [records(1), records(2), records(3)].concat();
        let mut proposal = c
            .replica(leader)
            .propose_record_set(&set, 0)
            .expect("propose");
        assert_eq!(
            c.replica(leader).last_index(),
            before + 3,
            "an entry per batch"
        );
        c.run_until_all_at("the three batches applied everywhere", 6)
            .await;
        let info = poll(&mut proposal).expect("resolved").expect("committed");
        assert_eq!((info.base_offset, info.last_offset), (0, 5));
        c.assert_every_log_holds(&[(0, 1), (2, 2), (4, 3)]).await;
    });
}

#[test]
fn an_entry_commits_only_once_a_majority_has_it_durable() {
    with_cluster(|c| async move {
        let leader = c.elect().await;
        c.settle(5).await;
        let followers: Vec<u64> = IDS.into_iter().filter(|id| *id != leader).collect();
        // Both followers receive the entry but never persist it, so never acknowledge it.
        c.held.borrow_mut().extend(followers.iter().copied());
        let before = c.replica(leader).commit_index();
        let mut proposal = c.replica(leader).propose(&records(7), 0).expect("propose");
        let index = c.replica(leader).last_index();
        c.settle(20).await;
        assert_eq!(c.replica(leader).commit_index(), before);
        assert!(poll(&mut proposal).is_none());
        assert_eq!(c.replica(leader).high_watermark(), 0);

        // One follower persists and acknowledges: with the leader, a majority.
        c.held.borrow_mut().remove(&followers[0]);
        c.settle(10).await;
        assert!(c.replica(leader).commit_index() >= index);
        let info = poll(&mut proposal).expect("resolved").expect("committed");
        assert_eq!((info.base_offset, info.last_offset), (0, 1));
        assert_eq!(tags(&contents(&c.replica(leader)).await), vec![7]);
        assert_eq!(tags(&contents(&c.replica(followers[0])).await), vec![7]);
        // The held follower has the entry in memory at most, and applied nothing.
        assert_eq!(c.replica(followers[1]).high_watermark(), 0);

        c.held.borrow_mut().clear();
        c.settle(10).await;
        assert_eq!(tags(&contents(&c.replica(followers[1])).await), vec![7]);
    });
}

#[test]
fn a_partitioned_leader_cannot_commit_and_its_tail_is_truncated() {
    with_cluster(|c| async move {
        let old = c.elect().await;
        let mut first = c.replica(old).propose(&records(1), 0).expect("propose");
        c.run_until_all_at("the first batch everywhere", 2).await;
        assert!(poll(&mut first).expect("resolved").is_ok());

        c.cut(old);
        let mut lost = c
            .replica(old)
            .propose(&records(99), 0)
            .expect("still leader");
        let lost_index = c.replica(old).last_index();
        c.run_until("a new leader on the majority side", |c| {
            c.leaders().iter().any(|l| *l != old)
        })
        .await;
        let new = c.leaders()[0];
        let mut later: Vec<Committed> = [2, 3]
            .into_iter()
            .map(|tag| c.replica(new).propose(&records(tag), 0).expect("propose"))
            .collect();
        c.run_until("the new leader commits", |c| {
            c.replica(new).high_watermark() == 6
        })
        .await;
        // Cut off, the old leader could not commit its entry (and has stepped down).
        assert!(c.replica(old).commit_index() < lost_index);
        assert!(!c.replica(old).is_leader());
        assert!(poll(&mut lost).is_none());
        assert_eq!(tags(&contents(&c.replica(old)).await), vec![1]);

        c.heal();
        c.run_until("the old leader catches up", |c| {
            c.replica(old).high_watermark() == 6
        })
        .await;
        let expected = vec![(0, 1), (2, 2), (4, 3)];
        c.assert_every_log_holds(&expected).await;
        assert!(matches!(
            poll(&mut lost).expect("resolved"),
            Err(ReplicaError::Superseded { .. })
        ));
        for proposal in &mut later {
            assert!(poll(proposal).expect("resolved").is_ok());
        }
    });
}

#[test]
fn a_restarted_replica_reopens_from_disk_and_catches_up() {
    with_cluster(|c| async move {
        let leader = c.elect().await;
        c.propose_each(leader, 1..=3);
        c.run_until_all_at("three batches everywhere", 6).await;
        let follower = a_follower(leader);
        let applied = c.replica(follower).applied_index();
        c.stop(follower).await;

        for tag in 4..=6 {
            drop(
                c.replica(leader)
                    .propose(&records(tag), 0)
                    .expect("propose"),
            );
        }
        c.run_until_all_at("the two running replicas commit", 12)
            .await;

        c.open(follower).await;
        let reopened = c.replica(follower);
        assert_eq!(reopened.applied_index(), applied, "applied index from disk");
        assert_eq!(tags(&contents(&reopened).await), vec![1, 2, 3]);
        c.run_until("the restarted replica catches up", |c| {
            c.replica(follower).high_watermark() == 12
        })
        .await;
        let expected: Vec<(i64, i64)> = (0..6).map(|i| (2 * i, i + 1)).collect();
        c.assert_every_log_holds(&expected).await;
    });
}

#[test]
fn nothing_commits_while_no_replica_can_make_it_durable() {
    use crate::io::dma_file::faults;
    with_cluster(|c| async move {
        let leader = c.elect().await;
        // Every fdatasync on this thread now waits: entries travel but none is durable.
        faults::enable();
        faults::hold_syncs();
        let runners: Vec<_> = c
            .live()
            .into_iter()
            .map(|r| crate::io::spawn(async move { r.run().await }))
            .collect();
        let before = c.replica(leader).commit_index();
        let mut proposal = c.replica(leader).propose(&records(5), 0).expect("propose");
        let index = c.replica(leader).last_index();
        c.pump(200).await;
        for replica in c.live() {
            assert!(
                replica.last_index() >= index,
                "replica {} got the entry",
                replica.id()
            );
        }
        assert_eq!(c.replica(leader).commit_index(), before);
        assert!(poll(&mut proposal).is_none());

        faults::release_syncs();
        for _ in 0..ROUNDS_MAX {
            if c.live().iter().all(|r| r.high_watermark() == 2) {
                break;
            }
            c.pump(1).await;
        }
        let info = poll(&mut proposal).expect("resolved").expect("committed");
        assert_eq!(info.base_offset, 0);
        for replica in c.live() {
            assert_eq!(tags(&contents(&replica).await), vec![5]);
            replica.close().await.expect("close");
        }
        faults::disable();
        for runner in runners {
            runner.await.expect("run ends cleanly");
        }
    });
}

/// The leader compacts its Raft log past what a stopped follower has, and past everything a
/// follower that lost its disk has: each catches up from a snapshot, copying the batches it
/// lacks from the leader's partition log, and then follows by entries again.
#[test]
fn followers_behind_a_compacted_log_catch_up_from_a_snapshot() {
    with_compacting_cluster(4096, |c| async move {
        let leader = c.elect().await;
        let stopped = a_follower(leader);
        let running = IDS
            .into_iter()
            .find(|id| *id != leader && *id != stopped)
            .expect("another follower");
        c.stop(stopped).await;
        c.propose_big(leader, 1..=40).await;
        c.run_until_all_at("forty batches on the running replicas", 80)
            .await;
        // Both running replicas dropped applied entries, the leader too: the stopped
        // follower's next entry is gone.
        assert!(c.replica(running).first_index() > 10);
        assert!(c.replica(leader).first_index() > 10);

        c.open(stopped).await;
        c.run_until_all_at("the stopped follower catches up", 80)
            .await;
        assert!(
            c.replica(stopped).first_index() > 10,
            "it caught up from a snapshot, not from entries"
        );
        let expected: Vec<(i64, i64)> = (0..40).map(|i| (2 * i, i + 1)).collect();
        c.assert_every_log_holds(&expected).await;

        // A follower that lost everything (a wiped disk) starts from nothing.
        c.stop(running).await;
        let node_dir = c.dir.join(format!("node-{running}"));
        std::fs::remove_dir_all(&node_dir).expect("wipe the follower");
        c.open(running).await;
        // With no new writes: heartbeats alone (they carry the commit index the leader knew
        // it had) must get it everything back.
        c.run_until_all_at("the wiped follower catches up with no new writes", 80)
            .await;
        c.assert_every_log_holds(&expected).await;
        c.propose_big(leader, 41..=50).await;
        c.run_until_all_at("the wiped follower catches up", 100)
            .await;
        let expected: Vec<(i64, i64)> = (0..50).map(|i| (2 * i, i + 1)).collect();
        c.assert_every_log_holds(&expected).await;

        // Both follow by entries again: the next batches reach every replica.
        for tag in 51..=55 {
            drop(
                c.replica(leader)
                    .propose(&big_records(tag), 0)
                    .expect("propose"),
            );
        }
        c.run_until_all_at("five more batches everywhere", 110)
            .await;
        let expected: Vec<(i64, i64)> = (0..55).map(|i| (2 * i, i + 1)).collect();
        c.assert_every_log_holds(&expected).await;

        // And the snapshot survives a restart of the follower that installed it.
        c.stop(running).await;
        c.open(running).await;
        c.run_until("the restarted follower rejoins", |c| {
            c.replica(running).leader() == Some(leader)
        })
        .await;
        c.run_until_all_at("still every batch", 110).await;
        c.assert_every_log_holds(&expected).await;
    });
}

/// A follower's snapshot copy stops partway (the process stops with part of the batches in
/// its partition log, which no entry of its old Raft log accounts for); reopened, it
/// resumes the copy instead of refusing to open, and ends with the leader's log.
#[test]
fn an_interrupted_snapshot_install_resumes_after_a_restart() {
    with_compacting_cluster(4096, |c| async move {
        let leader = c.elect().await;
        let follower = a_follower(leader);
        c.stop(follower).await;
        c.propose_big(leader, 1..=40).await;
        c.run_until("forty batches on the running replicas", |c| {
            c.live().iter().all(|r| r.high_watermark() == 80)
        })
        .await;
        assert!(c.replica(leader).first_index() > 10, "the leader compacted");

        // One batch per read, three reads, then reads fail and the copy gives up.
        c.net.read_bytes.set(1);
        c.net.reads_left.set(Some(3));
        c.snapshot_attempts.set(1);
        c.may_fail.borrow_mut().insert(follower);
        c.open(follower).await;
        c.run_until("the follower's copy to stop partway", |c| {
            c.replica(follower).is_closed()
        })
        .await;
        let copied = c.replica(follower).partition().log_end_offset();
        assert!(copied > 0 && copied < 80, "copied up to {copied}");
        c.stop(follower).await;

        c.net.read_bytes.set(0);
        c.net.reads_left.set(None);
        c.snapshot_attempts
            .set(crate::constants::REPLICA_SNAPSHOT_ATTEMPTS);
        c.may_fail.borrow_mut().clear();
        c.open(follower).await;
        c.run_until_all_at("the follower finishes the copy", 80)
            .await;
        let expected: Vec<(i64, i64)> = (0..40).map(|i| (2 * i, i + 1)).collect();
        c.assert_every_log_holds(&expected).await;
        // And then follows by entries.
        drop(
            c.replica(leader)
                .propose(&big_records(41), 0)
                .expect("propose"),
        );
        c.run_until_all_at("one more batch everywhere", 82).await;
    });
}

/// A record set of about 1 KiB, so a few of them fill a small Raft log.
fn big_records(tag: i64) -> Vec<u8> {
    make_batch(2, 1000, tag)
}

/// Applying is resumed where the partition log ends, not where the checkpoint says: entries
/// applied after the last checkpoint are recognised (and one the log refused is skipped), so
/// none is applied twice.
#[test]
fn reopening_resumes_applying_after_entries_the_checkpoint_missed() {
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().to_owned();
    crate::io::block_on_local(async move {
        let net = Rc::new(Net::default());
        let open = || async {
            let partition = PartitionLog::open(dir.join("t-0"), LogConfig::default())
                .await
                .expect("open partition log");
            Replica::open(
                group(),
                ReplicaConfig::new(1, vec![1]),
                dir.join("raft"),
                partition,
                net.clone(),
            )
            .await
            .expect("open replica")
        };
        let idempotent = |tag, base_sequence| {
            make_batch_with(
                2,
                40,
                tag,
                ProducerFields {
                    producer_id: 5,
                    producer_epoch: 0,
                    base_sequence,
                },
            )
        };
        let replica = open().await;
        replica.campaign().expect("campaign");
        while replica.drive().await.expect("drive") {}
        assert!(replica.is_leader());
        let mut proposals = [
            replica.propose(&records(1), 0).expect("propose"),
            replica.propose(&idempotent(2, 0), 0).expect("propose"),
            // Sequence 5 after 0..=1: refused identically wherever it is applied.
            replica.propose(&idempotent(3, 5), 0).expect("propose"),
            replica.propose(&records(4), 0).expect("propose"),
        ];
        let last = replica.last_index();
        // Stop right after the Ready that applies the last entry: its checkpoint is never
        // recorded.
        while replica.applied_index() < last {
            assert!(replica.drive().await.expect("drive"));
        }
        assert!(matches!(
            poll(&mut proposals[2]).expect("resolved"),
            Err(ReplicaError::Partition {
                source: LogError::OutOfOrderSequence { .. },
                ..
            })
        ));
        replica.close().await.expect("close");
        replica.partition().close().await.expect("close partition");

        let replica = open().await;
        assert!(
            replica.checkpointed_index() < last,
            "the test needs a stale checkpoint"
        );
        assert_eq!(replica.applied_index(), last);
        replica.campaign().expect("campaign");
        while replica.drive().await.expect("drive") {}
        let mut fifth = replica.propose(&records(5), 0).expect("propose");
        while replica.drive().await.expect("drive") {}
        let info = poll(&mut fifth).expect("resolved").expect("applied");
        assert_eq!(info.base_offset, 6);
        assert_eq!(
            contents(&replica).await,
            vec![(0, 1), (2, 2), (4, 4), (6, 5)]
        );
        replica.close().await.expect("close");
        replica.partition().close().await.expect("close partition");
    });
}

/// A power loss of all three replicas at once (everything not fdatasynced is lost): after
/// they restart, every acknowledged record set is in every log exactly once and in order,
/// and the group goes on committing.
#[test]
fn acknowledged_batches_survive_a_power_loss_of_every_replica() {
    use crate::io::dma_file::faults;
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().to_owned();
    faults::enable();
    let acknowledged = crate::io::block_on_local({
        let dir = dir.clone();
        async move {
            let c = Cluster::start(dir, RAFT_LOG_COMPACT_BYTES).await;
            let leader = c.elect().await;
            let mut proposals = Vec::new();
            for tag in 1..=30 {
                proposals.push((tag, c.replica(leader).propose(&records(tag), 0).expect("p")));
                // Some rounds finish a proposal, some leave it in flight at the power loss.
                if tag % 3 != 0 {
                    c.round().await;
                }
            }
            // From here on nothing reaches the disk: the replicas run as tasks, entries still
            // travel, and what was committed before is applied (and acknowledged) into
            // partition logs that will lose it.
            faults::hold_syncs();
            let _runners: Vec<_> = c
                .live()
                .into_iter()
                .map(|r| crate::io::spawn(async move { r.run().await }))
                .collect();
            for tag in 31..=35 {
                proposals.push((tag, c.replica(leader).propose(&records(tag), 0).expect("p")));
            }
            c.pump(50).await;
            let acknowledged: Vec<i64> = proposals
                .iter_mut()
                .filter_map(|(tag, p)| matches!(poll(p), Some(Ok(_))).then_some(*tag))
                .collect();
            assert!(acknowledged.len() >= 10, "{acknowledged:?}");
            // The executor ends here with nothing closed: the power goes.
            acknowledged
        }
    });
    let lost = faults::lose_unsynced().expect("lose unsynced writes");
    assert!(lost > 0, "the power loss must lose something");
    faults::disable();
    // A fresh thread, as after a reboot: the shard's thread-local group commit still
    // believes the round that the power loss interrupted is running.
    let restart = std::thread::spawn(move || {
        crate::io::block_on_local(restart_after_power_loss(dir, acknowledged))
    });
    restart.join().expect("restart");
}

/// Restarts the three replicas in `dir` and checks what the power loss left.
async fn restart_after_power_loss(dir: PathBuf, acknowledged: Vec<i64>) {
    let c = Cluster::start(dir, RAFT_LOG_COMPACT_BYTES).await;
    let leader = c.elect().await;
    let mut last = c
        .replica(leader)
        .propose(&records(100), 0)
        .expect("propose");
    c.run_until("the group commits after the restart", |c| {
        let end = c.replica(leader).high_watermark();
        c.live().iter().all(|r| r.high_watermark() == end) && matches!(poll(&mut last), Some(Ok(_)))
    })
    .await;
    let held = tags(&contents(&c.replica(leader)).await);
    assert_eq!(held.last(), Some(&100));
    let survivors: Vec<i64> = held
        .iter()
        .copied()
        .filter(|tag| acknowledged.contains(tag))
        .collect();
    assert_eq!(
        survivors, acknowledged,
        "every acknowledged batch, once, in order"
    );
    let mut sorted = held.clone();
    sorted.dedup();
    assert_eq!(sorted, held, "no batch twice");
    let expected = contents(&c.replica(leader)).await;
    c.assert_every_log_holds(&expected).await;
}

/// A transactional batch of two records from producer 7 (epoch 0), told apart by `tag`.
fn transactional_records(tag: i64) -> Vec<u8> {
    let fields = ProducerFields {
        producer_id: 7,
        producer_epoch: 0,
        base_sequence: 0,
    };
    let mut batch = make_batch_with(2, 40, tag, fields);
    let transactional: i16 = 0x10;
    batch[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&transactional.to_be_bytes());
    let crc = crc32c::crc32c(&batch[OFFSET_CRC_START..]);
    batch[OFFSET_CRC..OFFSET_CRC_START].copy_from_slice(&crc.to_be_bytes());
    batch
}

#[test]
fn a_transaction_marker_is_an_entry_every_replica_stores_at_the_same_offset() {
    with_cluster(|c| async move {
        let leader = c.elect().await;
        drop(
            c.replica(leader)
                .propose(&transactional_records(1), 0)
                .expect("propose"),
        );
        c.run_until_all_at("the transaction's data everywhere", 2)
            .await;
        for replica in c.live() {
            assert_eq!(replica.partition().last_stable_offset(), 0, "open");
        }

        let mut marker = c
            .replica(leader)
            .propose_marker(&crate::log::marker_batch(7, 0, false, 0, 2), 2)
            .expect("propose the marker");
        c.run_until_all_at("the marker everywhere", 3).await;
        let info = poll(&mut marker).expect("resolved").expect("committed");
        assert_eq!((info.base_offset, info.last_offset), (2, 2));
        for replica in c.live() {
            let log = replica.partition();
            // The test logs' high watermark (and so the stable offset) follows fsync.
            log.wait_durable(2).await.expect("durable");
            assert_eq!(log.last_stable_offset(), 3, "aborted on {}", replica.id());
            assert_eq!(log.aborted_txns(0, 3).len(), 1, "on {}", replica.id());
        }

        // A control batch in a record set is a client's produce: refused, nothing stored.
        let mut forged = c
            .replica(leader)
            .propose(&crate::log::marker_batch(7, 0, true, 0, 3), 0)
            .expect("propose");
        c.settle(5).await;
        assert!(matches!(
            poll(&mut forged),
            Some(Err(ReplicaError::Partition { .. }))
        ));

        // A restarted follower matches the marker entry against the stored marker.
        let follower = a_follower(leader);
        c.stop(follower).await;
        c.open(follower).await;
        drop(c.replica(leader).propose(&records(4), 0).expect("propose"));
        c.run_until_all_at("a batch after the marker everywhere", 5)
            .await;
        let log = c.replica(follower).partition().clone();
        log.wait_durable(4).await.expect("durable");
        assert_eq!(log.aborted_txns(0, 5).len(), 1);
        assert_eq!(log.last_stable_offset(), 5);
    });
}

/// What a kill can leave on a follower: entries durable in its Raft log and applied to its
/// partition log, but neither the HardState that moved the commit index over them (a Ready
/// that only moves the commit index is not waited for) nor the applied checkpoints after.
/// The restart must recognise the applied entries rather than refuse to open.
#[test]
fn a_restart_finds_applied_entries_past_a_commit_index_that_was_not_durable() {
    with_cluster(|c| async move {
        let leader = c.elect().await;
        let follower = a_follower(leader);
        let before = super::AppliedCheckpoint {
            index: c.replica(follower).applied_index(),
            log_end_offset: 0,
        };
        c.propose_each(leader, 1..=3);
        c.run_until_all_at("three batches everywhere", 6).await;
        let term = c.replica(follower).term();
        c.stop(follower).await;
        {
            let dir = c
                .dir
                .join(format!("node-{follower}"))
                .join("raft")
                .join("t-0");
            let store = super::raft_store::RaftStore::open(dir, &IDS, 0)
                .await
                .expect("open the Raft log");
            store.record_applied(before, 0).expect("checkpoint");
            let hard_state = raft::eraftpb::HardState {
                term,
                vote: leader,
                commit: before.index,
                ..Default::default()
            };
            store
                .persist(&[], Some(&hard_state), None, 0)
                .expect("persist")
                .expect("a record")
                .wait_durable()
                .await
                .expect("durable");
            store.close().await.expect("close");
        }
        c.open(follower).await;
        assert!(c.replica(follower).applied_index() > before.index);
        drop(c.replica(leader).propose(&records(4), 0).expect("propose"));
        c.run_until_all_at("a fourth batch everywhere", 8).await;
        let expected: Vec<(i64, i64)> = (0..4).map(|i| (2 * i, i + 1)).collect();
        c.assert_every_log_holds(&expected).await;
    });
}

/// An attached state that records the changes it is given, and keeps the state they
/// describe: "key=value" sets a key, absolutely, as share-state changes do.
#[derive(Default)]
struct Recorder(
    RefCell<Vec<Vec<u8>>>,
    RefCell<std::collections::BTreeMap<String, String>>,
);

impl super::attached_state::AttachedState for Recorder {
    fn apply(
        &self,
        change: bytes::Bytes,
    ) -> Result<Option<super::attached_state::DurableMark>, String> {
        let text = String::from_utf8_lossy(&change).into_owned();
        if let Some((key, value)) = text.split_once('=') {
            self.1.borrow_mut().insert(key.to_owned(), value.to_owned());
        }
        self.0.borrow_mut().push(change.to_vec());
        Ok(None)
    }

    fn snapshot(&self) -> Result<Vec<bytes::Bytes>, String> {
        let state = self.1.borrow();
        let changes = state
            .iter()
            .map(|(k, v)| bytes::Bytes::from(format!("{k}={v}")));
        Ok(changes.collect())
    }
}

fn attach_recorder(replica: &Replica) -> Rc<Recorder> {
    let recorder = Rc::new(Recorder::default());
    replica
        .attach_state(recorder.clone())
        .expect("attach a state");
    recorder
}

/// Attaches a recorder to replica `id` that the test transport reads snapshots from.
fn attach_served_recorder(c: &Cluster, id: u64) -> Rc<Recorder> {
    let recorder = attach_recorder(&c.replica(id));
    c.net.states.borrow_mut().insert(id, Rc::clone(&recorder));
    recorder
}

/// A follower that comes back behind a compacted Raft log gets the partition log from a
/// snapshot, and the attached state with it: the changes compacted away with the entries
/// reach it from the leader's state, and the later ones as entries.
#[test]
fn a_snapshot_carries_the_attached_state() {
    with_compacting_cluster(4096, |c| async move {
        let leader = c.elect().await;
        let stopped = a_follower(leader);
        for id in IDS {
            attach_served_recorder(&c, id);
        }
        c.stop(stopped).await;
        for (tags, change) in [(1..=20, "a=1"), (21..=40, "b=2"), (41..=50, "a=3")] {
            drop(
                c.replica(leader)
                    .propose_state(change.as_bytes(), 0)
                    .expect("propose a change"),
            );
            c.propose_big(leader, tags).await;
        }
        c.run_until_all_at("fifty batches on the running replicas", 100)
            .await;
        assert!(c.replica(leader).first_index() > 10, "compacted");

        c.open(stopped).await;
        let late = attach_served_recorder(&c, stopped);
        drop(
            c.replica(leader)
                .propose_state(b"c=4", 0)
                .expect("propose a change"),
        );
        c.propose_big(leader, 51..=51).await;
        c.run_until_all_at("the stopped follower catches up", 102)
            .await;
        assert!(
            c.replica(stopped).first_index() > 10,
            "it caught up from a snapshot, not from entries"
        );
        let expected: std::collections::BTreeMap<String, String> =
            [("a", "3"), ("b", "2"), ("c", "4")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let leader_state = c.net.states.borrow()[&leader].1.borrow().clone();
        assert_eq!(leader_state, expected);
        assert_eq!(
            *late.1.borrow(),
            expected,
            "the snapshot's state, then the entries"
        );
    });
}

/// State changes are entries every replica hands to its attached state in log order, beside
/// the record sets around them. A replica with no state attached keeps the changes, and its
/// applied checkpoint, until one is; a restart in that condition finds them again.
#[test]
fn state_changes_reach_every_replica_in_order_once_a_state_is_attached() {
    with_cluster(|c| async move {
        let leader = c.elect().await;
        let followers: Vec<u64> = IDS.into_iter().filter(|id| *id != leader).collect();
        let (attached, unattached) = (followers[0], followers[1]);
        let on_leader = attach_recorder(&c.replica(leader));
        let on_follower = attach_recorder(&c.replica(attached));
        let held_at = c.replica(unattached).checkpointed_index();

        let mut first = c
            .replica(leader)
            .propose_state(b"first", 0)
            .expect("propose a change");
        drop(c.replica(leader).propose(&records(1), 0).expect("propose"));
        drop(
            c.replica(leader)
                .propose_state(b"second", 0)
                .expect("propose a change"),
        );
        drop(c.replica(leader).propose(&records(2), 0).expect("propose"));
        c.run_until_all_at("two batches everywhere", 4).await;
        let info = poll(&mut first).expect("resolved").expect("committed");
        assert_eq!(
            info.base_offset, 0,
            "a change leaves the partition log as it was"
        );
        let expected = vec![b"first".to_vec(), b"second".to_vec()];
        assert_eq!(*on_leader.0.borrow(), expected);
        assert_eq!(*on_follower.0.borrow(), expected);
        for replica in c.live() {
            replica.partition().wait_durable(3).await.expect("durable");
        }
        c.settle(5).await;
        assert!(
            c.replica(attached).checkpointed_index() > held_at,
            "an attached replica checkpoints past the changes"
        );
        assert_eq!(
            c.replica(unattached).checkpointed_index(),
            held_at,
            "the checkpoint waits for a state to take the changes"
        );

        c.stop(unattached).await;
        c.open(unattached).await;
        c.settle(5).await;
        let late = attach_recorder(&c.replica(unattached));
        drop(c.replica(leader).propose(&records(3), 0).expect("propose"));
        c.run_until_all_at("a third batch everywhere", 6).await;
        assert_eq!(*late.0.borrow(), expected, "the changes, after a restart");
        let log = c.replica(unattached).partition().clone();
        log.wait_durable(5).await.expect("durable");
        c.settle(5).await;
        assert!(c.replica(unattached).checkpointed_index() > held_at);
    });
}

/// A follower that lost its disk copies the leader's log from a snapshot after the leader's
/// log start moved (DeleteRecords here; retention and the cleaner leave the same kind of
/// hole): the copy starts where the leader's log starts, at the same offsets, and keeps
/// following; a restart recovers it.
#[test]
fn a_snapshot_copy_skips_offsets_the_leader_no_longer_holds() {
    with_compacting_cluster(4096, |c| async move {
        let leader = c.elect().await;
        let wiped = a_follower(leader);
        c.stop(wiped).await;
        c.propose_big(leader, 1..=20).await;
        c.run_until_all_at("twenty batches on the running replicas", 40)
            .await;
        assert!(c.replica(leader).first_index() > 10, "compacted");
        let log = c.replica(leader).partition().clone();
        log.delete_records_before(30, 0)
            .await
            .expect("delete records");
        assert_eq!(log.log_start_offset(), 30);

        std::fs::remove_dir_all(c.dir.join(format!("node-{wiped}"))).expect("wipe");
        c.open(wiped).await;
        c.propose_big(leader, 21..=22).await;
        c.run_until_all_at("the wiped follower catches up", 44)
            .await;
        let copy = c.replica(wiped).partition().clone();
        assert_eq!(
            copy.log_start_offset(),
            30,
            "the copy starts where the leader's log does"
        );
        let expected: Vec<(i64, i64)> = (15..22).map(|i| (2 * i, i + 1)).collect();
        assert_eq!(contents(&c.replica(wiped)).await, expected);

        c.stop(wiped).await;
        c.open(wiped).await;
        c.propose_big(leader, 23..=23).await;
        c.run_until_all_at("still following after a restart", 46)
            .await;
        let expected: Vec<(i64, i64)> = (15..23).map(|i| (2 * i, i + 1)).collect();
        assert_eq!(contents(&c.replica(wiped)).await, expected);
        assert_eq!(c.replica(wiped).partition().log_start_offset(), 30);
    });
}
