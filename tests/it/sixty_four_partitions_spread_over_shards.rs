//! A 64-partition topic created through CreateTopics is led by both shards (each shard is its own
//! broker id), and records produced to every partition are all read back from every partition.

use crate::common;

use std::collections::BTreeSet;

use common::{
    assert_partition_contents, assign, consume_count, consumer, create_topic, produce_all,
    producer, topic_leaders, topic_name, Broker, TestRecord, CLIENT_TIMEOUT,
};

const PARTITIONS_COUNT: i32 = 64;
const RECORDS_PER_PARTITION: usize = 40;

#[test]
fn sixty_four_partitions_spread_over_shards() {
    let broker = Broker::start();
    let topic = topic_name("wide");
    create_topic(broker.bootstrap(), &topic, PARTITIONS_COUNT);

    let consumer = consumer(broker.bootstrap(), &[]);
    let leaders = topic_leaders(&consumer, &topic).expect("metadata for the new topic");
    assert_eq!(
        leaders.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        (0..PARTITIONS_COUNT).collect::<Vec<_>>(),
        "Metadata lists every partition"
    );
    let announced: BTreeSet<i32> = broker
        .ready_line()
        .brokers
        .iter()
        .map(|(id, _)| *id)
        .collect();
    let leader_ids: BTreeSet<i32> = leaders.iter().map(|(_, leader)| *leader).collect();
    assert_eq!(
        leader_ids, announced,
        "partitions should be led by every shard, and only by announced brokers: {leaders:?}"
    );

    let records: Vec<TestRecord> = (0..PARTITIONS_COUNT as usize * RECORDS_PER_PARTITION)
        .map(|i| {
            let partition = (i % PARTITIONS_COUNT as usize) as i32;
            TestRecord::new(format!("k{i}"), format!("p{partition}-v{i}"))
                .partition(partition)
                .header("partition", Some(partition.to_string().as_bytes()))
        })
        .collect();
    let producer = producer(broker.bootstrap(), &[]);
    let deliveries = produce_all(&producer, &topic, &records);
    for delivery in &deliveries {
        assert_eq!(
            Some(delivery.partition),
            records[delivery.id].partition,
            "record {} acknowledged on the wrong partition",
            delivery.id
        );
    }

    let starts: Vec<(i32, i64)> = (0..PARTITIONS_COUNT).map(|p| (p, 0)).collect();
    assign(&consumer, &topic, &starts);
    let consumed = consume_count(&consumer, records.len(), CLIENT_TIMEOUT);
    let expected: Vec<(i32, i64, &TestRecord)> = deliveries
        .iter()
        .map(|d| (d.partition, d.offset, &records[d.id]))
        .collect();
    assert_partition_contents(&consumed, &expected);
}
