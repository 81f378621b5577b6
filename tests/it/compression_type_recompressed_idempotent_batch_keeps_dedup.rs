//! An idempotent producer's batch recompressed for a `compression.type=lz4` topic keeps its
//! producer id, epoch and base sequence, so a retry of it is still recognised as a
//! duplicate (same offset, nothing appended) and the next sequence is accepted.

use crate::common;
use crate::compression_support;

use kafka_protocol::records::Compression;

use common::{create_topic_with_configs, topic_name, Broker};
use compression_support::{batch, leader, produce, stored};

const LZ4: i16 = 3;
const PRODUCER_ID: i64 = 7_000;

#[test]
fn compression_type_recompressed_idempotent_batch_keeps_dedup() {
    let broker = Broker::start();
    let topic = topic_name("lz4-idempotent");
    create_topic_with_configs(
        broker.bootstrap(),
        &topic,
        1,
        &[("compression.type", "lz4")],
    );
    let mut stream = leader(&broker, &topic);
    let first = batch(Compression::None, &[b"a", b"b", b"c"], PRODUCER_ID);
    assert_eq!(produce(&mut stream, &topic, &first), (0, 0));
    // The retry: the same bytes again, acknowledged with the original offset.
    assert_eq!(produce(&mut stream, &topic, &first), (0, 0));

    let batches = stored(&mut stream, &topic);
    assert_eq!(batches.len(), 1, "the retry appended: {batches:?}");
    let stored_batch = batches[0];
    assert_eq!(stored_batch.compression, LZ4);
    assert_eq!(
        (
            stored_batch.producer_id,
            stored_batch.producer_epoch,
            stored_batch.base_sequence,
            stored_batch.records_count
        ),
        (PRODUCER_ID, 0, 0, 3)
    );
}
