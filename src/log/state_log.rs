//! State logs: a shard's small durable state (committed group offsets, share-partition state)
//! kept as a log of changes on top of [`PartitionLog`], compacted by snapshots.
//!
//! Layout: a state log owns one directory `<dir>/` of generations `gen-<g>/` (`g` zero-padded
//! to 12 digits), each a [`PartitionLog`] opened with [`LogConfig::internal_state`]. Every
//! change is one Kafka record (key, value) inside an ordinary RecordBatch v2, so the log layer
//! stores and checksums it like any partition's data; what key and value hold is the record
//! type's business ([`StateRecord`]). Generation `g` starts with a snapshot of the whole state
//! followed by a `SnapshotComplete { g }` marker; later records are changes, applied in log
//! order.
//!
//! Worked example: a new directory gets `gen-000000000000/` holding just the marker of
//! generation 0 (offset 0). Appends of changes A, B, C take offsets 1..=3. Compaction writes
//! the snapshot S (the state after C) and the marker of generation 1 into `gen-000000000001/`,
//! later changes D, E go there, and `gen-000000000000/` is deleted. Reopening replays S, D, E.
//!
//! Recovery ([`StateLog::open`]) replays generations newest first and uses the newest one whose
//! replay reaches its marker. Only once that one is found is anything deleted: a newer one
//! without its marker is a compaction that crashed before its snapshot was durable, older ones
//! are superseded by the snapshot. A replay that cannot read to the end of its log is an error,
//! not a missing marker. Generations with none complete are an error too (the broker refuses to
//! start rather than forget state), except a lone empty generation 0: its creation crashed
//! before the marker, and it gets the marker now. A directory with no generations is new.
//!
//! Compaction ([`StateLog::compact`]) opens generation `g + 1`, writes the snapshot and marker
//! and switches appends to it in one synchronous step (so no change slips between snapshot and
//! switch), and deletes generation `g` only once the marker is durable: a crash at any point
//! leaves one complete generation holding every acknowledged change.
//!
//! Concurrency contract: a [`StateLog`] belongs to one shard (`!Send`); `append` is synchronous,
//! so records reach the log in the order the state changed; one compaction at a time (callers
//! run it from their timers task).

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use super::{LogConfig, LogError, PartitionLog};
use crate::io::dma_file;
use crate::protocol::record_batch::{self, ProducerRecord};

/// Bytes read per call while replaying.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// An encoding or decoding failure of a record type (`kafka-protocol` reports with `anyhow`).
pub type CodecError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How one kind of state is stored as Kafka records.
pub trait StateRecord: Sized {
    /// The record's Kafka key and value.
    fn encode(&self) -> Result<(Bytes, Option<Bytes>), CodecError>;
    /// A stored record; `Ok(None)` for one that carries nothing to apply.
    fn decode(key: Option<Bytes>, value: Option<Bytes>) -> Result<Option<Self>, CodecError>;
    /// The marker that ends the snapshot of `generation`.
    fn snapshot_complete(generation: u64) -> Self;
    /// `Some(g)` when this record is the marker of generation `g`.
    fn completed_generation(&self) -> Option<u64>;
}

/// Sizes of one kind of state log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateLogConfig {
    /// Segment size of each generation's [`PartitionLog`].
    pub segment_bytes: u64,
    /// Records per batch (keeps each batch well under the batch size limit).
    pub batch_record_count_max: usize,
}

impl StateLogConfig {
    fn log_config(&self) -> LogConfig {
        LogConfig::internal_state(self.segment_bytes)
    }
}

