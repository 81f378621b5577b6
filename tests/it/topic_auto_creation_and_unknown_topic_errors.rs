//! With auto-creation on (the default), Metadata and Produce for a new topic create it with
//! `--num-partitions` partitions. With auto-creation off, the same requests get
//! UNKNOWN_TOPIC_OR_PARTITION and no topic appears.

use crate::common;

use common::{
    assign, consume_count, consumer, produce_all, producer, topic_leaders, topic_name,
    try_produce_all, Broker, BrokerOptions, TestRecord, CLIENT_TIMEOUT,
};
use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer;

#[test]
fn produce_and_metadata_auto_create_topics() {
    let broker = Broker::start_with(BrokerOptions {
        num_partitions: 4,
        ..BrokerOptions::default()
    });

    // Metadata from a producer (librdkafka sets allow_auto_topic_creation) creates the topic.
    let producer = producer(broker.bootstrap(), &[]);
    let by_metadata = topic_name("auto-meta");
    let metadata = producer
        .client()
        .fetch_metadata(Some(&by_metadata), CLIENT_TIMEOUT)
        .expect("metadata request");
    let _ = metadata; // The first answer may still say LEADER_NOT_AVAILABLE, as Kafka's does.
    let consumer = consumer(broker.bootstrap(), &[]);
    let mut leaders = Err(String::new());
    common::wait_until("auto-created topic in Metadata", CLIENT_TIMEOUT, || {
        leaders = topic_leaders(&consumer, &by_metadata);
        matches!(&leaders, Ok(list) if list.len() == 4 && list.iter().all(|(_, l)| *l >= 0))
    });

    // Producing to a topic nobody created works, and the records can be read back.
    let by_produce = topic_name("auto-produce");
    let records: Vec<TestRecord> = (0..100)
        .map(|i| TestRecord::new(format!("k{i}"), format!("v{i}")).partition(i % 4))
        .collect();
    let deliveries = produce_all(&producer, &by_produce, &records);
    assert_eq!(deliveries.len(), records.len());
    assert_eq!(
        topic_leaders(&consumer, &by_produce).map(|l| l.len()),
        Ok(4),
        "auto-created topic has --num-partitions partitions"
    );
    assign(&consumer, &by_produce, &[(0, 0), (1, 0), (2, 0), (3, 0)]);
    let consumed = consume_count(&consumer, records.len(), CLIENT_TIMEOUT);
    assert_eq!(consumed.len(), records.len());
}

#[test]
fn unknown_topic_is_an_error_when_auto_create_is_off() {
    let broker = Broker::start_with(BrokerOptions {
        auto_create_topics: false,
        ..BrokerOptions::default()
    });
    let topic = topic_name("missing");

    // Metadata for the topic names it with UNKNOWN_TOPIC_OR_PARTITION, even when the client asks
    // for auto-creation (the producer does).
    let producer = producer(
        broker.bootstrap(),
        &[
            ("message.timeout.ms", "5000"),
            ("topic.metadata.propagation.max.ms", "1000"),
        ],
    );
    let metadata = producer
        .client()
        .fetch_metadata(Some(&topic), CLIENT_TIMEOUT)
        .expect("metadata request");
    let entry = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .expect("Metadata answers for the requested topic");
    assert_eq!(
        entry.error().map(rdkafka::types::RDKafkaErrorCode::from),
        Some(rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition),
        "Metadata error for an unknown topic with auto-creation off"
    );
    assert!(entry.partitions().is_empty());

    // Producing to it fails rather than succeeding or hanging.
    let deliveries = try_produce_all(&producer, &topic, &[TestRecord::new("k", "v")]);
    let error = deliveries[0].error.clone();
    assert!(
        error.is_some(),
        "produce to an unknown topic must fail: {deliveries:?}"
    );

    // And the topic was not created behind our back.
    let consumer = consumer(broker.bootstrap(), &[]);
    let all = consumer
        .fetch_metadata(None, CLIENT_TIMEOUT)
        .expect("metadata for all topics");
    assert!(
        all.topics().iter().all(|t| t.name() != topic),
        "topic {topic} must not exist; produce error was {error:?}"
    );
}
