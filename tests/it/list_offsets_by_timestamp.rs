//! ListOffsets by timestamp (rdkafka `offsets_for_times`) returns the first offset whose
//! timestamp is at or after the target, including targets that fall inside a multi-record
//! batch; a target past the newest record returns the end (-1 / high watermark). Earliest and
//! latest agree with what was produced.

use crate::common;

use std::time::Duration;

use common::{create_topic, produce_all, producer, topic_name, Broker, TestRecord, CLIENT_TIMEOUT};
use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

const RECORDS_COUNT: i64 = 100;
const BATCH_RECORDS_COUNT: i64 = 10;
const STEP_MS: i64 = 1_000;

#[test]
fn list_offsets_by_timestamp() {
    let broker = Broker::start();
    let topic = topic_name("by-time");
    create_topic(broker.bootstrap(), &topic, 2);
    // Far enough in the past that no other record could match, recent enough for retention.
    let base_ms = 1_700_000_000_000;

    // Several records per batch (flush every BATCH_RECORDS_COUNT), timestamps strictly rising.
    let producer = producer(broker.bootstrap(), &[("linger.ms", "1000")]);
    for partition in 0..2 {
        for chunk in 0..RECORDS_COUNT / BATCH_RECORDS_COUNT {
            let records: Vec<TestRecord> = (0..BATCH_RECORDS_COUNT)
                .map(|i| {
                    let n = chunk * BATCH_RECORDS_COUNT + i;
                    TestRecord::new(format!("k{n}"), format!("v{n}"))
                        .partition(partition)
                        .timestamp_ms(base_ms + n * STEP_MS)
                })
                .collect();
            produce_all(&producer, &topic, &records);
        }
    }
    producer.flush(CLIENT_TIMEOUT).expect("flush");

    let consumer = common::consumer(broker.bootstrap(), &[]);
    for partition in 0..2 {
        let watermarks = consumer
            .fetch_watermarks(&topic, partition, CLIENT_TIMEOUT)
            .expect("earliest/latest");
        assert_eq!(
            watermarks,
            (0, RECORDS_COUNT),
            "partition {partition} watermarks"
        );

        // (target timestamp, expected offset); None = past the end.
        let cases: Vec<(i64, Option<i64>)> = vec![
            (base_ms - 1_000_000, Some(0)),
            (base_ms, Some(0)),
            (base_ms + 1, Some(1)),
            (base_ms + 5 * STEP_MS, Some(5)),
            (base_ms + 5 * STEP_MS + 500, Some(6)),
            (base_ms + 10 * STEP_MS, Some(10)),
            (base_ms + 37 * STEP_MS - 1, Some(37)),
            (base_ms + 99 * STEP_MS, Some(99)),
            (base_ms + 99 * STEP_MS + 1, None),
        ];
        for (target_ms, expected) in cases {
            let mut query = TopicPartitionList::new();
            query
                .add_partition_offset(&topic, partition, Offset::Offset(target_ms))
                .expect("add partition");
            let answer = consumer
                .offsets_for_times(query, Duration::from_secs(30))
                .expect("ListOffsets by timestamp");
            let element = answer
                .find_partition(&topic, partition)
                .expect("partition in ListOffsets answer");
            element
                .error()
                .unwrap_or_else(|e| panic!("partition {partition} ts {target_ms}: {e}"));
            let got = element.offset();
            let ok = match expected {
                Some(offset) => got == Offset::Offset(offset),
                // Kafka answers -1 (librdkafka: End); accept the high watermark too.
                None => got == Offset::End || got == Offset::Offset(RECORDS_COUNT),
            };
            assert!(
                ok,
                "partition {partition}: offsets_for_times({target_ms} = base+{}ms) = {got:?}, expected {expected:?}",
                target_ms - base_ms
            );
        }
    }
}
