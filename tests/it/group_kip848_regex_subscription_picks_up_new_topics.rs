//! KIP-848 regex subscriptions: a librdkafka consumer with `group.protocol=consumer`
//! subscribes to `^regex-test-<run>-.*`, which it sends as ConsumerGroupHeartbeat's
//! `SubscribedTopicRegex`. The coordinator resolves it against the catalog: the matching topic
//! is consumed, a non-matching one is not, and a matching topic created afterwards is
//! assigned and consumed too.

use crate::common;
use crate::group_support;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;

use common::{create_topic, produce_all, producer, Broker, TestRecord, CLIENT_TIMEOUT};
use group_support::{drain, poll_until, GroupConsumer, RebalanceCounter};

const RECORDS_PER_TOPIC: usize = 10;

fn records() -> Vec<TestRecord> {
    (0..RECORDS_PER_TOPIC)
        .map(|i| TestRecord::new(format!("k{i}"), format!("v{i}")))
        .collect()
}

#[test]
fn group_kip848_regex_subscription_picks_up_new_topics() {
    let broker = Broker::start();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let prefix = format!("regex-test-{run}");
    let (first, later, unrelated) = (
        format!("{prefix}-first"),
        format!("{prefix}-later"),
        format!("not-{prefix}"),
    );
    create_topic(broker.bootstrap(), &first, 2);
    create_topic(broker.bootstrap(), &unrelated, 1);
    let producer = producer(broker.bootstrap(), &[]);
    produce_all(&producer, &first, &records());
    produce_all(&producer, &unrelated, &records());

    let consumer: GroupConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", format!("regex-group-{run}"))
        .set("group.protocol", "consumer")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .create_with_context(RebalanceCounter::default())
        .expect("create KIP-848 consumer");
    consumer
        .subscribe(&[&format!("^{prefix}-.*")])
        .expect("subscribe by regex");
    let mut received = vec![Vec::new()];
    poll_until(
        &[&consumer],
        &mut received,
        "the matching topic",
        CLIENT_TIMEOUT,
        |r| r[0].len() >= RECORDS_PER_TOPIC,
    );

    create_topic(broker.bootstrap(), &later, 1);
    produce_all(&producer, &later, &records());
    poll_until(
        &[&consumer],
        &mut received,
        "the topic created after subscribing",
        CLIENT_TIMEOUT,
        |r| r[0].len() >= 2 * RECORDS_PER_TOPIC,
    );
    drain(&[&consumer], &mut received, Duration::from_millis(500));

    let mut per_topic: BTreeMap<&str, usize> = BTreeMap::new();
    for message in &received[0] {
        *per_topic.entry(message.topic.as_str()).or_default() += 1;
    }
    assert_eq!(
        per_topic,
        BTreeMap::from([
            (first.as_str(), RECORDS_PER_TOPIC),
            (later.as_str(), RECORDS_PER_TOPIC)
        ]),
        "every record of the matching topics, once; none of the other"
    );
}
