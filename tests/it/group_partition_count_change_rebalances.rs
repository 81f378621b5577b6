//! Growing a subscribed topic's partition count rebalances the group: with the classic
//! protocol the leader notices in metadata and rejoins; with KIP-848 the coordinator notices
//! and re-targets the assignment. Either way the new partitions get consumed.

use crate::common;
use crate::group_support;

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

use common::{create_topic, topic_name, Broker, CLIENT_TIMEOUT};
use group_support::{assigned, group_consumer, poll_until};

fn grow(bootstrap: &str, topic: &str, partitions_count: usize) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let results = futures_lite::future::block_on(admin.create_partitions(
        [&NewPartitions::new(topic, partitions_count)],
        &AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT)),
    ))
    .expect("CreatePartitions");
    for result in results {
        result.expect("partitions created");
    }
}

fn follows_growth(protocol: &str) {
    let broker = Broker::start();
    let topic = topic_name("growing");
    let group = topic_name(&format!("growers-{protocol}"));
    create_topic(broker.bootstrap(), &topic, 2);
    let (consumer, _) = if protocol == "consumer" {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", broker.bootstrap())
            .set("group.id", &group)
            .set("group.protocol", "consumer")
            .set("enable.auto.commit", "false")
            .set("topic.metadata.refresh.interval.ms", "1000");
        let counter = group_support::RebalanceCounter::default();
        let consumer: group_support::GroupConsumer = config
            .create_with_context(counter.clone())
            .expect("consumer");
        rdkafka::consumer::Consumer::subscribe(&consumer, &[&topic]).expect("subscribe");
        (consumer, counter)
    } else {
        group_consumer(broker.bootstrap(), &group, &topic, &[])
    };
    let mut received = vec![Vec::new()];
    poll_until(
        &[&consumer],
        &mut received,
        "two partitions",
        CLIENT_TIMEOUT,
        |_| assigned(&consumer).len() == 2,
    );
    grow(broker.bootstrap(), &topic, 4);
    poll_until(
        &[&consumer],
        &mut received,
        "four partitions",
        CLIENT_TIMEOUT,
        |_| assigned(&consumer).len() == 4,
    );
}

#[test]
fn group_partition_count_change_rebalances_classic() {
    follows_growth("classic");
}

#[test]
fn group_partition_count_change_rebalances_consumer_protocol() {
    follows_growth("consumer");
}
