//! Partition replication end to end (issue 17, sixth slice part 2), with three real nodes:
//! a topic with 4 partitions and replication factor 3 has a replica of every partition on
//! every node, and every node's Metadata names the three replica brokers; a replication
//! factor above the node count is INVALID_REPLICATION_FACTOR; an idempotent rdkafka producer
//! (acks=all) bootstrapped on node 1 writes to every partition, and each acknowledged record
//! reaches the partition log on disk of all three nodes; a follower answers a raw Produce
//! with NOT_LEADER_OR_FOLLOWER (transactions: `cluster_transactions_on_replicated_partitions`);
//! `sluice cluster status` of a leader's node shows its
//! followers caught up; after the leader of partition 0 is killed with SIGKILL a
//! new leader is elected, a producer keeps writing until acknowledged, and a consumer reads
//! every acknowledged record exactly once and in order per partition. Then the leader of a
//! partition is left alone (the other survivor killed too): a Produce it acknowledges must
//! survive its own death and the restart of the two others, which never had it unless it
//! was committed (a leader answering before the commit fails here); once the two are back,
//! each partition whose preferred replica is up is led by it again.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::BaseConsumer;
use rdkafka::types::RDKafkaErrorCode;

use crate::cluster_support::{
    agreed_leaders, broker_address, cluster_addrs, cluster_status, consumed_by_partition, describe,
    dir_contains, leads_with_followers_caught_up, metadata_client, produce_until_acknowledged,
    records_by_partition, registered_clients, start_cluster, try_create_topic_via,
    written_by_partition, CLUSTER_TIMEOUT,
};
use crate::common::raw::{
    parse_produce_v3_response, produce_v3_body, record_batch, round_trip, Reply,
};
use crate::common::{assign, consume_count, consumer, topic_name, wait_until};

const PARTITIONS: i32 = 4;
const PER_PARTITION: usize = 20;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

