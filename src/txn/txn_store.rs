//! Durable transaction state: one state log per transaction-state partition this shard owns.
//!
//! Layout: `<data dir>/.transactions/txn-<p>/` is a [`StateLog`] of [`TxnRecord`]s (see
//! [`crate::log::state_log`] for generations, recovery and compaction); each record is the
//! whole new state of one transactional id, so replay keeps the last one per id and a
//! snapshot is one record per id.
//!
//! Record encoding (strings u16 length + UTF-8, integers big-endian), after a kind byte:
//!
//! | kind | key               | value |
//! |------|-------------------|-------|
//! | 1    | transactional id  | v1: producer id i64, epoch i16, last epoch i16, timeout ms i32, state u8, start ms i64, last update ms i64, partitions u32 × (topic, partition i32), groups u32 × group, offsets u32 × (group, topic, partition i32, offset i64, leader epoch i32, metadata, commit ms i64) |
//! | 1    | transactional id  | none: the id expired and is forgotten |
//! | 2    | (empty)           | snapshot complete: generation u64 |
//!
//! In a cluster of several nodes the partitions are instead those of the replicated internal
//! topic [`TXN_STATE_TOPIC`] (see [`crate::replica::state_partitions`]): nothing is kept
//! under `.transactions`, and the coordinator holds the transactions of the partitions its
//! shard leads.
//!
//! Concurrency contract: owned by one shard; `persist` is synchronous, so records reach the
//! log in the order states changed; callers answer only once [`Durable`] resolves.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::txn_metadata::{PendingOffset, TxnMetadata, TxnState};
use super::TxnError;
use crate::group::offset_record::{
    get_i32, get_i64, get_str, put_str, CommittedOffset, RecordEncodeError,
};
use crate::group::{offsets_partition, OFFSETS_PARTITION_COUNT};
use crate::log::state_log::{
    self, CodecError, StateLog, StateLogConfig, StateLogError, StateRecord,
};
use crate::replica::state_partitions::{LeadershipChanges, NotProposed, Serving, StatePartitions};

/// The internal topic holding transaction state in a cluster (Kafka's name).
pub const TXN_STATE_TOPIC: &str = "__transaction_state";

/// Record bytes per batch proposed to a replicated transaction-state partition.
const REPLICATED_BATCH_BYTES_MAX: usize = 256 << 10;

const TXN_DIR: &str = ".transactions";
const KIND_TXN: u8 = 1;
const KIND_SNAPSHOT_COMPLETE: u8 = 2;
const TXN_VALUE_V1: u8 = 1;

const LOG_CONFIG: StateLogConfig = StateLogConfig {
    segment_bytes: 16 << 20,
    batch_record_count_max: 1_000,
};

