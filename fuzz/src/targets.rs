//! The fuzz targets' bodies, shared by the cargo-fuzz binaries (`fuzz/fuzz_targets/*.rs`,
//! nightly + libFuzzer) and the stable corpus replay (`tests/fuzz_targets_replay_corpus.rs`),
//! which includes this file with `#[path]`. Each function must never panic, abort or allocate
//! without bound on any input; the asserts inside are properties that hold for every input.
//!
//! Only crates that are dependencies of `sluice` itself are used, so the stable test can
//! include this file unchanged.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::messages::*;
use sluice::constants::FRAME_BYTES_MAX;
use sluice::log::{FlushPolicy, LogConfig, PartitionLog};
use sluice::protocol::api_versions::is_served;
use sluice::protocol::frame::read_frame;
use sluice::protocol::request::{decode_body, decode_header, HeaderPrefix};

/// Request framing: the input is a client's byte stream. Frames are read as a connection reads
/// them (size prefix checked against FRAME_BYTES_MAX before allocating), and each frame goes
/// through [`request`].
pub fn request_frame(data: &[u8]) {
    let mut reader = futures_lite::io::Cursor::new(data);
    for _ in 0..64 {
        match futures_lite::future::block_on(read_frame(&mut reader, FRAME_BYTES_MAX)) {
            Ok(Some(frame)) => {
                assert!(!frame.is_empty() && frame.len() <= FRAME_BYTES_MAX);
                assert!(frame.len() <= data.len(), "a frame longer than its input");
                request(&frame);
            }
            Ok(None) | Err(_) => return,
        }
    }
}

/// One request frame (without its size prefix): the header prefix, the full header for the
/// API's header version, and the body decoder of every API and version sluice serves, as
/// `server::handlers::dispatch` runs them.
pub fn request(frame: &[u8]) {
    let Ok(prefix) = HeaderPrefix::parse(frame) else {
        assert!(frame.len() < 8, "a prefix of 8 bytes always parses");
        return;
    };
    let Ok(api_key) = ApiKey::try_from(prefix.api_key) else {
        return;
    };
    let version = prefix.api_version;
    let codec = api_key.valid_versions();
    if !(codec.min..=codec.max).contains(&version) {
        return;
    }
    let mut bytes = Bytes::copy_from_slice(frame);
    if decode_header(api_key, version, &mut bytes).is_err() || !is_served(prefix.api_key, version) {
        return;
    }
    decode_served_body(api_key, version, bytes);
}

