//! Two transactional producers interleave transactions on the same two partitions (on two
//! shards), committing some and aborting others. A read_committed consumer sees exactly the
//! committed records, in order; a read_uncommitted consumer sees every record and no
//! control record.

use crate::common;
use crate::txn_support;

use rdkafka::producer::Producer;

use common::CLIENT_TIMEOUT;
use txn_support::{send, values_on};

const PARTITIONS: i32 = 2;
const ROUNDS: usize = 6;
const RECORDS_PER_SEND: usize = 5;

fn values(who: &str, round: usize, partition: i32) -> Vec<String> {
    (0..RECORDS_PER_SEND)
        .map(|i| format!("{who}-{round}-{partition}-{i}"))
        .collect()
}

#[test]
fn read_committed_consumer_sees_exactly_the_committed_records() {
    let broker = common::Broker::start();
    let topic = common::topic_name("txn-interleaved");
    common::create_topic(broker.bootstrap(), &topic, PARTITIONS);
    let a = txn_support::transactional_producer(broker.bootstrap(), &common::topic_name("a"));
    let b = txn_support::transactional_producer(broker.bootstrap(), &common::topic_name("b"));

    let mut committed: Vec<Vec<String>> = vec![Vec::new(); PARTITIONS as usize];
    let mut all: Vec<Vec<String>> = vec![Vec::new(); PARTITIONS as usize];
    for round in 0..ROUNDS {
        // A's transaction stays open across B's whole transaction.
        let a_commits = round % 3 == 0;
        let b_commits = round % 2 == 0;
        a.begin_transaction().expect("a begins");
        b.begin_transaction().expect("b begins");
        for partition in 0..PARTITIONS {
            send(&a, &topic, partition, &values("a", round, partition));
            send(&b, &topic, partition, &values("b", round, partition));
        }
        if b_commits {
            b.commit_transaction(CLIENT_TIMEOUT).expect("b commits");
        } else {
            b.abort_transaction(CLIENT_TIMEOUT).expect("b aborts");
        }
        if a_commits {
            a.commit_transaction(CLIENT_TIMEOUT).expect("a commits");
        } else {
            a.abort_transaction(CLIENT_TIMEOUT).expect("a aborts");
        }
        for partition in 0..PARTITIONS {
            let p = partition as usize;
            for (who, commits) in [("a", a_commits), ("b", b_commits)] {
                all[p].extend(values(who, round, partition));
                if commits {
                    committed[p].extend(values(who, round, partition));
                }
            }
        }
    }
    txn_support::write_end_markers(&a, &topic, PARTITIONS);

    let starts: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let read_committed =
        common::consumer(broker.bootstrap(), &[("isolation.level", "read_committed")]);
    common::assign(&read_committed, &topic, &starts);
    let seen = txn_support::consume_to_end_markers(&read_committed, PARTITIONS);
    for partition in 0..PARTITIONS {
        assert_eq!(
            values_on(&seen, partition),
            committed[partition as usize],
            "read_committed, partition {partition}"
        );
    }

    let read_uncommitted = common::consumer(
        broker.bootstrap(),
        &[("isolation.level", "read_uncommitted")],
    );
    common::assign(&read_uncommitted, &topic, &starts);
    let seen = txn_support::consume_to_end_markers(&read_uncommitted, PARTITIONS);
    for partition in 0..PARTITIONS {
        assert_eq!(
            values_on(&seen, partition),
            all[partition as usize],
            "read_uncommitted, partition {partition}"
        );
    }
}
