//! `compression.type=uncompressed` stores a gzip batch decompressed, and checks
//! `max.message.bytes` on the batch it would store (Kafka re-validates the size after
//! recompression): a small gzip batch of very compressible records that inflates past the
//! limit gets MESSAGE_TOO_LARGE.

use crate::common;
use crate::compression_support;

use kafka_protocol::records::Compression;

use common::{create_topic_with_configs, topic_name, Broker};
use compression_support::{batch, leader, produce, stored};

const UNCOMPRESSED: i16 = 0;
const MESSAGE_TOO_LARGE: i16 = 10;
const MAX_MESSAGE_BYTES: usize = 4096;

#[test]
fn compression_type_uncompressed_topic_inflates_gzip_batches() {
    let broker = Broker::start();
    let topic = topic_name("uncompressed-topic");
    create_topic_with_configs(
        broker.bootstrap(),
        &topic,
        1,
        &[
            ("compression.type", "uncompressed"),
            ("max.message.bytes", &MAX_MESSAGE_BYTES.to_string()),
        ],
    );
    let mut stream = leader(&broker, &topic);
    let small = batch(Compression::Gzip, &[b"hello", b"world"], -1);
    assert_eq!(produce(&mut stream, &topic, &small), (0, 0));

    let zeros = vec![0u8; 2 * MAX_MESSAGE_BYTES];
    let inflating = batch(Compression::Gzip, &[&zeros], -1);
    assert!(
        inflating.len() < MAX_MESSAGE_BYTES,
        "sent size is within the limit"
    );
    assert_eq!(
        produce(&mut stream, &topic, &inflating).0,
        MESSAGE_TOO_LARGE
    );

    let batches = stored(&mut stream, &topic);
    assert_eq!(batches.len(), 1, "{batches:?}");
    assert_eq!(batches[0].compression, UNCOMPRESSED);
    assert_eq!(batches[0].records_count, 2);
}
