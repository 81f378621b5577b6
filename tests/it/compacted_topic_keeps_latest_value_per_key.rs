//! A `cleanup.policy=compact` topic: after its segments roll, the log cleaner leaves only the
//! newest record of each key (tombstones included, within `delete.retention.ms`), at the
//! offsets they were acknowledged at, and librdkafka reads the result across the gaps.

use crate::common;
use crate::compaction_support;

use std::time::Duration;

use common::{produce_all, producer, topic_name, wait_until, Broker, TestRecord};
use compaction_support::{
    acknowledged, check_against_acknowledged, create_topic_with_configs, read_all,
};

const KEYS: usize = 40;
const ROUNDS: usize = 30;
/// Keys whose last write is a tombstone.
const DELETED_KEYS: usize = 5;

#[test]
fn compacted_topic_keeps_latest_value_per_key() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("compacted");
    // Small segments so that the rounds below fill several sealed (cleanable) ones.
    create_topic_with_configs(
        &bootstrap,
        &topic,
        &[("cleanup.policy", "compact"), ("segment.bytes", "65536")],
    );
    let mut records = Vec::new();
    for round in 0..ROUNDS {
        for key in 0..KEYS {
            let mut record = TestRecord::new(
                format!("key-{key}"),
                format!("key {key} round {round} {}", "x".repeat(300)),
            );
            if round == ROUNDS - 1 && key < DELETED_KEYS {
                record.value = None;
            }
            records.push(record);
        }
    }
    // Unique keys after the rounds push every round into sealed segments: the active
    // segment, never cleaned, holds only these.
    for filler in 0..300 {
        records.push(TestRecord::new(format!("filler-{filler}"), "y".repeat(300)));
    }
    // Small batches: segments roll only between batches.
    let producer = producer(&bootstrap, &[("batch.num.messages", "20")]);
    let deliveries = produce_all(&producer, &topic, &records);
    let acked = acknowledged(&records, &deliveries);

    let mut superseded = usize::MAX;
    wait_until(
        "the cleaner to leave one record per key",
        Duration::from_secs(60),
        || {
            let consumed = read_all(&bootstrap, &topic);
            superseded = check_against_acknowledged(&consumed, &acked);
            superseded == 0
        },
    );
    let consumed = read_all(&bootstrap, &topic);
    let tombstones = consumed.iter().filter(|m| m.value.is_none()).count();
    assert_eq!(
        tombstones, DELETED_KEYS,
        "tombstones are kept within delete.retention.ms"
    );
    assert_eq!(consumed.len(), KEYS + 300, "one record per key");
}
