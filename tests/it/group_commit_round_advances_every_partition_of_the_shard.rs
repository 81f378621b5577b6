//! Shard-level group commit: the partitions of one shard are made durable by shared
//! fdatasync rounds. Whatever any of them writes while a round runs goes into the next round
//! together, and their high watermarks advance together when it ends. The
//! `io::dma_file::faults` seam holds the first round's fdatasync so the order is fixed.

use std::time::Duration;

use bytes::Bytes;
use futures_lite::future;
use sluice::io::dma_file::faults;
use sluice::log::testing::make_batch;
use sluice::log::{FlushPolicy, LogConfig, PartitionLog};

fn config() -> LogConfig {
    LogConfig {
        flush: FlushPolicy::GroupCommit {
            delay_us: 0,
            bytes_max: 1 << 20,
        },
        ..LogConfig::default()
    }
}

/// Resolves once everything appended to `log` is in its segment file.
async fn written(log: &PartitionLog) {
    log.wait_unwritten_below(1).await;
}

#[test]
fn writes_during_a_round_share_the_next_and_advance_together() {
    let base = tempfile::tempdir().expect("tempdir");
    let (dir0, dir1) = (base.path().join("p0"), base.path().join("p1"));
    sluice::io::block_on_local(async move {
        let p0 = PartitionLog::open(dir0, config()).await.expect("open p0");
        let p1 = PartitionLog::open(dir1, config()).await.expect("open p1");
        faults::enable();
        faults::hold_syncs();

        // Round 1 starts with p0's first batch and is held at its fdatasync.
        let first = p0
            .append(Bytes::from(make_batch(1, 100, 1)), 1)
            .expect("append");
        written(&p0).await;

        // Both partitions write while round 1 runs. (The bound only keeps a writer that
        // waits for its own fsync, as before shard-level commit, from hanging the test.)
        let second = p0
            .append(Bytes::from(make_batch(1, 100, 2)), 2)
            .expect("append");
        let other = p1
            .append(Bytes::from(make_batch(1, 100, 3)), 3)
            .expect("append");
        let both_written = async {
            future::zip(written(&p0), written(&p1)).await;
            true
        };
        let timed_out = async {
            sluice::io::sleep(Duration::from_secs(10)).await;
            false
        };
        let both_written = future::or(both_written, timed_out).await;
        assert_eq!(
            p0.high_watermark(),
            0,
            "nothing durable while round 1 is held"
        );
        assert_eq!(
            p1.high_watermark(),
            0,
            "nothing durable while round 1 is held"
        );

        faults::release_syncs();
        p1.wait_durable(other.last_offset)
            .await
            .expect("p1 durable");
        assert!(both_written, "p0 wrote its second batch while round 1 ran");
        assert_eq!(
            p0.high_watermark(),
            second.last_offset + 1,
            "p0's second batch became durable in the same round as p1's batch"
        );
        assert!(first.last_offset < second.base_offset);
        faults::disable();
        p0.close().await.expect("close p0");
        p1.close().await.expect("close p1");
    });
}
