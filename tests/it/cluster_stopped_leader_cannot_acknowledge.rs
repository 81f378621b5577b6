//! A partitioned leader cannot acknowledge writes (issue 17, third done-criterion), with
//! three real nodes and a topic of 4 partitions, replication factor 3. An idempotent rdkafka
//! producer (acks=all) writes to every partition; partition 0's leader node L also takes a
//! raw acks=all Produce and acknowledges it. Then L is frozen with SIGSTOP (a partition: its
//! sockets stay open, nothing is answered) and raw Produce requests are written to its
//! connection (acks=all and acks=1 in turn, then acks=0): they wait in its socket buffer,
//! and L, being stopped, cannot have sent them to anyone. A fresh producer bootstrapped on
//! the two other nodes writes to every partition until acknowledged: the majority elects a
//! new leader for L's partitions. L resumes with SIGCONT and reads the requests while it
//! still believes it leads. L can no longer commit them, so they must be refused (an error,
//! or no answer at all); a success would have to be backed by the record being there, and
//! is not, so a leader answering before the commit fails here. `sluice cluster status` of L
//! shows it following the new leader (or, if the hand-back to the preferred replica came
//! before the poll, leading in a later term, which it can only reach as a follower). Every
//! partition, read through whoever leads it, holds exactly the acknowledged records, once
//! and in order, and none of the raw records sent during the stop. Once L leads partition 0
//! again (it is the preferred replica), partition 0 read from L is the same.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::BaseConsumer;

use crate::cluster_support::{
    agreed_leaders, broker_address, cluster_addrs, cluster_status, consumed_by_partition, describe,
    leads_with_followers_caught_up, metadata_client, partition_status, produce_until_acknowledged,
    records_by_partition, registered_clients, start_cluster, try_create_topic_via,
    written_by_partition, CLUSTER_TIMEOUT,
};
use crate::common::raw::{
    frame, parse_produce_v3_response, produce_v3_body, read_reply, record_batch, round_trip, Reply,
};
use crate::common::{assign, consume_count, consumer, topic_name, wait_until};

const PARTITIONS: i32 = 4;
const PER_PARTITION: usize = 10;
/// The partition whose leader is stopped.
const P: i32 = 0;
/// Raw Produce requests written to the stopped leader, by their acks: each answered (or not)
/// in order, except acks=0, last, which gets no answer.
const STOPPED_ACKS: [i16; 5] = [-1, 1, -1, 1, 0];
/// How long a raw request's answer may take once the leader resumes: generous, since a
/// request left unanswered is also a refusal; only a success is not.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// What came back for a raw Produce sent to the stopped leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The Produce response's error code (0: acknowledged as written).
    Answered(i16),
    /// No answer (none expected for acks=0, or the connection went silent or closed).
    Unanswered,
}

