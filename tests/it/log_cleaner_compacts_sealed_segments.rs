//! The log cleaner on a `PartitionLog`: sealed segments keep only each key's newest record
//! (in every compression codec), tombstones get a delete horizon and go once it passes,
//! timestamps and offsets survive, and a cleaned log reopens intact after a crash between
//! the swap and the index write, with a stray `.cleaned` file removed; records younger than
//! `min.compaction.lag.ms` are not compacted. Segments left empty are removed, and reads
//! skip the gaps. The cleaner's checkpoint survives a restart.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use sluice::log::{CleanSummary, CleanupPolicy, LogConfig, OffsetMap, PartitionLog};

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// (key, value, timestamp) read back: offset -> record.
type Contents = BTreeMap<i64, (Vec<u8>, Option<Vec<u8>>, i64)>;

fn batch(compression: Compression, records: &[(&str, Option<&str>)], timestamp: i64) -> Bytes {
    let records: Vec<(Option<&str>, Option<&str>)> =
        records.iter().map(|(k, v)| (Some(*k), *v)).collect();
    sluice::log::testing::keyed_batch(compression, &records, timestamp)
}

/// Every record, read as a consumer would: batch after batch (a read returns one
/// segment's worth at most), each read starting after the last batch of the previous one.
async fn contents(log: &PartitionLog) -> Contents {
    let mut out = Contents::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let read = log.read(offset, 64 << 20).await.expect("read");
        let joined = sluice::log::testing::concat_chunks(&read.chunks);
        let batches = sluice::log::testing::batch_offsets(&joined);
        let (_, last, _) = *batches.last().expect("a read below the high watermark");
        let mut bytes = Bytes::from(joined);
        for set in RecordBatchDecoder::decode_all(&mut bytes).expect("valid batches") {
            for record in set.records {
                let key = record.key.expect("keyed").to_vec();
                let value = record.value.map(|v| v.to_vec());
                out.insert(record.offset, (key, value, record.timestamp));
            }
        }
        offset = last + 1;
    }
    out
}

fn config(delete_retention_ms: i64) -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        cleanup: CleanupPolicy {
            delete: false,
            compact: true,
        },
        delete_retention_ms,
        ..LogConfig::default()
    }
}

/// Appends rounds of writes to keys a..e in `compression`, `e` deleted in the last round,
/// then a batch of its own to seal the rest. Returns what was written per offset.
async fn fill(log: &PartitionLog, compression: Compression) -> Contents {
    let mut written = Contents::new();
    // Values that do not compress away, so that every codec fills several segments.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = || {
        (0..25)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                format!("{:08x}", seed as u32)
            })
            .collect::<String>()
    };
    for round in 0..12 {
        let values: Vec<(String, Option<String>)> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|key| {
                let value = (round < 11 || *key != "e").then(|| format!("{key}{round}{}", noise()));
                (key.to_string(), value)
            })
            .collect();
        let pairs: Vec<(&str, Option<&str>)> = values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        let timestamp = 1_000 + round * 10;
        let info = log
            .append(batch(compression, &pairs, timestamp), 0)
            .expect("append");
        for (i, (key, value)) in values.iter().enumerate() {
            written.insert(
                info.base_offset + i as i64,
                (
                    key.clone().into_bytes(),
                    value.clone().map(String::into_bytes),
                    timestamp + i as i64,
                ),
            );
        }
    }
    // Unique keys until the log rolls: every round is then in a sealed segment.
    let segments = log.segment_count();
    let mut filler = 0;
    let info = loop {
        let key = format!("fill-{filler}");
        let value = noise();
        let info = log
            .append(batch(compression, &[(&key, Some(&value))], 5_000), 0)
            .expect("append");
        written.insert(
            info.base_offset,
            (key.into_bytes(), Some(value.into_bytes()), 5_000),
        );
        filler += 1;
        if log.segment_count() > segments {
            break info;
        }
    };
    log.wait_durable(info.last_offset).await.expect("durable");
    written
}

/// Every offset below the high watermark reads as a batch at or after it, even one in a gap
/// the cleaner left at the end of a segment (reads carry on into the next segment).
async fn assert_every_offset_reads(log: &PartitionLog) {
    for offset in log.log_start_offset()..log.high_watermark() {
        let read = log.read(offset, 1).await.expect("read");
        let joined = sluice::log::testing::concat_chunks(&read.chunks);
        let batches = sluice::log::testing::batch_offsets(&joined);
        assert!(
            batches.first().is_some_and(|(_, last, _)| *last >= offset),
            "offset {offset} read {batches:?}"
        );
    }
}

/// What compaction must leave of `written`: the newest record of each key.
fn newest(written: &Contents, tombstones: bool) -> Contents {
    let mut by_key: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
    for (offset, (key, _, _)) in written {
        by_key.insert(key.clone(), *offset);
    }
    by_key
        .values()
        .map(|offset| (*offset, written[offset].clone()))
        .filter(|(_, (_, value, _))| tombstones || value.is_some())
        .collect()
}

