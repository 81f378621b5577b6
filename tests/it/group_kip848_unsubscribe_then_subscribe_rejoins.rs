//! KIP-848: a librdkafka consumer that unsubscribes and subscribes again at once, over and
//! over, leaves the group (epoch -1) and rejoins it under the same member id (epoch 0) each
//! time, and gets the new subscription's partitions every time.
//!
//! The unsubscribe comes while the member is settled. An unsubscribe that comes while a
//! revocation from the coordinator still waits for the application's rebalance callback
//! trips a librdkafka bug instead, which Kafka trips as well; tests/README.md has the details.

use crate::common;
use crate::group_support;

use rdkafka::consumer::Consumer;

use common::{create_topic, topic_name, Broker, CLIENT_TIMEOUT};
use group_support::{assigned_topic_partitions, every_partition, kip848_consumer, poll_until};

const PARTITIONS_COUNT: i32 = 2;
const ROUNDS_COUNT: usize = 8;

#[test]
fn group_kip848_unsubscribe_then_subscribe_rejoins() {
    let broker = Broker::start();
    let group = topic_name("resubscribe");
    let topics: Vec<String> = (0..=ROUNDS_COUNT).map(|i| format!("{group}-{i}")).collect();
    for topic in &topics {
        create_topic(broker.bootstrap(), topic, PARTITIONS_COUNT);
    }
    let (consumer, counter) = kip848_consumer(broker.bootstrap(), &group);

    let first = [topics[0].as_str()];
    consumer.subscribe(&first).expect("subscribe");
    poll_until(
        &[&consumer],
        &mut [Vec::new()],
        "the first assignment",
        CLIENT_TIMEOUT,
        |_| assigned_topic_partitions(&consumer) == every_partition(&first, PARTITIONS_COUNT),
    );
    for round in 1..=ROUNDS_COUNT {
        // Every other round keeps a topic of the previous subscription.
        let next: Vec<&str> = if round % 2 == 0 {
            vec![topics[round - 1].as_str(), topics[round].as_str()]
        } else {
            vec![topics[round].as_str()]
        };
        consumer.unsubscribe();
        consumer.subscribe(&next).expect("subscribe again");
        poll_until(
            &[&consumer],
            &mut [Vec::new()],
            &format!("round {round}: the partitions of {next:?}"),
            CLIENT_TIMEOUT,
            |_| assigned_topic_partitions(&consumer) == every_partition(&next, PARTITIONS_COUNT),
        );
    }
    assert!(
        counter.revokes.load(std::sync::atomic::Ordering::SeqCst) >= ROUNDS_COUNT,
        "each unsubscribe revokes what the consumer held"
    );
}
