//! KIP-447: offsets sent with send_offsets_to_transaction are pending until the transaction
//! ends. OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT for them meanwhile
//! (clients retry), and the committed offset once the transaction commits.

use crate::common;
use crate::txn_support;

use std::time::Duration;

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use sluice::client::{Connection, ConnectionConfig};

use common::CLIENT_TIMEOUT;

const NOT_COORDINATOR: i16 = 16;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

/// OffsetFetch v7 of `topic` partition 0 from the group's coordinator: (error, offset).
fn offset_fetch(broker: &common::Broker, group: &str, topic: &str, stable: bool) -> (i16, i64) {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_require_stable(stable)
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_indexes(vec![0])]));
    for (_, addr) in &broker.ready_line().brokers {
        let mut connection =
            Connection::connect(addr, &ConnectionConfig::default()).expect("connect");
        let response = connection
            .send_version(&request, 7, Duration::ZERO)
            .expect("OffsetFetch");
        if response.error_code == NOT_COORDINATOR {
            continue;
        }
        assert_eq!(response.error_code, 0, "OffsetFetch error");
        let partition = &response.topics[0].partitions[0];
        return (partition.error_code, partition.committed_offset);
    }
    panic!("no shard coordinates group {group}");
}

#[test]
fn offsets_of_an_open_transaction_are_unstable_until_it_commits() {
    let broker = common::Broker::start();
    let input = common::topic_name("stable-in");
    let output = common::topic_name("stable-out");
    common::create_topic(broker.bootstrap(), &input, 1);
    common::create_topic(broker.bootstrap(), &output, 1);
    let group = common::topic_name("stable-group");
    // A consumer that never joins: its group metadata has no member and generation -1.
    let consumer = common::consumer(broker.bootstrap(), &[("group.id", &group)]);
    let metadata = consumer.group_metadata().expect("group metadata");

    let producer =
        txn_support::transactional_producer(broker.bootstrap(), &common::topic_name("stable"));
    producer.begin_transaction().expect("begin");
    txn_support::send(&producer, &output, 0, &["copied".to_owned()]);
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&input, 0, Offset::Offset(5))
        .expect("offset");
    producer
        .send_offsets_to_transaction(&offsets, &metadata, CLIENT_TIMEOUT)
        .expect("send offsets");

    assert_eq!(
        offset_fetch(&broker, &group, &input, true),
        (UNSTABLE_OFFSET_COMMIT, -1)
    );
    assert_eq!(offset_fetch(&broker, &group, &input, false), (0, -1));

    producer.commit_transaction(CLIENT_TIMEOUT).expect("commit");
    assert_eq!(offset_fetch(&broker, &group, &input, true), (0, 5));
}
