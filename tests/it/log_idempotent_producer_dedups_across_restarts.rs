//! Idempotent producers at the log level: a retried batch among a producer's last five is
//! answered with its original offsets and not appended again; gaps, new epochs not starting
//! at 0 and stale epochs are refused; the state survives a clean restart (snapshot), a crash
//! (snapshot at the last roll plus the batch headers after it), and a torn tail (a snapshot
//! past the recovered end is not trusted); idle producers expire.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use sluice::log::testing::{make_batch_with, ProducerFields};
use sluice::log::{AppendInfo, LogConfig, LogError, PartitionLog};

const PRODUCER: i64 = 4242;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn batch(epoch: i16, seq: i32, records: i32) -> Bytes {
    Bytes::from(make_batch_with(
        records,
        100,
        1_000,
        ProducerFields {
            producer_id: PRODUCER,
            producer_epoch: epoch,
            base_sequence: seq,
        },
    ))
}

fn append(log: &PartitionLog, epoch: i16, seq: i32, records: i32) -> Result<AppendInfo, LogError> {
    log.append(batch(epoch, seq, records), 0)
}

fn snapshots(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".snapshot"))
        .collect();
    names.sort();
    names
}

#[test]
fn sequence_rules_and_duplicates() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("p");
    sluice::io::block_on_local(async move {
        let log = PartitionLog::open(dir, config()).await.expect("open");
        let first = append(&log, 0, 0, 3).expect("seq 0");
        assert_eq!(
            (first.base_offset, first.last_offset, first.duplicate),
            (0, 2, false)
        );
        let second = append(&log, 0, 3, 2).expect("seq 3");
        assert_eq!((second.base_offset, second.last_offset), (3, 4));
        let retry = append(&log, 0, 0, 3).expect("duplicate");
        assert_eq!(
            (retry.base_offset, retry.last_offset, retry.duplicate),
            (0, 2, true)
        );
        assert_eq!(log.log_end_offset(), 5, "a duplicate is not appended");
        log.wait_durable(retry.last_offset).await.expect("durable");
        assert!(matches!(
            append(&log, 0, 6, 1),
            Err(LogError::OutOfOrderSequence {
                sequence: 6,
                expected: 5,
                ..
            })
        ));
        assert!(matches!(
            append(&log, 1, 5, 1),
            Err(LogError::OutOfOrderSequence { expected: 0, .. })
        ));
        append(&log, 1, 0, 1).expect("new epoch from 0");
        assert!(matches!(
            append(&log, 0, 5, 1),
            Err(LogError::InvalidProducerEpoch {
                epoch: 0,
                current_epoch: 1,
                ..
            })
        ));
        // Unknown producers are accepted at any sequence (Kafka >= 2.5).
        let other = make_batch_with(
            1,
            10,
            0,
            ProducerFields {
                producer_id: 7,
                producer_epoch: 0,
                base_sequence: 99,
            },
        );
        let mut two = other.clone();
        two.extend_from_slice(&other);
        assert!(matches!(
            log.append(Bytes::from(two), 0),
            Err(LogError::InvalidRecord { .. })
        ));
        log.append(Bytes::from(other), 0).expect("unknown producer");
        assert_eq!(log.log_end_offset(), 7);
        log.close().await.expect("close");
    });
}

/// Appends `count` one-record batches with sequences `from..from + count` (epoch 0).
fn append_run(log: &PartitionLog, from: i32, count: i32) -> Vec<AppendInfo> {
    (from..from + count)
        .map(|seq| append(log, 0, seq, 1).expect("append"))
        .collect()
}

