//! Fetch, sessionless (KIP-227 sessions are declined by answering session id 0), with long
//! polling: the answer waits until `min_bytes` are available, `max_wait_ms` passes, or an
//! append to one of the partitions wakes it.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::FetchRequest;
use kafka_protocol::messages::fetch_response::FetchResponse;
use uuid::Uuid;

use super::{access, long_poll, RequestContext};
use crate::constants::{FETCH_COLD_READS_MAX, FETCH_RESPONSE_BYTES_MAX, FETCH_WAIT_MS_MAX};
use crate::log::{LogError, PartitionLog, ReadResult};
use crate::protocol::fetch_response::{self, FetchPartitionOut, FetchResponseOut, FetchTopicOut};
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::Reply;
use crate::server::error_codes::log_error;
use crate::shard::{PartitionLookup, Shard};

/// Fetch v13 replaced topic names with topic ids.
const TOPIC_ID_VERSION: i16 = 13;

struct Target {
    topic: String,
    topic_id: Uuid,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    log: Result<PartitionLog, ResponseError>,
    /// A read_committed fetch: records below the last stable offset only.
    committed: bool,
}

/// Fetch isolation_level (v4+): 1 is read_committed.
const READ_COMMITTED: i8 = 1;

pub fn handle(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: FetchRequest = ctx.decode(&mut body)?;
    if request.session_id != 0 {
        let response =
            FetchResponse::default().with_error_code(code(ResponseError::FetchSessionIdNotFound));
        return ctx.reply(&response);
    }
    let targets = resolve(shard, &ctx, session, &request);
    // In the fetch task queue, so that a produce flood's disk work does not delay it.
    let fetching = crate::io::spawn_in(crate::io::TaskClass::Fetch, fetch(ctx, request, targets));
    Ok(Reply::DeferredPieces(Box::pin(fetching)))
}