/// A log grows by this much past its last snapshot before it is compacted.
const COMPACT_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnRecord {
    Txn {
        transactional_id: String,
        metadata: TxnMetadata,
    },
    Expired {
        transactional_id: String,
    },
    SnapshotComplete {
        generation: u64,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("malformed transaction record: {0}")]
struct MalformedTxnRecord(&'static str);

fn get_u8(buf: &mut Bytes) -> Result<u8, MalformedTxnRecord> {
    if buf.remaining() < 1 {
        return Err(MalformedTxnRecord("truncated u8"));
    }
    Ok(buf.get_u8())
}

fn get_i16(buf: &mut Bytes) -> Result<i16, MalformedTxnRecord> {
    if buf.remaining() < 2 {
        return Err(MalformedTxnRecord("truncated i16"));
    }
    Ok(buf.get_i16())
}

/// A count of entries of at least `entry_bytes_min` each: refused when the rest is shorter.
fn get_count(buf: &mut Bytes, entry_bytes_min: usize) -> Result<usize, CodecError> {
    let count = usize::try_from(get_i32(buf)?).map_err(|_| MalformedTxnRecord("negative count"))?;
    if count.saturating_mul(entry_bytes_min) > buf.remaining() {
        return Err(Box::new(MalformedTxnRecord("count beyond the record")));
    }
    Ok(count)
}

fn put_count(buf: &mut BytesMut, count: usize) {
    buf.put_i32(i32::try_from(count).unwrap_or(i32::MAX));
}

fn encode_metadata(m: &TxnMetadata) -> Result<Bytes, RecordEncodeError> {
    let mut v = BytesMut::new();
    v.put_u8(TXN_VALUE_V1);
    v.put_i64(m.producer_id);
    v.put_i16(m.epoch);
    v.put_i16(m.last_epoch);
    v.put_i32(m.timeout_ms);
    v.put_u8(m.state.code());
    v.put_i64(m.start_ms);
    v.put_i64(m.last_update_ms);
    put_count(&mut v, m.partitions.len());
    for (topic, partition) in &m.partitions {
        put_str(&mut v, "topic", topic)?;
        v.put_i32(*partition);
    }
    put_count(&mut v, m.groups.len());
    for group in &m.groups {
        put_str(&mut v, "group id", group)?;
    }
    put_count(&mut v, m.offsets.len());
    for o in &m.offsets {
        put_str(&mut v, "group id", &o.group)?;
        put_str(&mut v, "topic", &o.topic)?;
        v.put_i32(o.partition);
        v.put_i64(o.offset.offset);
        v.put_i32(o.offset.leader_epoch);
        put_str(&mut v, "offset metadata", &o.offset.metadata)?;
        v.put_i64(o.offset.commit_timestamp_ms);
    }
    Ok(v.freeze())
}

fn decode_metadata(mut v: Bytes) -> Result<TxnMetadata, CodecError> {
    if get_u8(&mut v)? != TXN_VALUE_V1 {
        return Err(Box::new(MalformedTxnRecord("unknown value version")));
    }
    let producer_id = get_i64(&mut v)?;
    let epoch = get_i16(&mut v)?;
    let last_epoch = get_i16(&mut v)?;
    let timeout_ms = get_i32(&mut v)?;
    let state = TxnState::from_code(get_u8(&mut v)?).ok_or(MalformedTxnRecord("unknown state"))?;
    let start_ms = get_i64(&mut v)?;
    let last_update_ms = get_i64(&mut v)?;
    let mut metadata = TxnMetadata::new(producer_id, timeout_ms);
    metadata.epoch = epoch;
    metadata.last_epoch = last_epoch;
    metadata.state = state;
    metadata.start_ms = start_ms;
    metadata.last_update_ms = last_update_ms;
    for _ in 0..get_count(&mut v, 6)? {
        let topic = get_str(&mut v)?;
        metadata.partitions.insert((topic, get_i32(&mut v)?));
    }
    for _ in 0..get_count(&mut v, 2)? {
        metadata.groups.insert(get_str(&mut v)?);
    }
    for _ in 0..get_count(&mut v, 30)? {
        let group = get_str(&mut v)?;
        let topic = get_str(&mut v)?;
        let partition = get_i32(&mut v)?;
        let offset = get_i64(&mut v)?;
        let leader_epoch = get_i32(&mut v)?;
        let offset_metadata = get_str(&mut v)?;
        let commit_timestamp_ms = get_i64(&mut v)?;
        metadata.offsets.push(PendingOffset {
            group,
            topic,
            partition,
            offset: CommittedOffset {
                offset,
                leader_epoch,
                metadata: offset_metadata,
                commit_timestamp_ms,
            },
        });
    }
    if v.has_remaining() {
        return Err(Box::new(MalformedTxnRecord("bytes after the value")));
    }
    Ok(metadata)
}

impl StateRecord for TxnRecord {
    fn encode(&self) -> Result<(Bytes, Option<Bytes>), CodecError> {
        let mut key = BytesMut::new();
        match self {
            TxnRecord::Txn {
                transactional_id,
                metadata,
            } => {
                key.put_u8(KIND_TXN);
                put_str(&mut key, "transactional id", transactional_id)?;
                Ok((key.freeze(), Some(encode_metadata(metadata)?)))
            }
            TxnRecord::Expired { transactional_id } => {
                key.put_u8(KIND_TXN);
                put_str(&mut key, "transactional id", transactional_id)?;
                Ok((key.freeze(), None))
            }
            TxnRecord::SnapshotComplete { generation } => {
                key.put_u8(KIND_SNAPSHOT_COMPLETE);
                Ok((
                    key.freeze(),
                    Some(Bytes::copy_from_slice(&generation.to_be_bytes())),
                ))
            }
        }
    }

    fn decode(key: Option<Bytes>, value: Option<Bytes>) -> Result<Option<Self>, CodecError> {
        let mut key = key.ok_or(MalformedTxnRecord("no key"))?;
        match (get_u8(&mut key)?, value) {
            (KIND_TXN, None) => Ok(Some(TxnRecord::Expired {
                transactional_id: get_str(&mut key)?,
            })),
            (KIND_TXN, Some(value)) => Ok(Some(TxnRecord::Txn {
                transactional_id: get_str(&mut key)?,
                metadata: decode_metadata(value)?,
            })),
            (KIND_SNAPSHOT_COMPLETE, None) => Err(Box::new(MalformedTxnRecord("no generation"))),
            (KIND_SNAPSHOT_COMPLETE, Some(mut value)) => {
                if value.remaining() != 8 {
                    return Err(Box::new(MalformedTxnRecord("bad generation")));
                }
                Ok(Some(TxnRecord::SnapshotComplete {
                    generation: value.get_u64(),
                }))
            }
            _ => Err(Box::new(MalformedTxnRecord("unknown kind"))),
        }
    }

    fn snapshot_complete(generation: u64) -> Self {
        TxnRecord::SnapshotComplete { generation }
    }

    fn completed_generation(&self) -> Option<u64> {
        match self {
            TxnRecord::SnapshotComplete { generation } => Some(*generation),
            TxnRecord::Txn { .. } | TxnRecord::Expired { .. } => None,
        }
    }
}

pub type Txns = HashMap<String, TxnMetadata>;

fn apply(txns: &mut Txns, record: TxnRecord) {
    match record {
        TxnRecord::Txn {
            transactional_id,
            metadata,
        } => {
            txns.insert(transactional_id, metadata);
        }
        TxnRecord::Expired { transactional_id } => {
            txns.remove(&transactional_id);
        }
        TxnRecord::SnapshotComplete { .. } => {}
    }
}

fn storage(error: StateLogError) -> TxnError {
    TxnError::Storage(error.to_string())
}

fn partition_dir(root: &Path, partition: u32) -> PathBuf {
    root.join(format!("txn-{partition:02}"))
}

/// Resolves once a persisted state is durable.
pub type Durable = std::pin::Pin<Box<dyn Future<Output = Result<(), TxnError>>>>;

pub struct TxnStore {
    root: PathBuf,
    shard_id: usize,
    shard_count: usize,
    logs: RefCell<BTreeMap<u32, Rc<StateLog<TxnRecord>>>>,
    /// In a cluster: the partitions are replicated partitions, not `.transactions` logs.
    replicated: Option<StatePartitions>,
}

/// A change to `transactional_id`'s state that was not proposed or did not commit, as the
/// coordinator answers it: a lost leadership is NOT_COORDINATOR, and the client looks the
/// coordinator up again.
fn not_proposed(error: NotProposed, transactional_id: &str) -> TxnError {
    match error {
        NotProposed::Loading => TxnError::LoadInProgress,
        NotProposed::NotLeader => TxnError::NotCoordinator(transactional_id.to_owned()),
        NotProposed::Replica(e) => TxnError::Storage(e.to_string()),
    }
}

impl TxnStore {
    pub fn new(data_dir: &Path, shard_id: usize, shard_count: usize) -> TxnStore {
        TxnStore {
            root: data_dir.join(TXN_DIR),
            shard_id,
            shard_count: shard_count.max(1),
            logs: RefCell::new(BTreeMap::new()),
            replicated: None,
        }
    }

    /// Keeps the state in the replicated partitions attached later, not in `.transactions`.
    pub fn replicate(&mut self) {
        self.replicated = Some(StatePartitions::default());
    }

    pub fn replicas(&self) -> Option<&StatePartitions> {
        self.replicated.as_ref()
    }

    /// Whether this store answers for `transactional_id`: always on a single node's own
    /// logs; in a cluster only while leading its partition with the state loaded.
    pub fn serving(&self, transactional_id: &str) -> Serving {
        match &self.replicated {
            None => Serving::Yes,
            Some(replicas) => replicas.serving(offsets_partition(transactional_id)),
        }
    }

    /// What changed in the leadership of the attached partitions (in a cluster).
    pub fn leadership_changes(&self) -> LeadershipChanges {
        self.replicated
            .as_ref()
            .map(StatePartitions::leadership_changes)
            .unwrap_or_default()
    }

    /// Reads the transactions of replicated `partition`, led in `term`, from its log;
    /// `None` when the leadership was lost meanwhile (the next look loads it again).
    pub async fn load_partition(
        &self,
        partition: u32,
        term: u64,
    ) -> Result<Option<Txns>, TxnError> {
        let Some(replicas) = &self.replicated else {
            return Ok(None);
        };
        let Some(log) = replicas.log(partition) else {
            return Ok(None);
        };
        let path = PathBuf::from(format!("{TXN_STATE_TOPIC}-{partition}"));
        let mut txns = Txns::new();
        state_log::read_records(&log, &path, |record| apply(&mut txns, record))
            .await
            .map_err(storage)?;
        Ok(replicas.mark_loaded(partition, term).then_some(txns))
    }

    /// Opens (or creates) and replays the state log of every partition this shard owns.
    pub async fn load(&self) -> Result<Txns, TxnError> {
        let mut all = Txns::new();
        if self.replicated.is_some() {
            // Loaded partition by partition as this shard comes to lead them.
            return Ok(all);
        }
        let owned = (0..OFFSETS_PARTITION_COUNT)
            .filter(|p| *p as usize % self.shard_count == self.shard_id)
            .collect::<Vec<u32>>();
        for partition in owned {
            let (log, txns) = StateLog::open(
                partition_dir(&self.root, partition),
                LOG_CONFIG,
                crate::io::clock::now_ms(),
                apply,
            )
            .await
            .map_err(storage)?;
            all.extend(txns);
            self.logs.borrow_mut().insert(partition, Rc::new(log));
        }
        Ok(all)
    }

    /// Appends the new state of `transactional_id`.
    pub fn persist(
        &self,
        transactional_id: &str,
        metadata: &TxnMetadata,
    ) -> Result<Durable, TxnError> {
        let record = TxnRecord::Txn {
            transactional_id: transactional_id.to_owned(),
            metadata: metadata.clone(),
        };
        self.append(transactional_id, record)
    }

    /// Appends that `transactional_id` expired.
    pub fn forget(&self, transactional_id: &str) -> Result<Durable, TxnError> {
        let record = TxnRecord::Expired {
            transactional_id: transactional_id.to_owned(),
        };
        self.append(transactional_id, record)
    }

    fn append(&self, transactional_id: &str, record: TxnRecord) -> Result<Durable, TxnError> {
        let partition = offsets_partition(transactional_id);
        if let Some(replicas) = &self.replicated {
            let now = crate::io::clock::now_ms();
            let batches = state_log::encode_record_batches(
                &[record],
                LOG_CONFIG.batch_record_count_max,
                REPLICATED_BATCH_BYTES_MAX,
                now,
            )
            .map_err(|e| TxnError::Storage(e.to_string()))?;
            let id = transactional_id.to_owned();
            let proposed = replicas
                .propose(partition, batches, now)
                .map_err(|e| not_proposed(e, &id))?;
            return Ok(Box::pin(async move {
                proposed.await.map_err(|e| not_proposed(e, &id))
            }));
        }
        let Some(log) = self.logs.borrow().get(&partition).cloned() else {
            return Err(TxnError::NotCoordinator(transactional_id.to_owned()));
        };
        let appended = log
            .append(&[record], crate::io::clock::now_ms())
            .map_err(storage)?;
        Ok(Box::pin(async move {
            appended.wait_durable().await.map_err(storage)
        }))
    }

    /// Compacts every log that grew past the threshold; `snapshot(p)` gives the state of
    /// partition `p`'s transactional ids.
    pub async fn compact_if_large(
        &self,
        snapshot: impl Fn(u32) -> Vec<TxnRecord>,
    ) -> Result<(), TxnError> {
        let due: Vec<(u32, Rc<StateLog<TxnRecord>>)> = self
            .logs
            .borrow()
            .iter()
            .filter(|(_, log)| log.needs_compaction(COMPACT_BYTES))
            .map(|(p, log)| (*p, Rc::clone(log)))
            .collect();
        for (partition, log) in due {
            log.compact(crate::io::clock::now_ms(), || snapshot(partition))
                .await
                .map_err(storage)?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        let logs = std::mem::take(&mut *self.logs.borrow_mut());
        for (partition, log) in logs {
            if let Err(e) = log.close().await {
                tracing::error!(partition, error = %e, "closing a transaction log failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips() {
        let mut metadata = TxnMetadata::new(42, 60_000);
        metadata.epoch = 3;
        metadata.last_epoch = 2;
        metadata.state = TxnState::PrepareCommit;
        metadata.start_ms = 99;
        metadata.partitions.insert(("orders".to_owned(), 2));
        metadata.groups.insert("g".to_owned());
        metadata.offsets.push(PendingOffset {
            group: "g".to_owned(),
            topic: "in".to_owned(),
            partition: 0,
            offset: CommittedOffset {
                offset: 17,
                leader_epoch: -1,
                metadata: "m".to_owned(),
                commit_timestamp_ms: 5,
            },
        });
        let record = TxnRecord::Txn {
            transactional_id: "tx".to_owned(),
            metadata,
        };
        let (key, value) = record.encode().expect("encode");
        assert_eq!(
            TxnRecord::decode(Some(key), value).expect("decode"),
            Some(record)
        );
        let marker = TxnRecord::SnapshotComplete { generation: 4 };
        let (key, value) = marker.encode().expect("encode");
        assert_eq!(
            TxnRecord::decode(Some(key), value).expect("decode"),
            Some(marker)
        );
    }

    #[test]
    fn state_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_owned();
        crate::io::block_on_local(async move {
            let store = TxnStore::new(&data_dir, 0, 1);
            assert!(store.load().await.expect("load").is_empty());
            let mut metadata = TxnMetadata::new(1, 1_000);
            store
                .persist("a", &metadata)
                .expect("persist")
                .await
                .expect("durable");
            metadata.epoch = 5;
            for id in ["a", "b"] {
                store
                    .persist(id, &metadata)
                    .expect("persist")
                    .await
                    .expect("durable");
            }
            store.forget("b").expect("forget").await.expect("durable");
            // No close: as after kill -9.
            drop(store);
            let reopened = TxnStore::new(&data_dir, 0, 1);
            let txns = reopened.load().await.expect("reload");
            assert_eq!(txns.get("a").map(|m| m.epoch), Some(5));
            assert!(!txns.contains_key("b"), "an expired id stays forgotten");
            reopened.close().await;
        });
    }
}