/// Decodes `body` as the request type a handler would; the result is irrelevant.
pub fn decode_served_body(api_key: ApiKey, version: i16, body: Bytes) {
    fn d<T: kafka_protocol::protocol::Decodable>(version: i16, mut body: Bytes) {
        let _ = decode_body::<T>("fuzz", version, &mut body);
    }
    match api_key {
        ApiKey::Produce => d::<ProduceRequest>(version, body),
        ApiKey::Fetch => d::<FetchRequest>(version, body),
        ApiKey::ListOffsets => d::<ListOffsetsRequest>(version, body),
        ApiKey::Metadata => d::<MetadataRequest>(version, body),
        ApiKey::ApiVersions => d::<ApiVersionsRequest>(version, body),
        ApiKey::CreateTopics => d::<CreateTopicsRequest>(version, body),
        ApiKey::DeleteTopics => d::<DeleteTopicsRequest>(version, body),
        ApiKey::CreatePartitions => d::<CreatePartitionsRequest>(version, body),
        ApiKey::DeleteRecords => d::<DeleteRecordsRequest>(version, body),
        ApiKey::DescribeConfigs => d::<DescribeConfigsRequest>(version, body),
        ApiKey::AlterConfigs => d::<AlterConfigsRequest>(version, body),
        ApiKey::IncrementalAlterConfigs => d::<IncrementalAlterConfigsRequest>(version, body),
        ApiKey::FindCoordinator => d::<FindCoordinatorRequest>(version, body),
        ApiKey::JoinGroup => d::<JoinGroupRequest>(version, body),
        ApiKey::SyncGroup => d::<SyncGroupRequest>(version, body),
        ApiKey::Heartbeat => d::<HeartbeatRequest>(version, body),
        ApiKey::LeaveGroup => d::<LeaveGroupRequest>(version, body),
        ApiKey::OffsetCommit => d::<OffsetCommitRequest>(version, body),
        ApiKey::OffsetFetch => d::<OffsetFetchRequest>(version, body),
        ApiKey::OffsetDelete => d::<OffsetDeleteRequest>(version, body),
        ApiKey::ListGroups => d::<ListGroupsRequest>(version, body),
        ApiKey::DescribeGroups => d::<DescribeGroupsRequest>(version, body),
        ApiKey::DeleteGroups => d::<DeleteGroupsRequest>(version, body),
        ApiKey::ConsumerGroupHeartbeat => d::<ConsumerGroupHeartbeatRequest>(version, body),
        ApiKey::ConsumerGroupDescribe => d::<ConsumerGroupDescribeRequest>(version, body),
        ApiKey::DescribeCluster => d::<DescribeClusterRequest>(version, body),
        ApiKey::OffsetForLeaderEpoch => d::<OffsetForLeaderEpochRequest>(version, body),
        ApiKey::SaslHandshake => d::<SaslHandshakeRequest>(version, body),
        ApiKey::InitProducerId => d::<InitProducerIdRequest>(version, body),
        ApiKey::AddPartitionsToTxn => d::<AddPartitionsToTxnRequest>(version, body),
        ApiKey::AddOffsetsToTxn => d::<AddOffsetsToTxnRequest>(version, body),
        ApiKey::EndTxn => d::<EndTxnRequest>(version, body),
        ApiKey::TxnOffsetCommit => d::<TxnOffsetCommitRequest>(version, body),
        _ => {}
    }
}

/// A glommio executor and a scratch directory kept for the life of the fuzzing thread.
struct Scratch {
    executor: glommio::LocalExecutor,
    dir: PathBuf,
    append_log: Option<PartitionLog>,
    appends_count: u64,
    runs_count: u64,
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

fn with_scratch<T>(f: impl FnOnce(&mut Scratch) -> T) -> T {
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        let scratch = slot.get_or_insert_with(|| {
            // O_DIRECT needs a real filesystem: not tmpfs. SLUICE_FUZZ_DIR overrides.
            let base = std::env::var_os("SLUICE_FUZZ_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir);
            let dir = base.join(format!(
                "sluice-fuzz-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create fuzz scratch dir");
            let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
                .io_memory(1 << 20)
                .make()
                .expect("glommio executor");
            Scratch {
                executor,
                dir,
                append_log: None,
                appends_count: 0,
                runs_count: 0,
            }
        });
        f(scratch)
    })
}

/// Removes the scratch directory of this thread (the stable replay calls it at the end).
pub fn cleanup() {
    SCRATCH.with(|cell| {
        if let Some(scratch) = cell.borrow_mut().take() {
            let Scratch {
                executor,
                dir,
                append_log,
                ..
            } = scratch;
            if let Some(log) = append_log {
                executor.run(async move {
                    let _ = log.close().await;
                });
            }
            drop(executor);
            let _ = std::fs::remove_dir_all(dir);
        }
    });
}

fn fuzz_log_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        retention_bytes: Some(4 << 20),
        retention_ms: None,
        flush: FlushPolicy::Never,
        index_interval_bytes: 512,
        max_message_bytes: 256 * 1024,
        ..LogConfig::default()
    }
}

/// The batches of a record set as the broker must see them: (lastOffsetDelta, size) of each,
/// or `None` if any is not a CRC-valid RecordBatch v2 with a sane offset range.
fn expected_batches(records: &[u8], max_message_bytes: usize) -> Option<Vec<(i32, usize)>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < records.len() {
        let rest = &records[at..];
        if rest.len() < 61 {
            return None;
        }
        let length = i32::from_be_bytes(rest[8..12].try_into().ok()?);
        let size = usize::try_from(length).ok()?.checked_add(12)?;
        if size < 61 || size > rest.len() || size > max_message_bytes || rest[16] != 2 {
            return None;
        }
        let crc = u32::from_be_bytes(rest[17..21].try_into().ok()?);
        if crc32c::crc32c(&rest[21..size]) != crc {
            return None;
        }
        let last_offset_delta = i32::from_be_bytes(rest[23..27].try_into().ok()?);
        out.push((last_offset_delta, size));
        at += size;
    }
    (!out.is_empty()).then_some(out)
}

