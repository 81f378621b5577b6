//! Record batch building and Produce.
//!
//! Records become one v2 record batch per request (offsets 0..n relative, the broker assigns
//! real offsets), optionally compressed. Keyed records are partitioned like Kafka's default
//! partitioner (murmur2 of the key), so keys land where Java and librdkafka clients put them.
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

use super::cluster::Cluster;
use super::error::{check_error_code, ClientError};
use crate::protocol::record_batch;

/// How many times a produce is retried after a retriable error (leader moved, topic being
/// created, connection dropped). Retries can duplicate records, as in any non-idempotent client.
const PRODUCE_ATTEMPTS_MAX: u32 = 5;
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// How many acknowledgements a produce waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// Fire and forget: the broker sends no response.
    None,
    /// Acknowledged once the leader appended.
    Leader,
    /// Acknowledged once durable on all in-sync replicas.
    All,
}

impl Acks {
    pub fn code(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Producer settings.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub acks: Acks,
    pub compression: Compression,
    /// How long the broker may wait for acks before answering REQUEST_TIMED_OUT.
    pub timeout_ms: i32,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            acks: Acks::All,
            compression: Compression::None,
            timeout_ms: 30_000,
        }
    }
}

pub use crate::protocol::record_batch::ProducerRecord;

/// Encodes `records` as one v2 record batch with relative offsets 0..n.
pub fn encode_batch(
    records: &[ProducerRecord],
    compression: Compression,
    now_ms: i64,
) -> Result<Bytes, ClientError> {
    record_batch::encode(records, compression, now_ms)
        .map_err(|e| ClientError::RecordEncode { source: e.into() })
}

/// Kafka's murmur2 hash (`org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        if tail.len() >= 3 {
            h ^= u32::from(tail[2]) << 16;
        }
        if tail.len() >= 2 {
            h ^= u32::from(tail[1]) << 8;
        }
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for `key`.
pub fn partition_for_key(key: &[u8], partition_count: usize) -> i32 {
    let count = partition_count.max(1) as u32;
    ((murmur2(key) as u32 & 0x7fff_ffff) % count) as i32
}

/// Sends record batches to partition leaders.
#[derive(Debug)]
pub struct Producer {
    cluster: Cluster,
    config: ProducerConfig,
    /// Partition for the next batch of unkeyed records (round robin per batch).
    unkeyed_next: usize,
}

impl Producer {
    pub fn new(mut cluster: Cluster, config: ProducerConfig) -> Self {
        cluster.set_allow_auto_topic_creation(true);
        Self {
            cluster,
            config,
            unkeyed_next: 0,
        }
    }

    pub fn cluster(&mut self) -> &mut Cluster {
        &mut self.cluster
    }

    /// Number of partitions of `topic` (auto-creating it if the broker allows).
    pub fn partition_count(&mut self, topic: &str) -> Result<usize, ClientError> {
        with_retries(&mut self.cluster, topic, |cluster| {
            Ok(cluster.topic(topic)?.partitions.len())
        })
    }

    /// The partition for a record: murmur2 of the key, or round robin per batch when unkeyed.
    pub fn choose_partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
    ) -> Result<i32, ClientError> {
        let count = self.partition_count(topic)?;
        if count == 0 {
            return Err(ClientError::UnknownTopic {
                topic: topic.to_owned(),
            });
        }
        Ok(match key {
            Some(key) => partition_for_key(key, count),
            None => self.next_unkeyed_partition(count),
        })
    }

    /// The next partition, round robin, for a batch of unkeyed records.
    pub fn next_unkeyed_partition(&mut self, partition_count: usize) -> i32 {
        let partition = self.unkeyed_next % partition_count.max(1);
        self.unkeyed_next = self.unkeyed_next.wrapping_add(1);
        partition as i32
    }

    /// Produces `records` as one batch to `topic`-`partition`. Returns the base offset the
    /// broker assigned, or `None` with acks=0.
    pub fn send(
        &mut self,
        topic: &str,
        partition: i32,
        records: &[ProducerRecord],
    ) -> Result<Option<i64>, ClientError> {
        let batch = encode_batch(records, self.config.compression, crate::io::clock::now_ms())?;
        let config = self.config.clone();
        with_retries(&mut self.cluster, topic, |cluster| {
            send_once(cluster, &config, topic, partition, batch.clone())
        })
    }
}

/// Runs `op`, refreshing metadata and retrying after retriable errors.
fn with_retries<T>(
    cluster: &mut Cluster,
    topic: &str,
    mut op: impl FnMut(&mut Cluster) -> Result<T, ClientError>,
) -> Result<T, ClientError> {
    let mut attempt = 1;
    loop {
        match op(cluster) {
            Ok(value) => return Ok(value),
            Err(e) if e.is_retriable() && attempt < PRODUCE_ATTEMPTS_MAX => {
                attempt += 1;
                cluster.invalidate_topic(topic);
                if let ClientError::Io { addr, .. } | ClientError::Timeout { addr } = &e {
                    let ids: Vec<i32> = cluster
                        .brokers()
                        .filter(|b| &b.addr() == addr)
                        .map(|b| b.node_id)
                        .collect();
                    for id in ids {
                        cluster.forget_connection(id);
                    }
                }
                std::thread::sleep(RETRY_BACKOFF);
            }
            Err(e) => return Err(e),
        }
    }
}

