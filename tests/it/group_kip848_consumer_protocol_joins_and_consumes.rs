//! KIP-848: librdkafka consumers with `group.protocol=consumer` join through
//! ConsumerGroupHeartbeat, get server-side assignments, and consume every message once.

use crate::common;
use crate::group_support;

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};

use common::{create_topic, produce_all, producer, topic_name, Broker, TestRecord, CLIENT_TIMEOUT};
use group_support::{assigned, committed_offsets, drain, exactly_once, poll_until};

const PARTITIONS_COUNT: i32 = 4;
const RECORDS_COUNT: usize = 400;

#[test]
fn group_kip848_consumer_protocol_joins_and_consumes() {
    let broker = Broker::start();
    let topic = topic_name("kip848");
    let group = topic_name("next-gen");
    create_topic(broker.bootstrap(), &topic, PARTITIONS_COUNT);
    let connect = || {
        let (consumer, _) = group_support::kip848_consumer(broker.bootstrap(), &group);
        consumer.subscribe(&[&topic]).expect("subscribe");
        consumer
    };

    let a = connect();
    let b = connect();
    let mut received = vec![Vec::new(), Vec::new()];
    poll_until(
        &[&a, &b],
        &mut received,
        "two partitions each",
        CLIENT_TIMEOUT,
        |_| {
            let (pa, pb) = (assigned(&a), assigned(&b));
            pa.len() == 2 && pb.len() == 2 && pa.is_disjoint(&pb)
        },
    );
    let assignments: Vec<BTreeSet<i32>> = vec![assigned(&a), assigned(&b)];

    let records: Vec<TestRecord> = (0..RECORDS_COUNT)
        .map(|i| {
            TestRecord::new(format!("k{i}"), format!("v{i}"))
                .partition((i % PARTITIONS_COUNT as usize) as i32)
        })
        .collect();
    produce_all(&producer(broker.bootstrap(), &[]), &topic, &records);
    poll_until(
        &[&a, &b],
        &mut received,
        "every message",
        CLIENT_TIMEOUT,
        |r| r.iter().map(Vec::len).sum::<usize>() >= RECORDS_COUNT,
    );
    drain(&[&a, &b], &mut received, Duration::from_millis(500));
    assert_eq!(exactly_once(&received).len(), RECORDS_COUNT);
    for (i, messages) in received.iter().enumerate() {
        assert!(messages
            .iter()
            .all(|m| assignments[i].contains(&m.partition)));
    }

    // OffsetCommit v9 with the member epoch.
    a.commit_consumer_state(CommitMode::Sync)
        .expect("commit (member epoch)");
    b.commit_consumer_state(CommitMode::Sync)
        .expect("commit (member epoch)");
    let committed = committed_offsets(broker.bootstrap(), &group, &topic, PARTITIONS_COUNT);
    let per_partition = (RECORDS_COUNT / PARTITIONS_COUNT as usize) as i64;
    assert!(
        committed.values().all(|o| *o == Some(per_partition)),
        "{committed:?}"
    );

    // One member leaves: the other takes all partitions.
    drop(b);
    let mut received = vec![Vec::new()];
    poll_until(
        &[&a],
        &mut received,
        "the survivor to own everything",
        CLIENT_TIMEOUT,
        |_| assigned(&a).len() == PARTITIONS_COUNT as usize,
    );
}
