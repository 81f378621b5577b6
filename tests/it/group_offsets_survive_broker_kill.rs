//! Durable offsets: offsets committed by a group survive a kill -9 of the broker, and a
//! consumer of the group resumes exactly there after the restart.

use crate::common;
use crate::group_support;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};

use common::{
    create_topic, produce_all, producer, topic_name, Broker, BrokerOptions, TestRecord,
    CLIENT_TIMEOUT,
};
use group_support::{committed_offsets, drain, exactly_once, group_consumer, poll_until};

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
fn group_offsets_survive_broker_kill() {
    let mut broker = Broker::start_with(BrokerOptions {
        fixed_ports: true,
        ..BrokerOptions::default()
    });
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("ledger");
    // One group coordinated by each shard.
    let groups: Vec<String> = (0..2)
        .map(|shard| {
            std::iter::repeat_with(|| topic_name("readers"))
                .find(|g| sluice::group::coordinator_shard(g, 2) == shard)
                .expect("some name hashes to each shard")
        })
        .collect();
    create_topic(&bootstrap, &topic, PARTITIONS_COUNT);
    produce_all(&producer(&bootstrap, &[]), &topic, &records(1));

    // Each group commits phase 1.
    for group in &groups {
        let (consumer, _) = group_consumer(&bootstrap, group, &topic, &[]);
        let mut received = vec![Vec::new()];
        poll_until(
            &[&consumer],
            &mut received,
            "phase 1",
            CLIENT_TIMEOUT,
            |r| r[0].len() >= RECORDS_PER_PHASE,
        );
        consumer
            .commit_consumer_state(CommitMode::Sync)
            .expect("commit phase 1");
        // Dropped without a clean close, like a crashed client.
        std::mem::drop(consumer);
    }
    produce_all(&producer(&bootstrap, &[]), &topic, &records(2));
    let per_partition = (RECORDS_PER_PHASE / PARTITIONS_COUNT as usize) as i64;
    let expected: BTreeMap<i32, Option<i64>> = (0..PARTITIONS_COUNT)
        .map(|p| (p, Some(per_partition)))
        .collect();

    broker.kill();
    broker.restart();

    for group in &groups {
        assert_eq!(
            committed_offsets(&bootstrap, group, &topic, PARTITIONS_COUNT),
            expected,
            "group {group}: committed offsets after kill -9 and restart"
        );
        let (consumer, _) = group_consumer(&bootstrap, group, &topic, &[]);
        let mut received = vec![Vec::new()];
        poll_until(
            &[&consumer],
            &mut received,
            "phase 2 after restart",
            CLIENT_TIMEOUT,
            |r| r[0].len() >= RECORDS_PER_PHASE,
        );
        drain(&[&consumer], &mut received, Duration::from_millis(300));
        exactly_once(&received);
        for p in 0..PARTITIONS_COUNT {
            let first = received[0]
                .iter()
                .filter(|m| m.partition == p)
                .map(|m| m.offset)
                .min();
            assert_eq!(
                first,
                Some(per_partition),
                "group {group} partition {p} resumes at the commit"
            );
        }
        assert_eq!(
            received[0].len(),
            RECORDS_PER_PHASE,
            "group {group}: only phase 2 redelivered"
        );
    }
}
