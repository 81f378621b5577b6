//! The dead-letter topic: records a share group rejects, or that reach the delivery limit,
//! are appended to the group's `errors.deadletterqueue.topic.name` topic before they are
//! archived. sluice goes beyond Kafka 4.2 here (KIP-1191 is not finished there).
//!
//! Each dead letter keeps the original key, value, timestamp and headers, plus:
//!
//! | header               | value (UTF-8)                               |
//! |----------------------|---------------------------------------------|
//! | `dlq.topic`          | the origin topic                            |
//! | `dlq.partition`      | the origin partition                        |
//! | `dlq.offset`         | the origin offset                           |
//! | `dlq.group`          | the share group                             |
//! | `dlq.delivery.count` | deliveries so far                           |
//! | `dlq.reason`         | `rejected` or `delivery-limit`              |
//!
//! Origin partition `p` goes to dead-letter partition `p % partition count`, keeping each
//! origin partition's dead letters in order. A missing dead-letter topic is created with one
//! partition. The append runs on the dead-letter partition's shard (a [`ShareMessage`]
//! when that is another shard); the records are archived durably only once their dead
//! letters are durable, so a crash in between delivers them again (at least once).

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};

use crate::io::clock::now_ms;
use crate::protocol::record_batch::{self, ProducerRecord};
use crate::shard::control::{AdminRequest, NewTopic};
use crate::shard::{PartitionLookup, Shard};
use crate::share::partition_shares::{wait_durable, PartitionShares};
use crate::share::share_partition::{DeadLetterJob, StateChange};
use crate::share::share_state::ShareMessage;
use crate::share::ShareError;

pub const HEADER_TOPIC: &str = "dlq.topic";
pub const HEADER_PARTITION: &str = "dlq.partition";
pub const HEADER_OFFSET: &str = "dlq.offset";
pub const HEADER_GROUP: &str = "dlq.group";
pub const HEADER_DELIVERY_COUNT: &str = "dlq.delivery.count";
pub const HEADER_REASON: &str = "dlq.reason";

/// Sends `jobs` to the group's dead-letter topic (if it has one), then archives them durably.
pub async fn dead_letter(
    shard: Rc<Shard>,
    shares: Rc<PartitionShares>,
    group: String,
    jobs: Vec<DeadLetterJob>,
) -> Result<(), ShareError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let config = shard.share().group_config(&group);
    if let Some(topic) = &config.dead_letter_topic {
        let batch = build_batch(&shares, &group, &jobs).await?;
        if let Some(batch) = batch {
            append(&shard, topic, shares.partition, batch).await?;
        }
    }
    let changes: Vec<StateChange> = jobs
        .iter()
        .map(|job| StateChange::Archived {
            first: job.offset,
            last: job.offset,
        })
        .collect();
    wait_durable(shares.persist(&group, &changes)?).await
}

/// Logs the failure of a spawned dead-letter task.
pub async fn dead_letter_logged(
    shard: Rc<Shard>,
    shares: Rc<PartitionShares>,
    group: String,
    jobs: Vec<DeadLetterJob>,
) {
    let (topic, partition) = (shares.topic.clone(), shares.partition);
    if let Err(e) = dead_letter(shard, shares, group.clone(), jobs).await {
        tracing::warn!(%group, %topic, partition, error = %e, "dead-lettering failed; the records will be delivered again after a restart");
    }
}