fn send_once(
    cluster: &mut Cluster,
    config: &ProducerConfig,
    topic: &str,
    partition: i32,
    batch: Bytes,
) -> Result<Option<i64>, ClientError> {
    let topic_id = cluster.topic(topic)?.topic_id;
    let (_leader, connection) = cluster.leader_connection(topic, partition)?;
    let mut version = connection.version::<ProduceRequest>()?;
    // v13 addresses topics by id only; without an id from Metadata, stay on v12.
    if version >= 13 && topic_id.is_nil() {
        version = 12;
    }
    let mut topic_data =
        TopicProduceData::default().with_partition_data(vec![PartitionProduceData::default()
            .with_index(partition)
            .with_records(Some(batch))]);
    if version >= 13 {
        topic_data.topic_id = topic_id;
    } else {
        topic_data.name = TopicName(StrBytes::from_string(topic.to_owned()));
    }
    let request = ProduceRequest::default()
        .with_acks(config.acks.code())
        .with_timeout_ms(config.timeout_ms)
        .with_topic_data(vec![topic_data]);
    if config.acks == Acks::None {
        connection.send_without_response(&request, version)?;
        return Ok(None);
    }
    let wait = Duration::from_millis(u64::try_from(config.timeout_ms).unwrap_or(0));
    let response = connection.send_version(&request, version, wait)?;
    let addr = connection.addr().to_owned();
    let partition_response = response
        .responses
        .iter()
        .filter(|t| {
            if version >= 13 {
                t.topic_id == topic_id
            } else {
                t.name.0.as_str() == topic
            }
        })
        .flat_map(|t| t.partition_responses.iter())
        .find(|p| p.index == partition)
        .ok_or_else(|| ClientError::MissingInResponse {
            addr,
            what: format!("a Produce result for {topic}-{partition}"),
        })?;
    if partition_response.error_code
        == kafka_protocol::error::ResponseError::UnknownTopicOrPartition.code()
    {
        // Retriable: the topic may be in the middle of auto-creation.
        return Err(ClientError::Broker {
            context: format!("produce to {topic}-{partition}"),
            error: kafka_protocol::error::ResponseError::UnknownTopicOrPartition,
            message: None,
        });
    }
    check_error_code(
        partition_response.error_code,
        partition_response.error_message.as_deref(),
        || format!("produce to {topic}-{partition}"),
    )?;
    Ok(Some(partition_response.base_offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn murmur2_matches_kafka() {
        // Vectors from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58_897_971
        );
        assert_eq!(murmur2(b"abc"), 479_470_107);
    }

    fn sample_records() -> Vec<ProducerRecord> {
        (0..5)
            .map(|i| ProducerRecord {
                key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("value {i}"))),
                headers: vec![("h".to_owned(), Some(Bytes::from(format!("{i}"))))],
                timestamp_ms: Some(1_700_000_000_000 + i),
            })
            .collect()
    }

    #[test]
    fn batch_round_trips_in_every_compression() {
        let records = sample_records();
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut batch = encode_batch(&records, compression, 0).expect("encode");
            let sets = RecordBatchDecoder::decode_all(&mut batch).expect("decode");
            assert_eq!(sets.len(), 1, "one batch for {compression:?}");
            assert_eq!(sets[0].compression, compression);
            let decoded = &sets[0].records;
            assert_eq!(decoded.len(), records.len());
            for (i, (d, r)) in decoded.iter().zip(&records).enumerate() {
                assert_eq!(d.offset, i as i64);
                assert_eq!(d.key, r.key);
                assert_eq!(d.value, r.value);
                assert_eq!(d.timestamp, r.timestamp_ms.unwrap_or(0));
                assert_eq!(d.producer_id, kafka_protocol::records::NO_PRODUCER_ID);
                assert_eq!(
                    d.headers.get("h".as_bytes()).cloned().flatten(),
                    r.headers[0].1
                );
            }
        }
    }

    #[test]
    fn batch_header_has_no_sequence() {
        let batch = encode_batch(&sample_records(), Compression::None, 0).expect("encode");
        // Base sequence is at byte 53 of a v2 batch header.
        assert_eq!(&batch[53..57], &(-1i32).to_be_bytes());
        // Last offset delta at byte 23.
        assert_eq!(&batch[23..27], &4i32.to_be_bytes());
    }

    #[test]
    fn keys_partition_like_kafka() {
        let p = partition_for_key(b"foobar", 4);
        assert!((0..4).contains(&p));
        assert_eq!(p, ((-790_332_482i32 as u32 & 0x7fff_ffff) % 4) as i32);
    }
}