#[test]
fn cluster_partitions_are_replicated_and_survive_a_leader_kill() {
    let mut nodes = start_cluster(&[]);
    let clients = registered_clients(&nodes);

    // More replicas than nodes is refused (6 brokers, but 3 nodes).
    let too_many = topic_name("rf4");
    let refused = try_create_topic_via(
        &nodes[0],
        &NewTopic::new(&too_many, 1, TopicReplication::Fixed(4)),
    );
    assert_eq!(refused, Err(RDKafkaErrorCode::InvalidReplicationFactor));

    let topic = topic_name("replicated");
    try_create_topic_via(
        &nodes[0],
        &NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(3)),
    )
    .expect("create the replicated topic");

    // Every node names three replicas on three nodes, all in sync, the leader among them.
    wait_until(
        "every node to describe the replicated topic",
        CLUSTER_TIMEOUT,
        || {
            clients.iter().all(|c| {
                describe(c, &topic, PARTITIONS).is_some_and(|parts| {
                    parts.iter().all(|p| {
                        let mut nodes: Vec<i32> = p.replicas.iter().map(|b| b / 1000).collect();
                        nodes.sort_unstable();
                        nodes == [1, 2, 3] && p.replicas.contains(&p.leader) && p.isr.len() == 3
                    })
                })
            })
        },
    );
    // The replicas of a partition are the same shard on every node.
    for part in describe(&clients[0], &topic, PARTITIONS).expect("described") {
        let shards: Vec<i32> = part.replicas.iter().map(|b| b % 1000).collect();
        assert!(shards.windows(2).all(|w| w[0] == w[1]), "{part:?}");
    }

    // An idempotent producer bootstrapped on node 1 writes to every partition.
    let first = records_by_partition("before", PARTITIONS, PER_PARTITION);
    produce_until_acknowledged(nodes[0].bootstrap(), &topic, &first);

    // Every acknowledged record is in every node's copy of its partition.
    for record in &first {
        let partition = record.partition.expect("partition");
        let value = record.value.clone().expect("value");
        for node in &nodes {
            let dir = node.data_dir().join(format!("{topic}-{partition}"));
            wait_until(
                "a record to reach every replica's partition log",
                CLUSTER_TIMEOUT,
                || dir_contains(&dir, &value),
            );
        }
    }

    // All nodes agree on each partition's leader once elections settled.
    let agreed = |clients: &[BaseConsumer]| agreed_leaders(clients, &topic, PARTITIONS);
    wait_until("the nodes to agree on the leaders", CLUSTER_TIMEOUT, || {
        agreed(&clients).is_some()
    });
    let leaders = agreed(&clients).expect("agreed leaders");
    eprintln!("leaders by partition: {leaders:?}");

    // `sluice cluster status` of a partition's leader node shows its term and each
    // follower's acknowledged index, with no lag once the writes stopped.
    let addrs = cluster_addrs(&nodes);
    let leader_addr = &addrs[usize::try_from(leaders[0] / 1000 - 1).expect("node index")];
    let leader_node = u64::try_from(leaders[0] / 1000).expect("node id");
    let caught_up = |status: &serde_json::Value| {
        leads_with_followers_caught_up(status, &topic, 0, leader_node, 2)
    };
    wait_until(
        "partition 0's followers to have caught up",
        CLUSTER_TIMEOUT,
        || cluster_status(leader_addr).is_some_and(|s| caught_up(&s)),
    );

    // A follower of partition 1 answers a raw Produce with NOT_LEADER_OR_FOLLOWER.
    let part1 = describe(&clients[0], &topic, PARTITIONS).expect("described")[1].clone();
    let follower = *part1
        .replicas
        .iter()
        .find(|b| **b != leaders[1])
        .expect("a follower");
    let address = broker_address(&clients[0], follower).expect("follower address");
    let mut stream = TcpStream::connect(&address).expect("connect to the follower");
    let batch = record_batch(&[b"to-a-follower"], 1_700_000_000_000, false);
    let reply = round_trip(
        &mut stream,
        0,
        3,
        7,
        &produce_v3_body(&topic, 1, -1, &batch),
        Duration::from_secs(10),
    );
    let Reply::Frame(frame) = reply else {
        panic!("no Produce answer from the follower: {reply:?}");
    };
    assert_eq!(
        parse_produce_v3_response(&frame, 7).0,
        NOT_LEADER_OR_FOLLOWER,
        "a follower refuses Produce"
    );

    // Kill -9 the node leading partition 0; a surviving replica takes over.
    let victim = usize::try_from(leaders[0] / 1000 - 1).expect("node index");
    let killed_at = Instant::now();
    nodes[victim].kill();
    let survivors: Vec<usize> = (0..nodes.len()).filter(|i| *i != victim).collect();
    let survivor_clients: Vec<BaseConsumer> = survivors
        .iter()
        .map(|i| metadata_client(&nodes[*i]))
        .collect();
    let second = records_by_partition("after", PARTITIONS, PER_PARTITION);
    produce_until_acknowledged(nodes[survivors[0]].bootstrap(), &topic, &second);
    eprintln!(
        "every record of the second round acknowledged {:?} after the kill",
        killed_at.elapsed()
    );
    let after = agreed(&survivor_clients).expect("survivors agree on the leaders");
    assert_ne!(after[0] / 1000, leaders[0] / 1000, "partition 0 moved");

    // Every acknowledged record, once, in order, per partition.
    let reader = consumer(nodes[survivors[1]].bootstrap(), &[]);
    let starts: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    assign(&reader, &topic, &starts);
    let expected_count = first.len() + second.len();
    let consumed = consume_count(&reader, expected_count, CLUSTER_TIMEOUT);
    let read = consumed_by_partition(&consumed);
    let mut written = written_by_partition(first.iter().chain(&second));
    assert_eq!(consumed.len(), expected_count, "no record twice or extra");
    assert_eq!(read, written, "every acknowledged record, in order");

    // The leader of partition 0 is left without a majority: the other survivor is killed.
    // A Produce it acknowledged now must be in the log the other two nodes keep without it.
    let alone = usize::try_from(after[0] / 1000 - 1).expect("node index");
    let other = *survivors
        .iter()
        .find(|i| **i != alone)
        .expect("other survivor");
    let alone_address =
        broker_address(&survivor_clients[0], after[0]).expect("partition 0 leader address");
    nodes[other].kill();
    let lonely = b"written-to-a-lonely-leader";
    let mut stream = TcpStream::connect(&alone_address).expect("connect to the lonely leader");
    let batch = record_batch(&[lonely], 1_700_000_000_000, false);
    let reply = round_trip(
        &mut stream,
        0,
        3,
        8,
        &produce_v3_body(&topic, 0, -1, &batch),
        Duration::from_secs(10),
    );
    let acknowledged = match &reply {
        Reply::Frame(frame) => parse_produce_v3_response(frame, 8).0 == 0,
        Reply::Closed | Reply::Silent => false,
    };
    eprintln!("a Produce to the lonely leader: {reply:?}, acknowledged: {acknowledged}");
    nodes[alone].kill();
    nodes[victim].restart();
    nodes[other].restart();
    let reader = consumer(nodes[other].bootstrap(), &[]);
    assign(&reader, &topic, &[(0, 0)]);
    let mut expected = written.remove(&0).expect("partition 0 records");
    if acknowledged {
        expected.push(lonely.to_vec());
    }
    let consumed = consume_count(&reader, expected.len(), CLUSTER_TIMEOUT);
    let values: Vec<Vec<u8>> = consumed
        .iter()
        .map(|c| c.value.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        values, expected,
        "partition 0 after its lonely leader died: every acknowledged record, nothing else"
    );

    // Leadership goes back to the preferred replica (the first) of each partition whose
    // preferred node is up again, once it has caught up.
    let restarted = [victim, other];
    let up = |broker: i32| {
        restarted
            .iter()
            .any(|i| i32::try_from(*i + 1).ok() == Some(broker / 1000))
    };
    let client = metadata_client(&nodes[victim]);
    wait_until(
        "leadership back on the restarted preferred replicas",
        CLUSTER_TIMEOUT,
        || {
            describe(&client, &topic, PARTITIONS).is_some_and(|parts| {
                parts
                    .iter()
                    .filter(|p| up(p.replicas[0]))
                    .all(|p| p.leader == p.replicas[0])
            })
        },
    );
}
