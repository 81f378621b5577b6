//! Acknowledged writes survive leader kills (issue 17, first done-criterion), with three real
//! nodes and a topic of 4 partitions, replication factor 3. An idempotent rdkafka producer
//! (acks=all, bootstrapped on all three nodes) writes to every partition without pause while
//! the node leading partition `k % 4` is killed with SIGKILL, for k = 0..10: each time every
//! partition must take writes again with that node down, then the node restarts and every
//! partition's leader must report both followers caught up before the next kill. Then every
//! record the producer sent must have been acknowledged, and every partition read from
//! offset 0 holds exactly the acknowledged records, once each and in the order sent: a lost
//! acknowledged record, a duplicate of a retried batch, or a reordering fails here.
//!
//! Then a consumer group reads the topic and commits half of it; the node coordinating the
//! group is killed and stays down. The group's offsets are a replicated partition of
//! `__consumer_offsets`, so its coordinator moves to the node that now leads that partition:
//! a client of a survivor reads the offsets committed before the kill, and the member goes
//! on consuming, finishes the topic and commits its ends, all with the node down. After the
//! node restarts (and may lead the partition again), the ends are still what is committed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::cluster_support::{
    agreed_leaders, cluster_addrs, cluster_status, committed_each, consumed_by_partition,
    find_coordinator, metadata_client, partition_status, registered_clients, start_cluster,
    try_create_topic_via, wait_for_agreed_leaders, CLUSTER_TIMEOUT,
};
use crate::common::{
    assign, consume_count, consumer, producer, topic_name, wait_until, Broker, Delivery,
    TestProducer,
};

const PARTITIONS: i32 = 4;
const KILLS: usize = 10;
/// Acknowledgements each partition must gain after a kill: more than a leader could have
/// had in flight when it died, so they come from the partition's leader after the kill.
const ACKS_AFTER_KILL: usize = 100;
/// Raft entries a follower may trail its leader by and count as caught up under load.
const CAUGHT_UP_LAG: u64 = 200;
/// The producer's wait between rounds of one record per partition: it writes at a steady
/// pace rather than as fast as it can, so the test's data stays small.
const PAUSE: Duration = Duration::from_millis(5);

#[test]
fn cluster_idempotent_producer_survives_ten_leader_kills() {
    let mut nodes = start_cluster(&[]);
    let clients = registered_clients(&nodes);
    let addrs = cluster_addrs(&nodes);
    let bootstrap = nodes
        .iter()
        .map(Broker::bootstrap)
        .collect::<Vec<_>>()
        .join(",");

    let topic = topic_name("kills");
    try_create_topic_via(
        &nodes[0],
        &NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(3)),
    )
    .expect("create the replicated topic");
    wait_until(
        "every node to agree on the topic's leaders",
        CLUSTER_TIMEOUT,
        || agreed_leaders(&clients, &topic, PARTITIONS).is_some(),
    );

    let writer = SteadyWriter::start(&bootstrap, &topic);
    for kill in 0..KILLS {
        let p = kill % PARTITIONS as usize;
        let leader = wait_for_agreed_leaders(&clients, &topic, PARTITIONS)[p];
        let victim = node_index(leader);
        let acked_at_kill = writer.acknowledged();
        let killed_at = Instant::now();
        nodes[victim].kill();

        // Every partition takes writes again: its survivors elected a leader where needed.
        wait_until(
            "every partition to acknowledge writes with the leader's node down",
            CLUSTER_TIMEOUT,
            || {
                let now = writer.acknowledged();
                (0..PARTITIONS as usize).all(|q| now[q] >= acked_at_kill[q] + ACKS_AFTER_KILL)
            },
        );
        let survivors: Vec<BaseConsumer> = (0..nodes.len())
            .filter(|i| *i != victim)
            .map(|i| metadata_client(&nodes[i]))
            .collect();
        wait_until(
            "the survivors to name a new leader of the partition",
            CLUSTER_TIMEOUT,
            || {
                agreed_leaders(&survivors, &topic, PARTITIONS)
                    .is_some_and(|now| node_index(now[p]) != victim)
            },
        );
        eprintln!(
            "kill {kill}: node {} (led partition {p}); every partition acknowledged \
             {ACKS_AFTER_KILL} more records {:?} after the kill",
            victim + 1,
            killed_at.elapsed()
        );

        nodes[victim].restart();
        wait_until(
            "every partition's leader to have both followers caught up",
            CLUSTER_TIMEOUT,
            || followers_caught_up(&clients, &addrs, &topic),
        );
        writer.assert_running();
    }

    let sent = writer.finish();
    let expected = sent.by_partition();
    let total: usize = expected.values().map(Vec::len).sum();
    eprintln!("{total} records sent and acknowledged over {KILLS} kills");

    let reader = consumer(&bootstrap, &[]);
    let starts: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    assign(&reader, &topic, &starts);
    let read = consumed_by_partition(&consume_count(&reader, total, CLUSTER_TIMEOUT));
    for (partition, values) in &expected {
        let got = read.get(partition).map_or(&[][..], Vec::as_slice);
        if got != values.as_slice() {
            panic!(
                "partition {partition}: {} records read, {} acknowledged; first difference at \
                 {:?}",
                got.len(),
                values.len(),
                first_difference(got, values)
            );
        }
    }
    assert_eq!(read.len(), expected.len(), "no records in other partitions");

    group_survives_its_coordinators_kill(&mut nodes, &bootstrap, &topic, &expected);
}

