//! The fuzz targets' bodies, shared by the cargo-fuzz binaries (`fuzz/fuzz_targets/*.rs`,
//! nightly + libFuzzer) and the stable corpus replay (`tests/it/fuzz_targets_replay_corpus.rs`),
//! which includes this file with `#[path]`. Each function must never panic, abort or allocate
//! without bound on any input; the asserts inside are properties that hold for every input.
//!
//! Only crates that are dependencies of `sluice` itself are used, so the stable test can
//! include this file unchanged.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use sluice::constants::FRAME_BYTES_MAX;
use sluice::log::{FlushPolicy, LogConfig, PartitionLog};
use sluice::protocol::api_versions::is_served;
use sluice::protocol::frame::read_frame;
use sluice::protocol::request::{decode_body, decode_header, HeaderPrefix};
use sluice::server::connection::Reply;
use sluice::server::local_shard::LocalShard;

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
    dispatch_shard: Option<LocalShard>,
    dispatch_count: u64,
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
                dispatch_shard: None,
                dispatch_count: 0,
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
                dispatch_shard,
                ..
            } = scratch;
            if let Some(log) = append_log {
                executor.run(async move {
                    let _ = log.close().await;
                });
            }
            if let Some(shard) = dispatch_shard {
                executor.run(shard.close());
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

/// How long the dispatch target waits for a deferred answer (a long-poll fetch, a join
/// waiting for its group) before it drops it, as a client that disconnects would.
const DISPATCH_ANSWER_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// Inputs after which the dispatch target starts over on a fresh data dir, so that the
/// topics and groups earlier inputs created stay few.
const DISPATCH_RESET_EVERY: u64 = 2000;

/// Partitions one input may ask CreateTopics or CreatePartitions for. Every partition
/// preallocates a segment file, so a mutated count of 32767 would fill the scratch disk.
const DISPATCH_PARTITIONS_MAX: i64 = 64;

/// Request dispatch on a real shard: the frame (without its size prefix) goes through
/// `server::handlers::dispatch` on a one-shard broker ([`LocalShard`]: catalog owner,
/// partitions, groups, share groups) whose state carries over between inputs, so that
/// topics, groups and records created by one input are there for the next. A handler may
/// refuse a request (the connection would close) but never panic; an answer must be one
/// whole response to this request: a size prefix that matches, and its correlation id.
pub fn dispatch(frame: &[u8]) {
    if !dispatch_input_allowed(frame) {
        return;
    }
    with_scratch(|scratch| {
        scratch.dispatch_count += 1;
        let generation = scratch.dispatch_count / DISPATCH_RESET_EVERY;
        let dir = scratch.dir.join(format!("dispatch-{generation}"));
        let stale = scratch.dispatch_shard.take();
        let fresh = scratch.dispatch_count % DISPATCH_RESET_EVERY == 0;
        let correlation_id = HeaderPrefix::parse(frame).ok().map(|p| p.correlation_id);
        let frame = Bytes::copy_from_slice(frame);
        let shard = scratch.executor.run(async move {
            let shard = match stale {
                Some(shard) if !fresh => shard,
                stale => {
                    if let Some(shard) = stale {
                        shard.close().await;
                    }
                    open_dispatch_shard(&dir).await
                }
            };
            let reply = sluice::server::handlers::dispatch(
                shard.shard(),
                frame,
                &mut sluice::security::Session::plaintext(None),
            );
            let answer = match reply {
                Ok(Reply::Ready(bytes)) => Some(Ok(vec![bytes])),
                Ok(Reply::Deferred(pending)) => {
                    within_answer_wait(async { pending.await.map(|b| vec![b]) }).await
                }
                Ok(Reply::DeferredPieces(pending)) => within_answer_wait(pending).await,
                Ok(Reply::Silent(pending)) => {
                    within_answer_wait(pending).await;
                    None
                }
                Ok(Reply::None | Reply::Close) | Err(_) => None,
            };
            if let (Some(Ok(pieces)), Some(correlation_id)) = (answer, correlation_id) {
                check_answer(&pieces.concat(), correlation_id);
            }
            shard
        });
        scratch.dispatch_shard = Some(shard);
        if fresh {
            let _ =
                std::fs::remove_dir_all(scratch.dir.join(format!("dispatch-{}", generation - 1)));
        }
    })
}

async fn open_dispatch_shard(dir: &Path) -> LocalShard {
    let dir = dir.display().to_string();
    // Joins complete at once instead of after Kafka's 3 s initial rebalance delay.
    let config = sluice::cli::serve::config_from_flags(&[
        "--data-dir",
        &dir,
        "--segment-bytes",
        "1048576",
        "--group-initial-rebalance-delay-ms",
        "0",
    ])
    .expect("dispatch shard config");
    LocalShard::open(config)
        .await
        .expect("open the dispatch shard")
}

async fn within_answer_wait<T>(pending: impl std::future::Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(pending.await) }, async {
        glommio::timer::sleep(DISPATCH_ANSWER_WAIT).await;
        None
    })
    .await
}