#[test]
fn keeps_newest_per_key_in_every_codec_and_drops_tombstones_after_the_horizon() {
    for compression in CODECS {
        let base = tempfile::tempdir().expect("tempdir");
        let dir = base.path().join("p");
        sluice::io::block_on_local(async move {
            let log = PartitionLog::open(dir, config(1_000)).await.expect("open");
            let written = fill(&log, compression).await;
            assert!(
                log.segment_count() > 3,
                "{compression:?}: needs sealed segments"
            );
            let size_before = log.size_bytes();
            let segments_before = log.segment_count();
            let mut map = OffsetMap::with_budget(1 << 20);
            let now = 10_000;
            let summary = log.clean(now, &mut map).await.expect("clean");
            assert!(
                summary.segments_rewritten > 0,
                "{compression:?}: {summary:?}"
            );
            assert!(log.size_bytes() < size_before, "{compression:?}: smaller");
            assert!(
                log.segment_count() < segments_before,
                "{compression:?}: segments left empty are removed"
            );
            assert_eq!(
                contents(&log).await,
                newest(&written, true),
                "{compression:?}: newest per key, tombstone kept, timestamps kept"
            );
            assert_every_offset_reads(&log).await;
            // Within the horizon another pass changes nothing.
            let again = log.clean(now + 1_000, &mut map).await.expect("clean");
            assert_eq!(again.segments_rewritten, 0, "{compression:?}: {again:?}");
            // Past it, the tombstone goes.
            let after = log.clean(now + 1_001, &mut map).await.expect("clean");
            assert_eq!(after.records_removed, 1, "{compression:?}: {after:?}");
            assert_eq!(
                contents(&log).await,
                newest(&written, false),
                "{compression:?}: tombstone removed"
            );
            log.close().await.expect("close");
        });
    }
}

#[test]
fn cleaned_log_recovers_after_crash_between_swap_and_index() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("p");
    sluice::io::block_on_local(async move {
        let log = PartitionLog::open(dir.clone(), config(60_000))
            .await
            .expect("open");
        let written = fill(&log, Compression::None).await;
        let mut map = OffsetMap::with_budget(1 << 20);
        log.clean(10_000, &mut map).await.expect("clean");
        let cleaned = contents(&log).await;
        assert_eq!(cleaned, newest(&written, true));
        let end = log.log_end_offset();
        log.close().await.expect("close");
        // A crash right after a swap: no clean-shutdown marker, the cleaned segments' indexes
        // not written yet, and a cleaner's half-written output of another pass.
        std::fs::remove_file(dir.join(".clean_shutdown")).expect("marker");
        for entry in std::fs::read_dir(&dir).expect("list") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            if name.ends_with(".index") || name.ends_with(".timeindex") {
                std::fs::remove_file(&path).expect("remove index");
            }
        }
        let stray = dir.join("00000000000000000000.log.cleaned");
        std::fs::write(&stray, b"half a segment").expect("stray");
        let log = PartitionLog::open(dir.clone(), config(60_000))
            .await
            .expect("reopen");
        assert!(!stray.exists(), "leftover cleaner output removed at open");
        assert_eq!(log.log_end_offset(), end, "nothing truncated");
        assert_eq!(
            contents(&log).await,
            cleaned,
            "every kept record reads back"
        );
        assert_every_offset_reads(&log).await;
        let again = log.clean(10_000, &mut map).await.expect("clean");
        assert_eq!(
            again,
            CleanSummary::default(),
            "the checkpoint survived: nothing is read again"
        );
        let info = log
            .append(batch(Compression::None, &[("a", Some("after"))], 9_000), 0)
            .expect("append after recovery");
        assert_eq!(info.base_offset, end);
        log.close().await.expect("close");
    });
}

#[test]
fn records_younger_than_min_compaction_lag_are_left_alone() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("p");
    sluice::io::block_on_local(async move {
        let config = LogConfig {
            min_compaction_lag_ms: 100_000,
            ..config(60_000)
        };
        let log = PartitionLog::open(dir, config).await.expect("open");
        let written = fill(&log, Compression::None).await;
        let mut map = OffsetMap::with_budget(1 << 20);
        // The newest record of a sealed segment is ~5 s old (record timestamps are ~1 s).
        let young = log.clean(10_000, &mut map).await.expect("clean");
        assert_eq!(young.segments_rewritten, 0, "{young:?}");
        assert_eq!(
            contents(&log).await,
            written,
            "nothing removed within the lag"
        );
        let old = log.clean(200_000, &mut map).await.expect("clean");
        assert!(old.segments_rewritten > 0, "{old:?}");
        assert_eq!(contents(&log).await, newest(&written, true));
        log.close().await.expect("close");
    });
}
