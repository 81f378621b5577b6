//! A transactional producer gets a fatal answer from init_transactions instead of waiting
//! for a transaction coordinator that never comes.

mod common;

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;

#[test]
fn init_transactions_fails_with_a_fatal_error() {
    let broker = common::Broker::start();
    let producer = common::producer(
        broker.bootstrap(),
        &[
            ("transactional.id", "fails-fast"),
            ("enable.idempotence", "true"),
        ],
    );
    // The deadline only turns a hang into a failure: a retriable refusal would run it out.
    match producer.init_transactions(Duration::from_secs(60)) {
        Err(KafkaError::Transaction(error)) => {
            assert!(error.is_fatal(), "not fatal: {error:?}");
        }
        other => panic!("expected a fatal transaction error, got {other:?}"),
    }
}
