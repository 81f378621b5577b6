//! An SSL listener (rustls) serves librdkafka through the rdkafka crate, kcat and python
//! confluent-kafka: each produces and reads back over TLS, verifying the broker's
//! certificate against the test CA; Metadata points them at the SSL ports.

use crate::acl_support::python;
use crate::common;
use crate::tls_support::{borrowed, ssl_settings, tls_broker_partitions, tls_port, Pki};

use std::time::Duration;

use common::{assign, consume_count, consumer, produce_all, producer, topic_name, TestRecord};

const PY_ROUND_TRIP: &str = r#"
import sys
from confluent_kafka import Producer, Consumer, TopicPartition
bootstrap, ca, topic = sys.argv[1], sys.argv[2], sys.argv[3]
tls = {"bootstrap.servers": bootstrap, "security.protocol": "SSL", "ssl.ca.location": ca}
p = Producer(dict(tls))
for i in range(5):
    p.produce(topic, value=b"py-%d" % i, partition=0)
assert p.flush(30) == 0
c = Consumer(dict(tls, **{"group.id": "py-tls", "enable.auto.commit": False}))
c.assign([TopicPartition(topic, 0, 0)])
seen = []
while len(seen) < 5:
    m = c.poll(30)
    assert m is not None, "timed out"
    assert m.error() is None, m.error()
    seen.append(m.value().decode())
print(",".join(seen))
"#;

#[test]
fn ssl_listener_serves_rdkafka_kcat_and_confluent_kafka() {
    let pki = Pki::new();
    let port = tls_port();
    let broker = tls_broker_partitions(&pki, "SSL", port, &[], 2);
    let bootstrap = broker.bootstrap().to_owned();
    assert_eq!(bootstrap, format!("127.0.0.1:{port}"));
    let settings = ssl_settings(&pki);

    // rdkafka: two partitions, on both shards, so both shards' SSL ports are used.
    let topic = topic_name("tls-rdkafka");
    let records: Vec<TestRecord> = (0..50)
        .map(|i| TestRecord::new(format!("k{i}"), format!("tls value {i}")).partition(i % 2))
        .collect();
    let deliveries = produce_all(
        &producer(&bootstrap, &borrowed(&settings)),
        &topic,
        &records,
    );
    assert!(
        deliveries.iter().all(|d| d.error.is_none()),
        "{deliveries:?}"
    );
    let reader = consumer(&bootstrap, &borrowed(&settings));
    assign(&reader, &topic, &[(0, 0), (1, 0)]);
    let consumed = consume_count(&reader, records.len(), common::CLIENT_TIMEOUT);
    assert_eq!(consumed.len(), records.len());

    // kcat.
    let kcat_topic = topic_name("tls-kcat");
    let ca = format!("ssl.ca.location={}", pki.ca().display());
    let input = common::write_lines((0..3).map(|i| format!("kcat-{i}")));
    let produced = common::run_kcat(
        &[
            "-P",
            "-b",
            &bootstrap,
            "-t",
            &kcat_topic,
            "-p",
            "0",
            "-X",
            "security.protocol=SSL",
            "-X",
            &ca,
        ],
        Some(input.path()),
        Duration::from_secs(60),
    );
    assert!(
        produced.status.success(),
        "kcat produce: {}",
        produced.stderr
    );
    let read = common::run_kcat(
        &[
            "-C",
            "-b",
            &bootstrap,
            "-t",
            &kcat_topic,
            "-p",
            "0",
            "-o",
            "beginning",
            "-c",
            "3",
            "-e",
            "-X",
            "security.protocol=SSL",
            "-X",
            &ca,
        ],
        None,
        Duration::from_secs(60),
    );
    assert!(read.status.success(), "kcat consume: {}", read.stderr);
    let lines = String::from_utf8_lossy(&read.stdout).into_owned();
    assert_eq!(
        lines.lines().collect::<Vec<_>>(),
        ["kcat-0", "kcat-1", "kcat-2"]
    );

    // python confluent-kafka.
    let py_topic = topic_name("tls-python");
    let ca_path = pki.ca().display().to_string();
    let seen = python(PY_ROUND_TRIP, &[&bootstrap, &ca_path, &py_topic]);
    assert_eq!(seen, "py-0,py-1,py-2,py-3,py-4");
}
