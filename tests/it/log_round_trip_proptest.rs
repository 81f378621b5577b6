//! Appending random batches and reading them back (from memory, then cold from disk after a
//! reopen) returns contiguous offsets and identical bytes, apart from the broker-set
//! baseOffset and partitionLeaderEpoch; the producer's buffers are never modified.

use bytes::Bytes;
use proptest::prelude::*;
use sluice::log::testing::{batch_offsets, concat_chunks, make_batch};
use sluice::log::{FlushPolicy, LogConfig, PartitionLog};

fn config(segment_bytes: u64, write_bytes_max: usize, flush: FlushPolicy) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 512,
        // Small writes make one flush a chain of writes, each starting with the partial
        // block the previous one ended with.
        write_bytes_max,
        flush,
        ..LogConfig::default()
    }
}

/// Reads everything from `from` to the high watermark in steps of `max_bytes`.
async fn read_all(log: &PartitionLog, from: i64, max_bytes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.high_watermark() {
        let result = log.read(offset, max_bytes).await.expect("read");
        assert!(!result.chunks.is_empty(), "no progress at offset {offset}");
        let mut data = Vec::new();
        for chunk in &result.chunks {
            data.extend_from_slice(chunk);
        }
        let batches = batch_offsets(&data);
        let (first_base, first_last, _) = batches[0];
        assert!(
            first_base <= offset && offset <= first_last,
            "first batch must hold {offset}"
        );
        out.extend_from_slice(&data);
        offset = batches.last().expect("non-empty").1 + 1;
    }
    out
}

fn strip_broker_fields(batch: &[u8]) -> Vec<u8> {
    let mut b = batch.to_vec();
    b[..8].fill(0);
    b[12..16].fill(0);
    b
}

fn check(
    batches: &[(i32, usize)],
    segment_bytes: u64,
    write_bytes_max: usize,
    max_bytes: usize,
    group_commit: bool,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("topic-0");
    let flush = if group_commit {
        FlushPolicy::GroupCommit {
            delay_us: 0,
            bytes_max: 1 << 20,
        }
    } else {
        FlushPolicy::Never
    };
    let originals: Vec<Vec<u8>> = batches
        .iter()
        .enumerate()
        .map(|(i, &(records, payload))| make_batch(records, payload, 1000 + i as i64))
        .collect();
    sluice::io::block_on_local(async move {
        let log = PartitionLog::open(path.clone(), config(segment_bytes, write_bytes_max, flush))
            .await
            .expect("open");
        let mut expected_offset = 0i64;
        let mut bounds = Vec::new();
        let mut sent = Vec::new();
        for batch in &originals {
            let bytes = Bytes::from(batch.clone());
            sent.push(bytes.clone());
            let info = log.append(bytes, 0).expect("append");
            assert_eq!(info.base_offset, expected_offset, "offsets are contiguous");
            bounds.push((info.base_offset, info.last_offset));
            expected_offset = info.last_offset + 1;
        }
        log.wait_durable(expected_offset - 1)
            .await
            .expect("durable");
        assert_eq!(log.high_watermark(), expected_offset);
        for (bytes, original) in sent.iter().zip(&originals) {
            assert_eq!(
                &bytes[..],
                &original[..],
                "append must not write into the producer's bytes"
            );
        }
        let verify = |data: &[u8]| {
            let got = batch_offsets(data);
            assert_eq!(got.len(), originals.len());
            let mut p = 0;
            for (i, original) in originals.iter().enumerate() {
                assert_eq!((got[i].0, got[i].1), bounds[i]);
                let stored = &data[p..p + original.len()];
                assert_eq!(strip_broker_fields(stored), strip_broker_fields(original));
                p += original.len();
            }
            assert_eq!(p, data.len());
        };
        for round in 0..2 {
            verify(&read_all(&log, 0, max_bytes).await);
            // Reads from the middle of a batch return that whole batch first.
            if let Some(&(base, last)) = bounds.get(bounds.len() / 2) {
                let mid = log.read((base + last) / 2, 1).await.expect("read mid");
                let first = batch_offsets(&concat_chunks(&mid.chunks))[0];
                assert_eq!((first.0, first.1), (base, last));
            }
            if round == 0 {
                log.close().await.expect("close");
                let reopened =
                    PartitionLog::open(path.clone(), config(segment_bytes, write_bytes_max, flush))
                        .await
                        .expect("reopen");
                assert_eq!(reopened.log_end_offset(), expected_offset);
                assert_eq!(reopened.high_watermark(), expected_offset);
                // Cold: everything now comes from the segment files.
                verify(&read_all(&reopened, 0, max_bytes).await);
                // And a new append continues the offsets.
                let info = reopened
                    .append(Bytes::from(make_batch(1, 10, 5)), 0)
                    .expect("append");
                assert_eq!(info.base_offset, expected_offset);
                reopened.close().await.expect("close");
                return;
            }
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn appended_batches_read_back_identical(
        batches in prop::collection::vec((1i32..20, 0usize..3000), 1..40),
        segment_kib in 4u64..64,
        write_kib in prop_oneof![Just(4usize), 5usize..40, Just(4096usize)],
        max_bytes in 1usize..20_000,
        group_commit in any::<bool>(),
    ) {
        check(&batches, segment_kib * 1024, write_kib * 1024, max_bytes, group_commit);
    }
}

#[test]
fn large_batches_round_trip() {
    check(
        &[(1000, 200_000), (1, 0), (5, 1_000_000), (3, 70_000)],
        1 << 20,
        64 << 10,
        100,
        true,
    );
}
