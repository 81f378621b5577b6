//! Manual replica assignments are honoured, and refused as Kafka refuses them. Each shard is
//! a broker, so each partition goes to the first broker its assignment lists (the preferred
//! leader): Metadata names it leader, produce and fetch work there, CreatePartitions places
//! new partitions too (with as many replicas as the topic was created with), and the
//! placement survives a restart. Kafka's checks answer Kafka's errors: an assignment together
//! with a partition count or replication factor other than -1 (INVALID_REQUEST), an unknown
//! or repeated broker, an empty or inconsistent replica list, partitions not numbered from 0
//! (INVALID_REPLICA_ASSIGNMENT); a replication factor above the broker count
//! (INVALID_REPLICATION_FACTOR), each with a message. A factor up to the broker count is
//! accepted, as Kafka accepts it; sluice keeps one copy, so Metadata lists the assigned
//! replicas with only the leader in sync.

use crate::common;

use std::time::Duration;

use common::{
    assign, consume_count, produce_all, producer, topic_leaders, topic_name, Broker, BrokerOptions,
    TestRecord, CLIENT_TIMEOUT,
};
use futures_lite::future::block_on;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use sluice::client::{Cluster, Connection, ConnectionConfig};

const NONE: i16 = 0;
const INVALID_PARTITIONS: i16 = 37;
const INVALID_REPLICATION_FACTOR: i16 = 38;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const INVALID_REQUEST: i16 = 42;

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

/// (partition index, broker ids) of a CreateTopics entry.
type Assignments<'a> = &'a [(i32, &'a [i32])];

fn text(message: Option<&StrBytes>) -> String {
    message.map(|m| m.to_string()).unwrap_or_default()
}

fn brokers(ids: &[i32]) -> Vec<BrokerId> {
    ids.iter().map(|&id| BrokerId(id)).collect()
}

/// CreateTopics v7 of one topic: (error code, error message).
fn create(
    connection: &mut Connection,
    num_partitions: i32,
    replication_factor: i16,
    assignments: Assignments<'_>,
) -> (i16, String) {
    let topic = CreatableTopic::default()
        .with_name(name(&topic_name("refused")))
        .with_num_partitions(num_partitions)
        .with_replication_factor(replication_factor)
        .with_assignments(
            assignments
                .iter()
                .map(|(partition, ids)| {
                    CreatableReplicaAssignment::default()
                        .with_partition_index(*partition)
                        .with_broker_ids(brokers(ids))
                })
                .collect(),
        );
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![topic]);
    let response: CreateTopicsResponse = connection
        .send_version(&request, 7, Duration::ZERO)
        .expect("CreateTopics round trip");
    let result = &response.topics[0];
    (result.error_code, text(result.error_message.as_ref()))
}

/// CreatePartitions v3 of one topic: (error code, error message).
fn add_partitions(
    connection: &mut Connection,
    topic: &str,
    count: i32,
    assignments: &[&[i32]],
) -> (i16, String) {
    let request = CreatePartitionsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(name(topic))
            .with_count(count)
            .with_assignments(Some(
                assignments
                    .iter()
                    .map(|ids| CreatePartitionsAssignment::default().with_broker_ids(brokers(ids)))
                    .collect(),
            ))]);
    let response: CreatePartitionsResponse = connection
        .send_version(&request, 3, Duration::ZERO)
        .expect("CreatePartitions round trip");
    let result = &response.results[0];
    (result.error_code, text(result.error_message.as_ref()))
}

