//! A compacted topic reads every produced record to check its key, decompressing the batch:
//! a small zstd batch that inflates past `DECOMPRESSED_BATCH_BYTES_MAX` is refused with
//! INVALID_RECORD before the broker allocates it, and the broker keeps serving.

use crate::common;
use crate::compaction_support;

use kafka_protocol::records::Compression;
use sluice::client::{Cluster, ConnectionConfig};
use sluice::constants::DECOMPRESSED_BATCH_BYTES_MAX;
use sluice::log::testing::keyed_batch;

use common::{create_topic_with_configs, topic_name, Broker};
use compaction_support::produce_v9;

const INVALID_RECORD: i16 = 87;

#[test]
fn compacted_topic_refuses_decompression_bombs() {
    let mut broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("compacted-bomb");
    create_topic_with_configs(&bootstrap, &topic, 1, &[("cleanup.policy", "compact")]);
    let mut cluster = Cluster::connect(&bootstrap, ConnectionConfig::default()).expect("connect");
    let huge = "0".repeat(DECOMPRESSED_BATCH_BYTES_MAX + 1);
    let bomb = keyed_batch(Compression::Zstd, &[(Some("k"), Some(&huge))], 0);
    assert!(bomb.len() < 64 * 1024, "{} bytes on the wire", bomb.len());
    let answer = produce_v9(&mut cluster, &topic, bomb);
    assert_eq!(answer.error_code, INVALID_RECORD, "{answer:?}");
    let fine = keyed_batch(Compression::Zstd, &[(Some("k"), Some("v"))], 0);
    let answer = produce_v9(&mut cluster, &topic, fine);
    assert_eq!(
        (answer.error_code, answer.base_offset),
        (0, 0),
        "{answer:?}"
    );
    broker.assert_alive();
}