fn check_answer(answer: &[u8], correlation_id: i32) {
    assert!(answer.len() >= 8, "an answer of {} bytes", answer.len());
    let size = i32::from_be_bytes([answer[0], answer[1], answer[2], answer[3]]);
    assert_eq!(
        usize::try_from(size).ok(),
        Some(answer.len() - 4),
        "size prefix {size} for an answer of {} bytes",
        answer.len()
    );
    let answered = i32::from_be_bytes([answer[4], answer[5], answer[6], answer[7]]);
    assert_eq!(answered, correlation_id, "answer to another request");
}

/// Inputs the dispatch target leaves out, and why.
fn dispatch_input_allowed(frame: &[u8]) -> bool {
    let Ok(prefix) = HeaderPrefix::parse(frame) else {
        return true;
    };
    let Ok(api_key) = ApiKey::try_from(prefix.api_key) else {
        return true;
    };
    let version = prefix.api_version;
    if !is_served(prefix.api_key, version) {
        return true;
    }
    let mut body = Bytes::copy_from_slice(frame);
    if decode_header(api_key, version, &mut body).is_err() {
        return true;
    }
    match api_key {
        ApiKey::CreateTopics => decode_body::<CreateTopicsRequest>("fuzz", version, &mut body)
            .map_or(true, |r| {
                let asked: i64 = r
                    .topics
                    .iter()
                    .map(|t| i64::from(t.num_partitions.max(1)))
                    .sum();
                asked <= DISPATCH_PARTITIONS_MAX
            }),
        ApiKey::CreatePartitions => {
            decode_body::<CreatePartitionsRequest>("fuzz", version, &mut body).map_or(true, |r| {
                let asked: i64 = r.topics.iter().map(|t| i64::from(t.count.max(1))).sum();
                asked <= DISPATCH_PARTITIONS_MAX
            })
        }
        _ => true,
    }
}

/// Seeds for `dispatch` beyond the captured corpus: a default request of every served API
/// and version, and every corpus request re-encoded at every other served version of its
/// API (flexible versions carry compact strings, whose lengths reach past 32767).
pub fn dispatch_seeds(corpus: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for key in 0..=i16::from(u8::MAX) {
        let Ok(api_key) = ApiKey::try_from(key) else {
            continue;
        };
        let codec = api_key.valid_versions();
        for version in codec.min..=codec.max {
            if is_served(key, version) {
                seeds.extend(reencode_request(api_key, None, version));
            }
        }
    }
    for frame in corpus {
        let Ok(prefix) = HeaderPrefix::parse(frame) else {
            continue;
        };
        let Ok(api_key) = ApiKey::try_from(prefix.api_key) else {
            continue;
        };
        let mut body = Bytes::copy_from_slice(frame);
        if decode_header(api_key, prefix.api_version, &mut body).is_err() {
            continue;
        }
        let codec = api_key.valid_versions();
        for version in codec.min..=codec.max {
            if version != prefix.api_version && is_served(prefix.api_key, version) {
                let from = Some((prefix.api_version, body.clone()));
                seeds.extend(reencode_request(api_key, from, version));
            }
        }
    }
    seeds
}

/// Requests that reach handlers' deeper paths only in order and with consistent fields
/// (the topic exists, a commit from no member with generation -1, a join to a known
/// protocol), each at every served version, in an order that builds the state: topic, data,
/// groups. The stable replay dispatches each, then each with every string resized to the
/// lengths where limits sit.
pub fn dispatch_stateful_seeds() -> Vec<Vec<u8>> {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::protocol::StrBytes;
    let topic = || TopicName(StrBytes::from_static_str("fuzz-t"));
    let group = |name: &'static str| GroupId(StrBytes::from_static_str(name));
    let create = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic())
            .with_num_partitions(2)
            .with_replication_factor(1)])
        .with_timeout_ms(5000);
    let batch = Bytes::from(sluice::log::testing::make_batch(3, 40, 1));
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic())
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    let commit = OffsetCommitRequest::default()
        .with_group_id(group("fuzz-g"))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic())
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)
                .with_committed_metadata(Some(StrBytes::from_static_str("m")))])]);
    let join = JoinGroupRequest::default()
        .with_group_id(group("fuzz-j"))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from_static(b"\0\0\0\0\0\0"))]);
    let consumer_heartbeat = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group("fuzz-c"))
        .with_member_id(StrBytes::from_static_str("fuzz-member-c"))
        .with_rebalance_timeout_ms(10_000)
        .with_subscribed_topic_names(Some(vec![topic()]))
        .with_topic_partitions(Some(Vec::new()));
    let share_heartbeat = ShareGroupHeartbeatRequest::default()
        .with_group_id(group("fuzz-s"))
        .with_member_id(StrBytes::from_static_str("fuzz-member-s"))
        .with_subscribed_topic_names(Some(vec![topic()]));
    let list_offsets = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic())
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let mut seeds = Vec::new();
    seeds.extend(at_every_served_version(ApiKey::CreateTopics, &create));
    seeds.extend(at_every_served_version(ApiKey::Produce, &produce));
    seeds.extend(at_every_served_version(ApiKey::ListOffsets, &list_offsets));
    seeds.extend(at_every_served_version(ApiKey::OffsetCommit, &commit));
    seeds.extend(at_every_served_version(ApiKey::JoinGroup, &join));
    seeds.extend(at_every_served_version(
        ApiKey::ConsumerGroupHeartbeat,
        &consumer_heartbeat,
    ));
    seeds.extend(at_every_served_version(
        ApiKey::ShareGroupHeartbeat,
        &share_heartbeat,
    ));
    seeds
}

