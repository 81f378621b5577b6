//! A compacted topic refuses records without a key as Kafka does: INVALID_RECORD for the
//! partition, one KIP-467 record error per keyless record (Produce v8+), nothing stored;
//! and librdkafka sees the refusal in its delivery report.

use crate::common;
use crate::compaction_support;

use kafka_protocol::records::Compression;
use sluice::client::{Cluster, ConnectionConfig};

use compaction_support::produce_v9;
use sluice::log::testing::keyed_batch;

use common::{
    create_topic_with_configs, producer, topic_name, try_produce_all, Broker, TestRecord,
};

const INVALID_RECORD: i16 = 87;

#[test]
fn compacted_topic_refuses_keyless_records() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("compacted-keys");
    create_topic_with_configs(&bootstrap, &topic, 1, &[("cleanup.policy", "compact")]);
    let mut cluster = Cluster::connect(&bootstrap, ConnectionConfig::default()).expect("connect");
    // Compressed too: the broker must look inside.
    for compression in [Compression::None, Compression::Zstd] {
        let records = [
            (Some("a"), Some("1")),
            (None, Some("2")),
            (Some("b"), Some("3")),
            (None, Some("4")),
        ];
        let answer = produce_v9(
            &mut cluster,
            &topic,
            keyed_batch(compression, &records, 1_000),
        );
        assert_eq!(
            answer.error_code, INVALID_RECORD,
            "{compression:?}: {answer:?}"
        );
        let indexes: Vec<i32> = answer.record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(
            indexes,
            vec![1, 3],
            "{compression:?}: one error per keyless record"
        );
        let message = answer.record_errors[0]
            .batch_index_error_message
            .as_ref()
            .expect("a record error message");
        assert!(
            message.contains("Compacted topic cannot accept message without key"),
            "{message}"
        );
        assert!(
            answer.error_message.is_some(),
            "{compression:?}: partition message"
        );
    }
    // Keyed records go in, and nothing of the refused batches was stored.
    let keyed = [(Some("a"), Some("1")), (Some("b"), Some("2"))];
    let answer = produce_v9(
        &mut cluster,
        &topic,
        keyed_batch(Compression::None, &keyed, 1_000),
    );
    assert_eq!(
        (answer.error_code, answer.base_offset),
        (0, 0),
        "{answer:?}"
    );

    let producer = producer(&bootstrap, &[("retries", "0")]);
    let keyless = TestRecord {
        key: None,
        ..TestRecord::new("unused", "no key")
    };
    let deliveries = try_produce_all(&producer, &topic, &[keyless]);
    let error = deliveries[0].error.as_deref().unwrap_or("delivered");
    assert!(
        error.contains("InvalidRecord") || error.contains("INVALID_RECORD"),
        "{error}"
    );
}
