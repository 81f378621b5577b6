//! Producer ids are unique across a cluster (issue 17, fourth slice): the first producer ids
//! of two nodes each write a first batch to one partition and both are stored; two
//! idempotent rdkafka producers bootstrapped on different nodes write interleaved to the same
//! partitions and every acknowledged record is read back exactly once; InitProducerId
//! answers from every shard of every node never repeat an id, also after a node restarts and
//! after a node's data apart from its Raft state is wiped. With a per-node allocator both producers got id 0, and the second
//! one's batches were taken as duplicates of the first's (acknowledged, never stored).

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;

use crate::cluster_support::{
    create_topic_via, registered_clients, start_cluster, CLUSTER_TIMEOUT,
};
use crate::common::raw::{
    fix_crc, parse_produce_v3_response, produce_v3_body, record_batch, round_trip, Cursor, Reply,
};
use crate::common::{
    assign, consume_count, consumer, producer, topic_leaders, topic_name, try_produce_all,
    wait_until, Broker, TestRecord,
};

const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// InitProducerId v0 without a transactional id on `address`, retried while the node's
/// metadata group has no leader yet (COORDINATOR_NOT_AVAILABLE): the producer id.
fn init_producer_id(address: &str) -> i64 {
    let deadline = Instant::now() + CLUSTER_TIMEOUT;
    let mut stream = TcpStream::connect(address).expect("connect");
    loop {
        let mut body = (-1i16).to_be_bytes().to_vec(); // transactional id: null
        body.extend_from_slice(&60_000i32.to_be_bytes());
        let Reply::Frame(frame) = round_trip(&mut stream, 22, 0, 7, &body, CLUSTER_TIMEOUT) else {
            panic!("InitProducerId on {address} got no answer");
        };
        let mut cursor = Cursor::new(&frame);
        assert_eq!(cursor.i32(), 7, "correlation id");
        let _throttle = cursor.i32();
        let error = cursor.i16();
        let id = cursor.i64();
        match error {
            0 => return id,
            COORDINATOR_NOT_AVAILABLE if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            other => panic!("InitProducerId on {address}: error {other}"),
        }
    }
}

/// One InitProducerId on every shard of every running node; each id must be new.
fn ids_from_every_shard(nodes: &[Broker], seen: &mut BTreeSet<i64>, when: &str) {
    for node in nodes {
        for (broker, address) in &node.ready_line().brokers {
            let id = init_producer_id(address);
            assert!(
                seen.insert(id),
                "{when}: broker {broker} handed out producer id {id}, already given: {seen:?}"
            );
        }
    }
}

/// Produces `value` as batch `sequence` of producer `producer_id` (epoch 0) to partition 0
/// at `leader`: (error, base offset).
fn produce_idempotent(leader: &str, topic: &str, value: &str, producer_id: i64) -> (i16, i64) {
    let mut batch = record_batch(&[value.as_bytes()], 1_700_000_000_000, false);
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&0i16.to_be_bytes());
    batch[53..57].copy_from_slice(&0i32.to_be_bytes());
    fix_crc(&mut batch);
    let mut stream = TcpStream::connect(leader).expect("connect to the leader");
    let body = produce_v3_body(topic, 0, -1, &batch);
    match round_trip(&mut stream, 0, 3, 9, &body, CLUSTER_TIMEOUT) {
        Reply::Frame(frame) => parse_produce_v3_response(&frame, 9),
        other => panic!("Produce got {other:?}"),
    }
}

/// The address of partition 0's leader, whichever node it is on.
fn leader_of_partition_0(nodes: &[Broker], topic: &str) -> String {
    let probe = consumer(nodes[0].bootstrap(), &[]);
    // CreateTopics answered once the controller's node applied it; node 1 may learn it a
    // heartbeat later.
    wait_until("node 1 to know the topic", CLUSTER_TIMEOUT, || {
        topic_leaders(&probe, topic).is_ok()
    });
    let leaders = topic_leaders(&probe, topic).expect("leaders");
    let (_, leader) = leaders.iter().find(|(p, _)| *p == 0).expect("partition 0");
    nodes
        .iter()
        .flat_map(|n| n.ready_line().brokers.iter())
        .find(|(id, _)| id == leader)
        .map(|(_, address)| address.clone())
        .unwrap_or_else(|| panic!("leader {leader} is no node's shard"))
}

