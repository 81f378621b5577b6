//! Helpers for the compacted-topic tests: create a topic with configs, read a partition to
//! its end, and the records a compacted log must keep.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::error::KafkaError;
use sluice::client::Cluster;

use crate::common::{self, Consumed, Delivery, TestRecord, CLIENT_TIMEOUT};

/// What was acknowledged at each offset: (key, value).
pub type Acknowledged = BTreeMap<i64, (Option<Vec<u8>>, Option<Vec<u8>>)>;

/// Creates a one-partition topic with `configs`.
pub fn create_topic_with_configs(bootstrap: &str, topic: &str, configs: &[(&str, &str)]) {
    common::create_topic_with_configs(bootstrap, topic, 1, configs);
}

/// Every record of partition 0 from offset 0 to the high watermark, as librdkafka
/// delivers them (it skips offset gaps and empty batches itself).
pub fn read_all(bootstrap: &str, topic: &str) -> Vec<Consumed> {
    let consumer = common::consumer(bootstrap, &[("enable.partition.eof", "true")]);
    common::assign(&consumer, topic, &[(0, 0)]);
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut out = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "reading {topic} to its end timed out"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => out.push(Consumed::from_message(&message)),
            Some(Err(KafkaError::PartitionEOF(_))) => return out,
            Some(Err(error)) => panic!("consuming {topic}: {error}"),
            None => {}
        }
    }
}

/// What was acknowledged at each offset: (key, value).
pub fn acknowledged(records: &[TestRecord], deliveries: &[Delivery]) -> Acknowledged {
    deliveries
        .iter()
        .map(|d| {
            assert!(d.error.is_none(), "delivery {} failed: {:?}", d.id, d.error);
            let record = &records[d.id];
            (d.offset, (record.key.clone(), record.value.clone()))
        })
        .collect()
}

/// The newest acknowledged offset of every key.
pub fn newest_per_key(acked: &Acknowledged) -> BTreeMap<Vec<u8>, i64> {
    let mut newest = BTreeMap::new();
    for (offset, (key, _)) in acked {
        if let Some(key) = key {
            newest.insert(key.clone(), *offset);
        }
    }
    newest
}

/// Checks what a consumer read against what was acknowledged: offsets increase, every
/// record is the one acknowledged at its offset, and every key's newest record is there.
/// Returns how many records of a key are older than its newest (0 once fully compacted).
pub fn check_against_acknowledged(consumed: &[Consumed], acked: &Acknowledged) -> usize {
    let newest = newest_per_key(acked);
    let mut previous = -1;
    let mut superseded = 0;
    let mut seen_newest = 0;
    for message in consumed {
        assert!(
            message.offset > previous,
            "offset {} after {previous}",
            message.offset
        );
        previous = message.offset;
        let Some((key, value)) = acked.get(&message.offset) else {
            panic!("offset {} was never acknowledged", message.offset);
        };
        assert_eq!(
            (&message.key, &message.value),
            (key, value),
            "offset {}: record differs from the acknowledged one",
            message.offset
        );
        let key = key.as_ref().expect("every test record has a key");
        if newest[key] == message.offset {
            seen_newest += 1;
        } else {
            superseded += 1;
        }
    }
    assert_eq!(
        seen_newest,
        newest.len(),
        "the newest record of some key is missing"
    );
    superseded
}

/// Sends `records` to partition 0 of `topic` in a raw Produce v9 (acks=all) over the
/// leader's connection and returns the partition's answer.
pub fn produce_v9(cluster: &mut Cluster, topic: &str, records: Bytes) -> PartitionProduceResponse {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let (_, leader) = cluster.leader_connection(topic, 0).expect("leader");
    let mut response = leader
        .send_version(&request, 9, Duration::ZERO)
        .expect("Produce v9");
    response.responses.remove(0).partition_responses.remove(0)
}
