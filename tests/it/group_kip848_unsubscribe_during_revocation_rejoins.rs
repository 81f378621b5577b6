//! KIP-848: an application that changes its subscription, and then unsubscribes and
//! subscribes again before its rebalance callback has revoked what the coordinator took
//! away, should get the new subscription's partitions.
//!
//! Ignored: librdkafka 2.12 (the rdkafka crate's) never does. The coordinator's answer to
//! the subscription change (the revocation, at the old epoch) is queued for the callback;
//! the unsubscribe queues a revoke-all behind it. When the first revoke completes, its
//! follow-up assign (`rd_kafka_rebalance_op_incr(..., rejoin=false)`) overwrites the rejoin
//! flag the unsubscribe had set, so after the leave heartbeat the group stays in join state
//! "steady" without a subscription, and the subscription given after `unsubscribe()` waits
//! in `rkcg_next_subscription`, which only join state "init" applies: no heartbeat is sent
//! until the application calls `subscribe()` once more. The pause below only makes sure the
//! coordinator's answer has arrived before `unsubscribe()`, as it has with any broker that
//! answers quicker than the application's next call; sluice's answers are those of Kafka
//! 4.0-4.2 (tests/group_kip848_leave_mid_revocation_then_rejoin.rs). This is what makes
//! librdkafka's own 0045_subscribe_many_updates fail now and then (tests/README.md).
//! Run it with `--ignored` to check a newer librdkafka.

use crate::common;
use crate::group_support;

use std::time::Duration;

use rdkafka::consumer::Consumer;

use common::{create_topic, topic_name, Broker, CLIENT_TIMEOUT};
use group_support::{assigned_topic_partitions, every_partition, kip848_consumer, poll_until};

const PARTITIONS_COUNT: i32 = 2;

#[test]
#[ignore = "librdkafka 2.12 bug: stalls until the next subscribe(); see the module docs"]
fn group_kip848_unsubscribe_during_revocation_rejoins() {
    let broker = Broker::start();
    let group = topic_name("unsubscribe-mid-revocation");
    let topics: Vec<String> = (0..3).map(|i| format!("{group}-{i}")).collect();
    for topic in &topics {
        create_topic(broker.bootstrap(), topic, PARTITIONS_COUNT);
    }
    let (a, b, c) = (topics[0].as_str(), topics[1].as_str(), topics[2].as_str());
    let (consumer, _) = kip848_consumer(broker.bootstrap(), &group);
    consumer.subscribe(&[a, b]).expect("subscribe");
    poll_until(
        &[&consumer],
        &mut [Vec::new()],
        "the first assignment",
        CLIENT_TIMEOUT,
        |_| assigned_topic_partitions(&consumer) == every_partition(&[a, b], PARTITIONS_COUNT),
    );

    consumer
        .subscribe(&[b, c])
        .expect("change the subscription");
    // Not polled: the revocation of `a` waits for the rebalance callback.
    std::thread::sleep(Duration::from_secs(1));
    consumer.unsubscribe();
    consumer.subscribe(&[b, c]).expect("subscribe again");
    poll_until(
        &[&consumer],
        &mut [Vec::new()],
        "the partitions of the new subscription",
        CLIENT_TIMEOUT,
        |_| assigned_topic_partitions(&consumer) == every_partition(&[b, c], PARTITIONS_COUNT),
    );
}