#[test]
fn cluster_producer_ids_are_unique_across_nodes() {
    let mut nodes = start_cluster(&[]);
    let _clients = registered_clients(&nodes);
    let topic = topic_name("pids");
    let partitions = 3;
    create_topic_via(&nodes[0], &topic, partitions);
    let mut acked: BTreeSet<(i32, Vec<u8>)> = BTreeSet::new();
    let mut seen = BTreeSet::new();

    // The first producer id of node 1 and of node 2 (each node's first InitProducerId), each
    // writing its first batch to the same partition: both are stored.
    let first_of_node_1 = init_producer_id(nodes[0].bootstrap());
    let first_of_node_2 = init_producer_id(nodes[1].bootstrap());
    let leader = leader_of_partition_0(&nodes, &topic);
    let (error_1, offset_1) = produce_idempotent(&leader, &topic, "raw-1", first_of_node_1);
    let (error_2, offset_2) = produce_idempotent(&leader, &topic, "raw-2", first_of_node_2);
    assert_eq!(
        (error_1, error_2),
        (0, 0),
        "both first batches are accepted"
    );
    assert_ne!(
        offset_1, offset_2,
        "the second producer's first batch is stored, not taken as the first's duplicate"
    );
    acked.extend([(0, b"raw-1".to_vec()), (0, b"raw-2".to_vec())]);
    assert_ne!(
        first_of_node_1, first_of_node_2,
        "two nodes' first producer ids are different"
    );
    seen.extend([first_of_node_1, first_of_node_2]);

    // Two idempotent producers, each knowing one node, write interleaved rounds to every
    // partition (which lives on every node in turn).
    let idempotent = [("enable.idempotence", "true")];
    let writers = [
        producer(nodes[0].bootstrap(), &idempotent),
        producer(nodes[1].bootstrap(), &idempotent),
    ];
    let mut refused = Vec::new();
    for round in 0..3 {
        for (w, writer) in writers.iter().enumerate() {
            let records: Vec<TestRecord> = (0..partitions)
                .flat_map(|p| {
                    (0..4).map(move |i| {
                        let value = format!("w{w}-r{round}-p{p}-{i}");
                        TestRecord::new(value.clone(), value).partition(p)
                    })
                })
                .collect();
            for delivery in try_produce_all(writer, &topic, &records) {
                let record = &records[delivery.id];
                match delivery.error {
                    None => {
                        let value = record.value.clone().unwrap_or_default();
                        acked.insert((delivery.partition, value));
                    }
                    Some(error) => refused.push(error),
                }
            }
        }
    }
    assert!(
        refused.is_empty(),
        "no delivery of either producer is refused: {refused:?}"
    );

    // Every acknowledged record is stored, once.
    let reader = consumer(nodes[2].bootstrap(), &[]);
    let starts: Vec<(i32, i64)> = (0..partitions).map(|p| (p, 0)).collect();
    assign(&reader, &topic, &starts);
    let consumed = consume_count(&reader, acked.len(), CLUSTER_TIMEOUT);
    let read: Vec<(i32, Vec<u8>)> = consumed
        .iter()
        .map(|c| (c.partition, c.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(read.len(), acked.len(), "no record is stored twice");
    assert_eq!(
        read.into_iter().collect::<BTreeSet<_>>(),
        acked,
        "every acknowledged record is read back"
    );
    let stored: i64 = (0..partitions)
        .map(|p| {
            let (low, high) = reader
                .fetch_watermarks(&topic, p, CLUSTER_TIMEOUT)
                .expect("watermarks");
            high - low
        })
        .sum();
    assert_eq!(
        stored,
        acked.len() as i64,
        "the logs hold the acknowledged records and nothing else"
    );

    // InitProducerId from every shard of every node: no id twice.
    ids_from_every_shard(&nodes, &mut seen, "first round");

    // A node that restarts does not hand out an id it (or another node) gave before.
    nodes[1].kill();
    nodes[1].restart();
    ids_from_every_shard(&nodes, &mut seen, "after node 2 restarted");

    // Nor does a node that lost everything but its Raft state (the producer id file with
    // it). Wiping `raft/` too is not survivable today: the leader stops on a follower whose
    // log went backwards (openraft's "follower log reversion"), see docs/cluster.md.
    nodes[2].kill();
    for entry in std::fs::read_dir(nodes[2].data_dir()).expect("read node 3's data dir") {
        let path = entry.expect("dir entry").path();
        if path.file_name().is_some_and(|name| name == "raft") {
            continue;
        }
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("wipe a directory");
        } else {
            std::fs::remove_file(&path).expect("wipe a file");
        }
    }
    nodes[2].restart();
    ids_from_every_shard(
        &nodes,
        &mut seen,
        "after node 3's data (not its Raft state) was wiped",
    );
}