async fn build_batch(
    shares: &PartitionShares,
    group: &str,
    jobs: &[DeadLetterJob],
) -> Result<Option<Bytes>, ShareError> {
    let mut records = Vec::with_capacity(jobs.len());
    for job in jobs {
        let Some(record) = read_record(shares, job.offset).await? else {
            tracing::warn!(topic = %shares.topic, offset = job.offset, "dead letter no longer in the log");
            continue;
        };
        let dead_letter_headers = [
            (HEADER_TOPIC, shares.topic.clone()),
            (HEADER_PARTITION, shares.partition.to_string()),
            (HEADER_OFFSET, job.offset.to_string()),
            (HEADER_GROUP, group.to_owned()),
            (HEADER_DELIVERY_COUNT, job.delivery_count.to_string()),
            (HEADER_REASON, job.reason.as_str().to_owned()),
        ];
        // The record's own headers first; a header of the same name as ours takes our value.
        let headers = record
            .headers
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .chain(
                dead_letter_headers
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), Some(Bytes::from(value)))),
            )
            .collect();
        records.push(ProducerRecord {
            key: record.key,
            value: record.value,
            headers,
            timestamp_ms: Some(record.timestamp),
        });
    }
    if records.is_empty() {
        return Ok(None);
    }
    record_batch::encode(&records, Compression::None, now_ms())
        .map(Some)
        .map_err(|e| ShareError::Storage(format!("encoding dead letters: {e}")))
}

async fn read_record(shares: &PartitionShares, offset: i64) -> Result<Option<Record>, ShareError> {
    if offset < shares.log.log_start_offset() {
        return Ok(None);
    }
    let read = shares
        .log
        .read(offset, 1)
        .await
        .map_err(|e| ShareError::Storage(format!("reading a dead letter: {e}")))?;
    let mut data = BytesMut::new();
    for chunk in &read.chunks {
        data.extend_from_slice(chunk);
    }
    let mut data = data.freeze();
    let sets = RecordBatchDecoder::decode_all(&mut data)
        .map_err(|e| ShareError::Storage(format!("decoding a dead letter: {e}")))?;
    Ok(sets
        .into_iter()
        .flat_map(|set| set.records)
        .find(|r| r.offset == offset))
}

async fn append(
    shard: &Rc<Shard>,
    topic: &str,
    origin_partition: i32,
    batch: Bytes,
) -> Result<(), ShareError> {
    let meta = match shard.topic(topic) {
        Some(meta) => meta,
        None => {
            let created = shard
                .admin(|reply| AdminRequest::CreateTopics {
                    topics: vec![NewTopic {
                        name: topic.to_owned(),
                        partition_count: 1,
                        overrides: Default::default(),
                        placement: Default::default(),
                    }],
                    validate_only: false,
                    reply,
                })
                .await
                .map_err(|e| ShareError::Storage(format!("creating dead-letter topic: {e}")))?;
            match created.into_iter().next() {
                Some(Ok(meta)) => meta,
                _ => shard.topic(topic).ok_or_else(|| {
                    ShareError::Storage(format!("dead-letter topic {topic} cannot be created"))
                })?,
            }
        }
    };
    let partition = origin_partition.rem_euclid(meta.partition_count.max(1));
    let owner = shard.owner_of(topic, partition);
    if owner == shard.id {
        return append_local(shard, topic, partition, batch)
            .await
            .map_err(ShareError::Storage);
    }
    let (reply, answer) = futures_channel::oneshot::channel();
    shard
        .share()
        .send(
            owner,
            ShareMessage::AppendDeadLetter {
                topic: topic.to_owned(),
                partition,
                batch,
                reply,
            },
        )
        .await?;
    answer
        .await
        .map_err(|_| ShareError::ShuttingDown)?
        .map_err(ShareError::Storage)
}

/// Appends a dead-letter batch to a partition this shard owns and waits until it is durable.
pub async fn append_local(
    shard: &Shard,
    topic: &str,
    partition: i32,
    batch: Bytes,
) -> Result<(), String> {
    let PartitionLookup::Local(log) = shard.partition(topic, partition) else {
        return Err(format!("{topic}-{partition} is not on shard {}", shard.id));
    };
    let info = log
        .append(batch, crate::io::clock::now_ms())
        .map_err(|e| format!("appending a dead letter to {topic}-{partition}: {e}"))?;
    log.wait_durable(info.last_offset)
        .await
        .map_err(|e| format!("persisting a dead letter in {topic}-{partition}: {e}"))
}
