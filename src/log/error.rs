//! Errors of the storage layer. Mapped to Kafka error codes only at the protocol edge.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A batch failed validation (CRC, framing). Kafka: CORRUPT_MESSAGE.
    #[error("corrupt record batch at byte {position} of the record set: {reason}")]
    CorruptMessage {
        position: usize,
        reason: &'static str,
    },
    /// A batch is larger than `max_message_bytes`. Kafka: MESSAGE_TOO_LARGE.
    #[error("record batch of {size} bytes exceeds the maximum of {max} bytes")]
    MessageTooLarge { size: usize, max: u32 },
    /// Structurally valid framing but unacceptable content (bad magic, offset overflow,
    /// empty record set). Kafka: INVALID_RECORD (or UNSUPPORTED_VERSION for magic).
    #[error("invalid record batch: {reason}")]
    InvalidRecord { reason: &'static str },
    /// Records without a key sent to a compacted log, by index within the record set.
    /// Kafka: INVALID_RECORD, with one record error each (KIP-467).
    #[error("a compacted topic cannot accept records without a key ({} refused)", record_indexes.len())]
    KeylessRecords { record_indexes: Vec<i32> },
    /// Kafka: OFFSET_OUT_OF_RANGE.
    #[error("offset {requested} is outside [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        requested: i64,
        log_start: i64,
        log_end: i64,
    },
    /// The disk is full (ENOSPC). Kafka: KAFKA_STORAGE_ERROR.
    #[error("no space left on the log's device")]
    StorageFull,
    /// Data read back from a segment failed its checksum. Kafka: KAFKA_STORAGE_ERROR.
    #[error("stored batch at {path:?} byte {position} is corrupt: {reason}")]
    CorruptLog {
        path: PathBuf,
        position: u64,
        reason: &'static str,
    },
    /// Any other I/O failure. Kafka: KAFKA_STORAGE_ERROR.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// An idempotent producer's batch does not continue its sequence (a gap, or a new epoch
    /// not starting at 0). Kafka: OUT_OF_ORDER_SEQUENCE_NUMBER (45).
    #[error("producer {producer_id} epoch {epoch}: sequence {sequence} is out of order (expected {expected})")]
    OutOfOrderSequence {
        producer_id: i64,
        epoch: i16,
        sequence: i32,
        expected: i32,
    },
    /// An idempotent producer's batch carries an epoch older than the producer's latest.
    /// Kafka: INVALID_PRODUCER_EPOCH (47).
    #[error(
        "producer {producer_id}: epoch {epoch} is older than its current epoch {current_epoch}"
    )]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
    },
    /// The log was closed or deleted. Kafka: NOT_LEADER_OR_FOLLOWER / UNKNOWN_TOPIC_OR_PARTITION.
    #[error("the partition log is closed")]
    Closed,
}

impl LogError {
    /// Wraps an I/O error, turning ENOSPC into [`LogError::StorageFull`].
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> LogError {
        if is_storage_full(&source) {
            LogError::StorageFull
        } else {
            LogError::Io {
                context: context.into(),
                source,
            }
        }
    }
}

fn is_storage_full(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC)
        || e.kind() == io::ErrorKind::StorageFull
        || e.to_string().contains("No space left on device")
}

/// A background failure, kept so every later caller gets an equivalent error.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    context: String,
    kind: io::ErrorKind,
    message: String,
    storage_full: bool,
}

impl Failure {
    pub(crate) fn from_error(error: &LogError) -> Failure {
        match error {
            LogError::StorageFull => Failure {
                context: String::new(),
                kind: io::ErrorKind::StorageFull,
                message: String::new(),
                storage_full: true,
            },
            LogError::Io { context, source } => Failure {
                context: context.clone(),
                kind: source.kind(),
                message: source.to_string(),
                storage_full: false,
            },
            other => Failure {
                context: "background flush".to_string(),
                kind: io::ErrorKind::Other,
                message: other.to_string(),
                storage_full: false,
            },
        }
    }

    pub(crate) fn to_error(&self) -> LogError {
        if self.storage_full {
            LogError::StorageFull
        } else {
            LogError::Io {
                context: format!("log failed earlier: {}", self.context),
                source: io::Error::new(self.kind, self.message.clone()),
            }
        }
    }
}
