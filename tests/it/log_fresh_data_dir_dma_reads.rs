//! glommio's polled-I/O probe case: the first DMA file this thread opens is in a fresh, empty
//! data directory, and cold DMA reads of segment data still work afterwards.

use bytes::Bytes;
use sluice::log::testing::make_batch;
use sluice::log::{LogConfig, PartitionLog};

#[test]
fn fresh_empty_data_dir_serves_dma_reads() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("data").join("topic-0");
    sluice::io::block_on_local(async move {
        let log = PartitionLog::open(dir.clone(), LogConfig::default())
            .await
            .expect("open");
        let info = log
            .append(Bytes::from(make_batch(5, 5000, 1)), 0)
            .expect("append");
        log.wait_durable(info.last_offset).await.expect("durable");
        log.close().await.expect("close");
        let log = PartitionLog::open(dir, LogConfig::default())
            .await
            .expect("reopen");
        let read = log.read(2, 1 << 20).await.expect("cold DMA read");
        assert_eq!(
            read.chunks.iter().map(|c| c.len()).sum::<usize>(),
            61 + 5000
        );
        log.close().await.expect("close");
    });
}
