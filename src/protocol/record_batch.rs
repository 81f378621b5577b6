//! RecordBatch v2 bytes from plain records (no producer id, no transaction): what sluice's
//! own producer sends and what the broker writes into its internal logs (group offsets,
//! share state) and dead-letter topics.

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

/// One record as a producer writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Headers in order. Duplicate header keys are collapsed to the last value (a limit of
    /// kafka-protocol's record type).
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Create time; `None` means `now_ms` at encoding.
    pub timestamp_ms: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordBatchError {
    #[error("too many records in one batch: {0}")]
    TooManyRecords(usize),
    #[error("encoding a record batch: {0}")]
    Encode(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// Encodes `records` as one v2 record batch with relative offsets 0..n.
pub fn encode(
    records: &[ProducerRecord],
    compression: Compression,
    now_ms: i64,
) -> Result<Bytes, RecordBatchError> {
    if i32::try_from(records.len()).is_err() {
        return Err(RecordBatchError::TooManyRecords(records.len()));
    }
    let kafka_records: Vec<Record> = records
        .iter()
        .zip(0i64..)
        .map(|(record, offset)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset,
            // The encoder starts a new batch whenever `offset - sequence` changes; keeping it
            // constant gives one batch, with base sequence -1 (no idempotence).
            sequence: (offset as i32).wrapping_sub(1),
            timestamp: record.timestamp_ms.unwrap_or(now_ms),
            key: record.key.clone(),
            value: record.value.clone(),
            headers: record
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        kafka_records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| RecordBatchError::Encode(e.into()))?;
    Ok(buf.freeze())
}
