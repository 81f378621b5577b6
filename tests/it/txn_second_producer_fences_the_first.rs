//! A second producer with the same transactional.id fences the first: the first one's open
//! transaction is aborted, its commit fails with a fatal error, and a read_committed consumer
//! sees only what the second one committed.

use crate::common;
use crate::txn_support;

use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;

use common::CLIENT_TIMEOUT;
use txn_support::{send, values_on};

#[test]
fn a_second_producer_with_the_same_transactional_id_fences_the_first() {
    let broker = common::Broker::start();
    let topic = common::topic_name("txn-fencing");
    common::create_topic(broker.bootstrap(), &topic, 1);
    let transactional_id = common::topic_name("fenced");

    let zombie = txn_support::transactional_producer(broker.bootstrap(), &transactional_id);
    zombie.begin_transaction().expect("zombie begins");
    let zombie_values: Vec<String> = (0..5).map(|i| format!("zombie-{i}")).collect();
    send(&zombie, &topic, 0, &zombie_values);

    let fresh = txn_support::transactional_producer(broker.bootstrap(), &transactional_id);
    fresh.begin_transaction().expect("fresh begins");
    let fresh_values: Vec<String> = (0..5).map(|i| format!("fresh-{i}")).collect();
    send(&fresh, &topic, 0, &fresh_values);
    fresh
        .commit_transaction(CLIENT_TIMEOUT)
        .expect("fresh commits");

    match zombie.commit_transaction(CLIENT_TIMEOUT) {
        Err(KafkaError::Transaction(error)) => {
            assert!(
                error.is_fatal(),
                "the zombie's error is not fatal: {error:?}"
            );
        }
        other => panic!("the fenced producer's commit got {other:?}"),
    }

    txn_support::write_end_markers(&fresh, &topic, 1);
    let consumer = common::consumer(broker.bootstrap(), &[("isolation.level", "read_committed")]);
    common::assign(&consumer, &topic, &[(0, 0)]);
    let seen = txn_support::consume_to_end_markers(&consumer, 1);
    assert_eq!(values_on(&seen, 0), fresh_values);
}
