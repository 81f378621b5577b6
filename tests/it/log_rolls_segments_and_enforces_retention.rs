//! Segments roll on size and on age; retention deletes whole sealed segments by time and by
//! size, advances the log start offset, and offsets are never reused.

use bytes::Bytes;
use sluice::log::testing::make_batch;
use sluice::log::{LogConfig, LogError, PartitionLog};

fn count_logs(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .filter(|e| {
            e.as_ref()
                .map(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn rolls_on_size_and_age() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("p");
    sluice::io::block_on_local(async move {
        let config = LogConfig {
            segment_bytes: 4096,
            segment_ms: 1000,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(dir.clone(), config).await.expect("open");
        // 1000-byte batches: four fit in 4096 bytes, the fifth rolls.
        for _ in 0..5 {
            log.append(Bytes::from(make_batch(1, 939, 0)), 0)
                .expect("append");
        }
        assert_eq!(log.segment_count(), 2);
        // Age: the active segment's first append was at t=0; at t=1000 it rolls.
        log.append(Bytes::from(make_batch(1, 10, 0)), 999)
            .expect("append");
        assert_eq!(log.segment_count(), 2);
        let info = log
            .append(Bytes::from(make_batch(1, 10, 0)), 1000)
            .expect("append");
        assert_eq!(log.segment_count(), 3);
        log.wait_durable(info.last_offset).await.expect("durable");
        log.close().await.expect("close");
        assert_eq!(count_logs(&dir), 3);
        assert!(dir.join("00000000000000000004.log").exists());
        assert!(dir.join("00000000000000000006.log").exists());
        // Sealed segments are exactly their data.
        assert_eq!(
            std::fs::metadata(dir.join("00000000000000000000.log"))
                .expect("meta")
                .len(),
            4000
        );
    });
}

#[test]
fn retention_by_time_and_size() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("p");
    sluice::io::block_on_local(async move {
        let config = LogConfig {
            segment_bytes: 4096,
            retention_ms: Some(10_000),
            retention_bytes: None,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(dir.clone(), config.clone())
            .await
            .expect("open");
        // 8 segments of 4 batches; batch timestamps 0, 1000, 2000, ...
        let mut last = 0;
        for i in 0..32i64 {
            let info = log
                .append(Bytes::from(make_batch(1, 939, i * 1000)), 0)
                .expect("append");
            last = info.last_offset;
        }
        log.wait_durable(last).await.expect("durable");
        assert_eq!(log.segment_count(), 8);
        // now = 20_000: segments whose newest timestamp < 10_000 go: those with
        // batches 0..=3 (max 3000) and 4..=7 (max 7000); 8..=11 has max 11_000 and stays.
        log.enforce_retention(20_000).await.expect("retention");
        assert_eq!(log.log_start_offset(), 8);
        assert_eq!(log.segment_count(), 6);
        assert!(!dir.join("00000000000000000000.log").exists());
        assert!(matches!(
            log.read(3, 1000).await,
            Err(LogError::OffsetOutOfRange {
                requested: 3,
                log_start: 8,
                ..
            })
        ));
        assert!(log.read(8, 1000).await.is_ok());
        // Size: keep at most 3 segments' worth (12_000 bytes); the active one is never deleted.
        log.update_config(LogConfig {
            retention_ms: None,
            retention_bytes: Some(12_000),
            ..config.clone()
        });
        log.enforce_retention(20_000).await.expect("retention");
        assert_eq!(log.segment_count(), 3);
        assert_eq!(log.log_start_offset(), 20);
        assert_eq!(count_logs(&dir), 3);
        log.close().await.expect("close");

        // Offsets are never reused after a restart.
        let log = PartitionLog::open(dir.clone(), config)
            .await
            .expect("reopen");
        assert_eq!(log.log_start_offset(), 20);
        assert_eq!(log.log_end_offset(), 32);
        let info = log
            .append(Bytes::from(make_batch(1, 10, 0)), 0)
            .expect("append");
        assert_eq!(info.base_offset, 32);
        assert_eq!(info.log_start_offset, 20);
        log.close().await.expect("close");
    });
}