#[test]
fn create_topics_honours_replica_assignments() {
    let mut broker = Broker::start_with(BrokerOptions {
        fixed_ports: true,
        ..BrokerOptions::default()
    });
    let topic = topic_name("placed");

    // Placement by hash alternates consecutive partitions between the two shards, so two
    // consecutive partitions on one shard can only come from the assignment.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("admin client");
    let assignment: &[&[i32]] = &[&[1], &[1]];
    let new_topic = NewTopic::new(&topic, 2, TopicReplication::Variable(assignment));
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let created = block_on(admin.create_topics([&new_topic], &options)).expect("CreateTopics");
    assert!(
        created.iter().all(Result::is_ok),
        "CreateTopics: {created:?}"
    );
    let consumer = common::consumer(broker.bootstrap(), &[]);
    assert_eq!(
        topic_leaders(&consumer, &topic).expect("metadata"),
        vec![(0, 1), (1, 1)]
    );

    let mut cluster =
        Cluster::connect(broker.bootstrap(), ConnectionConfig::default()).expect("connect");
    let connection = cluster.any_connection();
    assert_eq!(
        add_partitions(connection, &topic, 4, &[&[0], &[0]]),
        (NONE, String::new())
    );
    for (count, assignments) in [
        (6, &[&[0][..]][..]),
        (5, &[&[0, 1][..]][..]),
        (5, &[&[2][..]][..]),
    ] {
        let (code, message) = add_partitions(connection, &topic, count, assignments);
        assert_eq!(
            code, INVALID_REPLICA_ASSIGNMENT,
            "{assignments:?}: {message}"
        );
        assert!(!message.is_empty());
    }
    assert_eq!(
        topic_leaders(&consumer, &topic).expect("metadata"),
        vec![(0, 1), (1, 1), (2, 0), (3, 0)]
    );

    // Two replicas on two brokers, as librdkafka's admin test asks: the partitions go to the
    // first broker of each list; new partitions need two replicas too.
    let replicated = topic_name("replicated");
    let assignment: &[&[i32]] = &[&[1, 0], &[1, 0]];
    let new_topic = NewTopic::new(&replicated, 2, TopicReplication::Variable(assignment));
    let created = block_on(admin.create_topics([&new_topic], &options)).expect("CreateTopics");
    assert!(
        created.iter().all(Result::is_ok),
        "CreateTopics: {created:?}"
    );
    assert_eq!(
        add_partitions(connection, &replicated, 3, &[&[0, 1]]),
        (NONE, String::new())
    );
    let (code, message) = add_partitions(connection, &replicated, 4, &[&[0]]);
    assert_eq!(code, INVALID_REPLICA_ASSIGNMENT, "{message}");
    assert_eq!(
        topic_leaders(&consumer, &replicated).expect("metadata"),
        vec![(0, 1), (1, 1), (2, 0)]
    );

    // Data goes where Metadata says.
    let producer = producer(broker.bootstrap(), &[]);
    let records: Vec<TestRecord> = (0..4)
        .map(|p| TestRecord::new(format!("k{p}"), format!("v{p}")).partition(p))
        .collect();
    let deliveries = produce_all(&producer, &topic, &records);
    assert!(deliveries.iter().all(|d| d.offset == 0), "{deliveries:?}");

    // Refusals, in Kafka's order of checks.
    let cases: [(i32, i16, Assignments<'_>, i16, &str); 10] = [
        (2, -1, &[(0, &[0])], INVALID_REQUEST, "numPartitions"),
        (-1, 1, &[(0, &[0])], INVALID_REQUEST, "replication factor"),
        (-1, -1, &[(0, &[2])], INVALID_REPLICA_ASSIGNMENT, "broker 2"),
        (-1, -1, &[(0, &[])], INVALID_REPLICA_ASSIGNMENT, "empty"),
        (
            -1,
            -1,
            &[(0, &[1, 1])],
            INVALID_REPLICA_ASSIGNMENT,
            "more than once",
        ),
        (
            -1,
            -1,
            &[(0, &[0]), (0, &[1])],
            INVALID_REPLICA_ASSIGNMENT,
            "multiple",
        ),
        (
            -1,
            -1,
            &[(0, &[0]), (1, &[0, 1])],
            INVALID_REPLICA_ASSIGNMENT,
            "consistent",
        ),
        (
            -1,
            -1,
            &[(0, &[0]), (2, &[1])],
            INVALID_REPLICA_ASSIGNMENT,
            "consecutive",
        ),
        (1, 3, &[], INVALID_REPLICATION_FACTOR, "only 2 broker(s)"),
        (1, 0, &[], INVALID_REPLICATION_FACTOR, "larger than 0"),
    ];
    for (num_partitions, replication_factor, assignments, code, words) in cases {
        let (got, message) = create(connection, num_partitions, replication_factor, assignments);
        assert_eq!(
            got, code,
            "{num_partitions} {replication_factor} {assignments:?}: {message}"
        );
        assert!(message.contains(words), "{message:?} lacks {words:?}");
    }
    assert_eq!(create(connection, 1, 2, &[]).0, NONE);
    assert_eq!(create(connection, 0, 1, &[]).0, INVALID_PARTITIONS);

    // Metadata lists the replicas as assigned, with only the leader's copy in sync.
    let described = cluster.topic(&replicated).expect("metadata");
    let mut replicas: Vec<(i32, Vec<i32>, Vec<i32>)> = described
        .partitions
        .iter()
        .map(|p| (p.partition, p.replica_ids.clone(), p.isr_ids.clone()))
        .collect();
    replicas.sort();
    assert_eq!(
        replicas,
        vec![
            (0, vec![1, 0], vec![1]),
            (1, vec![1, 0], vec![1]),
            (2, vec![0, 1], vec![0])
        ]
    );

    // The placement is part of the catalog: a restart keeps it.
    drop((producer, consumer, cluster, admin));
    broker.stop_graceful();
    broker.restart();
    let consumer = common::consumer(broker.bootstrap(), &[]);
    assert_eq!(
        topic_leaders(&consumer, &topic).expect("metadata after restart"),
        vec![(0, 1), (1, 1), (2, 0), (3, 0)]
    );
    assert_eq!(
        topic_leaders(&consumer, &replicated).expect("metadata after restart"),
        vec![(0, 1), (1, 1), (2, 0)]
    );
    assign(&consumer, &topic, &[(0, 0), (1, 0), (2, 0), (3, 0)]);
    let consumed = consume_count(&consumer, 4, CLIENT_TIMEOUT);
    let mut partitions: Vec<i32> = consumed.iter().map(|c| c.partition).collect();
    partitions.sort_unstable();
    assert_eq!(partitions, vec![0, 1, 2, 3]);
}
