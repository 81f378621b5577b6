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

use super::RequestContext;
use crate::constants::FETCH_WAIT_MS_MAX;
use crate::log::PartitionLog;
use crate::protocol::fetch_response::{self, FetchPartitionOut, FetchResponseOut, FetchTopicOut};
use crate::protocol::{code, ProtocolError, ResponseError};
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
}

pub fn handle(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: FetchRequest = ctx.decode(&mut body)?;
    if request.session_id != 0 {
        let response =
            FetchResponse::default().with_error_code(code(ResponseError::FetchSessionIdNotFound));
        return ctx.reply(&response);
    }
    let targets = resolve(shard, &ctx, &request);
    Ok(Reply::DeferredPieces(Box::pin(fetch(
        ctx, request, targets,
    ))))
}

fn resolve(shard: &Shard, ctx: &RequestContext, request: &FetchRequest) -> Vec<Target> {
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
        for partition in &topic.partitions {
            let log = match &meta {
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
    let max_bytes = match usize::try_from(request.max_bytes) {
        Ok(0) | Err(_) => usize::MAX,
        Ok(bytes) => bytes,
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
        futures_lite::future::or(wait_any(waits), timer).await;
    }
}

/// Reads each partition once; returns the per-partition answers, total record bytes, and
/// whether any partition answered with an error (which ends the long poll).
async fn read_all(targets: &[Target], max_bytes: usize) -> (Vec<FetchPartitionOut>, usize, bool) {
    let mut remaining = max_bytes;
    let mut total = 0usize;
    let mut any_error = false;
    let mut out = Vec::with_capacity(targets.len());
    for target in targets {
        let mut data = FetchPartitionOut {
            partition_index: target.partition,
            error_code: 0,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            records: Vec::new(),
        };
        let log = match &target.log {
            Ok(log) => log,
            Err(error) => {
                data.error_code = code(*error);
                any_error = true;
                out.push(data);
                continue;
            }
        };
        let (start, high_watermark, end) = (
            log.log_start_offset(),
            log.high_watermark(),
            log.log_end_offset(),
        );
        data.high_watermark = high_watermark;
        data.last_stable_offset = high_watermark;
        data.log_start_offset = start;
        if target.offset < start || target.offset > end {
            data.error_code = code(ResponseError::OffsetOutOfRange);
            any_error = true;
        } else if target.offset < high_watermark && remaining > 0 {
            // Whole batches only; the first batch goes out even if larger than the limit (KIP-74).
            match log
                .read(target.offset, target.max_bytes.min(remaining))
                .await
            {
                Ok(read) => {
                    let len: usize = read.chunks.iter().map(Bytes::len).sum();
                    remaining = remaining.saturating_sub(len);
                    total += len;
                    data.high_watermark = read.high_watermark;
                    data.last_stable_offset = read.last_stable_offset;
                    data.log_start_offset = read.log_start_offset;
                    data.records = read.chunks;
                }
                Err(e) => {
                    data.error_code = code(log_error(&e));
                    any_error = true;
                }
            }
        }
        out.push(data);
    }
    (out, total, any_error)
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

/// Resolves when any of `waits` does; pends forever when there are none.
async fn wait_any(mut waits: Vec<Pin<Box<dyn Future<Output = ()>>>>) {
    std::future::poll_fn(|cx| {
        for wait in waits.iter_mut() {
            if wait.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}