async fn assert_state_after(dir: PathBuf, infos: &[AppendInfo], next_seq: i32, what: &str) {
    let log = PartitionLog::open(dir, config()).await.expect("reopen");
    let leo = log.log_end_offset();
    // The last five batches are recognised with their original offsets.
    for (i, info) in infos.iter().enumerate().rev().take(5) {
        let seq = next_seq - (infos.len() - i) as i32;
        let retry = append(&log, 0, seq, 1).expect("retry");
        assert!(retry.duplicate, "{what}: seq {seq} is a duplicate");
        assert_eq!(retry.base_offset, info.base_offset, "{what}: seq {seq}");
    }
    assert_eq!(log.log_end_offset(), leo, "{what}: nothing appended");
    assert!(
        matches!(
            append(&log, 0, next_seq + 1, 1),
            Err(LogError::OutOfOrderSequence { .. })
        ),
        "{what}: gap"
    );
    let next = append(&log, 0, next_seq, 1).expect("next");
    assert_eq!(next.base_offset, leo, "{what}");
    assert!(!next.duplicate);
    log.close().await.expect("close");
}

#[test]
fn state_survives_clean_restart_and_crash() {
    let base = tempfile::tempdir().expect("tempdir");
    let clean = base.path().join("clean");
    let crashed = base.path().join("crashed");
    for (dir, crash) in [(clean, false), (crashed, true)] {
        let work = dir.clone();
        let infos = sluice::io::block_on_local(async move {
            let log = PartitionLog::open(work, config()).await.expect("open");
            // ~160 bytes a batch, 4 KiB segments: several rolls.
            let infos = append_run(&log, 0, 60);
            log.wait_durable(infos[59].last_offset)
                .await
                .expect("durable");
            assert!(log.segment_count() > 2);
            if !crash {
                log.close().await.expect("close");
            }
            // Otherwise "crash": the executor goes away without close.
            infos
        });
        let names = snapshots(&dir);
        assert!(!names.is_empty() && names.len() <= 2, "{names:?}");
        let what = if crash {
            "after a crash"
        } else {
            "after a clean close"
        };
        sluice::io::block_on_local(assert_state_after(dir, &infos, 60, what));
    }
}

#[test]
fn snapshot_past_a_torn_tail_is_not_trusted() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("p");
    let work = dir.clone();
    let infos = sluice::io::block_on_local(async move {
        let log = PartitionLog::open(work, LogConfig::default())
            .await
            .expect("open");
        let infos = append_run(&log, 0, 8);
        log.close().await.expect("close");
        infos
    });
    assert_eq!(snapshots(&dir), vec![format!("{:020}.snapshot", 8)]);
    // Lose the last batch (seq 7) as a torn write would.
    let segment = dir.join(format!("{:020}.log", 0));
    let len = std::fs::metadata(&segment).expect("stat").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open");
    file.set_len(len - 10).expect("truncate");
    sluice::io::block_on_local(async move {
        let log = PartitionLog::open(dir.clone(), LogConfig::default())
            .await
            .expect("reopen");
        assert_eq!(log.log_end_offset(), 7);
        assert!(snapshots(&dir).is_empty(), "the snapshot at 8 is gone");
        // The retry of the lost batch is appended, not answered as a duplicate.
        let retry = append(&log, 0, 7, 1).expect("retry of the lost batch");
        assert!(!retry.duplicate);
        assert_eq!(retry.base_offset, 7);
        let dup = append(&log, 0, 6, 1).expect("duplicate");
        assert!(dup.duplicate);
        assert_eq!(dup.base_offset, infos[6].base_offset);
        log.close().await.expect("close");
    });
}

#[test]
fn idle_producers_expire() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("p");
    sluice::io::block_on_local(async move {
        let config = LogConfig {
            producer_id_expiration_ms: 1_000,
            ..config()
        };
        let log = PartitionLog::open(dir, config).await.expect("open");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64;
        log.append(batch(0, 0, 1), now).expect("append");
        log.enforce_retention(now + 999).await.expect("retention");
        assert!(append(&log, 0, 5, 1).is_err(), "still known: a gap");
        log.enforce_retention(now + 1_000).await.expect("retention");
        // Forgotten: accepted at any sequence.
        append(&log, 0, 5, 1).expect("unknown again");
        log.close().await.expect("close");
    });
}
