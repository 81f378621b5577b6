//! A topic with `compression.type=zstd` stores what an uncompressing producer sends as zstd
//! batches (Kafka's broker-side recompression), holding the same records, also after a
//! restart.

use crate::common;
use crate::compression_support;

use common::{create_topic_with_configs, produce_all, producer, topic_name, Broker, TestRecord};
use compression_support::{leader, stored, stored_records};

const ZSTD: i16 = 4;

#[test]
fn compression_type_zstd_topic_recompresses_uncompressed_batches() {
    let mut broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("zstd-topic");
    create_topic_with_configs(&bootstrap, &topic, 1, &[("compression.type", "zstd")]);
    let records: Vec<TestRecord> = (0..20)
        .map(|i| {
            TestRecord::new(format!("key-{i}"), format!("value-{i}").repeat(20))
                .partition(0)
                .header("n", Some(format!("{i}").as_bytes()))
                .timestamp_ms(1_700_000_000_000 + i)
        })
        .collect();
    let producer = producer(&bootstrap, &[("compression.codec", "none")]);
    produce_all(&producer, &topic, &records);

    let batches = stored(&mut leader(&broker, &topic), &topic);
    assert!(!batches.is_empty(), "nothing stored");
    for batch in &batches {
        assert_eq!(batch.compression, ZSTD, "stored batch {batch:?}");
    }
    let stored_count: i32 = batches.iter().map(|b| b.records_count).sum();
    assert_eq!(stored_count, 20);

    // Read back raw: the test's librdkafka is built without zstd.
    let stored = stored_records(&mut leader(&broker, &topic), &topic);
    let read: Vec<(i64, Vec<u8>, Vec<u8>, i64)> = stored
        .iter()
        .map(|r| {
            let bytes = |b: &Option<bytes::Bytes>| b.as_deref().unwrap_or_default().to_vec();
            (r.offset, bytes(&r.key), bytes(&r.value), r.timestamp)
        })
        .collect();
    let sent: Vec<(i64, Vec<u8>, Vec<u8>, i64)> = records
        .iter()
        .zip(0..)
        .map(|(r, i)| {
            let timestamp = r.timestamp_ms.unwrap_or_default();
            let value = r.value.clone().unwrap_or_default();
            (i, r.key.clone().unwrap_or_default(), value, timestamp)
        })
        .collect();
    assert_eq!(read, sent);
    for (record, i) in stored.iter().zip(0..) {
        let headers: Vec<(&str, Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_deref()))
            .collect();
        assert_eq!(headers, [("n", Some(format!("{i}").as_bytes()))]);
    }
    // From the segment file: the rewritten batches were written (and recovered) whole.
    broker.stop_graceful();
    broker.restart();
    assert_eq!(stored_records(&mut leader(&broker, &topic), &topic), stored);
}