fn resolve(
    shard: &Shard,
    ctx: &RequestContext,
    session: &Session,
    request: &FetchRequest,
) -> Vec<Target> {
    let mut targets = Vec::new();
    for topic in &request.topics {
        let meta = if ctx.version >= TOPIC_ID_VERSION {
            shard.topic_by_id(topic.topic_id)
        } else {
            shard.topic(&topic.topic.0)
        };
        let unknown = if ctx.version >= TOPIC_ID_VERSION {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        // By name the check comes first, as in Kafka: it does not tell which topics exist.
        let name = match &meta {
            Some(m) => Some(m.name.as_str()),
            None if ctx.version < TOPIC_ID_VERSION => Some(topic.topic.0.as_str()),
            None => None,
        };
        let readable = name.is_none_or(|n| access::topic(shard, session, AclOperation::Read, n));
        for partition in &topic.partitions {
            let log = match &meta {
                _ if !readable => Err(ResponseError::TopicAuthorizationFailed),
                None => Err(unknown),
                Some(meta) => match shard.partition(&meta.name, partition.partition) {
                    PartitionLookup::Local(log) => Ok(log),
                    PartitionLookup::NotHere
                        if (0..meta.partition_count).contains(&partition.partition) =>
                    {
                        Err(ResponseError::NotLeaderOrFollower)
                    }
                    _ => Err(ResponseError::UnknownTopicOrPartition),
                },
            };
            targets.push(Target {
                topic: meta
                    .as_ref()
                    .map_or_else(|| topic.topic.0.to_string(), |m| m.name.clone()),
                topic_id: meta.as_ref().map_or(topic.topic_id, |m| m.id),
                partition: partition.partition,
                offset: partition.fetch_offset,
                max_bytes: usize::try_from(partition.partition_max_bytes).unwrap_or(0),
                log,
                committed: request.isolation_level == READ_COMMITTED,
            });
        }
    }
    targets
}

async fn fetch(
    ctx: RequestContext,
    request: FetchRequest,
    targets: Vec<Target>,
) -> Result<Vec<Bytes>, ProtocolError> {
    let wait = Duration::from_millis(
        u64::try_from(request.max_wait_ms)
            .unwrap_or(0)
            .min(FETCH_WAIT_MS_MAX),
    );
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    // Fetch v0-2 carry no response limit (0 here); Kafka then applies its own cap too.
    let max_bytes = match usize::try_from(request.max_bytes) {
        Ok(0) | Err(_) => FETCH_RESPONSE_BYTES_MAX,
        Ok(bytes) => bytes.min(FETCH_RESPONSE_BYTES_MAX),
    };
    loop {
        let (partitions, total_bytes, any_error) = read_all(&targets, max_bytes).await;
        let now = Instant::now();
        if total_bytes >= min_bytes.max(1) || any_error || now >= deadline || targets.is_empty() {
            for (target, data) in targets.iter().zip(&partitions) {
                crate::metrics::error_code(ctx.api_key as i16, data.error_code);
                crate::metrics::fetched(&target.topic, target.partition, &data.records);
            }
            let response = build(&ctx, &targets, partitions);
            return fetch_response::encode(&response, ctx.version, ctx.correlation_id).map_err(
                |e| ProtocolError::Encode {
                    api: "Fetch",
                    version: ctx.version,
                    reason: e.to_string(),
                },
            );
        }
        let waits: Vec<Pin<Box<dyn Future<Output = ()>>>> = targets
            .iter()
            .filter_map(|t| {
                t.log.as_ref().ok().map(|log| {
                    Box::pin(log.wait_for_data(t.offset.max(log.high_watermark())))
                        as Pin<Box<dyn Future<Output = ()>>>
                })
            })
            .collect();
        let timer = crate::io::sleep(deadline - now);
        futures_lite::future::or(long_poll::wait_any(waits), timer).await;
    }
}

/// Reads each partition once; returns the per-partition answers, total record bytes, and
/// whether any partition answered with an error (which ends the long poll).
///
/// Partitions take the response budget in request order, as if read one after another.
/// A read served from the log's in-memory tail completes on its first poll and uses only
/// what it returned. A read that has to go to disk reserves its whole partition budget and
/// runs concurrently with the other cold reads of the round (at most
/// `FETCH_COLD_READS_MAX`); what the round's reads leave unused goes to the next partitions
/// in a further round. A consumer catching up on many partitions thus waits for a few
/// rounds of parallel disk reads, not one read after another.
///
/// As in Kafka (KIP-74), only the first partition that returns data may exceed the limits
/// (with its first batch); a later partition whose data does not fit in its partition
/// budget or in what is left of the response limit returns nothing this time. Results are
/// applied in request order, so this holds however the round's reads finish.
async fn read_all(targets: &[Target], max_bytes: usize) -> (Vec<FetchPartitionOut>, usize, bool) {
    let mut out = Vec::with_capacity(targets.len());
    let mut readable = Vec::new();
    for (slot, target) in targets.iter().enumerate() {
        let mut data = FetchPartitionOut {
            partition_index: target.partition,
            error_code: 0,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            aborted_transactions: None,
            records: Vec::new(),
        };
        match &target.log {
            Err(error) => data.error_code = code(*error),
            Ok(log) => {
                let (start, high_watermark, end) = (
                    log.log_start_offset(),
                    log.high_watermark(),
                    log.log_end_offset(),
                );
                data.high_watermark = high_watermark;
                data.last_stable_offset = log.last_stable_offset();
                data.log_start_offset = start;
                if target.offset < start || target.offset > end {
                    data.error_code = code(ResponseError::OffsetOutOfRange);
                } else if target.offset < high_watermark {
                    readable.push((slot, log));
                }
            }
        }
        out.push(data);
    }
    let mut readable = readable.into_iter();
    let mut remaining = max_bytes;
    let mut answer = Answer {
        has_data: false,
        used: 0,
        limit: max_bytes,
    };
    while remaining > 0 {
        let mut round: Vec<RoundRead> = Vec::new();
        let mut cold_reads: Vec<PendingRead<'_>> = Vec::new();
        while remaining > 0 && cold_reads.len() < FETCH_COLD_READS_MAX {
            let Some((slot, log)) = readable.next() else {
                break;
            };
            let target = &targets[slot];
            // Whole batches only; the first batch goes out even if larger than the limit (KIP-74).
            let budget = target.max_bytes.min(remaining);
            let mut read: PendingRead<'_> =
                Box::pin(log.read_isolated(target.offset, budget, target.committed));
            let ready = futures_lite::future::poll_once(&mut read).await;
            let held = match &ready {
                Some(result) => result_len(result).min(remaining),
                None => {
                    cold_reads.push(read);
                    budget
                }
            };
            remaining -= held;
            round.push(RoundRead {
                slot,
                held,
                budget,
                ready,
            });
        }
        if round.is_empty() {
            break;
        }
        let mut cold_results = join_all(cold_reads).await.into_iter();
        for read in round {
            let Some(result) = read.ready.or_else(|| cold_results.next()) else {
                continue;
            };
            let committed = targets[read.slot].committed;
            let len = answer.apply(&mut out[read.slot], result, read.budget, committed);
            remaining = (remaining + read.held).saturating_sub(len);
        }
    }
    let total = out
        .iter()
        .flat_map(|data| &data.records)
        .map(Bytes::len)
        .sum();
    let any_error = out.iter().any(|data| data.error_code != 0);
    (out, total, any_error)
}

/// One partition read of a round.
struct RoundRead {
    /// Index of the partition in the request.
    slot: usize,
    /// Bytes of the response budget it holds until its result is applied.
    held: usize,
    /// Its partition budget.
    budget: usize,
    /// The result, if the read completed on its first poll (a memory read).
    ready: Option<Result<ReadResult, LogError>>,
}

type PendingRead<'a> = Pin<Box<dyn Future<Output = Result<ReadResult, LogError>> + 'a>>;

fn result_len(result: &Result<ReadResult, LogError>) -> usize {
    result.as_ref().map_or(0, ReadResult::bytes_len)
}

/// Read results applied in request order.
struct Answer {
    /// Some partition before this one returned data.
    has_data: bool,
    /// Record bytes in the answer so far.
    used: usize,
    /// The response limit.
    limit: usize,
}

impl Answer {
    /// Fills `data` from a finished read of at most `budget` bytes; returns the record bytes
    /// it holds.
    fn apply(
        &mut self,
        data: &mut FetchPartitionOut,
        result: Result<ReadResult, LogError>,
        budget: usize,
        committed: bool,
    ) -> usize {
        match result {
            Ok(read) => {
                data.high_watermark = read.high_watermark;
                data.last_stable_offset = read.last_stable_offset;
                data.log_start_offset = read.log_start_offset;
                let len = read.bytes_len();
                let fits = len <= budget && self.used + len <= self.limit;
                if self.has_data && !fits {
                    return 0;
                }
                self.has_data |= len > 0;
                self.used += len;
                data.records = read.chunks;
                if committed {
                    data.aborted_transactions = Some(
                        read.aborted
                            .iter()
                            .map(|t| (t.producer_id, t.first_offset))
                            .collect(),
                    );
                }
                len
            }
            Err(e) => {
                data.error_code = code(log_error(&e));
                0
            }
        }
    }
}

/// Runs `futures` concurrently; their outputs in the same order.
async fn join_all<T>(mut futures: Vec<Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

fn build(
    ctx: &RequestContext,
    targets: &[Target],
    partitions: Vec<FetchPartitionOut>,
) -> FetchResponseOut {
    let mut topics: Vec<FetchTopicOut> = Vec::new();
    for (target, data) in targets.iter().zip(partitions) {
        let same_topic = topics.last().is_some_and(|t| {
            if ctx.version >= TOPIC_ID_VERSION {
                t.topic_id == target.topic_id
            } else {
                t.name == target.topic
            }
        });
        if !same_topic {
            topics.push(FetchTopicOut {
                name: target.topic.clone(),
                topic_id: target.topic_id,
                partitions: Vec::new(),
            });
        }
        if let Some(topic) = topics.last_mut() {
            topic.partitions.push(data);
        }
    }
    FetchResponseOut {
        error_code: 0,
        session_id: 0,
        topics,
    }
}
