//! After a crash, reopening leaves exactly the longest valid prefix of the log: the active
//! segment is cut at every byte inside its last batches, or has single bytes corrupted, and
//! no batch acknowledged as durable is lost by a process crash.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use sluice::log::testing::{batch_offsets, make_batch};
use sluice::log::{LogConfig, PartitionLog};

const BATCH_COUNT: usize = 12;
const TAIL_BATCHES: usize = 3;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

/// Writes BATCH_COUNT durable batches and "crashes" (drops the executor without close).
/// Returns each batch's (start position, end position, last offset).
fn write_crashed_log(dir: &Path) -> Vec<(u64, u64, i64)> {
    let dir = dir.to_path_buf();
    sluice::io::block_on_local(async move {
        let log = PartitionLog::open(dir, config()).await.expect("open");
        let mut layout = Vec::new();
        let mut position = 0u64;
        for i in 0..BATCH_COUNT {
            let batch = make_batch(1 + (i % 4) as i32, 40 + i * 13, i as i64);
            let len = batch.len() as u64;
            let info = log.append(Bytes::from(batch), 0).expect("append");
            layout.push((position, position + len, info.last_offset));
            position += len;
        }
        let last = layout.last().expect("batches").2;
        log.wait_durable(last).await.expect("durable");
        layout
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

fn segment_path(dir: &Path) -> PathBuf {
    dir.join(format!("{:020}.log", 0))
}

/// Reopens `dir` and asserts it holds exactly `expected_batches` batches.
async fn assert_prefix(
    dir: PathBuf,
    layout: &[(u64, u64, i64)],
    expected_batches: usize,
    what: &str,
) {
    let log = PartitionLog::open(dir, config()).await.expect("reopen");
    let expected_leo = if expected_batches == 0 {
        0
    } else {
        layout[expected_batches - 1].2 + 1
    };
    assert_eq!(log.log_end_offset(), expected_leo, "{what}");
    assert_eq!(log.high_watermark(), expected_leo, "{what}");
    if expected_leo > 0 {
        let read = log.read(0, usize::MAX).await.expect("read");
        let data: Vec<u8> = read.chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(batch_offsets(&data).len(), expected_batches, "{what}");
    }
    // The log accepts appends right after the valid prefix.
    let info = log
        .append(Bytes::from(make_batch(1, 10, 99)), 0)
        .expect("append");
    assert_eq!(info.base_offset, expected_leo, "{what}");
    log.wait_durable(info.last_offset).await.expect("durable");
    log.close().await.expect("close");
}

#[test]
fn cut_at_every_byte_of_the_tail() {
    let base = tempfile::tempdir().expect("tempdir");
    let original = base.path().join("original");
    let layout = write_crashed_log(&original);
    let tail_start = layout[BATCH_COUNT - TAIL_BATCHES].0;
    let end = layout[BATCH_COUNT - 1].1;
    let root = base.path().to_path_buf();
    sluice::io::block_on_local(async move {
        for cut in tail_start..=end {
            let dir = root.join(format!("cut-{cut}"));
            copy_dir(&original, &dir);
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(segment_path(&dir))
                .expect("open segment");
            file.set_len(cut).expect("cut");
            let whole = layout.iter().filter(|b| b.1 <= cut).count();
            assert_prefix(dir.clone(), &layout, whole, &format!("cut at {cut}")).await;
            std::fs::remove_dir_all(&dir).expect("cleanup");
        }
    });
}

#[test]
fn corrupt_single_bytes_of_the_tail() {
    let base = tempfile::tempdir().expect("tempdir");
    let original = base.path().join("original");
    let layout = write_crashed_log(&original);
    let tail_start = layout[BATCH_COUNT - TAIL_BATCHES].0;
    let end = layout[BATCH_COUNT - 1].1;
    let root = base.path().to_path_buf();
    sluice::io::block_on_local(async move {
        for position in tail_start..end {
            let dir = root.join(format!("flip-{position}"));
            copy_dir(&original, &dir);
            let path = segment_path(&dir);
            let mut bytes = std::fs::read(&path).expect("read segment");
            bytes[position as usize] ^= 0x40;
            std::fs::write(&path, &bytes).expect("write segment");
            let hit = layout
                .iter()
                .position(|b| b.0 <= position && position < b.1)
                .expect("inside a batch");
            // partitionLeaderEpoch (bytes 12..16) is outside the CRC, as in Kafka.
            let within = position - layout[hit].0;
            let expected = if (12..16).contains(&within) {
                BATCH_COUNT
            } else {
                hit
            };
            assert_prefix(
                dir.clone(),
                &layout,
                expected,
                &format!("flip at {position}"),
            )
            .await;
            std::fs::remove_dir_all(&dir).expect("cleanup");
        }
    });
}

#[test]
fn durable_batches_survive_a_process_crash() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("p");
    let path = dir.clone();
    let acknowledged = sluice::io::block_on_local(async move {
        let log = PartitionLog::open(path, config()).await.expect("open");
        let mut acknowledged = -1;
        for round in 0..20 {
            let mut last = 0;
            for i in 0..5 {
                let info = log
                    .append(Bytes::from(make_batch(3, 100 + i * 7, round)), 0)
                    .expect("append");
                last = info.last_offset;
            }
            log.wait_durable(last).await.expect("durable");
            acknowledged = last;
        }
        // More appends in flight, never acknowledged, then the process "dies".
        for i in 0..5 {
            log.append(Bytes::from(make_batch(2, 50 + i, 1)), 0)
                .expect("append");
        }
        acknowledged
    });
    sluice::io::block_on_local(async move {
        let log = PartitionLog::open(dir, config()).await.expect("reopen");
        assert!(log.log_end_offset() > acknowledged, "durable data lost");
        let mut offset = 0;
        while offset < log.high_watermark() {
            let read = log.read(offset, 1 << 20).await.expect("read");
            let data: Vec<u8> = read.chunks.iter().flat_map(|c| c.iter().copied()).collect();
            let batches = batch_offsets(&data);
            assert_eq!(batches[0].0, offset, "contiguous");
            offset = batches.last().expect("some").1 + 1;
        }
        log.close().await.expect("close");
    });
}
