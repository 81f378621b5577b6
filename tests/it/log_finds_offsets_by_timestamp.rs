//! ListOffsets by timestamp: the first record whose timestamp is at or after the target (and
//! that record's timestamp), also inside a multi-record batch, across sealed segments, the
//! active one, and memory; never past the high watermark.

use bytes::Bytes;
use sluice::log::testing::make_batch;
use sluice::log::{LogConfig, PartitionLog};

#[test]
fn finds_first_record_at_or_after_timestamp() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("p");
    sluice::io::block_on_local(async move {
        let config = LogConfig {
            segment_bytes: 4096,
            index_interval_bytes: 200,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(dir.clone(), config.clone())
            .await
            .expect("open");
        assert_eq!(log.offset_for_timestamp(0).await.expect("empty"), None);
        // Batch i: 3 records, timestamps 100*i .. 100*i+2, offsets 3i .. 3i+2.
        let mut last = 0;
        for i in 0..100i64 {
            last = log
                .append(Bytes::from(make_batch(3, 100, 100 * i)), 0)
                .expect("append")
                .last_offset;
        }
        log.wait_durable(last).await.expect("durable");
        assert!(log.segment_count() > 2);
        let check = |log: PartitionLog| async move {
            assert_eq!(
                log.offset_for_timestamp(-5).await.expect("ts"),
                Some((0, 0))
            );
            assert_eq!(log.offset_for_timestamp(1).await.expect("ts"), Some((1, 1)));
            assert_eq!(log.offset_for_timestamp(2).await.expect("ts"), Some((2, 2)));
            assert_eq!(
                log.offset_for_timestamp(3).await.expect("ts"),
                Some((3, 100))
            );
            assert_eq!(
                log.offset_for_timestamp(5050).await.expect("ts"),
                Some((153, 5100))
            );
            assert_eq!(
                log.offset_for_timestamp(5101).await.expect("ts"),
                Some((154, 5101))
            );
            assert_eq!(
                log.offset_for_timestamp(9902).await.expect("ts"),
                Some((299, 9902))
            );
            assert_eq!(log.offset_for_timestamp(9903).await.expect("ts"), None);
        };
        check(log.clone()).await;
        log.close().await.expect("close");
        let log = PartitionLog::open(dir, config).await.expect("reopen");
        check(log.clone()).await;
        log.close().await.expect("close");
    });
}
