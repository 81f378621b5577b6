//! A transaction left open past its transaction.timeout.ms is aborted by the coordinator:
//! the partition's last stable offset moves past it (so read_committed consumers are not
//! held up forever), its records are skipped, and its producer can no longer commit it.

use crate::common;
use crate::txn_support;

use rdkafka::producer::Producer;

use common::CLIENT_TIMEOUT;
use txn_support::{send, values_on};

#[test]
fn a_transaction_past_its_timeout_is_aborted() {
    let broker = common::Broker::start();
    let topic = common::topic_name("txn-timeout");
    common::create_topic(broker.bootstrap(), &topic, 1);

    let stalled = common::producer(
        broker.bootstrap(),
        &[
            ("transactional.id", &common::topic_name("stalled")),
            ("enable.idempotence", "true"),
            ("transaction.timeout.ms", "2000"),
            ("message.timeout.ms", "2000"),
        ],
    );
    stalled.init_transactions(CLIENT_TIMEOUT).expect("init");
    stalled.begin_transaction().expect("begin");
    send(
        &stalled,
        &topic,
        0,
        &["stalled-0".to_owned(), "stalled-1".to_owned()],
    );

    // Committed after the stalled transaction began: invisible to read_committed until
    // the coordinator aborts the stalled one.
    let other = txn_support::transactional_producer(broker.bootstrap(), &common::topic_name("o"));
    other.begin_transaction().expect("begin");
    send(&other, &topic, 0, &["committed".to_owned()]);
    other.commit_transaction(CLIENT_TIMEOUT).expect("commit");
    txn_support::write_end_markers(&other, &topic, 1);

    let consumer = common::consumer(broker.bootstrap(), &[("isolation.level", "read_committed")]);
    common::assign(&consumer, &topic, &[(0, 0)]);
    let seen = txn_support::consume_to_end_markers(&consumer, 1);
    assert_eq!(values_on(&seen, 0), vec!["committed".to_owned()]);

    assert!(
        stalled.commit_transaction(CLIENT_TIMEOUT).is_err(),
        "a transaction aborted by its timeout must not commit"
    );
}
