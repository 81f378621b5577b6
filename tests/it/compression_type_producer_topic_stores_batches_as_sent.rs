//! `compression.type=producer` (the default) stores each batch in the codec it was sent in;
//! a fixed codec only rewrites batches in another codec (here gzip stays gzip on a gzip
//! topic, while snappy becomes gzip).

use crate::common;
use crate::compression_support;

use kafka_protocol::records::Compression;

use common::{create_topic, create_topic_with_configs, topic_name, Broker};
use compression_support::{batch, leader, produce, stored};

const GZIP: i16 = 1;
const SNAPPY: i16 = 2;

#[test]
fn compression_type_producer_topic_stores_batches_as_sent() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    let as_sent = topic_name("producer-codec");
    create_topic(&bootstrap, &as_sent, 1);
    let gzip_topic = topic_name("gzip-topic");
    create_topic_with_configs(&bootstrap, &gzip_topic, 1, &[("compression.type", "gzip")]);
    let gzip = batch(Compression::Gzip, &[b"one", b"two"], -1);
    let snappy = batch(Compression::Snappy, &[b"three"], -1);

    for (topic, expected) in [(&as_sent, [GZIP, SNAPPY]), (&gzip_topic, [GZIP, GZIP])] {
        let mut stream = leader(&broker, topic);
        assert_eq!(produce(&mut stream, topic, &gzip), (0, 0));
        assert_eq!(produce(&mut stream, topic, &snappy), (0, 2));
        let codecs: Vec<i16> = stored(&mut stream, topic)
            .iter()
            .map(|b| b.compression)
            .collect();
        assert_eq!(codecs, expected, "{topic}");
    }
}
