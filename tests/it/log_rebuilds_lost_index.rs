//! Missing or corrupt index files are rebuilt from the segments, after clean and unclean
//! shutdowns alike, and lookups by offset and timestamp still work.

use bytes::Bytes;
use sluice::log::testing::{batch_offsets, concat_chunks, make_batch};
use sluice::log::{LogConfig, PartitionLog};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 8 * 1024,
        index_interval_bytes: 300,
        ..LogConfig::default()
    }
}

#[test]
fn lost_and_corrupt_indexes_are_rebuilt() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("p");
    let path = dir.clone();
    let leo = sluice::io::block_on_local(async move {
        let log = PartitionLog::open(path, config()).await.expect("open");
        for i in 0..200i64 {
            log.append(Bytes::from(make_batch(2, 150, i * 10)), 0)
                .expect("append");
        }
        let leo = log.log_end_offset();
        log.wait_durable(leo - 1).await.expect("durable");
        assert!(log.segment_count() > 3, "segments rolled");
        log.close().await.expect("close");
        leo
    });
    let mut removed = 0;
    for entry in std::fs::read_dir(&dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.ends_with(".index") && removed % 2 == 0 {
            std::fs::remove_file(&path).expect("remove index");
            removed += 1;
        } else if name.ends_with(".index") {
            let mut bytes = std::fs::read(&path).expect("read");
            bytes[0] ^= 0xff;
            std::fs::write(&path, bytes).expect("corrupt index");
            removed += 1;
        } else if name.ends_with(".timeindex") {
            std::fs::write(&path, b"junk").expect("corrupt timeindex");
        }
    }
    assert!(removed > 2);
    sluice::io::block_on_local(async move {
        let log = PartitionLog::open(dir.clone(), config())
            .await
            .expect("reopen");
        assert_eq!(log.log_end_offset(), leo);
        for offset in (0..leo).step_by(37) {
            let read = log.read(offset, 1).await.expect("read");
            let first = batch_offsets(&concat_chunks(&read.chunks))[0];
            assert!(
                first.0 <= offset && offset <= first.1,
                "batch holding {offset}"
            );
        }
        // Batch i has timestamps i*10 .. i*10+1 and offsets 2i .. 2i+1.
        assert_eq!(
            log.offset_for_timestamp(1005).await.expect("ts"),
            Some((202, 1010))
        );
        assert_eq!(
            log.offset_for_timestamp(1011).await.expect("ts"),
            Some((203, 1011))
        );
        assert_eq!(log.offset_for_timestamp(0).await.expect("ts"), Some((0, 0)));
        assert_eq!(log.offset_for_timestamp(1_000_000).await.expect("ts"), None);
        log.close().await.expect("close");
        // Rebuilt indexes were written back.
        let indexes = std::fs::read_dir(&dir)
            .expect("read_dir")
            .filter(|e| {
                e.as_ref()
                    .map(|e| e.file_name().to_string_lossy().ends_with(".index"))
                    .unwrap_or(false)
            })
            .count();
        assert!(indexes >= 4);
    });
}
