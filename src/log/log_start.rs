//! The log start offset beyond the first segment's base, and DeleteRecords which moves it.
//!
//! Retention deletes whole segments, so after it the log start is simply the first segment's
//! base offset. DeleteRecords (Kafka's `maybeIncrementLogStartOffset`) may put the start
//! inside a segment, so that offset is kept in a small checkpoint file beside the segments,
//! `log-start-offset`: magic, the offset, CRC32C; replaced atomically (temporary file, fsync,
//! rename, directory fsync). A per-partition file rather than a record in a shard's state
//! log because the value belongs to the partition directory: it is deleted with the topic's
//! directory, recovery of one partition reads only its own directory, and it changes only on
//! an admin request, so a 16-byte file write per change costs nothing that matters.
//!
//! Worked example: segments [0..100), [100..200) and the active [200..250), high watermark
//! 250. `delete_records_before(150)` sets the log start to 150, makes it durable, then
//! deletes segment 0 (all of it is below 150) and keeps segment 100 (it holds 150..=199).
//! A fetch at 120 is now out of range; a fetch at 150 returns the batch holding 150 (which
//! may begin before it, as in Kafka). After a restart the log start is
//! `max(checkpoint 150, first segment base 100) = 150`.

use std::path::{Path, PathBuf};

use event_listener::{Event, EventListener};

use crate::io::dma_file;

use super::error::LogError;

const CHECKPOINT_FILE: &str = "log-start-offset";
const CHECKPOINT_MAGIC: u32 = 0x534c_4c53; // "SLLS"
const CHECKPOINT_BYTES: usize = 4 + 8 + 4;

/// The checkpoint's durable value and the one write allowed at a time (writes share the
/// temporary file). Owned by the log's state; `!Send` like the rest of it.
pub(crate) struct LogStartCheckpoint {
    /// What the checkpoint file holds (or the recovered start, when there is no file).
    durable: i64,
    writing: bool,
    written: Event,
}

impl LogStartCheckpoint {
    pub(crate) fn new(durable: i64) -> LogStartCheckpoint {
        LogStartCheckpoint {
            durable,
            writing: false,
            written: Event::new(),
        }
    }

    /// What the checkpoint file holds.
    pub(crate) fn durable(&self) -> i64 {
        self.durable
    }

    /// Takes the turn to write the file, or, while another write has it, a listener that
    /// fires when that write ends.
    pub(crate) fn begin_write(&mut self) -> Result<(), EventListener> {
        if self.writing {
            return Err(self.written.listen());
        }
        self.writing = true;
        Ok(())
    }

    /// Ends the turn taken by `begin_write`; `durable` is the value written, if the write
    /// succeeded.
    pub(crate) fn end_write(&mut self, durable: Option<i64>) {
        self.writing = false;
        self.written.notify(usize::MAX);
        if let Some(value) = durable {
            self.durable = self.durable.max(value);
        }
    }
}

/// Replaces the checkpoint file of `dir` with `offset`, durably.
pub(crate) async fn write_checkpoint(dir: &Path, offset: i64) -> Result<(), LogError> {
    let path = checkpoint_path(dir);
    dma_file::write_file_atomic(&path, &encode(offset))
        .await
        .map_err(|e| LogError::io(format!("writing {path:?}"), e))
}

fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT_FILE)
}

fn encode(offset: i64) -> [u8; CHECKPOINT_BYTES] {
    let mut out = [0u8; CHECKPOINT_BYTES];
    out[..4].copy_from_slice(&CHECKPOINT_MAGIC.to_be_bytes());
    out[4..12].copy_from_slice(&offset.to_be_bytes());
    let crc = crc32c::crc32c(&out[..12]);
    out[12..].copy_from_slice(&crc.to_be_bytes());
    out
}

fn decode(data: &[u8]) -> Option<i64> {
    let data: &[u8; CHECKPOINT_BYTES] = data.try_into().ok()?;
    let magic = u32::from_be_bytes(data[..4].try_into().ok()?);
    let offset = i64::from_be_bytes(data[4..12].try_into().ok()?);
    let crc = u32::from_be_bytes(data[12..].try_into().ok()?);
    (magic == CHECKPOINT_MAGIC && crc == crc32c::crc32c(&data[..12]) && offset >= 0)
        .then_some(offset)
}

