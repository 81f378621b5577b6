//! Per-partition segmented log.
//!
//! One directory per partition holds segments named by their base offset:
//! `00000000000000000000.log` (the Kafka RecordBatch v2 bytes exactly as produced, with
//! baseOffset and partitionLeaderEpoch set by the broker), `.index` and `.timeindex`; plus
//! `<offset>.snapshot` files of idempotent-producer state (see `producer_state`).
//!
//! Worked example: a log holding offsets 0..=9 in batches [0..=4], [5..=9] has
//! `log_start_offset() == 0`, `log_end_offset() == 10`. `append` of a 3-record batch returns
//! `AppendInfo { base_offset: 10, last_offset: 12, .. }` at once; the batch is visible to
//! `read` once `high_watermark()` passes 12 (under group commit: after its fdatasync), and
//! `read(11, ..)` returns the whole batch starting at offset 10.
//!
//! Concurrency contract: a [`PartitionLog`] belongs to one shard (`!Send`); any number of tasks
//! on that shard may call it. `append` is synchronous, so appends never interleave. A
//! background segment-writer task owns all writes and fsyncs (see `segment_writer`).
//!
//! On top of it, [`state_log`] keeps a shard's small durable state (group offsets,
//! share-partition state) as a compacted log of changes.

mod batch;
mod batch_records;
mod cleaner_checkpoint;
mod commit_group;
mod config;
mod error;
mod log_cleaner;
mod log_reader;
mod log_recovery;
mod log_start;
mod log_state;
mod offset_map;
mod partition_log;
mod producer_state;
mod read_ahead;
mod segment;
mod segment_index;
mod segment_writer;
pub mod state_log;
mod tail_cache;
#[doc(hidden)]
pub mod testing;
mod txn_index;

pub(crate) use batch::header_fields;
pub use config::{CleanupPolicy, FlushPolicy, LogConfig};
pub use error::LogError;
pub use log_cleaner::CleanSummary;
pub use log_reader::ReadResult;
pub use offset_map::OffsetMap;
pub use partition_log::{join_chunks, AppendInfo, PartitionLog};
pub use txn_index::{is_control_batch, marker_batch, transactional_producer, AbortedTxn};
