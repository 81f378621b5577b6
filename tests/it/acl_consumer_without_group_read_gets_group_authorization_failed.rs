//! With READ on the topic but not on its group, a subscribing consumer gets
//! GROUP_AUTHORIZATION_FAILED (from FindCoordinator, as with Kafka); once the group is
//! granted READ it joins and consumes.

use crate::acl_support;
use crate::common;

use std::time::{Duration, Instant};

use acl_support::ANONYMOUS;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

fn subscriber(bootstrap: &str, topic: &str, group: &str) -> BaseConsumer {
    let consumer = common::consumer(
        bootstrap,
        &[("group.id", group), ("auto.offset.reset", "earliest")],
    );
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

#[test]
fn group_read_is_needed_besides_topic_read() {
    let broker = acl_support::start_broker(&[]);
    let bootstrap = broker.bootstrap();
    let topic = common::topic_name("acl-group-topic");
    let group = common::topic_name("acl-group");
    common::create_topic(bootstrap, &topic, 1);
    let producer = common::producer(bootstrap, &[]);
    common::produce_all(&producer, &topic, &[common::TestRecord::new("k", "v")]);
    for (resource, principal) in [("--topic", ANONYMOUS), ("--group", "User:bob")] {
        let name = if resource == "--topic" {
            &topic
        } else {
            &group
        };
        acl_support::allow(bootstrap, principal, "read", &[resource, name]);
    }

    let consumer = subscriber(bootstrap, &topic, &group);
    let deadline = Instant::now() + common::CLIENT_TIMEOUT;
    let refusal = loop {
        assert!(Instant::now() < deadline, "no group authorization error");
        match consumer.poll(Duration::from_millis(100)) {
            Some(Err(error)) => break error,
            Some(Ok(_)) => panic!("consumed without READ on the group"),
            None => {}
        }
    };
    assert!(
        matches!(
            refusal,
            KafkaError::MessageConsumption(RDKafkaErrorCode::GroupAuthorizationFailed)
        ),
        "{refusal:?}"
    );
    drop(consumer);

    acl_support::allow(bootstrap, ANONYMOUS, "read", &["--group", &group]);
    let consumer = subscriber(bootstrap, &topic, &group);
    let consumed = common::consume_count(&consumer, 1, common::CLIENT_TIMEOUT);
    assert_eq!(consumed.len(), 1);
}
