//! An acks=0 produce has no answer to carry TOPIC_AUTHORIZATION_FAILED, so, as Kafka does,
//! the broker closes the connection: the client notices instead of producing into the void.
//! The same produce, once WRITE is granted, leaves the connection open and is stored.

use crate::acl_support;
use crate::common;
use crate::txn_support::{connect, text};

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{MetadataRequest, ProduceRequest, TopicName};
use sluice::client::Connection;
use sluice::log::testing::make_batch;

use acl_support::ANONYMOUS;

fn produce_acks0(connection: &mut Connection, topic: &str) {
    let request = ProduceRequest::default()
        .with_acks(0)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(text(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(make_batch(1, 20, 1))))])]);
    connection
        .send_without_response(&request, 7)
        .expect("write the acks=0 produce");
}

/// Whether the connection still answers a Metadata request.
fn still_answers(connection: &mut Connection) -> bool {
    connection
        .send_version(&MetadataRequest::default(), 4, Duration::ZERO)
        .is_ok()
}

#[test]
fn acks0_produce_without_write_closes_only_that_connection() {
    let broker = acl_support::start_broker(&[]);
    let bootstrap = broker.bootstrap();
    let topic = common::topic_name("acl-acks0");
    common::create_topic(bootstrap, &topic, 1);
    acl_support::allow(bootstrap, ANONYMOUS, "describe", &["--topic", &topic]);
    let leader = common::leader_address(&broker, &topic, 0);

    let mut denied = connect(&leader);
    let mut bystander = connect(&leader);
    produce_acks0(&mut denied, &topic);
    assert!(
        !still_answers(&mut denied),
        "a refused acks=0 produce must close its connection"
    );
    assert!(still_answers(&mut bystander), "other connections stay open");

    acl_support::allow(bootstrap, ANONYMOUS, "write", &["--topic", &topic]);
    let mut granted = connect(&leader);
    produce_acks0(&mut granted, &topic);
    assert!(
        still_answers(&mut granted),
        "an accepted acks=0 produce keeps it open"
    );
}