#[test]
fn cluster_stopped_leader_cannot_acknowledge() {
    let nodes = start_cluster(&[]);
    let clients = registered_clients(&nodes);
    let addrs = cluster_addrs(&nodes);

    let topic = topic_name("stopped");
    try_create_topic_via(
        &nodes[0],
        &NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(3)),
    )
    .expect("create the replicated topic");

    // Acknowledged records in every partition before anything goes wrong.
    let before = records_by_partition("before", PARTITIONS, PER_PARTITION);
    produce_until_acknowledged(nodes[0].bootstrap(), &topic, &before);

    // Leadership settled where placement put it (each partition led by its preferred
    // replica, so no hand-back is pending) and every node agrees.
    wait_until(
        "every partition led by its preferred replica, on every node's word",
        CLUSTER_TIMEOUT,
        || {
            let preferred = describe(&clients[0], &topic, PARTITIONS)
                .map(|parts| parts.iter().map(|p| p.replicas[0]).collect::<Vec<_>>());
            preferred.is_some() && agreed_leaders(&clients, &topic, PARTITIONS) == preferred
        },
    );
    let leaders = agreed_leaders(&clients, &topic, PARTITIONS).expect("agreed leaders");
    let p_index = usize::try_from(P).expect("partition index");
    let leader_broker = leaders[p_index];
    let stopped = usize::try_from(leader_broker / 1000 - 1).expect("node index");
    let stopped_node = u64::try_from(leader_broker / 1000).expect("node id");
    eprintln!("leaders by partition: {leaders:?}; node {stopped_node} will be stopped");

    // L's own view: it leads P, in term `old_term`, both followers caught up.
    wait_until(
        "the leader of the partition to have its followers caught up",
        CLUSTER_TIMEOUT,
        || {
            cluster_status(&addrs[stopped])
                .is_some_and(|s| leads_with_followers_caught_up(&s, &topic, P, stopped_node, 2))
        },
    );
    let old_term = cluster_status(&addrs[stopped])
        .and_then(|s| partition_status(&s, &topic, P)?["term"].as_u64())
        .expect("the leader's term");

    // A raw connection to L's shard for P; a Produce through it is acknowledged while L runs.
    let address = broker_address(&clients[0], leader_broker).expect("leader address");
    let mut stream = TcpStream::connect(&address).expect("connect to the leader");
    let acknowledged_raw = b"raw-acknowledged-before-the-stop".to_vec();
    let reply = round_trip(
        &mut stream,
        0,
        3,
        1,
        &produce_v3_body(
            &topic,
            P,
            -1,
            &record_batch(&[&acknowledged_raw], 1_700_000_000_000, false),
        ),
        CLUSTER_TIMEOUT,
    );
    let Reply::Frame(answer) = reply else {
        panic!("no answer to a Produce before the stop: {reply:?}");
    };
    assert_eq!(
        parse_produce_v3_response(&answer, 1).0,
        0,
        "the running leader acknowledges a raw Produce"
    );

    // SIGSTOP L, then queue Produce requests on its connection: L cannot have sent them to
    // any other replica, so no majority can ever commit them.
    nodes[stopped].signal("STOP");
    let stopped_values: Vec<Vec<u8>> = (0..STOPPED_ACKS.len())
        .map(|i| format!("raw-sent-to-the-stopped-leader-{i}").into_bytes())
        .collect();
    for (i, (acks, value)) in STOPPED_ACKS.iter().zip(&stopped_values).enumerate() {
        let batch = record_batch(&[value], 1_700_000_000_000, false);
        stream
            .write_all(&frame(
                0,
                3,
                correlation_id(i),
                &produce_v3_body(&topic, P, *acks, &batch),
            ))
            .expect("queue a Produce on the stopped leader's connection");
    }

    // The two others elect new leaders for L's partitions: a fresh producer that knows only
    // them writes to every partition until acknowledged.
    let survivors: Vec<usize> = (0..nodes.len()).filter(|i| *i != stopped).collect();
    let bootstrap = survivors
        .iter()
        .map(|i| nodes[*i].bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    let during = records_by_partition("during-the-stop", PARTITIONS, PER_PARTITION);
    produce_until_acknowledged(&bootstrap, &topic, &during);
    let survivor_clients: Vec<BaseConsumer> = survivors
        .iter()
        .map(|i| metadata_client(&nodes[*i]))
        .collect();
    let mut moved = None;
    wait_until(
        "the two others to agree on the leaders",
        CLUSTER_TIMEOUT,
        || {
            moved = agreed_leaders(&survivor_clients, &topic, PARTITIONS);
            moved.is_some()
        },
    );
    let new_broker = moved.expect("agreed leaders")[p_index];
    assert_ne!(
        new_broker / 1000,
        leader_broker / 1000,
        "P has a new leader"
    );
    let new_node = u64::try_from(new_broker / 1000).expect("node id");
    let new_index = usize::try_from(new_node - 1).expect("node index");
    let mut new_term = 0;
    wait_until(
        "the new leader's own status to name it leader",
        CLUSTER_TIMEOUT,
        || {
            let Some(status) = cluster_status(&addrs[new_index]) else {
                return false;
            };
            let Some(p) = partition_status(&status, &topic, P) else {
                return false;
            };
            new_term = p["term"].as_u64().unwrap_or(0);
            p["leader"].as_u64() == Some(new_node)
        },
    );
    assert!(
        new_term > old_term,
        "the new leader's term {new_term} follows {old_term}"
    );
    eprintln!("partition {P}: node {new_node} leads in term {new_term} (was {old_term})");

    // SIGCONT: L reads the queued requests, at first still believing it leads.
    nodes[stopped].signal("CONT");
    let mut outcomes = Vec::with_capacity(STOPPED_ACKS.len());
    let mut connection_open = true;
    for (i, acks) in STOPPED_ACKS.iter().enumerate() {
        if *acks == 0 || !connection_open {
            outcomes.push(Outcome::Unanswered);
            continue;
        }
        match read_reply(&mut stream, ANSWER_TIMEOUT) {
            Reply::Frame(answer) => {
                let (code, offset) = parse_produce_v3_response(&answer, correlation_id(i));
                eprintln!("raw Produce {i} (acks={acks}) sent during the stop: error {code}, offset {offset}");
                outcomes.push(Outcome::Answered(code));
            }
            other => {
                eprintln!("raw Produce {i} (acks={acks}) sent during the stop: {other:?}");
                connection_open = false;
                outcomes.push(Outcome::Unanswered);
            }
        }
    }
    // A success would claim a commit that no majority can have made (L could not have sent
    // the records on); it is checked against what is read below, where it would be missing.
    let acknowledged_stopped: Vec<Vec<u8>> = stopped_values
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o == Outcome::Answered(0))
        .map(|(v, _)| v.clone())
        .collect();
    if !acknowledged_stopped.is_empty() {
        eprintln!("the stopped leader acknowledged requests sent during the stop: {outcomes:?}");
    }

    // L learned the new term and follows: its status names the new leader. (The new leader
    // hands P back to L, its preferred replica, once L has caught up; a poll that comes
    // after that sees L lead in a term after the new leader's, which it can only have
    // reached as a follower.)
    let mut seen = None;
    wait_until(
        "the resumed node to follow the new leader",
        CLUSTER_TIMEOUT,
        || {
            let Some(status) = cluster_status(&addrs[stopped]) else {
                return false;
            };
            let Some(p) = partition_status(&status, &topic, P) else {
                return false;
            };
            let term = p["term"].as_u64().unwrap_or(0);
            let leader = p["leader"].as_u64();
            let leads_nobody = p["followers"].as_object().is_none_or(|f| f.is_empty());
            let follows = leader.is_some()
                && leader != Some(stopped_node)
                && term >= new_term
                && leads_nobody;
            let handed_back = leader == Some(stopped_node) && term > new_term;
            if follows || handed_back {
                seen = Some(p.clone());
            }
            follows || handed_back
        },
    );
    eprintln!("the resumed node's view of partition {P}: {seen:?}");

    // Every partition read through whoever leads it now: the acknowledged records, once and
    // in order; nothing the stopped leader took during the stop.
    let mut expected = written_by_partition(&before);
    expected
        .get_mut(&P)
        .expect("P's records")
        .push(acknowledged_raw.clone());
    for (partition, values) in written_by_partition(&during) {
        expected.entry(partition).or_default().extend(values);
    }
    // Only reachable if one was acknowledged: it can have been committed only after the
    // stop, so after every record produced meanwhile.
    expected
        .get_mut(&P)
        .expect("P's records")
        .extend(acknowledged_stopped.iter().cloned());
    let expected_count: usize = expected.values().map(Vec::len).sum();
    let reader = consumer(&bootstrap, &[]);
    let starts: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    assign(&reader, &topic, &starts);
    let read = consumed_by_partition(&consume_count(&reader, expected_count, CLUSTER_TIMEOUT));
    for value in stopped_values
        .iter()
        .filter(|v| !acknowledged_stopped.contains(v))
    {
        assert!(
            !read.values().flatten().any(|v| v == value),
            "{} was sent to the stopped leader, never acknowledged, and is visible",
            String::from_utf8_lossy(value)
        );
    }
    assert_eq!(
        read, expected,
        "every acknowledged record, once, in order, and nothing else"
    );

    // L gets P back (the preferred replica, caught up), and serves the same records.
    wait_until("the resumed node to lead P again", CLUSTER_TIMEOUT, || {
        agreed_leaders(&clients, &topic, PARTITIONS)
            .is_some_and(|leaders| leaders[p_index] == leader_broker)
    });
    let reader = consumer(nodes[stopped].bootstrap(), &[]);
    assign(&reader, &topic, &[(P, 0)]);
    let expected_p = expected.remove(&P).expect("P's records");
    let read_p = consumed_by_partition(&consume_count(&reader, expected_p.len(), CLUSTER_TIMEOUT))
        .remove(&P)
        .unwrap_or_default();
    assert_eq!(
        read_p, expected_p,
        "P read from the node that was stopped, once it leads again"
    );
}

/// The correlation id of the `i`th raw Produce sent during the stop (1 was the one before).
fn correlation_id(i: usize) -> i32 {
    100 + i32::try_from(i).expect("a few requests")
}
