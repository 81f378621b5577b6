//! A transactional producer needs WRITE on its transactional id: without it
//! init_transactions fails with TRANSACTIONAL_ID_AUTHORIZATION_FAILED; with it (and WRITE
//! on the topic) a transaction commits.

use crate::acl_support;
use crate::common;

use acl_support::ANONYMOUS;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

#[test]
fn transactions_follow_the_transactional_id_acls() {
    let broker = acl_support::start_broker(&[]);
    let bootstrap = broker.bootstrap();
    let topic = common::topic_name("acl-txn");
    let txn_id = common::topic_name("acl-txn-id");
    common::create_topic(bootstrap, &topic, 1);
    let grant = |principal: &str, resource: &str, name: &str| {
        acl_support::allow(bootstrap, principal, "write", &[resource, name]);
    };
    grant("User:bob", "--transactional-id", &txn_id);
    grant(ANONYMOUS, "--topic", &topic);
    let settings = [
        ("transactional.id", txn_id.as_str()),
        ("enable.idempotence", "true"),
    ];

    let producer = common::producer(bootstrap, &settings);
    let refused = producer
        .init_transactions(common::CLIENT_TIMEOUT)
        .expect_err("init_transactions without WRITE on the transactional id");
    assert_eq!(
        refused.rdkafka_error_code(),
        Some(RDKafkaErrorCode::TransactionalIdAuthorizationFailed),
        "{refused:?}"
    );
    drop(producer);

    grant(ANONYMOUS, "--transactional-id", &txn_id);
    let producer = common::producer(bootstrap, &settings);
    producer
        .init_transactions(common::CLIENT_TIMEOUT)
        .expect("init_transactions");
    producer.begin_transaction().expect("begin");
    let record: BaseRecord<'_, str, str, Box<usize>> =
        BaseRecord::with_opaque_to(&topic, Box::new(0))
            .key("k")
            .payload("v");
    producer.send(record).map_err(|(e, _)| e).expect("send");
    producer
        .commit_transaction(common::CLIENT_TIMEOUT)
        .expect("commit");
}