fn at_every_served_version<T: Encodable>(api_key: ApiKey, body: &T) -> Vec<Vec<u8>> {
    let codec = api_key.valid_versions();
    (codec.min..=codec.max)
        .filter(|&version| is_served(api_key as i16, version))
        .filter_map(|version| {
            let mut out = request_header(api_key, version)?;
            body.encode(&mut out, version).ok()?;
            Some(out.to_vec())
        })
        .collect()
}

/// A request header for `api_key` v`version` (correlation id 7, client id `fuzz`).
fn request_header(api_key: ApiKey, version: i16) -> Option<BytesMut> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(kafka_protocol::protocol::StrBytes::from_static_str(
            "fuzz",
        )));
    let mut out = BytesMut::new();
    header
        .encode(&mut out, api_key.request_header_version(version))
        .ok()?;
    Some(out)
}

/// A request frame of `api_key` v`to`: the body decoded from `from` (version, bytes), or
/// the default body; `None` if it does not encode at `to`.
fn reencode_request(api_key: ApiKey, from: Option<(i16, Bytes)>, to: i16) -> Option<Vec<u8>> {
    fn body<T: Decodable + Encodable + Default>(
        from: Option<(i16, Bytes)>,
        to: i16,
        out: &mut BytesMut,
    ) -> Option<()> {
        let request = match from {
            Some((version, mut bytes)) => decode_body::<T>("fuzz", version, &mut bytes).ok()?,
            None => T::default(),
        };
        request.encode(out, to).ok()
    }
    let mut out = request_header(api_key, to)?;
    let encoded = match api_key {
        ApiKey::Produce => body::<ProduceRequest>(from, to, &mut out),
        ApiKey::Fetch => body::<FetchRequest>(from, to, &mut out),
        ApiKey::ListOffsets => body::<ListOffsetsRequest>(from, to, &mut out),
        ApiKey::Metadata => body::<MetadataRequest>(from, to, &mut out),
        ApiKey::ApiVersions => body::<ApiVersionsRequest>(from, to, &mut out),
        ApiKey::CreateTopics => body::<CreateTopicsRequest>(from, to, &mut out),
        ApiKey::DeleteTopics => body::<DeleteTopicsRequest>(from, to, &mut out),
        ApiKey::CreatePartitions => body::<CreatePartitionsRequest>(from, to, &mut out),
        ApiKey::DescribeConfigs => body::<DescribeConfigsRequest>(from, to, &mut out),
        ApiKey::AlterConfigs => body::<AlterConfigsRequest>(from, to, &mut out),
        ApiKey::IncrementalAlterConfigs => {
            body::<IncrementalAlterConfigsRequest>(from, to, &mut out)
        }
        ApiKey::FindCoordinator => body::<FindCoordinatorRequest>(from, to, &mut out),
        ApiKey::JoinGroup => body::<JoinGroupRequest>(from, to, &mut out),
        ApiKey::SyncGroup => body::<SyncGroupRequest>(from, to, &mut out),
        ApiKey::Heartbeat => body::<HeartbeatRequest>(from, to, &mut out),
        ApiKey::LeaveGroup => body::<LeaveGroupRequest>(from, to, &mut out),
        ApiKey::OffsetCommit => body::<OffsetCommitRequest>(from, to, &mut out),
        ApiKey::OffsetFetch => body::<OffsetFetchRequest>(from, to, &mut out),
        ApiKey::OffsetDelete => body::<OffsetDeleteRequest>(from, to, &mut out),
        ApiKey::ListGroups => body::<ListGroupsRequest>(from, to, &mut out),
        ApiKey::DescribeGroups => body::<DescribeGroupsRequest>(from, to, &mut out),
        ApiKey::DeleteGroups => body::<DeleteGroupsRequest>(from, to, &mut out),
        ApiKey::ConsumerGroupHeartbeat => body::<ConsumerGroupHeartbeatRequest>(from, to, &mut out),
        ApiKey::ConsumerGroupDescribe => body::<ConsumerGroupDescribeRequest>(from, to, &mut out),
        ApiKey::DescribeCluster => body::<DescribeClusterRequest>(from, to, &mut out),
        ApiKey::OffsetForLeaderEpoch => body::<OffsetForLeaderEpochRequest>(from, to, &mut out),
        ApiKey::SaslHandshake => body::<SaslHandshakeRequest>(from, to, &mut out),
        ApiKey::InitProducerId => body::<InitProducerIdRequest>(from, to, &mut out),
        ApiKey::ShareGroupHeartbeat => body::<ShareGroupHeartbeatRequest>(from, to, &mut out),
        ApiKey::ShareGroupDescribe => body::<ShareGroupDescribeRequest>(from, to, &mut out),
        ApiKey::ShareFetch => body::<ShareFetchRequest>(from, to, &mut out),
        ApiKey::ShareAcknowledge => body::<ShareAcknowledgeRequest>(from, to, &mut out),
        ApiKey::DescribeShareGroupOffsets => {
            body::<DescribeShareGroupOffsetsRequest>(from, to, &mut out)
        }
        ApiKey::AlterShareGroupOffsets => body::<AlterShareGroupOffsetsRequest>(from, to, &mut out),
        ApiKey::DeleteShareGroupOffsets => {
            body::<DeleteShareGroupOffsetsRequest>(from, to, &mut out)
        }
        _ => None,
    };
    encoded.map(|()| out.to_vec())
}