/// RecordBatch validation, through the public log API: `PartitionLog::append` of arbitrary
/// bytes as one produce's record set. Refusals are fine; what is accepted must be whole
/// CRC-valid v2 batches, get the offsets their headers claim, and read back byte for byte
/// (bar the broker-set base offset and leader epoch).
pub fn record_batch_append(data: &[u8]) {
    let config = fuzz_log_config();
    let max = config.max_message_bytes as usize;
    with_scratch(|scratch| {
        scratch.appends_count += 1;
        let dir = scratch.dir.join("append");
        let existing = scratch.append_log.take();
        let appends_count = scratch.appends_count;
        let log = scratch.executor.run(async move {
            let log = match existing {
                Some(log) => log,
                None => PartitionLog::open(dir, config)
                    .await
                    .expect("open the append log"),
            };
            let end_before = log.log_end_offset();
            match log.append(Bytes::copy_from_slice(data), 0) {
                Ok(info) if info.duplicate => {
                    // An idempotent producer's retry: answered with the original offsets.
                    assert_eq!(
                        log.log_end_offset(),
                        end_before,
                        "a duplicate moved the log"
                    );
                }
                Ok(info) => {
                    let batches = expected_batches(data, max).unwrap_or_else(|| {
                        panic!("append accepted a record set that is not whole valid v2 batches")
                    });
                    let claimed: i64 = batches.iter().map(|(d, _)| i64::from(*d) + 1).sum();
                    assert!(
                        batches.iter().all(|(d, _)| *d >= 0),
                        "negative lastOffsetDelta accepted"
                    );
                    assert_eq!(info.base_offset, end_before);
                    assert_eq!(info.last_offset - info.base_offset + 1, claimed);
                    assert_eq!(log.log_end_offset(), end_before + claimed);
                    log.wait_durable(info.last_offset).await.expect("durable");
                    let read = log
                        .read(info.base_offset, usize::MAX)
                        .await
                        .expect("read back");
                    let stored: Vec<u8> =
                        read.chunks.iter().flat_map(|c| c.iter().copied()).collect();
                    assert!(
                        stored.len() >= data.len(),
                        "read back fewer bytes than appended"
                    );
                    let mut at = 0;
                    for (_, size) in &batches {
                        assert_eq!(
                            &stored[at + 16..at + size],
                            &data[at + 16..at + size],
                            "stored batch differs"
                        );
                        at += size;
                    }
                }
                Err(_) => assert_eq!(
                    log.log_end_offset(),
                    end_before,
                    "a refused append moved the log"
                ),
            }
            if appends_count % 256 == 0 {
                let _ = log.enforce_retention(i64::MAX).await;
            }
            log
        });
        scratch.append_log = Some(log);
    })
}

