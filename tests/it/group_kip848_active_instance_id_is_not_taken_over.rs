//! KIP-848 static membership: while a member holding `group.instance.id` is active, a second
//! consumer joining with the same instance id gets UNRELEASED_INSTANCE_ID (fatal to it, as in
//! librdkafka against Kafka) and the first member keeps its partitions and keeps consuming.
//! (The classic protocol differs: there, JoinGroup replaces the old member and fences it.)

use crate::common;
use crate::group_support;

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::types::RDKafkaErrorCode;

use common::{create_topic, produce_all, producer, topic_name, Broker, TestRecord, CLIENT_TIMEOUT};
use group_support::{assigned, poll_until, GroupConsumer, RebalanceCounter};

const PARTITIONS_COUNT: i32 = 2;
const RECORDS_COUNT: usize = 20;

#[test]
fn group_kip848_active_instance_id_is_not_taken_over() {
    let broker = Broker::start();
    let topic = topic_name("static-848");
    let group = topic_name("static-848-group");
    create_topic(broker.bootstrap(), &topic, PARTITIONS_COUNT);
    let connect = || {
        let consumer: GroupConsumer = rdkafka::config::ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("group.id", &group)
            .set("group.protocol", "consumer")
            .set("group.instance.id", "instance-1")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "100")
            .create_with_context(RebalanceCounter::default())
            .expect("create KIP-848 consumer");
        consumer.subscribe(&[&topic]).expect("subscribe");
        consumer
    };

    let first = connect();
    let mut received = vec![Vec::new()];
    poll_until(
        &[&first],
        &mut received,
        "the first member to own every partition",
        CLIENT_TIMEOUT,
        |_| assigned(&first).len() == PARTITIONS_COUNT as usize,
    );

    let second = connect();
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let refusal = loop {
        if let Some(fatal) = second.client().fatal_error() {
            break fatal;
        }
        assert!(
            Instant::now() < deadline,
            "the second member was never refused"
        );
        second.poll(Duration::from_millis(50));
        first.poll(Duration::from_millis(50));
    };
    assert_eq!(
        refusal.0,
        RDKafkaErrorCode::UnreleasedInstanceId,
        "{refusal:?}"
    );

    // The first member was never displaced: it still owns everything and consumes.
    assert_eq!(assigned(&first).len(), PARTITIONS_COUNT as usize);
    let records: Vec<TestRecord> = (0..RECORDS_COUNT)
        .map(|i| {
            TestRecord::new(format!("k{i}"), format!("v{i}")).partition(i as i32 % PARTITIONS_COUNT)
        })
        .collect();
    produce_all(&producer(broker.bootstrap(), &[]), &topic, &records);
    poll_until(
        &[&first],
        &mut received,
        "every record at the first member",
        CLIENT_TIMEOUT,
        |r| r[0].len() >= RECORDS_COUNT,
    );
    assert_eq!(
        first
            .context()
            .revokes
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the first member never lost its partitions"
    );
}
