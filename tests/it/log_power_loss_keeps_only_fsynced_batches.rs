//! Simulated power loss (the `io::dma_file::faults` seam drops everything written but not yet
//! fdatasynced): after reopening, the log is exactly a prefix of what was appended, and it
//! holds every batch whose `wait_durable` succeeded. Also: a failing write fails the log
//! without losing anything acknowledged.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use sluice::io::dma_file::faults;
use sluice::log::testing::{batch_offsets, concat_chunks, make_batch};
use sluice::log::{FlushPolicy, LogConfig, LogError, PartitionLog};

fn config(flush: FlushPolicy) -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 10,
        index_interval_bytes: 1024,
        flush,
        ..LogConfig::default()
    }
}

fn group_commit() -> FlushPolicy {
    FlushPolicy::GroupCommit {
        delay_us: 0,
        bytes_max: 1 << 20,
    }
}

fn originals(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| make_batch(1 + (i % 5) as i32, 100 + (i * 37) % 900, i as i64))
        .collect()
}

/// Reopens `dir` and checks it holds a prefix of `originals` (bytes identical apart from the
/// broker-set fields) of at least `acked` batches. Returns the number of batches held.
fn reopen_and_check(dir: &Path, originals: &[Vec<u8>], acked: usize) -> usize {
    let dir = dir.to_path_buf();
    let originals = originals.to_vec();
    sluice::io::block_on_local(async move {
        let log = PartitionLog::open(dir, config(group_commit()))
            .await
            .expect("reopen");
        // One read stops at the end of a segment: read on until the high watermark.
        let mut data = Vec::new();
        let mut next = 0;
        while next < log.high_watermark() {
            let chunk = concat_chunks(&log.read(next, usize::MAX).await.expect("read").chunks);
            let Some(&(_, last, _)) = batch_offsets(&chunk).last() else {
                panic!("an empty read at offset {next} below the high watermark");
            };
            data.extend_from_slice(&chunk);
            next = last + 1;
        }
        let held = batch_offsets(&data).len();
        assert!(
            held >= acked,
            "{held} batches survived, {acked} were acknowledged"
        );
        let mut p = 0;
        for original in &originals[..held] {
            let stored = &data[p..p + original.len()];
            assert_eq!(&stored[16..], &original[16..], "batch content");
            p += original.len();
        }
        assert_eq!(p, data.len(), "nothing but whole appended batches");
        log.close().await.expect("close");
        held
    })
}

#[test]
fn unsynced_writes_are_lost_and_fsynced_ones_kept() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir: PathBuf = base.path().join("p");
    let batches = originals(30);
    let work = dir.clone();
    let sent = batches.clone();
    faults::enable();
    sluice::io::block_on_local(async move {
        let log = PartitionLog::open(work, config(group_commit()))
            .await
            .expect("open");
        let mut last = 0;
        for batch in &sent[..20] {
            last = log
                .append(Bytes::from(batch.clone()), 0)
                .expect("append")
                .last_offset;
        }
        log.wait_durable(last).await.expect("durable");
        // Written to the file but never fsynced.
        log.update_config(config(FlushPolicy::Never));
        for batch in &sent[20..] {
            last = log
                .append(Bytes::from(batch.clone()), 0)
                .expect("append")
                .last_offset;
        }
        log.wait_durable(last).await.expect("written");
        // Power loss: the executor stops without closing the log.
    });
    let undone = faults::lose_unsynced().expect("power loss");
    faults::disable();
    assert!(undone > 0, "the unsynced writes were tracked");
    assert_eq!(reopen_and_check(&dir, &batches, 20), 20);
}

