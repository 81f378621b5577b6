//! A broker restart in the middle of a produce/consume run, once with SIGTERM (graceful) and
//! once with SIGKILL right after acks=all acknowledgements. On the same ports and data dir,
//! the same producer and consumer objects carry on: the consumer continues from its explicit
//! position, and a fresh consumer from offset 0 sees every acknowledged record exactly once.

use crate::common;

use common::{
    assert_partition_contents, assign, consume_count, consumer, create_topic, produce_all,
    producer, topic_name, Broker, BrokerOptions, TestRecord, CLIENT_TIMEOUT,
};

const PARTITIONS_COUNT: i32 = 4;
const RECORDS_PER_PHASE: usize = 2_000;

fn records(phase: usize) -> Vec<TestRecord> {
    (0..RECORDS_PER_PHASE)
        .map(|i| {
            let n = phase * RECORDS_PER_PHASE + i;
            TestRecord::new(format!("k{n}"), format!("phase{phase}-v{n}"))
                .partition(n as i32 % PARTITIONS_COUNT)
                .header("phase", Some(phase.to_string().as_bytes()))
        })
        .collect()
}

fn restart_mid_run(kill: bool) {
    let mut broker = Broker::start_with(BrokerOptions {
        fixed_ports: true,
        ..BrokerOptions::default()
    });
    let topic = topic_name(if kill { "sigkill" } else { "sigterm" });
    create_topic(broker.bootstrap(), &topic, PARTITIONS_COUNT);
    let producer = producer(broker.bootstrap(), &[]);
    let reader = consumer(broker.bootstrap(), &[]);
    let starts: Vec<(i32, i64)> = (0..PARTITIONS_COUNT).map(|p| (p, 0)).collect();
    assign(&reader, &topic, &starts);

    // Phase 0: acknowledged with acks=all, and read by the long-lived consumer.
    let phase0 = records(0);
    let deliveries0 = produce_all(&producer, &topic, &phase0);
    let expected0: Vec<(i32, i64, &TestRecord)> = deliveries0
        .iter()
        .map(|d| (d.partition, d.offset, &phase0[d.id]))
        .collect();
    let consumed0 = consume_count(&reader, RECORDS_PER_PHASE, CLIENT_TIMEOUT);
    assert_partition_contents(&consumed0, &expected0);

    // Restart right after the acknowledgements.
    if kill {
        broker.kill();
    } else {
        broker.stop_graceful();
    }
    broker.restart();

    // Phase 1: the same producer reconnects and appends after the recovered tail.
    let phase1 = records(1);
    let deliveries1 = produce_all(&producer, &topic, &phase1);
    for partition in 0..PARTITIONS_COUNT {
        let before = deliveries0
            .iter()
            .filter(|d| d.partition == partition)
            .count() as i64;
        let first_after = deliveries1
            .iter()
            .filter(|d| d.partition == partition)
            .map(|d| d.offset)
            .min();
        assert_eq!(
            first_after,
            Some(before),
            "partition {partition}: offsets must continue after the restart, not restart or skip"
        );
    }
    let expected1: Vec<(i32, i64, &TestRecord)> = deliveries1
        .iter()
        .map(|d| (d.partition, d.offset, &phase1[d.id]))
        .collect();

    // The long-lived consumer continues from where it was, with nothing missing or repeated.
    let consumed1 = consume_count(&reader, RECORDS_PER_PHASE, CLIENT_TIMEOUT);
    assert_partition_contents(&consumed1, &expected1);

    // A fresh consumer from explicit offsets in the middle of phase 0 sees the rest.
    let resume_at = 100;
    let fresh = consumer(broker.bootstrap(), &[]);
    let starts: Vec<(i32, i64)> = (0..PARTITIONS_COUNT).map(|p| (p, resume_at)).collect();
    assign(&fresh, &topic, &starts);
    let expected_all: Vec<(i32, i64, &TestRecord)> =
        expected0.iter().chain(expected1.iter()).copied().collect();
    let expected_tail: Vec<(i32, i64, &TestRecord)> = expected_all
        .iter()
        .copied()
        .filter(|(_, offset, _)| *offset >= resume_at)
        .collect();
    let consumed = consume_count(&fresh, expected_tail.len(), CLIENT_TIMEOUT);
    assert_partition_contents(&consumed, &expected_tail);

    // And everything, from the start, after one more restart of the same kind.
    if kill {
        broker.kill();
    } else {
        broker.stop_graceful();
    }
    broker.restart();
    let fresh = consumer(broker.bootstrap(), &[]);
    let starts: Vec<(i32, i64)> = (0..PARTITIONS_COUNT).map(|p| (p, 0)).collect();
    assign(&fresh, &topic, &starts);
    let consumed = consume_count(&fresh, expected_all.len(), CLIENT_TIMEOUT);
    assert_partition_contents(&consumed, &expected_all);
    broker.stop_graceful();
}

#[test]
fn graceful_restart_mid_run_loses_nothing() {
    restart_mid_run(false);
}

#[test]
fn sigkill_after_acks_all_loses_nothing_acknowledged() {
    restart_mid_run(true);
}
