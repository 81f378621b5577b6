//! ListOffsets and a sessionless Fetch loop (session id 0, epoch -1: every fetch names all
//! partitions and the broker keeps no state between them).
use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Buf, Bytes};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{FetchRequest, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use uuid::Uuid;

use super::cluster::Cluster;
use super::error::{check_error_code, ClientError};
use crate::protocol::batch_layout::{
    ATTRIBUTE_CONTROL, COMPRESSION_MASK, HEADER_BYTES as BATCH_HEADER_BYTES,
    LOG_OVERHEAD as BATCH_LOG_OVERHEAD, OFFSET_ATTRIBUTES, OFFSET_LAST_OFFSET_DELTA,
    OFFSET_RECORDS_COUNT,
};
/// Smallest possible v2 record: seven one-byte varints (length, attributes, deltas, key and
/// value lengths, header count).
const RECORD_BYTES_MIN: usize = 7;
/// Most records believed in one compressed batch (compression hides the real bound).
const COMPRESSED_RECORD_COUNT_MAX: usize = 4 * 1024 * 1024;

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// The first offset whose timestamp is at or after this many ms since the epoch.
    Timestamp(i64),
    Offset(i64),
}

impl OffsetSpec {
    /// ListOffsets' timestamp argument (-2 earliest, -1 latest).
    fn list_offsets_timestamp(self) -> Option<i64> {
        match self {
            OffsetSpec::Earliest => Some(-2),
            OffsetSpec::Latest => Some(-1),
            OffsetSpec::Timestamp(ts) => Some(ts),
            OffsetSpec::Offset(_) => None,
        }
    }
}

/// Fetch tuning.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
        }
    }
}

/// One consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Reads assigned partitions of one topic from explicit offsets.
#[derive(Debug)]
pub struct Consumer {
    cluster: Cluster,
    topic: String,
    config: ConsumerConfig,
    /// Next offset to fetch, per partition.
    positions: BTreeMap<i32, i64>,
}

impl Consumer {
    pub fn new(cluster: Cluster, topic: &str, config: ConsumerConfig) -> Self {
        Self {
            cluster,
            topic: topic.to_owned(),
            config,
            positions: BTreeMap::new(),
        }
    }

    pub fn cluster(&mut self) -> &mut Cluster {
        &mut self.cluster
    }

    /// Partition indexes of the topic.
    pub fn partitions(&mut self) -> Result<Vec<i32>, ClientError> {
        Ok(self
            .cluster
            .topic(&self.topic)?
            .partitions
            .iter()
            .map(|p| p.partition)
            .collect())
    }