#[test]
fn power_loss_at_random_points_keeps_every_acknowledged_batch() {
    let batches = originals(200);
    for cut_after in [3usize, 41, 97, 160, 199] {
        let base = tempfile::tempdir().expect("tempdir");
        let dir = base.path().join("p");
        let work = dir.clone();
        let sent = batches.clone();
        faults::enable();
        let acked = sluice::io::block_on_local(async move {
            let log = PartitionLog::open(work, config(group_commit()))
                .await
                .expect("open");
            let acked = Rc::new(RefCell::new(Vec::new()));
            let mut waits = Vec::new();
            for (i, batch) in sent.iter().enumerate() {
                let info = log.append(Bytes::from(batch.clone()), 0).expect("append");
                let (log, acked) = (log.clone(), acked.clone());
                waits.push(sluice::io::spawn(async move {
                    if log.wait_durable(info.last_offset).await.is_ok() {
                        acked.borrow_mut().push(i);
                    }
                }));
                if i % 7 == 0 {
                    sluice::io::sleep(Duration::from_micros(200)).await;
                }
                if i == cut_after {
                    break;
                }
            }
            // The power goes: no write submitted from now on reaches the disk; let the ones
            // in flight finish so nothing lands after the simulated loss.
            faults::fail_writes_after(0, libc::EIO);
            sluice::io::sleep(Duration::from_millis(50)).await;
            let acked = acked.borrow().clone();
            drop(waits);
            acked
        });
        let undone = faults::lose_unsynced().expect("power loss");
        faults::disable();
        let acked_count = acked.iter().max().map_or(0, |&i| i + 1);
        assert_eq!(acked.len(), acked_count, "acknowledged in append order");
        let held = reopen_and_check(&dir, &batches, acked_count);
        assert!(
            held <= cut_after + 1,
            "cut {cut_after}: held {held}, undone {undone}"
        );
    }
}

#[test]
fn failing_write_fails_the_log_and_loses_nothing_acknowledged() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("p");
    let batches = originals(40);
    let work = dir.clone();
    let sent = batches.clone();
    faults::enable();
    faults::fail_writes_after(12, libc::EIO);
    let acked = sluice::io::block_on_local(async move {
        let log = PartitionLog::open(work, config(group_commit()))
            .await
            .expect("open");
        let mut acked = 0;
        for batch in &sent {
            let Ok(info) = log.append(Bytes::from(batch.clone()), 0) else {
                break;
            };
            if log.wait_durable(info.last_offset).await.is_err() {
                break;
            }
            acked += 1;
        }
        assert!(acked < sent.len(), "the injected failure happened");
        assert!(
            log.append(Bytes::from(sent[0].clone()), 0).is_err(),
            "the log failed"
        );
        acked
    });
    faults::lose_unsynced().expect("power loss");
    faults::disable();
    assert!(acked > 0);
    assert_eq!(reopen_and_check(&dir, &batches, acked), acked);
}

/// A full disk in the middle of a chain of small writes (earlier writes done, a later one
/// refused with ENOSPC): the writer keeps the queued batches and retries, and once there is
/// room again everything is written in order and survives a power loss after its fsync.
#[test]
fn a_full_disk_mid_chain_is_retried_and_loses_nothing() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("p");
    let batches = originals(40);
    let work = dir.clone();
    let sent = batches.clone();
    faults::enable();
    sluice::io::block_on_local(async move {
        let config = LogConfig {
            // Many writes per flush, so the failure lands inside a chain.
            write_bytes_max: 4096,
            ..config(group_commit())
        };
        let log = PartitionLog::open(work, config).await.expect("open");
        faults::fail_writes_after(3, libc::ENOSPC);
        let mut last = 0;
        for batch in &sent {
            last = log
                .append(Bytes::from(batch.clone()), 0)
                .expect("append")
                .last_offset;
        }
        for _ in 0..400 {
            if log.is_storage_full() {
                break;
            }
            sluice::io::sleep(Duration::from_millis(5)).await;
        }
        assert!(log.is_storage_full(), "the injected ENOSPC was hit");
        assert!(
            matches!(log.wait_durable(last).await, Err(LogError::StorageFull)),
            "nothing is acknowledged as durable while the disk is full"
        );
        // Room again: the writer's retry picks up where the refused write was.
        faults::fail_writes_after(u64::MAX, libc::ENOSPC);
        let mut attempts = 0;
        loop {
            match log.wait_durable(last).await {
                Ok(()) => break,
                Err(LogError::StorageFull) if attempts < 400 => {
                    attempts += 1;
                    sluice::io::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("durability after the disk had room again: {e:?}"),
            }
        }
        assert!(!log.is_storage_full());
        // Power loss: the executor stops without closing the log.
    });
    faults::lose_unsynced().expect("power loss");
    faults::disable();
    assert_eq!(
        reopen_and_check(&dir, &batches, batches.len()),
        batches.len()
    );
}