/// The group half of the test (see the module comment).
fn group_survives_its_coordinators_kill(
    nodes: &mut [Broker],
    bootstrap: &str,
    topic: &str,
    expected: &BTreeMap<i32, Vec<Vec<u8>>>,
) {
    let total: usize = expected.values().map(Vec::len).sum();
    let group = topic_name("kills-group");
    let member = consumer(
        bootstrap,
        &[
            ("group.id", group.as_str()),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "30000"),
        ],
    );
    member.subscribe(&[topic]).expect("subscribe");
    let mut read: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
    poll_group_until(&member, &mut read, "half the topic", |read| {
        read.values().map(Vec::len).sum::<usize>() >= total / 2
    });
    let committed_before = next_offsets(&read);
    commit_until_accepted(&member, topic, &committed_before);

    let coordinator = find_coordinator(nodes[0].bootstrap(), &group, 0);
    let victim = node_index(coordinator);
    eprintln!(
        "group {group}: coordinator {coordinator}, node {} killed",
        victim + 1
    );
    nodes[victim].kill();
    // Fetching goes on with the coordinator gone: records keep arriving.
    let read_at_kill = read.values().map(Vec::len).sum::<usize>();
    poll_group_until(
        &member,
        &mut read,
        "more records with the coordinator down",
        |read| read.values().map(Vec::len).sum::<usize>() > read_at_kill,
    );

    // What was committed before the kill is what the new coordinator answers.
    let survivor = (0..nodes.len())
        .find(|i| *i != victim)
        .expect("another node");
    let reader = consumer(nodes[survivor].bootstrap(), &[("group.id", group.as_str())]);
    let fetched = committed_each(&reader, topic, PARTITIONS);
    let want: Vec<Offset> = (0..PARTITIONS)
        .map(|p| {
            committed_before
                .get(&p)
                .map_or(Offset::Invalid, |o| Offset::Offset(*o))
        })
        .collect();
    assert_eq!(
        fetched, want,
        "the group's offsets committed before its coordinator was killed"
    );

    poll_group_until(&member, &mut read, "the whole topic", |read| {
        expected
            .iter()
            .all(|(p, values)| read.get(p).is_some_and(|r| r.len() >= values.len()))
    });
    for (partition, values) in expected {
        assert_eq!(
            read.get(partition),
            Some(values),
            "partition {partition} read through the group: every record once, in order"
        );
    }
    commit_until_accepted(&member, topic, &next_offsets(&read));
    let ends: Vec<Offset> = (0..PARTITIONS)
        .map(|p| Offset::Offset(i64::try_from(expected[&p].len()).expect("count")))
        .collect();
    assert_eq!(
        committed_each(&reader, topic, PARTITIONS),
        ends,
        "the group's offsets at the partition ends, committed with its first coordinator down"
    );

    // The killed node comes back; whichever node leads the offsets partition now answers
    // the ends (a fresh client looks the coordinator up again).
    nodes[victim].restart();
    let later = consumer(nodes[victim].bootstrap(), &[("group.id", group.as_str())]);
    assert_eq!(
        committed_each(&later, topic, PARTITIONS),
        ends,
        "the group's offsets after the killed coordinator's node came back"
    );
}