/// Why a compaction's snapshot could not be taken (the caller's own error).
pub type SnapshotError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateLogError {
    #[error("{action} the state log in {dir:?}: {source}")]
    Log {
        action: &'static str,
        dir: PathBuf,
        #[source]
        source: LogError,
    },
    #[error("{action} {dir:?}: {source}")]
    Io {
        action: &'static str,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("making state log records durable: {source}")]
    NotDurable {
        #[source]
        source: LogError,
    },
    /// The caller could not read the state a compaction was to write; nothing was switched.
    #[error("taking a snapshot for the state log in {dir:?}: {source}")]
    Snapshot {
        dir: PathBuf,
        #[source]
        source: SnapshotError,
    },
    #[error("encoding records of the state log in {dir:?}: {source}")]
    Encode {
        dir: PathBuf,
        #[source]
        source: CodecError,
    },
    #[error("decoding the state log in {dir:?} at offset {offset}: {source}")]
    Decode {
        dir: PathBuf,
        offset: i64,
        #[source]
        source: CodecError,
    },
    #[error(
        "replaying the state log in {dir:?} stopped at offset {offset} of {end_offset}: {reason}"
    )]
    ReplayStalled {
        dir: PathBuf,
        offset: i64,
        end_offset: i64,
        reason: &'static str,
    },
    /// Generations exist but none holds its snapshot marker: starting empty would silently
    /// forget their state, so the owner must look at the directory.
    #[error(
        "no complete generation in the state log {dir:?} (generations {generations:?} lack \
         their snapshot marker); refusing to start from empty state"
    )]
    NoCompleteGeneration { dir: PathBuf, generations: Vec<u64> },
}

fn log_error<'a>(
    action: &'static str,
    dir: &'a Path,
) -> impl FnOnce(LogError) -> StateLogError + 'a {
    move |source| StateLogError::Log {
        action,
        dir: dir.to_owned(),
        source,
    }
}

fn io_error<'a>(
    action: &'static str,
    dir: &'a Path,
) -> impl FnOnce(std::io::Error) -> StateLogError + 'a {
    move |source| StateLogError::Io {
        action,
        dir: dir.to_owned(),
        source,
    }
}

fn generation_dir(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("gen-{generation:012}"))
}

/// Records appended to a state log: durable once the log is durable up to `last_offset`.
pub struct Appended {
    pub log: PartitionLog,
    pub last_offset: i64,
}

impl Appended {
    pub async fn wait_durable(self) -> Result<(), StateLogError> {
        self.log
            .wait_durable(self.last_offset)
            .await
            .map_err(|source| StateLogError::NotDurable { source })
    }
}

/// One state log: its current generation and where appends go.
pub struct StateLog<R> {
    dir: PathBuf,
    config: StateLogConfig,
    log: RefCell<PartitionLog>,
    generation: Cell<u64>,
    /// Log size right after the last snapshot; compaction is due on growth beyond it.
    snapshot_bytes: Cell<u64>,
    /// The log holds `R`s; no value of one is kept.
    records: PhantomData<fn(R) -> R>,
}

impl<R: StateRecord> StateLog<R> {
    /// Opens (or creates) the state log in `dir` and replays its newest complete generation
    /// into `S::default()` with `apply` (markers are not applied). `now_ms` stamps the marker
    /// of a new generation 0.
    ///
    /// Nothing is deleted until a complete generation has been replayed to its marker: only
    /// then are newer (incomplete) and older (superseded) generations removed. Generations
    /// that exist with none complete are [`StateLogError::NoCompleteGeneration`], except a
    /// lone empty generation 0, which is a creation that crashed before its marker.
    pub async fn open<S: Default>(
        dir: PathBuf,
        config: StateLogConfig,
        now_ms: i64,
        mut apply: impl FnMut(&mut S, R),
    ) -> Result<(StateLog<R>, S), StateLogError> {
        let mut generations: Vec<u64> = match dma_file::list_dir(&dir) {
            Ok(names) => names
                .iter()
                .filter_map(|n| n.strip_prefix("gen-")?.parse().ok())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_error("listing generations in", &dir)(e)),
        };
        generations.sort_unstable_by(|a, b| b.cmp(a));
        if generations.is_empty() {
            // A new directory (or one whose creation crashed before generation 0 existed).
            let log = create_first_generation::<R>(&dir, config, now_ms).await?;
            return Ok((StateLog::new(dir, config, log, 0), S::default()));
        }

        // Replay newest first, deleting nothing yet: a generation is only known to be
        // disposable once a complete one has been found.
        let mut incomplete: Vec<(u64, PartitionLog)> = Vec::new();
        let mut chosen = None;
        for (index, generation) in generations.iter().enumerate() {
            let path = generation_dir(&dir, *generation);
            let log = match PartitionLog::open(path.clone(), config.log_config()).await {
                Ok(log) => log,
                Err(e) => {
                    close_all(&incomplete).await;
                    return Err(log_error("opening", &path)(e));
                }
            };
            let mut state = S::default();
            match replay(&log, &path, *generation, &mut state, &mut apply).await {
                Ok(true) => {
                    chosen = Some((index, *generation, log, state));
                    break;
                }
                Ok(false) => incomplete.push((*generation, log)),
                Err(e) => {
                    close_all(&incomplete).await;
                    close_all(&[(*generation, log)]).await;
                    return Err(e);
                }
            }
        }

