//! Failover: a group member killed mid-stream (kcat, SIGKILL: no LeaveGroup) hands its
//! partitions to the survivor within the session timeout. No message is skipped, and the
//! survivor resumes the dead member's partitions exactly at their last committed offsets.

use crate::common;
use crate::group_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};

use common::{create_topic, produce_all, producer, topic_name, Broker, TestRecord, CLIENT_TIMEOUT};
use group_support::{assigned, committed_offsets, group_consumer, poll_until, SESSION_TIMEOUT_MS};

const PARTITIONS_COUNT: i32 = 4;
const RECORDS_PER_PHASE: usize = 200;

fn records(phase: usize) -> Vec<TestRecord> {
    (0..RECORDS_PER_PHASE)
        .map(|i| {
            TestRecord::new(format!("k{phase}-{i}"), format!("v{phase}-{i}"))
                .partition((i % PARTITIONS_COUNT as usize) as i32)
        })
        .collect()
}

#[test]
fn group_failover_hands_partitions_to_survivor() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("jobs");
    let group = topic_name("runners");
    create_topic(&bootstrap, &topic, PARTITIONS_COUNT);

    // The victim: kcat in the group, auto-committing every 100 ms, printing "partition offset".
    let mut victim = Command::new("kcat")
        .args(["-b", &bootstrap, "-G", &group, "-q", "-u", "-f", "%p %o\n"])
        .args(["-X", &format!("session.timeout.ms={SESSION_TIMEOUT_MS}")])
        .args([
            "-X",
            "heartbeat.interval.ms=500",
            "-X",
            "auto.commit.interval.ms=100",
        ])
        .args(["-X", "auto.offset.reset=earliest", &topic])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kcat (the victim consumer)");
    let (lines_tx, lines_rx) = mpsc::channel::<(i32, i64)>();
    let stdout = victim.stdout.take().expect("kcat stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut fields = line.split_whitespace().map(str::parse::<i64>);
            if let (Some(Ok(p)), Some(Ok(o))) = (fields.next(), fields.next()) {
                let _ = lines_tx.send((p as i32, o));
            }
        }
    });

    let (survivor, _) = group_consumer(&bootstrap, &group, &topic, &[]);
    let consumers = [&survivor];
    let mut received = vec![Vec::new()];
    poll_until(
        &consumers,
        &mut received,
        "the survivor to get half the partitions",
        CLIENT_TIMEOUT,
        |_| assigned(&survivor).len() == PARTITIONS_COUNT as usize / 2,
    );
    let victim_partitions: BTreeSet<i32> = (0..PARTITIONS_COUNT)
        .filter(|p| !assigned(&survivor).contains(p))
        .collect();

    // Phase 1: both consume; the survivor commits synchronously, kcat every 100 ms.
    produce_all(&producer(&bootstrap, &[]), &topic, &records(1));
    let mut victim_seen: Vec<(i32, i64)> = Vec::new();
    poll_until(
        &consumers,
        &mut received,
        "phase 1 consumed and committed",
        CLIENT_TIMEOUT,
        |r| {
            victim_seen.extend(lines_rx.try_iter());
            r[0].len() >= RECORDS_PER_PHASE / 2 && victim_seen.len() >= RECORDS_PER_PHASE / 2
        },
    );
    survivor
        .commit_consumer_state(CommitMode::Sync)
        .expect("survivor commit");
    let per_partition = (RECORDS_PER_PHASE / PARTITIONS_COUNT as usize) as i64;
    common::wait_until("kcat to commit phase 1", CLIENT_TIMEOUT, || {
        let committed = committed_offsets(&bootstrap, &group, &topic, PARTITIONS_COUNT);
        victim_partitions
            .iter()
            .all(|p| committed[p] == Some(per_partition))
    });

    // Phase 2 starts, and the victim dies mid-stream.
    produce_all(&producer(&bootstrap, &[]), &topic, &records(2));
    victim.kill().expect("SIGKILL kcat");
    let killed_at = Instant::now();
    victim.wait().expect("reap kcat");
    victim_seen.extend(lines_rx.try_iter());
    let committed = committed_offsets(&bootstrap, &group, &topic, PARTITIONS_COUNT);

    poll_until(
        &consumers,
        &mut received,
        "the survivor to take over",
        CLIENT_TIMEOUT,
        |_| assigned(&survivor).len() == PARTITIONS_COUNT as usize,
    );
    let takeover = killed_at.elapsed();
    assert!(
        takeover < Duration::from_millis(SESSION_TIMEOUT_MS + 4_000),
        "takeover took {takeover:?}, session timeout is {SESSION_TIMEOUT_MS} ms"
    );
    let end = 2 * per_partition;
    poll_until(
        &consumers,
        &mut received,
        "everything consumed",
        CLIENT_TIMEOUT,
        |r| {
            let mut next: BTreeMap<i32, i64> = BTreeMap::new();
            for m in &r[0] {
                let e = next.entry(m.partition).or_default();
                *e = (*e).max(m.offset + 1);
            }
            (0..PARTITIONS_COUNT).all(|p| next.get(&p) == Some(&end))
        },
    );

    for p in &victim_partitions {
        let resume = committed[p].expect("kcat committed before dying");
        let survivor_offsets: Vec<i64> = received[0]
            .iter()
            .filter(|m| m.partition == *p)
            .map(|m| m.offset)
            .collect();
        assert_eq!(
            survivor_offsets,
            (resume..end).collect::<Vec<_>>(),
            "partition {p}: the survivor resumes exactly at the committed offset {resume}"
        );
        let victim_offsets: BTreeSet<i64> = victim_seen
            .iter()
            .filter(|(vp, _)| vp == p)
            .map(|(_, o)| *o)
            .collect();
        for offset in 0..resume {
            assert!(
                victim_offsets.contains(&offset),
                "partition {p} offset {offset} was committed but never consumed"
            );
        }
    }
    // The survivor's own partitions are revoked and reassigned by the rebalance too: what it
    // consumed after its last commit may come again, nothing before it.
    for p in (0..PARTITIONS_COUNT).filter(|p| !victim_partitions.contains(p)) {
        let last_commit = committed[&p].expect("the survivor committed phase 1");
        let mut offsets: Vec<i64> = received[0]
            .iter()
            .filter(|m| m.partition == p)
            .map(|m| m.offset)
            .collect();
        let mut seen = BTreeSet::new();
        for offset in &offsets {
            assert!(
                seen.insert(*offset) || *offset >= last_commit,
                "partition {p} offset {offset} redelivered though committed ({last_commit})"
            );
        }
        offsets.sort_unstable();
        offsets.dedup();
        assert_eq!(
            offsets,
            (0..end).collect::<Vec<_>>(),
            "partition {p}: nothing skipped"
        );
    }
}
