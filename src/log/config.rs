//! Per-partition storage settings (Kafka's per-topic configs of the same names).

use crate::constants::MESSAGE_BYTES_MAX_DEFAULT;

/// When appended data is made durable, and when it becomes visible to consumers.
///
/// | policy        | fsync                                  | high watermark advances | `wait_durable` resolves |
/// |---------------|----------------------------------------|-------------------------|-------------------------|
/// | `GroupCommit` | one fdatasync per group of appends     | after the fsync         | after the fsync         |
/// | `IntervalMs`  | every N ms                             | at append               | after the next fsync    |
/// | `Never`       | only at segment roll and close (unsafe)| at append               | once written (no fsync) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// One fdatasync covers every batch written before it, in rounds shared by all the
    /// partitions of the shard (`commit_group`). The writer waits up to `delay_us` for more
    /// appends before writing (0 = write at once) and writes at most `bytes_max` bytes in a
    /// row; a round starts as soon as a write completes, or right after the running round.
    GroupCommit { delay_us: u64, bytes_max: u64 },
    /// fsync every N milliseconds; consumers may see data a crash can take back.
    IntervalMs(u64),
    /// Never fsync on the append path. For benchmarks; a crash can lose acknowledged data.
    Never,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Roll to a new segment when the active one would exceed this (default 1 GiB; at most 2 GiB).
    pub segment_bytes: u64,
    /// Roll when the active segment's first append is this old (default 7 days).
    pub segment_ms: u64,
    /// Delete sealed segments whose newest timestamp is older than this; `None` keeps forever.
    pub retention_ms: Option<i64>,
    /// Delete the oldest sealed segments while the log is larger than this; `None` = no limit.
    pub retention_bytes: Option<u64>,
    pub flush: FlushPolicy,
    /// Bytes of log between sparse index entries (default 4096).
    pub index_interval_bytes: u32,
    /// Largest accepted RecordBatch, in bytes.
    pub max_message_bytes: u32,
    /// Forget an idempotent producer's sequence state after this long without an append
    /// (Kafka's broker config `producer.id.expiration.ms`, default 1 day).
    pub producer_id_expiration_ms: i64,
    /// Largest single coalesced O_DIRECT write (default 4 MiB; `sluice tune --probe-disk`
    /// measures the best value for a disk). A batch larger than this is written alone.
    pub write_bytes_max: usize,
    /// Kafka's `cleanup.policy`: what happens to sealed segments.
    pub cleanup: CleanupPolicy,
    /// How long the log cleaner keeps a tombstone (a record with a null value) after it first
    /// cleans it (Kafka's `delete.retention.ms`, default 1 day).
    pub delete_retention_ms: i64,
    /// Records younger than this are never compacted (Kafka's `min.compaction.lag.ms`).
    pub min_compaction_lag_ms: i64,
    /// Kafka's `message.timestamp.type=LogAppendTime`: each batch is stamped with the
    /// broker's clock at append (its maxTimestamp, which consumers give every record).
    pub log_append_time: bool,
    /// Kafka's `compression.type`: `None` (`producer`) stores batches as sent; `Some(codec)`
    /// (attributes bits, 0 = `uncompressed`) recompresses, at append on the partition's
    /// shard, every batch that uses another codec.
    pub compression: Option<i16>,
}

/// Kafka's `cleanup.policy` list: `delete` drops sealed segments past retention, `compact`
/// keeps only the newest record of each key (see `log_cleaner`); both may be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };
}

/// Segments are addressed with u32 positions in the index.
pub(crate) const SEGMENT_BYTES_MAX: u64 = 1 << 31;

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            retention_ms: Some(7 * 24 * 60 * 60 * 1000),
            retention_bytes: None,
            flush: FlushPolicy::GroupCommit {
                delay_us: 0,
                bytes_max: 8 << 20,
            },
            index_interval_bytes: 4096,
            max_message_bytes: MESSAGE_BYTES_MAX_DEFAULT,
            producer_id_expiration_ms: 24 * 60 * 60 * 1000,
            write_bytes_max: 4 << 20,
            cleanup: CleanupPolicy::DELETE,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            log_append_time: false,
            compression: None,
        }
    }
}

impl LogConfig {
    /// For the broker's own state logs (committed offsets, share-partition state): kept until
    /// their owner compacts them, group-committed, and records up to 8 MiB.
    pub fn internal_state(segment_bytes: u64) -> LogConfig {
        LogConfig {
            segment_bytes,
            retention_ms: None,
            retention_bytes: None,
            flush: FlushPolicy::GroupCommit {
                delay_us: 0,
                bytes_max: 8 << 20,
            },
            max_message_bytes: 8 << 20,
            ..LogConfig::default()
        }
    }

    pub(crate) fn segment_bytes_clamped(&self) -> u64 {
        self.segment_bytes.clamp(4096, SEGMENT_BYTES_MAX)
    }
}
