//! Group commit: each partition has one fdatasync in flight, and its high watermark advances
//! when *its* fdatasync ends. A partition whose file is slow to sync does not hold back the
//! other partitions of the shard, and whatever a partition writes while its fdatasync runs
//! goes into its next one. The `io::dma_file::faults` seam holds chosen fdatasyncs so the
//! order is fixed.

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

/// `wait` if it ends within 10 s (the bound only keeps a broken build from hanging the test).
async fn within_10s(wait: impl std::future::Future<Output = ()>) -> bool {
    let done = async {
        wait.await;
        true
    };
    let timed_out = async {
        sluice::io::sleep(Duration::from_secs(10)).await;
        false
    };
    future::or(done, timed_out).await
}

#[test]
fn a_partition_does_not_wait_for_another_partitions_fdatasync() {
    let base = tempfile::tempdir().expect("tempdir");
    let (dir0, dir1) = (base.path().join("p0"), base.path().join("p1"));
    sluice::io::block_on_local(async move {
        let p0 = PartitionLog::open(dir0, config()).await.expect("open p0");
        let p1 = PartitionLog::open(dir1.clone(), config())
            .await
            .expect("open p1");
        faults::enable();
        faults::hold_syncs_under(&dir1);

        // p1 writes first: its fdatasync starts and is held.
        let slow = p1
            .append(Bytes::from(make_batch(1, 100, 1)), 1)
            .expect("append");
        written(&p1).await;
        // p0 writes while p1's fdatasync runs: under shared rounds it waited for the round
        // that holds p1's.
        let fast = p0
            .append(Bytes::from(make_batch(1, 100, 2)), 2)
            .expect("append");
        let p0_durable = within_10s(async {
            p0.wait_durable(fast.last_offset).await.expect("p0 durable");
        })
        .await;
        assert!(
            p0_durable,
            "p0 became durable while p1's fdatasync was held"
        );
        assert_eq!(p0.high_watermark(), fast.last_offset + 1);
        assert_eq!(
            p1.high_watermark(),
            0,
            "p1 is not durable until its sync ends"
        );

        faults::release_syncs();
        p1.wait_durable(slow.last_offset).await.expect("p1 durable");
        assert_eq!(p1.high_watermark(), slow.last_offset + 1);
        faults::disable();
        p0.close().await.expect("close p0");
        p1.close().await.expect("close p1");
    });
}

#[test]
fn writes_during_a_partitions_fdatasync_go_into_its_next_one() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("p0");
    sluice::io::block_on_local(async move {
        let p0 = PartitionLog::open(dir, config()).await.expect("open p0");
        faults::enable();
        faults::hold_syncs();

        // The first fdatasync starts with the first batch and is held.
        let first = p0
            .append(Bytes::from(make_batch(1, 100, 1)), 1)
            .expect("append");
        written(&p0).await;
        // The writer keeps writing while it runs.
        let second = p0
            .append(Bytes::from(make_batch(1, 100, 2)), 2)
            .expect("append");
        assert!(
            within_10s(written(&p0)).await,
            "p0 wrote its second batch while its fdatasync ran"
        );
        assert_eq!(
            p0.high_watermark(),
            0,
            "nothing durable while the sync is held"
        );

        faults::release_syncs();
        p0.wait_durable(first.last_offset)
            .await
            .expect("first durable");
        p0.wait_durable(second.last_offset)
            .await
            .expect("second durable");
        assert_eq!(p0.high_watermark(), second.last_offset + 1);
        faults::disable();
        p0.close().await.expect("close p0");
    });
}