        let Some((index, generation, log, state)) = chosen else {
            return match incomplete.as_slice() {
                // Generation 0 is created empty and gets its marker before anything else is
                // appended, so an empty unmarked generation 0 alone holds no state: a creation
                // that crashed before its marker was durable. Finish it.
                [(0, log)] if log.log_end_offset() == 0 => {
                    tracing::warn!(
                        ?dir,
                        "completing a state log whose creation was interrupted"
                    );
                    let log = log.clone();
                    write_first_marker::<R>(&log, &dir, config, now_ms).await?;
                    Ok((StateLog::new(dir, config, log, 0), S::default()))
                }
                // Every other shape once held acknowledged state that no generation can be
                // shown to have superseded: refuse rather than start from nothing.
                _ => {
                    close_all(&incomplete).await;
                    Err(StateLogError::NoCompleteGeneration { dir, generations })
                }
            };
        };

        // Newer than the chosen generation: compactions that crashed before their marker was
        // durable. The chosen one holds every change acknowledged before them, and appends
        // only went to a new generation after its marker was durable.
        for (newer, incomplete_log) in incomplete {
            let path = generation_dir(&dir, newer);
            tracing::warn!(?path, "discarding an incomplete state log snapshot");
            incomplete_log
                .delete()
                .await
                .map_err(log_error("deleting an incomplete snapshot of", &path))?;
        }
        // Older than the chosen generation: superseded by its snapshot.
        for older in generations.iter().skip(index + 1) {
            let path = generation_dir(&dir, *older);
            dma_file::remove_dir_all(&path).map_err(io_error("removing", &path))?;
        }
        if generations.len() > 1 {
            // Make the removals durable, so no removed generation reappears after a crash.
            dma_file::sync_dir(&dir)
                .await
                .map_err(io_error("syncing", &dir))?;
        }
        Ok((StateLog::new(dir, config, log, generation), state))
    }

    fn new(dir: PathBuf, config: StateLogConfig, log: PartitionLog, generation: u64) -> Self {
        StateLog {
            snapshot_bytes: Cell::new(log.size_bytes()),
            dir,
            config,
            log: RefCell::new(log),
            generation: Cell::new(generation),
            records: PhantomData,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Appends `records` to the current generation. They reach the log in call order; the
    /// returned [`Appended`] says when they are durable.
    pub fn append(&self, records: &[R], now_ms: i64) -> Result<Appended, StateLogError> {
        let log = self.log.borrow().clone();
        let last_offset = append_records(&log, &self.dir, self.config, records, now_ms)?;
        Ok(Appended { log, last_offset })
    }

    /// Bytes of the current generation's log.
    pub fn size_bytes(&self) -> u64 {
        self.log.borrow().size_bytes()
    }

    /// Whether the log grew by more than `threshold_bytes` since its last snapshot.
    pub fn needs_compaction(&self, threshold_bytes: u64) -> bool {
        self.log.borrow().size_bytes() > self.snapshot_bytes.get().saturating_add(threshold_bytes)
    }

    /// Rewrites the log as `snapshot` in a new generation, then deletes the old one; returns
    /// the new generation. `snapshot` is called once, with no await between it and the switch
    /// of appends, so it must return the whole state as of that moment (without a marker).
    pub async fn compact(
        &self,
        now_ms: i64,
        snapshot: impl FnOnce() -> Vec<R>,
    ) -> Result<u64, StateLogError> {
        self.try_compact(now_ms, || Ok(snapshot())).await
    }

    /// [`StateLog::compact`] with a snapshot that can fail to be read: then the old
    /// generation stays the log and the error is returned.
    pub async fn try_compact(
        &self,
        now_ms: i64,
        snapshot: impl FnOnce() -> Result<Vec<R>, SnapshotError>,
    ) -> Result<u64, StateLogError> {
        let next = self.generation.get() + 1;
        let path = generation_dir(&self.dir, next);
        let new_log = PartitionLog::open(path.clone(), self.config.log_config())
            .await
            .map_err(log_error("creating", &path))?;
        // From here to the switch nothing awaits, so no change slips between snapshot and switch.
        let written = snapshot()
            .map_err(|source| StateLogError::Snapshot {
                dir: self.dir.clone(),
                source,
            })
            .and_then(|mut records| {
                records.push(R::snapshot_complete(next));
                append_records(&new_log, &self.dir, self.config, &records, now_ms)
            });
        let last = match written {
            Ok(last) => last,
            Err(e) => {
                // Leave no half-written generation for the next compaction to append to.
                if let Err(delete) = new_log.delete().await {
                    tracing::warn!(?path, error = %delete, "removing a failed snapshot");
                }
                return Err(e);
            }
        };
        let old = self.log.replace(new_log.clone());
        self.generation.set(next);
        self.snapshot_bytes.set(new_log.size_bytes());
        new_log
            .wait_durable(last)
            .await
            .map_err(log_error("writing a snapshot to", &path))?;
        // Appends to the old log before the switch are answered once durable; let them
        // finish before the log goes.
        let old_end = old.log_end_offset();
        if old_end > 0 {
            if let Err(e) = old.wait_durable(old_end - 1).await {
                tracing::warn!(
                    dir = ?self.dir,
                    error = %e,
                    "appends to the replaced generation failed"
                );
            }
        }
        old.delete()
            .await
            .map_err(log_error("removing a compacted generation of", &self.dir))?;
        dma_file::sync_dir(&self.dir)
            .await
            .map_err(io_error("syncing", &self.dir))?;
        Ok(next)
    }

    /// Flushes and closes the current generation.
    pub async fn close(&self) -> Result<(), StateLogError> {
        let log = self.log.borrow().clone();
        log.close().await.map_err(log_error("closing", &self.dir))
    }
}

/// Creates generation 0 in `dir` holding just its marker; returns it once durable.
async fn create_first_generation<R: StateRecord>(
    dir: &Path,
    config: StateLogConfig,
    now_ms: i64,
) -> Result<PartitionLog, StateLogError> {
    // `prepare_dir` probes with a file in the directory it is given, which is this log's own.
    dma_file::prepare_dir(dir)
        .await
        .map_err(io_error("preparing", dir))?;
    let path = generation_dir(dir, 0);
    let log = PartitionLog::open(path.clone(), config.log_config())
        .await
        .map_err(log_error("creating", &path))?;
    write_first_marker::<R>(&log, dir, config, now_ms).await?;
    Ok(log)
}

/// Appends the marker of generation 0 to its empty `log` and waits until it is durable; until
/// then the generation holds nothing and nothing may be appended to it.
async fn write_first_marker<R: StateRecord>(
    log: &PartitionLog,
    dir: &Path,
    config: StateLogConfig,
    now_ms: i64,
) -> Result<(), StateLogError> {
    let path = generation_dir(dir, 0);
    let last = append_records(log, dir, config, &[R::snapshot_complete(0)], now_ms)?;
    log.wait_durable(last)
        .await
        .map_err(log_error("writing a snapshot to", &path))
}

/// Closes `logs` opened while looking for a complete generation, on the way out of a failed
/// open; a failure to close loses nothing (no state was changed), so it is only reported.
async fn close_all(logs: &[(u64, PartitionLog)]) {
    for (generation, log) in logs {
        if let Err(error) = log.close().await {
            tracing::warn!(generation, %error, "closing a state log generation failed");
        }
    }
}

/// Applies every record of `log` (generation `generation`) to `state`; returns whether the
/// generation's marker was found. Every record up to the high watermark is read, or the
/// replay fails: "no marker" must mean the generation has none, never that reading stopped.
async fn replay<R: StateRecord, S>(
    log: &PartitionLog,
    path: &Path,
    generation: u64,
    state: &mut S,
    apply: &mut impl FnMut(&mut S, R),
) -> Result<bool, StateLogError> {
    let mut complete = false;
    read_records(log, path, |record: R| match record.completed_generation() {
        Some(marker) => complete |= marker == generation,
        None => apply(state, record),
    })
    .await?;
    Ok(complete)
}

/// Hands every record of `log` from its start to its high watermark to `each`, in log
/// order: a state log's replay, and the load of state kept in a replicated partition
/// (whose log holds only committed records). Reading stops short only with an error, so a
/// caller can tell "no such record" from "not read". `path` names the log in errors.
pub async fn read_records<R: StateRecord>(
    log: &PartitionLog,
    path: &Path,
    mut each: impl FnMut(R),
) -> Result<(), StateLogError> {
    let mut position = log.log_start_offset();
    let end = log.high_watermark();
    while position < end {
        let read = log
            .read(position, REPLAY_READ_BYTES)
            .await
            .map_err(log_error("reading", path))?;
        if read.chunks.is_empty() {
            return Err(StateLogError::ReplayStalled {
                dir: path.to_owned(),
                offset: position,
                end_offset: end,
                reason: "a read returned no data",
            });
        }
        // A read may split one batch over several chunks (header and body).
        let mut joined = BytesMut::with_capacity(read.bytes_len());
        for chunk in &read.chunks {
            joined.extend_from_slice(chunk);
        }
        let mut data = joined.freeze();
        let decode_error = |offset, source| StateLogError::Decode {
            dir: path.to_owned(),
            offset,
            source,
        };
        let before = position;
        // A compacted log may hold batches whose records were all cleaned away: their
        // offsets are passed all the same.
        for (_, last_offset, _) in super::batch::batch_offsets(&data) {
            position = position.max(last_offset + 1);
        }
        let sets = RecordBatchDecoder::decode_all(&mut data)
            .map_err(|e| decode_error(before, e.into()))?;
        for set in sets {
            for record in set.records {
                position = position.max(record.offset + 1);
                if record.offset < log.log_start_offset() {
                    continue;
                }
                let decoded = R::decode(record.key, record.value)
                    .map_err(|e| decode_error(record.offset, e))?;
                if let Some(decoded) = decoded {
                    each(decoded);
                }
            }
        }
        if position == before {
            // Nothing decodable at `position`: reading it again would loop forever, and
            // stopping would look like a log that ends here.
            return Err(StateLogError::ReplayStalled {
                dir: path.to_owned(),
                offset: position,
                end_offset: end,
                reason: "a read decoded no record past this offset",
            });
        }
    }
    Ok(())
}

/// Appends `records` to `log` as batches of at most `batch_record_count_max`; returns the
/// offset of the last one (-1 for none).
fn append_records<R: StateRecord>(
    log: &PartitionLog,
    dir: &Path,
    config: StateLogConfig,
    records: &[R],
    now_ms: i64,
) -> Result<i64, StateLogError> {
    // Every batch is encoded before the first is appended, so a record that fails to encode
    // leaves none of the call's records in the log.
    let batches = encode_batches(dir, config, records, now_ms)?;
    let mut last = -1;
    for batch in batches {
        let info = log
            .append(batch, now_ms)
            .map_err(log_error("appending to", dir))?;
        last = info.last_offset;
    }
    Ok(last)
}

/// Encodes `records` as record batches of at most `batch_record_count_max` each, and of at
/// most half the log's batch size limit in record bytes: a few large records (a partition
/// replica's Raft entries are whole produce batches) would otherwise make a batch the log
/// refuses. A single record above that bound still gets a batch of its own.
fn encode_batches<R: StateRecord>(
    dir: &Path,
    config: StateLogConfig,
    records: &[R],
    now_ms: i64,
) -> Result<Vec<Bytes>, StateLogError> {
    let bytes_max =
        usize::try_from(config.log_config().max_message_bytes / 2).unwrap_or(usize::MAX);
    encode_record_batches(records, config.batch_record_count_max, bytes_max, now_ms).map_err(
        |source| StateLogError::Encode {
            dir: dir.to_owned(),
            source,
        },
    )
}

/// Encodes `records` as uncompressed record batches (no producer id) of at most
/// `count_max` records and `bytes_max` record bytes each; a single record above
/// `bytes_max` gets a batch of its own.
pub fn encode_record_batches<R: StateRecord>(
    records: &[R],
    count_max: usize,
    bytes_max: usize,
    now_ms: i64,
) -> Result<Vec<Bytes>, CodecError> {
    // A zero limit means one record per batch.
    let count_max = count_max.max(1);
    let mut batches = Vec::new();
    let mut pending: Vec<ProducerRecord> = Vec::new();
    let mut pending_bytes = 0;
    let mut flush = |pending: &mut Vec<ProducerRecord>| -> Result<(), CodecError> {
        if pending.is_empty() {
            return Ok(());
        }
        let batch = record_batch::encode(pending, Compression::None, now_ms)?;
        batches.push(batch);
        pending.clear();
        Ok(())
    };
    for record in records {
        let (key, value) = record.encode()?;
        let size = key.len() + value.as_ref().map_or(0, |v| v.len());
        if !pending.is_empty() && (pending.len() >= count_max || pending_bytes + size > bytes_max) {
            flush(&mut pending)?;
            pending_bytes = 0;
        }
        pending_bytes += size;
        pending.push(ProducerRecord {
            key: Some(key),
            value,
            headers: Vec::new(),
            timestamp_ms: Some(now_ms),
        });
    }
    flush(&mut pending)?;
    Ok(batches)
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Writes `records` as generation `generation` of the state log in `dir`, adding no
    /// marker: without one in `records` this is what a compaction that crashed before its
    /// marker was durable leaves behind.
    pub(crate) async fn write_generation<R: StateRecord>(
        dir: &Path,
        config: StateLogConfig,
        generation: u64,
        records: &[R],
    ) {
        let torn = PartitionLog::open(generation_dir(dir, generation), config.log_config())
            .await
            .expect("open generation");
        let last = append_records(&torn, dir, config, records, 0).expect("append");
        torn.wait_durable(last).await.expect("durable");
        torn.close().await.expect("close");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A key-value state: `Set` stores `value` under `key` (key bytes, value big-endian u64);
    /// the marker has an empty key and the generation as value.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum TestRecord {
        Set { key: String, value: u64 },
        Marker { generation: u64 },
    }

    fn u64_value(value: Option<Bytes>) -> Result<u64, CodecError> {
        let value = value.ok_or("no value")?;
        let bytes: [u8; 8] = value.as_ref().try_into()?;
        Ok(u64::from_be_bytes(bytes))
    }

    impl StateRecord for TestRecord {
        fn encode(&self) -> Result<(Bytes, Option<Bytes>), CodecError> {
            Ok(match self {
                TestRecord::Set { key, value } => (
                    Bytes::copy_from_slice(key.as_bytes()),
                    Some(Bytes::copy_from_slice(&value.to_be_bytes())),
                ),
                TestRecord::Marker { generation } => (
                    Bytes::new(),
                    Some(Bytes::copy_from_slice(&generation.to_be_bytes())),
                ),
            })
        }

        fn decode(key: Option<Bytes>, value: Option<Bytes>) -> Result<Option<Self>, CodecError> {
            let key = String::from_utf8(key.unwrap_or_default().to_vec())?;
            let value = u64_value(value)?;
            Ok(Some(if key.is_empty() {
                TestRecord::Marker { generation: value }
            } else {
                TestRecord::Set { key, value }
            }))
        }

        fn snapshot_complete(generation: u64) -> Self {
            TestRecord::Marker { generation }
        }

        fn completed_generation(&self) -> Option<u64> {
            match self {
                TestRecord::Marker { generation } => Some(*generation),
                TestRecord::Set { .. } => None,
            }
        }
    }

    type State = BTreeMap<String, u64>;

    fn apply(state: &mut State, record: TestRecord) {
        if let TestRecord::Set { key, value } = record {
            state.insert(key, value);
        }
    }

    fn set(key: &str, value: u64) -> TestRecord {
        TestRecord::Set {
            key: key.to_owned(),
            value,
        }
    }

    /// Two records per batch, so snapshots and appends span several batches.
    const CONFIG: StateLogConfig = StateLogConfig {
        segment_bytes: 1 << 20,
        batch_record_count_max: 2,
    };

    async fn open(dir: &Path) -> (StateLog<TestRecord>, State) {
        StateLog::open(dir.to_owned(), CONFIG, 0, apply)
            .await
            .expect("open")
    }

    async fn append(log: &StateLog<TestRecord>, state: &mut State, records: Vec<TestRecord>) {
        log.append(&records, 0)
            .expect("append")
            .wait_durable()
            .await
            .expect("durable");
        for record in records {
            apply(state, record);
        }
    }

    /// Runs `test` on a fresh state log directory.
    fn with_dir<F: std::future::Future<Output = ()> + 'static>(test: impl FnOnce(PathBuf) -> F) {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = temp.path().join("state");
        crate::io::block_on_local(test(dir));
    }

    /// Opens the state log in `dir`, appends `records` and closes it.
    async fn write_and_close(dir: &Path, records: Vec<TestRecord>) {
        let (log, mut state) = open(dir).await;
        append(&log, &mut state, records).await;
        log.close().await.expect("close");
    }

    /// Only `generations` are left in `dir`.
    fn assert_generations(dir: &Path, generations: &[u64]) {
        let mut names = dma_file::list_dir(dir).expect("list");
        names.sort();
        let expected: Vec<String> = generations
            .iter()
            .map(|g| generation_dir(Path::new(""), *g).display().to_string())
            .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn a_snapshot_that_cannot_be_read_leaves_the_log_as_it_was() {
        with_dir(|dir| async move {
            let (log, mut state) = open(&dir).await;
            append(&log, &mut state, vec![set("a", 1), set("b", 2)]).await;
            let refused = log
                .try_compact(0, || Err("the state is unreadable".into()))
                .await;
            assert!(
                matches!(refused, Err(StateLogError::Snapshot { .. })),
                "{refused:?}"
            );
            assert_eq!(log.generation(), 0, "no switch to a new generation");
            append(&log, &mut state, vec![set("c", 3)]).await;
            log.close().await.expect("close");
            assert_generations(&dir, &[0]);
            let (_, reopened) = open(&dir).await;
            assert_eq!(reopened, state, "every record still there");
        });
    }

    #[test]
    fn large_records_are_split_into_batches_the_log_accepts() {
        with_dir(|dir| async move {
            let (log, mut state) = open(&dir).await;
            // Two 5 MiB records: one batch of both would exceed the 8 MiB batch limit.
            let big = |c: &str| c.repeat(5 << 20);
            append(&log, &mut state, vec![set(&big("a"), 1), set(&big("b"), 2)]).await;
            drop(log);
            let (_, reopened) = open(&dir).await;
            assert_eq!(reopened, state, "both records stored");
        });
    }

    #[test]
    fn state_survives_reopen_and_compaction() {
        with_dir(|dir| async move {
            let (log, mut state) = open(&dir).await;
            assert!(state.is_empty());
            assert_eq!(log.generation(), 0);
            for round in 0..20 {
                append(&log, &mut state, vec![set("a", round), set("b", round * 2)]).await;
            }
            append(&log, &mut state, vec![set("c", 7)]).await;
            assert!(log.needs_compaction(0));
            let snapshot = state.clone();
            let generation = log
                .compact(0, || {
                    snapshot
                        .iter()
                        .map(|(key, value)| set(key, *value))
                        .collect()
                })
                .await
                .expect("compact");
            assert_eq!(generation, 1);
            assert!(!log.needs_compaction(0), "the snapshot is the new baseline");
            append(&log, &mut state, vec![set("a", 100)]).await;
            // No close: reopening must work from what is durable, as after kill -9.
            drop(log);

            let (reopened, replayed) = open(&dir).await;
            assert_eq!(replayed, state);
            assert_eq!(replayed.get("a"), Some(&100));
            assert_eq!(replayed.get("b"), Some(&38));
            assert_eq!(reopened.generation(), 1);
            assert_generations(&dir, &[1]);
            reopened.close().await.expect("close");
        });
    }

    #[test]
    fn an_incomplete_snapshot_is_discarded() {
        with_dir(|dir| async move {
            write_and_close(&dir, vec![set("a", 3)]).await;
            // Generation 1 without a marker, and generation 2 with the marker of another
            // generation: neither is complete, and only because generation 0 is may they go.
            testing::write_generation(&dir, CONFIG, 1, &[set("a", 999)]).await;
            testing::write_generation(
                &dir,
                CONFIG,
                2,
                &[set("a", 998), TestRecord::Marker { generation: 1 }],
            )
            .await;

            let (reopened, replayed) = open(&dir).await;
            assert_eq!(replayed.get("a"), Some(&3));
            assert_eq!(reopened.generation(), 0);
            assert_generations(&dir, &[0]);
            reopened.close().await.expect("close");
        });
    }

    #[test]
    fn the_newest_complete_generation_wins() {
        with_dir(|dir| async move {
            write_and_close(&dir, vec![set("a", 1), set("b", 2)]).await;
            // A compaction that crashed after its marker was durable but before the old
            // generation was removed.
            testing::write_generation(
                &dir,
                CONFIG,
                1,
                &[
                    set("a", 10),
                    TestRecord::Marker { generation: 1 },
                    set("c", 30),
                ],
            )
            .await;

            let (reopened, replayed) = open(&dir).await;
            let expected: State = [("a".to_owned(), 10), ("c".to_owned(), 30)].into();
            assert_eq!(replayed, expected);
            assert_eq!(reopened.generation(), 1);
            assert_generations(&dir, &[1]);
            reopened.close().await.expect("close");
        });
    }

    /// Opening `dir` fails with [`StateLogError::NoCompleteGeneration`].
    async fn assert_no_complete_generation(dir: &Path) {
        match StateLog::<TestRecord>::open(dir.to_owned(), CONFIG, 0, apply).await {
            Err(StateLogError::NoCompleteGeneration { dir: named, .. }) => assert_eq!(named, dir),
            Err(other) => panic!("expected NoCompleteGeneration, got {other}"),
            Ok(_) => panic!("opened a state log with no complete generation"),
        }
    }

    /// How many records generation `generation` in `dir` still holds.
    async fn record_count(dir: &Path, generation: u64) -> i64 {
        let log = PartitionLog::open(generation_dir(dir, generation), CONFIG.log_config())
            .await
            .expect("open generation");
        let count = log.log_end_offset() - log.log_start_offset();
        log.close().await.expect("close");
        count
    }

    #[test]
    fn generations_without_a_marker_are_an_error_and_are_kept() {
        with_dir(|dir| async move {
            // Records but no marker, in generation 0 alone: whatever dropped the marker, the
            // records are all that is left of the state, so nothing may be deleted.
            testing::write_generation(&dir, CONFIG, 0, &[set("a", 1), set("b", 2)]).await;
            assert_no_complete_generation(&dir).await;
            assert_generations(&dir, &[0]);
            assert_eq!(record_count(&dir, 0).await, 2);

            // Two generations, neither complete: both kept.
            testing::write_generation(&dir, CONFIG, 1, &[set("a", 10)]).await;
            assert_no_complete_generation(&dir).await;
            assert_generations(&dir, &[0, 1]);
            assert_eq!(record_count(&dir, 0).await, 2);
            assert_eq!(record_count(&dir, 1).await, 1);
        });
    }

    #[test]
    fn a_lone_empty_generation_other_than_0_is_an_error() {
        with_dir(|dir| async move {
            // Generation 1 only exists beside a complete generation 0 until its own marker is
            // durable, so alone and empty it means state was lost, not a crash.
            testing::write_generation::<TestRecord>(&dir, CONFIG, 1, &[]).await;
            assert_no_complete_generation(&dir).await;
            assert_generations(&dir, &[1]);
        });
    }

    #[test]
    fn a_new_directory_gets_a_complete_generation_0() {
        with_dir(|dir| async move {
            let (log, state) = open(&dir).await;
            assert!(state.is_empty());
            assert_eq!(log.generation(), 0);
            drop(log);
            assert_generations(&dir, &[0]);
            // Its marker is durable before `open` returns: reopening finds it complete.
            let (reopened, state) = open(&dir).await;
            assert!(state.is_empty());
            assert_eq!(reopened.generation(), 0);
            reopened.close().await.expect("close");
        });
    }

    #[test]
    fn a_crash_while_creating_generation_0_is_completed() {
        with_dir(|dir| async move {
            // What a crash between creating generation 0 and its marker being durable leaves.
            testing::write_generation::<TestRecord>(&dir, CONFIG, 0, &[]).await;

            let (log, mut state) = open(&dir).await;
            assert!(state.is_empty());
            assert_eq!(log.generation(), 0);
            append(&log, &mut state, vec![set("a", 5)]).await;
            drop(log);

            let (reopened, replayed) = open(&dir).await;
            assert_eq!(replayed, state);
            assert_eq!(reopened.generation(), 0);
            assert_generations(&dir, &[0]);
            reopened.close().await.expect("close");
        });
    }
}
