//! A consumer that reads by `assign()` never joins its group, yet commits offsets to it, as
//! Kafka allows for an empty group (a "simple" group). librdkafka's classic consumer sends
//! no member id and generation -1; its KIP-848 consumer (`group.protocol=consumer`) sends the
//! member id it generated itself and member epoch -1. Both commits must be stored, and the
//! group then describes as Empty with those offsets.

use crate::common;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::ClientConfig;

use common::cli::{sluice, stdout};
use common::{
    assign, consume_count, create_topic, produce_all, producer, topic_name, Broker, TestRecord,
    CLIENT_TIMEOUT,
};

const PARTITIONS_COUNT: i32 = 2;
const RECORDS_COUNT: usize = 10;

#[test]
fn group_assign_consumer_commits_without_joining() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("assign-commit");
    create_topic(&bootstrap, &topic, PARTITIONS_COUNT);
    let records: Vec<TestRecord> = (0..RECORDS_COUNT)
        .map(|i| {
            TestRecord::new(format!("k{i}"), format!("v{i}")).partition(i as i32 % PARTITIONS_COUNT)
        })
        .collect();
    produce_all(&producer(&bootstrap, &[]), &topic, &records);

    for protocol in ["classic", "consumer"] {
        let group = topic_name(&format!("assign-{protocol}"));
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &group)
            .set("group.protocol", protocol)
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "100")
            .create()
            .expect("create consumer");
        assign(&consumer, &topic, &[(0, 0), (1, 0)]);
        let consumed = consume_count(&consumer, RECORDS_COUNT, CLIENT_TIMEOUT);
        assert_eq!(consumed.len(), RECORDS_COUNT, "{protocol}: every record");
        consumer
            .commit_consumer_state(CommitMode::Sync)
            .unwrap_or_else(|e| panic!("{protocol}: commit from an assign() consumer: {e}"));

        let described = stdout(&sluice(&["group", "describe", &group], &bootstrap));
        assert!(
            described.contains("State: Empty"),
            "{protocol}:\n{described}"
        );
        assert!(described.contains("Members: 0"), "{protocol}:\n{described}");
        let per_partition = RECORDS_COUNT as i32 / PARTITIONS_COUNT;
        for p in 0..PARTITIONS_COUNT {
            // topic, partition, committed offset, log end offset, lag.
            let row = format!("{topic}\t{p}\t{per_partition}\t{per_partition}\t0");
            assert!(
                described.contains(&row),
                "{protocol}: row {row:?} in\n{described}"
            );
        }
    }
}