/// Polls the group `member` into `read` (by partition, each record at its offset) until
/// `done(read)`. A record read again (the group rebalanced and the member resumed from its
/// committed offset) must be the one read there before; a gap fails.
fn poll_group_until(
    member: &BaseConsumer,
    read: &mut BTreeMap<i32, Vec<Vec<u8>>>,
    what: &str,
    done: impl Fn(&BTreeMap<i32, Vec<Vec<u8>>>) -> bool,
) {
    let deadline = Instant::now() + CLUSTER_TIMEOUT;
    let mut errors = Vec::new();
    while !done(read) {
        assert!(
            Instant::now() < deadline,
            "group consumer: {what} not read within {CLUSTER_TIMEOUT:?}; last errors {:?}",
            &errors[errors.len().saturating_sub(5)..]
        );
        match member.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                use rdkafka::Message;
                let partition = message.partition();
                let value = message.payload().unwrap_or_default().to_vec();
                let values = read.entry(partition).or_default();
                let offset = usize::try_from(message.offset()).expect("an offset");
                match values.get(offset) {
                    Some(earlier) => assert_eq!(
                        earlier, &value,
                        "partition {partition} offset {offset} read again: the same record"
                    ),
                    None => {
                        assert_eq!(
                            offset,
                            values.len(),
                            "partition {partition}: the group member skipped offsets"
                        );
                        values.push(value);
                    }
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(error)) => errors.push(error.to_string()),
        }
    }
}

/// The offset after the last record read, by partition.
fn next_offsets(read: &BTreeMap<i32, Vec<Vec<u8>>>) -> BTreeMap<i32, i64> {
    read.iter()
        .map(|(p, values)| (*p, i64::try_from(values.len()).expect("count")))
        .collect()
}

/// Commits `offsets` of `topic` for `member`'s group, retried while the coordinator is being
/// found again or is loading (a commit is the member's only way to make progress durable).
fn commit_until_accepted(member: &BaseConsumer, topic: &str, offsets: &BTreeMap<i32, i64>) {
    let mut list = TopicPartitionList::new();
    for (p, offset) in offsets {
        list.add_partition_offset(topic, *p, Offset::Offset(*offset))
            .expect("add partition offset");
    }
    let mut last = None;
    wait_until(
        "the group commit to be accepted",
        CLUSTER_TIMEOUT,
        || match member.commit(&list, CommitMode::Sync) {
            Ok(()) => true,
            Err(error) => {
                if last.as_ref() != Some(&error.to_string()) {
                    eprintln!("commit: {error}; retrying");
                    last = Some(error.to_string());
                }
                member.poll(Duration::from_millis(100));
                false
            }
        },
    );
}

/// The node index (0-based) of cluster broker `id` (`node * 1000 + shard`).
fn node_index(id: i32) -> usize {
    usize::try_from(id / 1000 - 1).expect("a cluster broker id")
}

/// Whether every partition's leader, as every node names it, reports both followers within
/// `CAUGHT_UP_LAG` entries of its log.
fn followers_caught_up(clients: &[BaseConsumer], addrs: &[String], topic: &str) -> bool {
    let Some(leaders) = agreed_leaders(clients, topic, PARTITIONS) else {
        return false;
    };
    leaders.iter().zip(0..).all(|(leader, partition)| {
        let node = u64::try_from(leader / 1000).expect("node id");
        cluster_status(&addrs[node_index(*leader)]).is_some_and(|status| {
            partition_status(&status, topic, partition).is_some_and(|p| {
                p["leader"].as_u64() == Some(node)
                    && p["followers"].as_object().is_some_and(|f| {
                        f.len() == 2
                            && f.values()
                                .all(|s| s["lag"].as_u64().is_some_and(|l| l <= CAUGHT_UP_LAG))
                    })
            })
        })
    })
}

fn first_difference(got: &[Vec<u8>], want: &[Vec<u8>]) -> Option<(usize, String, String)> {
    let show = |v: Option<&Vec<u8>>| {
        v.map_or("(none)".into(), |v| String::from_utf8_lossy(v).into_owned())
    };
    (0..got.len().max(want.len()))
        .find(|i| got.get(*i) != want.get(*i))
        .map(|i| (i, show(got.get(i)), show(want.get(i))))
}

/// What the writer sent, in order, and the delivery report of each.
struct Sent {
    records: Vec<(i32, Vec<u8>)>,
    deliveries: Vec<Delivery>,
}

