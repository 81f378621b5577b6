//! Competing consumers: three consumers in one group on a 6-partition topic get two
//! partitions each, and together consume every message exactly once.

use crate::common;
use crate::group_support;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{create_topic, produce_all, producer, topic_name, Broker, TestRecord, CLIENT_TIMEOUT};
use group_support::{assigned, drain, exactly_once, group_consumer, poll_until};

const PARTITIONS_COUNT: i32 = 6;
const RECORDS_COUNT: usize = 600;

#[test]
fn group_competing_consumers_share_partitions() {
    let broker = Broker::start();
    let topic = topic_name("work");
    let group = topic_name("workers");
    create_topic(broker.bootstrap(), &topic, PARTITIONS_COUNT);

    let members: Vec<_> = (0..3)
        .map(|_| group_consumer(broker.bootstrap(), &group, &topic, &[]))
        .collect();
    let consumers: Vec<_> = members.iter().map(|(c, _)| c).collect();
    let mut received = vec![Vec::new(); consumers.len()];
    poll_until(
        &consumers,
        &mut received,
        "two partitions per member",
        CLIENT_TIMEOUT,
        |_| {
            let sets: Vec<BTreeSet<i32>> = consumers.iter().map(|c| assigned(c)).collect();
            let all: BTreeSet<i32> = sets.iter().flatten().copied().collect();
            sets.iter().all(|s| s.len() == 2) && all.len() == PARTITIONS_COUNT as usize
        },
    );
    let assignments: Vec<BTreeSet<i32>> = consumers.iter().map(|c| assigned(c)).collect();

    let records: Vec<TestRecord> = (0..RECORDS_COUNT)
        .map(|i| {
            TestRecord::new(format!("k{i}"), format!("v{i}"))
                .partition((i % PARTITIONS_COUNT as usize) as i32)
        })
        .collect();
    produce_all(&producer(broker.bootstrap(), &[]), &topic, &records);

    poll_until(
        &consumers,
        &mut received,
        "every message",
        CLIENT_TIMEOUT,
        |r| r.iter().map(Vec::len).sum::<usize>() >= RECORDS_COUNT,
    );
    drain(&consumers, &mut received, Duration::from_millis(500));

    let seen = exactly_once(&received);
    assert_eq!(seen.len(), RECORDS_COUNT, "every message consumed once");
    for (i, messages) in received.iter().enumerate() {
        assert_eq!(
            messages.len(),
            RECORDS_COUNT / 3,
            "member {i} did a third of the work"
        );
        for message in messages {
            assert!(
                assignments[i].contains(&message.partition),
                "member {i} got partition {} outside its assignment {:?}",
                message.partition,
                assignments[i]
            );
        }
    }
}