/// The SASL state machine (`security::sasl::SaslSession`) driven by a client's steps: each
/// step is a kind byte (even: SaslHandshake, odd: SaslAuthenticate), a length byte and that
/// many bytes (the mechanism name, or the token). One user, `alice`, has SCRAM credentials.
/// Besides never panicking: a failed session stays failed, and no input authenticates as
/// anyone but `alice`.
pub fn sasl_exchange(data: &[u8]) {
    use sluice::security::sasl::{AuthStep, SaslMechanism, SaslPhase, SaslSession};
    let users = sasl_users();
    let mut session = SaslSession::default();
    let mut rest = data;
    while let [kind, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        rest = next;
        let failed_before = session.phase() == SaslPhase::Failed;
        if kind % 2 == 0 {
            // Half the handshakes name a real mechanism, so the exchange gets going.
            let name = match (kind / 2) % 6 {
                0 => "PLAIN".to_owned(),
                1 => "SCRAM-SHA-256".to_owned(),
                2 => "SCRAM-SHA-512".to_owned(),
                _ => String::from_utf8_lossy(bytes).into_owned(),
            };
            session.handshake(&name, &SaslMechanism::ALL);
        } else if let Ok(AuthStep::Complete { user, .. }) =
            session.authenticate(bytes, users, 1000, 0)
        {
            assert_eq!(user, "alice", "authenticated as a user with no credential");
        }
        if failed_before {
            assert_eq!(
                session.phase(),
                SaslPhase::Failed,
                "a failed session came back"
            );
        }
    }
}

/// `alice` with password `secret` for both SCRAM mechanisms, derived once.
fn sasl_users() -> &'static SaslUsers {
    static USERS: std::sync::OnceLock<SaslUsers> = std::sync::OnceLock::new();
    USERS.get_or_init(|| {
        use sluice::security::sasl::scram_credential::salt_password;
        use sluice::security::sasl::{SaslMechanism, ScramCredential};
        let mut credentials = Vec::new();
        for mechanism in [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512] {
            let Some(hash) = mechanism.scram_hash() else {
                continue;
            };
            let Ok((salt, salted)) = salt_password(hash, b"secret", 4096) else {
                continue;
            };
            let credential = ScramCredential::from_salted_password(hash, salt, &salted, 4096);
            credentials.push((mechanism, credential));
        }
        SaslUsers(credentials)
    })
}

struct SaslUsers(
    Vec<(
        sluice::security::sasl::SaslMechanism,
        sluice::security::sasl::ScramCredential,
    )>,
);

impl sluice::security::sasl::CredentialSource for SaslUsers {
    fn scram_credential(
        &self,
        user: &str,
        mechanism: sluice::security::sasl::SaslMechanism,
    ) -> Option<sluice::security::sasl::ScramCredential> {
        let (_, credential) = self.0.iter().find(|(m, _)| *m == mechanism)?;
        (user == "alice").then(|| credential.clone())
    }
}