    /// Resolves `spec` to an offset with ListOffsets on the partition leader.
    pub fn list_offset(&mut self, partition: i32, spec: OffsetSpec) -> Result<i64, ClientError> {
        let Some(timestamp) = spec.list_offsets_timestamp() else {
            return match spec {
                OffsetSpec::Offset(offset) => Ok(offset),
                _ => Err(ClientError::InvalidArgument(format!(
                    "bad offset spec {spec:?}"
                ))),
            };
        };
        let topic = self.topic.clone();
        let (_leader, connection) = self.cluster.leader_connection(&topic, partition)?;
        let request = ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.clone())))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(timestamp)])]);
        let (response, _) = connection.send(&request)?;
        let addr = connection.addr().to_owned();
        let p = response
            .topics
            .iter()
            .filter(|t| t.name.0.as_str() == topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| ClientError::MissingInResponse {
                addr,
                what: format!("a ListOffsets result for {topic}-{partition}"),
            })?;
        partition_error(p.error_code, &topic, partition, "list offsets of")?;
        Ok(p.offset)
    }

    /// Starts (or restarts) reading `partition` at `spec`. By timestamp, a partition with no
    /// record that late starts at its end, like Kafka's consumer.
    pub fn assign(&mut self, partition: i32, spec: OffsetSpec) -> Result<i64, ClientError> {
        let mut offset = self.list_offset(partition, spec)?;
        if offset < 0 {
            offset = self.list_offset(partition, OffsetSpec::Latest)?;
        }
        self.positions.insert(partition, offset);
        Ok(offset)
    }

    /// Next offset to fetch per assigned partition.
    pub fn positions(&self) -> &BTreeMap<i32, i64> {
        &self.positions
    }

    /// One fetch round: a sessionless Fetch to each leader of the assigned partitions.
    /// Returns the records received, in offset order per partition, and advances positions.
    pub fn poll(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        let topic = self.topic.clone();
        let metadata = self.cluster.topic(&topic)?;
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        let mut leaderless = false;
        for (&partition, &offset) in &self.positions {
            match self.cluster.leader_id(&topic, partition) {
                Ok(leader) => by_leader
                    .entry(leader)
                    .or_default()
                    .push((partition, offset)),
                // Skip it this round; fresh metadata may name a leader next time.
                Err(e) if e.is_retriable() => leaderless = true,
                Err(e) => return Err(e),
            }
        }
        if leaderless {
            self.cluster.invalidate_topic(&topic);
            if by_leader.is_empty() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let mut records = Vec::new();
        for (leader, partitions) in by_leader {
            let result = self.fetch_from(leader, &topic, metadata.topic_id, &partitions);
            match result {
                Ok(mut fetched) => records.append(&mut fetched),
                Err(e) if e.is_retriable() => {
                    // Leader moved or connection dropped: next poll uses fresh metadata.
                    self.cluster.invalidate_topic(&topic);
                    if matches!(e, ClientError::Io { .. } | ClientError::Timeout { .. }) {
                        self.cluster.forget_connection(leader);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(records)
    }

    fn fetch_from(
        &mut self,
        leader: i32,
        topic: &str,
        topic_id: Uuid,
        partitions: &[(i32, i64)],
    ) -> Result<Vec<ConsumerRecord>, ClientError> {
        let connection = self.cluster.broker_connection(leader)?;
        let mut version = connection.version::<FetchRequest>()?;
        // v13+ addresses topics by id only; without an id from Metadata, stay on v12.
        if version >= 13 && topic_id.is_nil() {
            version = 12;
        }
        let mut fetch_topic = FetchTopic::default().with_partitions(
            partitions
                .iter()
                .map(|&(partition, offset)| {
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(self.config.partition_max_bytes)
                })
                .collect(),
        );
        if version >= 13 {
            fetch_topic.topic_id = topic_id;
        } else {
            fetch_topic.topic = TopicName(StrBytes::from_string(topic.to_owned()));
        }
        let request = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(self.config.max_wait_ms)
            .with_min_bytes(self.config.min_bytes)
            .with_max_bytes(self.config.max_bytes)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![fetch_topic]);
        let wait = Duration::from_millis(u64::try_from(self.config.max_wait_ms).unwrap_or(0));
        let response = connection.send_version(&request, version, wait)?;
        let addr = connection.addr().to_owned();
        check_error_code(response.error_code, None, || format!("fetch from {addr}"))?;
        let mut records = Vec::new();
        for topic_response in response.responses {
            let matches = if version >= 13 {
                topic_response.topic_id == topic_id
            } else {
                topic_response.topic.0.as_str() == topic
            };
            if !matches {
                continue;
            }
            for p in topic_response.partitions {
                let Some(position) = self.positions.get(&p.partition_index).copied() else {
                    continue;
                };
                partition_error(p.error_code, topic, p.partition_index, "fetch from")?;
                let Some(data) = p.records else { continue };
                let (mut fetched, next) = decode_records(topic, p.partition_index, position, data)?;
                records.append(&mut fetched);
                self.positions.insert(p.partition_index, next);
            }
        }
        Ok(records)
    }
}

fn partition_error(code: i16, topic: &str, partition: i32, what: &str) -> Result<(), ClientError> {
    if code == ResponseError::UnknownTopicOrPartition.code() {
        // Retriable at the cluster level (metadata may be stale), reported with its name.
        return Err(ClientError::Broker {
            context: format!("cannot {what} {topic}-{partition}"),
            error: ResponseError::UnknownTopicOrPartition,
            message: None,
        });
    }
    check_error_code(code, None, || format!("cannot {what} {topic}-{partition}"))
}

/// Decodes the record batches in a fetched partition's `data`, keeping records at or after
/// `position`. Returns them and the next position. A truncated batch at the end (the broker
/// cut the response at max bytes) is left for the next fetch; control batches are skipped.
pub fn decode_records(
    topic: &str,
    partition: i32,
    position: i64,
    mut data: Bytes,
) -> Result<(Vec<ConsumerRecord>, i64), ClientError> {
    let mut next = position;
    let mut records = Vec::new();
    while data.len() >= BATCH_LOG_OVERHEAD {
        let base_offset = i64::from_be_bytes(read_array(&data, 0));
        let length = i32::from_be_bytes(read_array(&data, 8));
        let corrupt = |message: String| ClientError::RecordDecode {
            topic: topic.to_owned(),
            partition,
            offset: base_offset,
            source: message.into(),
        };
        let batch_bytes = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(BATCH_LOG_OVERHEAD))
            .ok_or_else(|| corrupt(format!("negative batch length {length}")))?;
        if batch_bytes < BATCH_HEADER_BYTES {
            return Err(corrupt(format!(
                "batch length {length} shorter than a header"
            )));
        }
        if data.len() < batch_bytes {
            break;
        }
        let mut batch = data.split_to(batch_bytes);
        let magic = batch[16];
        if magic != 2 {
            return Err(corrupt(format!("unsupported record batch magic {magic}")));
        }
        let attributes = i16::from_be_bytes(read_array(&batch, OFFSET_ATTRIBUTES));
        let last_offset_delta = i32::from_be_bytes(read_array(&batch, OFFSET_LAST_OFFSET_DELTA));
        let is_control = attributes & ATTRIBUTE_CONTROL != 0;
        // The decoder reserves space for `record_count` records up front, so bound it by what
        // the batch could hold before trusting it.
        let record_count = i32::from_be_bytes(read_array(&batch, OFFSET_RECORDS_COUNT));
        let compressed = attributes & COMPRESSION_MASK != 0;
        let record_count_max = if compressed {
            COMPRESSED_RECORD_COUNT_MAX
        } else {
            (batch_bytes - BATCH_HEADER_BYTES) / RECORD_BYTES_MIN
        };
        if usize::try_from(record_count).map_or(true, |n| n > record_count_max) {
            return Err(corrupt(format!(
                "record count {record_count} impossible for a {batch_bytes}-byte batch"
            )));
        }
        let batch_next = base_offset
            .checked_add(i64::from(last_offset_delta))
            .and_then(|o| o.checked_add(1))
            .ok_or_else(|| corrupt(format!("last offset delta {last_offset_delta} overflows")))?;
        if batch_next <= next {
            // Entirely before our position (a compressed batch re-sent from its start).
            continue;
        }
        if is_control {
            next = batch_next;
            continue;
        }
        let set =
            RecordBatchDecoder::decode(&mut batch).map_err(|e| ClientError::RecordDecode {
                topic: topic.to_owned(),
                partition,
                offset: base_offset,
                source: e.into(),
            })?;
        for record in set.records {
            if record.offset < next {
                continue;
            }
            records.push(ConsumerRecord {
                partition,
                offset: record.offset,
                timestamp_ms: record.timestamp,
                key: record.key,
                value: record.value,
                headers: record
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            });
        }
        next = batch_next;
    }
    // `data` may still hold a partial batch; it is fetched again from `next`.
    let _ = data.remaining();
    Ok((records, next))
}

/// Reads N bytes at `at`; callers check `buf` is long enough first.
fn read_array<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[at..at + N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::producer::{encode_batch, ProducerRecord};
    use kafka_protocol::records::Compression;

    fn batch_at(base_offset: i64, values: &[&str], compression: Compression) -> Vec<u8> {
        let records: Vec<ProducerRecord> = values
            .iter()
            .map(|v| ProducerRecord {
                value: Some(Bytes::from(v.to_string())),
                key: Some(Bytes::from_static(b"k")),
                headers: vec![("a".into(), Some(Bytes::from_static(b"1")))],
                timestamp_ms: Some(42),
            })
            .collect();
        let mut batch = encode_batch(&records, compression, 0)
            .expect("encode")
            .to_vec();
        batch[..8].copy_from_slice(&base_offset.to_be_bytes());
        // The CRC covers bytes from attributes on, so changing the base offset keeps it valid.
        batch
    }

    #[test]
    fn decodes_batches_and_skips_before_position() {
        let mut data = batch_at(10, &["a", "b", "c"], Compression::Lz4);
        data.extend(batch_at(13, &["d"], Compression::None));
        let (records, next) = decode_records("t", 0, 11, Bytes::from(data)).expect("decode");
        let values: Vec<_> = records
            .iter()
            .map(|r| r.value.clone().unwrap_or_default())
            .collect();
        assert_eq!(values, vec!["b", "c", "d"]);
        assert_eq!(records[0].offset, 11);
        assert_eq!(
            records[0].headers,
            vec![("a".to_owned(), Some(Bytes::from_static(b"1")))]
        );
        assert_eq!(next, 14);
    }

    #[test]
    fn leaves_truncated_tail_for_next_fetch() {
        let mut data = batch_at(0, &["a", "b"], Compression::None);
        let second = batch_at(2, &["c"], Compression::None);
        data.extend_from_slice(&second[..second.len() - 3]);
        let (records, next) = decode_records("t", 0, 0, Bytes::from(data)).expect("decode");
        assert_eq!(records.len(), 2);
        assert_eq!(next, 2);
    }

    #[test]
    fn rejects_impossible_record_count() {
        let mut data = batch_at(0, &["a"], Compression::None);
        data[57..61].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(decode_records("t", 0, 0, Bytes::from(data.clone())).is_err());
        data[57..61].copy_from_slice(&1_000_000i32.to_be_bytes());
        assert!(decode_records("t", 0, 0, Bytes::from(data)).is_err());
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        let mut data = vec![0u8; 12];
        data[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(decode_records("t", 0, 0, Bytes::from(data)).is_err());
        let mut data = batch_at(0, &["a"], Compression::None);
        let n = data.len();
        data[n - 1] ^= 0xff; // CRC mismatch
        assert!(decode_records("t", 0, 0, Bytes::from(data)).is_err());
    }
}