/// The checkpointed log start of the partition in `dir`, if DeleteRecords ever set one.
pub(crate) async fn read_checkpoint(dir: &Path) -> Result<Option<i64>, LogError> {
    let path = checkpoint_path(dir);
    let data = dma_file::read_file(&path)
        .await
        .map_err(|e| LogError::io(format!("reading {path:?}"), e))?;
    let Some(data) = data else {
        return Ok(None);
    };
    match decode(&data) {
        Some(offset) => Ok(Some(offset)),
        None => {
            // Written only by atomic rename, so this is damage from outside the broker:
            // the segments still bound what may be served.
            tracing::warn!(?path, "ignoring a corrupt log start checkpoint");
            Ok(None)
        }
    }
}

/// The log start after recovery: the checkpoint where it is past the first segment's base,
/// but never past the recovered log end.
pub(crate) fn recovered_start(
    dir: &Path,
    first_base: i64,
    checkpoint: Option<i64>,
    log_end: i64,
) -> i64 {
    let start = checkpoint.map_or(first_base, |offset| offset.max(first_base));
    if start > log_end {
        // DeleteRecords waits for durability up to its offset, so only a flush policy that
        // gives up durability (`never`) can get here after a power loss.
        tracing::warn!(
            ?dir,
            start,
            log_end,
            "log start checkpoint is past the recovered log end; starting at the end"
        );
        return log_end;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testing::make_batch;
    use crate::log::LogConfig;
    use crate::log::PartitionLog;
    use bytes::Bytes;

    /// The worked example of the module docs, at the log level: segments of four one-record
    /// batches, the start moved inside the second, kept across a reopen, and never moved
    /// back by retention.
    #[test]
    fn delete_records_moves_the_start_durably_and_deletes_whole_segments() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("p");
        crate::io::block_on_local(async move {
            let config = LogConfig {
                segment_bytes: 4096,
                ..LogConfig::default()
            };
            let log = PartitionLog::open(dir.clone(), config.clone())
                .await
                .expect("open");
            let mut last = 0;
            for i in 0..12 {
                last = log
                    .append(Bytes::from(make_batch(1, 900, i)), 0)
                    .expect("append")
                    .last_offset;
            }
            log.wait_durable(last).await.expect("durable");
            assert_eq!(log.segment_count(), 3, "segments [0..4) [4..8) [8..12)");
            assert!(matches!(
                log.delete_records_before(13, 0).await,
                Err(LogError::OffsetOutOfRange { requested: 13, .. })
            ));
            assert_eq!(log.delete_records_before(6, 0).await.expect("delete"), 6);
            assert_eq!(log.segment_count(), 2, "segment 0 is wholly below 6");
            assert!(matches!(
                log.read(5, 1 << 20).await,
                Err(LogError::OffsetOutOfRange { .. })
            ));
            let read = log.read(6, 1 << 20).await.expect("read at the start");
            assert_eq!(read.log_start_offset, 6);
            assert_eq!(
                log.delete_records_before(2, 0).await.expect("lower"),
                6,
                "a lower offset changes nothing"
            );
            log.close().await.expect("close");

            let log = PartitionLog::open(dir.clone(), config.clone())
                .await
                .expect("reopen");
            assert_eq!(log.log_start_offset(), 6);
            // Retention by size drops [4..8): the start becomes its successor's base.
            log.update_config(LogConfig {
                retention_bytes: Some(1000),
                ..config
            });
            log.enforce_retention(0).await.expect("retention");
            assert_eq!(log.log_start_offset(), 8);
            log.close().await.expect("close");
        });
    }

    #[test]
    fn checkpoint_round_trips_and_rejects_damage() {
        let bytes = encode(150);
        assert_eq!(decode(&bytes), Some(150));
        for i in 0..CHECKPOINT_BYTES {
            let mut damaged = bytes;
            damaged[i] ^= 0x10;
            assert_eq!(decode(&damaged), None, "byte {i}");
        }
        assert_eq!(decode(&bytes[..CHECKPOINT_BYTES - 1]), None);
    }

    #[test]
    fn recovered_start_is_the_later_of_checkpoint_and_first_segment_within_the_log() {
        let dir = Path::new("p");
        assert_eq!(recovered_start(dir, 100, None, 250), 100);
        assert_eq!(recovered_start(dir, 100, Some(150), 250), 150);
        assert_eq!(recovered_start(dir, 200, Some(150), 250), 200);
        assert_eq!(recovered_start(dir, 0, Some(300), 250), 250);
    }
}