/// The segment recovery scan on arbitrary bytes. Input: byte 0 = flags (bit 0: a clean-shutdown
/// marker, so indexes are trusted; bit 1: write `.index`; bit 2: write `.timeindex`), bytes
/// 1..3 and 3..5 = lengths (u16 BE) of the index and time index bytes that follow; the rest is
/// the `.log` file. Opening must not panic; what it recovers must read back as whole
/// consecutive batches, and the log must accept an append right after it.
pub fn segment_recovery(data: &[u8]) {
    let (flags, index, time_index, log_bytes) = split_segment_input(data);
    with_scratch(|scratch| {
        scratch.runs_count += 1;
        let dir = scratch.dir.join(format!("recover-{}", scratch.runs_count));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create partition dir");
        write_segment_files(&dir, flags, index, time_index, log_bytes);
        let open_dir = dir.clone();
        let trusted = flags & 1 != 0;
        scratch.executor.run(async move {
            let config = LogConfig {
                segment_bytes: 1 << 20,
                flush: FlushPolicy::Never,
                index_interval_bytes: 256,
                ..LogConfig::default()
            };
            let Ok(log) = PartitionLog::open(open_dir, config).await else {
                return;
            };
            let start = log.log_start_offset();
            let end = log.log_end_offset();
            assert!(start <= log.high_watermark() && log.high_watermark() <= end);
            if end > start {
                let read = match log.read(start, 4 << 20).await {
                    Ok(read) => read,
                    // With a clean-shutdown marker and an index whose CRC holds, the segment is
                    // trusted without a scan (as Kafka does), so a corrupt batch is only found
                    // when read, as an error. Without the marker everything was scanned.
                    Err(e) => {
                        assert!(trusted, "reading a rescanned log failed: {e}");
                        let _ = log.close().await;
                        return;
                    }
                };
                let bytes = sluice::log::testing::concat_chunks(&read.chunks);
                let batches = sluice::log::testing::batch_offsets(&bytes);
                let mut next: Option<i64> = None;
                for (base, last, _) in &batches {
                    assert!(last >= base, "batch offsets {base}..{last}");
                    assert!(*last < end, "batch {base}..{last} past the log end {end}");
                    match next {
                        None => assert!(
                            *base <= start && *last >= start,
                            "first batch {base}..{last} does not hold {start}"
                        ),
                        Some(next) => assert_eq!(*base, next, "batches not consecutive"),
                    }
                    next = Some(last + 1);
                }
            }
            let batch = sluice::log::testing::make_batch(2, 40, 7);
            if let Ok(info) = log.append(Bytes::from(batch), 0) {
                assert_eq!(info.base_offset, end, "append after recovery");
                let _ = log.wait_durable(info.last_offset).await;
            }
            let _ = log.close().await;
        });
        let _ = std::fs::remove_dir_all(&dir);
    })
}

fn split_segment_input(data: &[u8]) -> (u8, &[u8], &[u8], &[u8]) {
    if data.len() < 5 {
        return (0, &[], &[], data);
    }
    let flags = data[0];
    let index_len = usize::from(u16::from_be_bytes([data[1], data[2]]));
    let time_len = usize::from(u16::from_be_bytes([data[3], data[4]]));
    let rest = &data[5..];
    let index_len = index_len.min(rest.len());
    let (index, rest) = rest.split_at(index_len);
    let time_len = time_len.min(rest.len());
    let (time_index, log_bytes) = rest.split_at(time_len);
    (flags, index, time_index, log_bytes)
}

fn write_segment_files(dir: &Path, flags: u8, index: &[u8], time_index: &[u8], log_bytes: &[u8]) {
    let base = format!("{:020}", 0);
    std::fs::write(dir.join(format!("{base}.log")), log_bytes).expect("write .log");
    if flags & 2 != 0 {
        std::fs::write(dir.join(format!("{base}.index")), index).expect("write .index");
    }
    if flags & 4 != 0 {
        std::fs::write(dir.join(format!("{base}.timeindex")), time_index)
            .expect("write .timeindex");
    }
    if flags & 1 != 0 {
        std::fs::write(dir.join(".clean_shutdown"), b"").expect("write marker");
    }
}

/// Builds a `segment_recovery` input from real segment files (for seeding the corpus).
pub fn segment_input(
    clean: bool,
    index: Option<&[u8]>,
    time_index: Option<&[u8]>,
    log_bytes: &[u8],
) -> Vec<u8> {
    let mut flags = u8::from(clean);
    if index.is_some() {
        flags |= 2;
    }
    if time_index.is_some() {
        flags |= 4;
    }
    let index = index.unwrap_or_default();
    let time_index = time_index.unwrap_or_default();
    let mut out = vec![flags];
    out.extend_from_slice(&(index.len().min(0xffff) as u16).to_be_bytes());
    out.extend_from_slice(&(time_index.len().min(0xffff) as u16).to_be_bytes());
    out.extend_from_slice(&index[..index.len().min(0xffff)]);
    out.extend_from_slice(&time_index[..time_index.len().min(0xffff)]);
    out.extend_from_slice(log_bytes);
    out
}