impl Sent {
    /// The values sent to each partition, in order, once every one was acknowledged.
    fn by_partition(&self) -> BTreeMap<i32, Vec<Vec<u8>>> {
        let failed: Vec<&Delivery> = self
            .deliveries
            .iter()
            .filter(|d| d.error.is_some())
            .collect();
        assert!(
            failed.is_empty(),
            "{} of {} records not acknowledged; first: {:?}",
            failed.len(),
            self.records.len(),
            failed.first()
        );
        assert_eq!(
            self.deliveries.len(),
            self.records.len(),
            "a delivery report for every record"
        );
        let mut by_partition: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
        for (partition, value) in &self.records {
            by_partition
                .entry(*partition)
                .or_default()
                .push(value.clone());
        }
        by_partition
    }
}

/// The producer, and every record it sent (partition, value) in order.
type Written = (TestProducer, Vec<(i32, Vec<u8>)>);

/// An idempotent producer writing to every partition in turn on its own thread until
/// stopped; its delivery reports are visible as they come.
struct SteadyWriter {
    stop: Arc<AtomicBool>,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    thread: Option<JoinHandle<Result<Written, String>>>,
}

impl SteadyWriter {
    fn start(bootstrap: &str, topic: &str) -> SteadyWriter {
        let writer = producer(
            bootstrap,
            &[
                ("enable.idempotence", "true"),
                ("compression.type", "none"),
                // Nothing may time out: every record must be acknowledged in the end.
                ("message.timeout.ms", "600000"),
                // A killed node's requests fail at once; the default 60 s would only matter
                // for a node that hangs.
                ("socket.timeout.ms", "10000"),
            ],
        );
        let deliveries = writer.context().deliveries.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let topic = topic.to_owned();
        let thread = std::thread::spawn(move || {
            let mut sent = Vec::new();
            let mut seq = 0_usize;
            while !stopped.load(Ordering::Relaxed) {
                for partition in 0..PARTITIONS {
                    let value = format!("kills-p{partition}-{seq:07}").into_bytes();
                    let mut record = BaseRecord::with_opaque_to(&topic, Box::new(sent.len()))
                        .partition(partition)
                        .key("k")
                        .payload(value.as_slice());
                    loop {
                        match writer.send(record) {
                            Ok(()) => break,
                            Err((
                                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                                r,
                            )) => {
                                record = r;
                                writer.poll(PAUSE);
                            }
                            Err((error, _)) => return Err(format!("send: {error}")),
                        }
                    }
                    sent.push((partition, value));
                }
                seq += 1;
                writer.poll(PAUSE);
            }
            Ok((writer, sent))
        });
        SteadyWriter {
            stop,
            deliveries,
            thread: Some(thread),
        }
    }

    /// Successful deliveries so far, by partition.
    fn acknowledged(&self) -> Vec<usize> {
        let mut counts = vec![0; PARTITIONS as usize];
        for d in self.deliveries.lock().expect("lock").iter() {
            if d.error.is_none() {
                counts[usize::try_from(d.partition).expect("partition")] += 1;
            }
        }
        counts
    }

    /// Fails if the producer stopped on its own (a fatal error of the idempotent producer).
    fn assert_running(&self) {
        if let Some(thread) = &self.thread {
            assert!(!thread.is_finished(), "the producer stopped early");
        }
        if let Some(failed) = self
            .deliveries
            .lock()
            .expect("lock")
            .iter()
            .find(|d| d.error.is_some())
        {
            panic!("a record was not acknowledged: {failed:?}");
        }
    }

    /// Stops sending, waits for every delivery report, and returns what was sent.
    fn finish(mut self) -> Sent {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("running");
        let (writer, records) = thread
            .join()
            .expect("producer thread")
            .unwrap_or_else(|e| panic!("producer: {e}"));
        writer
            .flush(CLUSTER_TIMEOUT)
            .expect("every record acknowledged or failed");
        wait_until("every delivery report", CLUSTER_TIMEOUT, || {
            writer.poll(Duration::ZERO);
            self.deliveries.lock().expect("lock").len() >= records.len()
        });
        let mut deliveries = self.deliveries.lock().expect("lock").clone();
        deliveries.sort_by_key(|d| d.id);
        Sent {
            records,
            deliveries,
        }
    }
}

impl Drop for SteadyWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
