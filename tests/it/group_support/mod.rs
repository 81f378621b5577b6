//! Helpers for the consumer-group scenarios (tests/group_*.rs): subscribed rdkafka consumers
//! that record their rebalances, and polling of several consumers from one thread.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::common::Consumed;

/// Short enough that a crashed member is noticed quickly, long enough for a loaded CI box.
pub const SESSION_TIMEOUT_MS: u64 = 6_000;

/// Counts rebalances (assign and revoke callbacks) seen by one consumer.
#[derive(Clone, Default)]
pub struct RebalanceCounter {
    pub assigns: Arc<AtomicUsize>,
    pub revokes: Arc<AtomicUsize>,
}

impl RebalanceCounter {
    pub fn total(&self) -> usize {
        self.assigns.load(Ordering::SeqCst) + self.revokes.load(Ordering::SeqCst)
    }
}

impl ClientContext for RebalanceCounter {}

impl ConsumerContext for RebalanceCounter {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(_) => self.assigns.fetch_add(1, Ordering::SeqCst),
            Rebalance::Revoke(_) => self.revokes.fetch_add(1, Ordering::SeqCst),
            Rebalance::Error(_) => 0,
        };
    }
}

pub type GroupConsumer = BaseConsumer<RebalanceCounter>;

/// A consumer in `group` subscribed to `topic`, committing only when the test says so.
pub fn group_consumer(
    bootstrap: &str,
    group: &str,
    topic: &str,
    overrides: &[(&str, &str)],
) -> (GroupConsumer, RebalanceCounter) {
    let counter = RebalanceCounter::default();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", SESSION_TIMEOUT_MS.to_string())
        .set("heartbeat.interval.ms", "500")
        .set("fetch.wait.max.ms", "100")
        .set("topic.metadata.refresh.interval.ms", "1000");
    for (key, value) in overrides {
        config.set(*key, *value);
    }
    let consumer: GroupConsumer = config
        .create_with_context(counter.clone())
        .expect("create group consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    (consumer, counter)
}

/// A KIP-848 consumer (`group.protocol=consumer`) in `group`, not subscribed yet. The new
/// protocol has no client-side session or heartbeat settings.
pub fn kip848_consumer(bootstrap: &str, group: &str) -> (GroupConsumer, RebalanceCounter) {
    let counter = RebalanceCounter::default();
    let consumer: GroupConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("group.protocol", "consumer")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .create_with_context(counter.clone())
        .expect("create KIP-848 consumer");
    (consumer, counter)
}

/// Topic-partitions currently assigned to `consumer`.
pub fn assigned_topic_partitions(consumer: &GroupConsumer) -> BTreeSet<(String, i32)> {
    consumer
        .assignment()
        .map(|list| {
            list.elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect()
        })
        .unwrap_or_default()
}

/// Every partition of `topics`, each of which has `partitions_count`.
pub fn every_partition(topics: &[&str], partitions_count: i32) -> BTreeSet<(String, i32)> {
    topics
        .iter()
        .flat_map(|t| (0..partitions_count).map(move |p| (t.to_string(), p)))
        .collect()
}

/// Partitions currently assigned to `consumer`.
pub fn assigned(consumer: &GroupConsumer) -> BTreeSet<i32> {
    consumer
        .assignment()
        .map(|list| list.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Polls every consumer in turn, keeping messages per consumer, until `done` holds.
pub fn poll_until(
    consumers: &[&GroupConsumer],
    received: &mut [Vec<Consumed>],
    what: &str,
    timeout: Duration,
    mut done: impl FnMut(&[Vec<Consumed>]) -> bool,
) {
    assert_eq!(consumers.len(), received.len());
    let deadline = Instant::now() + timeout;
    let mut errors = Vec::new();
    while !done(received) {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; received {:?}; errors {:?}",
            received.iter().map(Vec::len).collect::<Vec<_>>(),
            &errors[errors.len().saturating_sub(5)..]
        );
        for (consumer, out) in consumers.iter().zip(received.iter_mut()) {
            match consumer.poll(Duration::from_millis(20)) {
                Some(Ok(message)) => out.push(Consumed::from_message(&message)),
                Some(Err(KafkaError::PartitionEOF(_))) | None => {}
                Some(Err(error)) => errors.push(error.to_string()),
            }
        }
    }
}

/// Polls for `duration`, collecting anything that still arrives (duplicates would).
pub fn drain(consumers: &[&GroupConsumer], received: &mut [Vec<Consumed>], duration: Duration) {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        for (consumer, out) in consumers.iter().zip(received.iter_mut()) {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(20)) {
                out.push(Consumed::from_message(&message));
            }
        }
    }
}

/// Committed offsets of `group` for partitions `0..partitions_count` of `topic`, read with
/// OffsetFetch by a consumer that never joins the group. `None`: nothing committed.
pub fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions_count: i32,
) -> BTreeMap<i32, Option<i64>> {
    let observer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create observer");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions_count {
        list.add_partition(topic, p);
    }
    let committed = observer
        .committed_offsets(list, Duration::from_secs(20))
        .expect("OffsetFetch");
    committed
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            (e.partition(), offset)
        })
        .collect()
}

/// `(partition, offset)` of every message, asserting none arrived twice.
pub fn exactly_once(received: &[Vec<Consumed>]) -> BTreeSet<(i32, i64)> {
    let mut seen = BTreeSet::new();
    for message in received.iter().flatten() {
        assert!(
            seen.insert((message.partition, message.offset)),
            "partition {} offset {} delivered twice",
            message.partition,
            message.offset
        );
    }
    seen
}
