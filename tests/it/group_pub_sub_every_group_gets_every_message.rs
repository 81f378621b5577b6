//! Pub/sub: two groups subscribed to the same topic each receive every message.

use crate::common;
use crate::group_support;

use std::time::Duration;

use common::{create_topic, produce_all, producer, topic_name, Broker, TestRecord, CLIENT_TIMEOUT};
use group_support::{drain, exactly_once, group_consumer, poll_until};

const PARTITIONS_COUNT: i32 = 4;
const RECORDS_COUNT: usize = 400;

#[test]
fn group_pub_sub_every_group_gets_every_message() {
    let broker = Broker::start();
    let topic = topic_name("events");
    create_topic(broker.bootstrap(), &topic, PARTITIONS_COUNT);
    let records: Vec<TestRecord> = (0..RECORDS_COUNT)
        .map(|i| {
            TestRecord::new(format!("k{i}"), format!("v{i}"))
                .partition((i % PARTITIONS_COUNT as usize) as i32)
        })
        .collect();
    produce_all(&producer(broker.bootstrap(), &[]), &topic, &records);

    // Two groups of two members: different group ids hash to different coordinators.
    let groups = [topic_name("billing"), topic_name("audit")];
    let members: Vec<_> = groups
        .iter()
        .flat_map(|g| (0..2).map(move |_| g.clone()))
        .map(|g| group_consumer(broker.bootstrap(), &g, &topic, &[]))
        .collect();
    let consumers: Vec<_> = members.iter().map(|(c, _)| c).collect();
    let mut received = vec![Vec::new(); consumers.len()];
    poll_until(
        &consumers,
        &mut received,
        "both groups to read everything",
        CLIENT_TIMEOUT,
        |r| r[0].len() + r[1].len() >= RECORDS_COUNT && r[2].len() + r[3].len() >= RECORDS_COUNT,
    );
    drain(&consumers, &mut received, Duration::from_millis(500));

    for (name, pair) in groups.iter().zip(received.chunks(2)) {
        let seen = exactly_once(pair);
        assert_eq!(
            seen.len(),
            RECORDS_COUNT,
            "group {name} received every message once"
        );
    }
}
