//! `sluice topic delete-records NAME --partition P --before OFFSET` moves the partition's log
//! start offset (-1: to the high watermark) and says where it now starts; an offset past the
//! high watermark is refused with Kafka's error.

use crate::common;

use std::process::Output;

use rdkafka::consumer::Consumer;

use common::cli::{sluice, stdout};
use common::{create_topic, produce_all, producer, topic_name, Broker, TestRecord, CLIENT_TIMEOUT};

fn delete_records(topic: &str, before: &str, bootstrap: &str) -> Output {
    let args = [
        "topic",
        "delete-records",
        topic,
        "--partition",
        "0",
        "--before",
        before,
    ];
    sluice(&args, bootstrap)
}

#[test]
fn topic_cli_deletes_records_below_an_offset() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("cli-delete-records");
    create_topic(&bootstrap, &topic, 1);
    let records: Vec<TestRecord> = (0..10)
        .map(|i| TestRecord::new(format!("k{i}"), format!("v{i}")).partition(0))
        .collect();
    produce_all(&producer(&bootstrap, &[]), &topic, &records);

    let moved = stdout(&delete_records(&topic, "4", &bootstrap));
    assert_eq!(
        moved.trim(),
        format!("Partition 0 of topic {topic} now starts at offset 4.")
    );
    let consumer = common::consumer(&bootstrap, &[]);
    assert_eq!(
        consumer
            .fetch_watermarks(&topic, 0, CLIENT_TIMEOUT)
            .expect("watermarks"),
        (4, 10)
    );

    let past_end = delete_records(&topic, "11", &bootstrap);
    assert!(
        !past_end.status.success(),
        "an offset past the end was accepted"
    );
    let error = String::from_utf8_lossy(&past_end.stderr);
    assert!(error.contains("OFFSET_OUT_OF_RANGE"), "{error}");

    let emptied = stdout(&delete_records(&topic, "-1", &bootstrap));
    assert!(emptied.contains("now starts at offset 10."), "{emptied}");
}
