//! Produce. Appends happen here, synchronously and in request order; `acks` decides when
//! the answer goes out:
//! - `acks=0`: never (the client does not read one);
//! - `acks=1`: once appended to the partition's log (in memory, queued for the disk);
//! - `acks=-1`: once the flush policy made it durable (after the group-commit fsync).
//!
//! A replicated partition (a cluster topic with replication factor above 1) is written
//! through its Raft group instead: the leader proposes the record set, and acks=1 and
//! acks=-1 both answer once the entry is committed (a majority has it durable in its Raft
//! log) and applied to the leader's partition log, with the offsets applying gave it.
//! That makes acks=1 as strong as acks=all (Kafka answers acks=1 once the leader's log
//! has it). acks=0 proposes and forgets. A follower answers NOT_LEADER_OR_FOLLOWER.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::ProduceRequest;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::produce_order;
use super::txn_produce_verification::{self, Refusals};
use super::{access, RequestContext};
use crate::constants::PARTITION_UNWRITTEN_BYTES_MAX;
use crate::log::{AppendInfo, LogError, PartitionLog};
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::replica::{Committed, Replica, ReplicaError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::{now_ms, AfterSilence, Reply};
use crate::server::error_codes::log_error;
use crate::shard::{PartitionLookup, Shard};

pub fn handle(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: ProduceRequest = ctx.decode(&mut body)?;
    crate::metrics::produce_acks(request.acks);
    let denied = denials(shard, session, &request);
    let partition_count: usize = request
        .topic_data
        .iter()
        .map(|t| t.partition_data.len())
        .sum();
    if !denied.is_empty() && denied.len() == partition_count {
        return append_all(shard, ctx, request, &denied);
    }
    // Transactional producers use acks=all; without an answer there is nobody to refuse.
    let needed = (request.acks != 0)
        .then(|| txn_produce_verification::needed(shard, &request))
        .flatten();
    if needed.is_none() && !produce_order::any_gated() {
        // The common case: nothing to wait for, append now (no per-partition bookkeeping).
        return append_all(shard, ctx, request, &denied);
    }
    let partitions = request
        .topic_data
        .iter()
        .flat_map(|t| {
            t.partition_data
                .iter()
                .map(|p| (t.name.0.to_string(), p.index))
        })
        .collect();
    let Some(tickets) = produce_order::take(partitions, needed.is_some()) else {
        return append_all(shard, ctx, request, &denied);
    };
    // This request waits for the coordinator, or queues behind one that does: it appends in
    // its turn (see `produce_order`).
    let shard = Rc::clone(shard);
    let acks = request.acks;
    let appended = async move {
        tickets.wait_turn().await;
        // Asked again: a request ahead may have opened the transaction meanwhile.
        let needed = (request.acks != 0)
            .then(|| txn_produce_verification::needed(&shard, &request))
            .flatten();
        let mut refusals = match needed {
            Some(needed) => {
                let transactional_id = request.transactional_id.as_ref().map(|id| id.0.to_string());
                txn_produce_verification::verify(&shard, transactional_id, needed).await
            }
            None => Refusals::new(),
        };
        refusals.extend(denied);
        let reply = append_all(&shard, ctx, request, &refusals);
        drop(tickets);
        reply
    };
    if acks == 0 {
        return Ok(Reply::Silent(Box::pin(async move {
            match appended.await {
                Ok(Reply::Silent(drained)) => drained.await,
                Ok(Reply::Close) => AfterSilence::Close,
                Ok(_) => AfterSilence::KeepOpen,
                Err(e) => {
                    tracing::debug!(error = %e, "acks=0 produce not appended");
                    AfterSilence::Close
                }
            }
        })));
    }
    Ok(Reply::Deferred(Box::pin(async move {
        match appended.await? {
            Reply::Ready(bytes) => Ok(bytes),
            Reply::Deferred(answer) => answer.await,
            // acks != 0 always answers.
            _ => Err(ProtocolError::Encode {
                api: "Produce",
                version: ctx.version,
                reason: "a produce with acks != 0 gave no answer".to_owned(),
            }),
        }
    })))
}

/// The partitions Kafka would refuse for authorization: every one when the transactional
/// id may not be written (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), else those of topics the
/// session may not WRITE (TOPIC_AUTHORIZATION_FAILED).
fn denials(shard: &Shard, session: &Session, request: &ProduceRequest) -> Refusals {
    let txn_denied = request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !access::transactional_id(shard, session, AclOperation::Write, id));
    let mut denied = Refusals::new();
    for topic in &request.topic_data {
        let error = if txn_denied {
            ResponseError::TransactionalIdAuthorizationFailed
        } else if !access::topic(shard, session, AclOperation::Write, &topic.name) {
            ResponseError::TopicAuthorizationFailed
        } else {
            continue;
        };
        for data in &topic.partition_data {
            denied.insert((topic.name.0.to_string(), data.index), error);
        }
    }
    denied
}

/// Appends every partition's records (or answers its refusal) and builds the answer.
fn append_all(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    request: ProduceRequest,
    refusals: &Refusals,
) -> Result<Reply, ProtocolError> {
    let acks = request.acks;
    let now = now_ms();
    // Appended partitions whose answer waits for durability: (topic, partition) indexes.
    let mut durable_waits: Vec<(usize, usize, PartitionLog, i64)> = Vec::new();
    // Proposals to replicated partitions whose answer waits for their commit.
    let mut commit_waits: Vec<CommitWait> = Vec::new();
    // Partitions whose disk backlog this request filled up (see below).
    let mut backlogged: Vec<PartitionLog> = Vec::new();
    let mut responses = Vec::with_capacity(request.topic_data.len());
    for (topic_index, topic) in request.topic_data.into_iter().enumerate() {
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        // Kafka: "Cannot append to internal topic"; only the coordinators write one.
        let internal = crate::shard::placement::is_internal(&topic.name.0);
        for (partition_index, data) in topic.partition_data.into_iter().enumerate() {
            let mut answer = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let refusal = if !matches!(acks, -1..=1) {
                Some(ResponseError::InvalidRequiredAcks)
            } else if internal {
                Some(ResponseError::InvalidTopicException)
            } else if refusals.is_empty() {
                None
            } else {
                refusals
                    .get(&(topic.name.0.to_string(), data.index))
                    .copied()
            };
            let replica = refusal
                .is_none()
                .then(|| shard.replica(&topic.name, data.index))
                .flatten();
            let error = match (refusal, replica, shard.partition(&topic.name, data.index)) {
                (Some(error), _, _) => Some(error),
                (None, Some(replica), _) => match propose(&replica, data.records, now) {
                    Ok((committed, bytes)) => {
                        if acks != 0 {
                            commit_waits.push(CommitWait {
                                topic_index,
                                partition_index,
                                bytes,
                                committed,
                            });
                        }
                        None
                    }
                    Err(error) => Some(error),
                },
                (None, None, PartitionLookup::UnknownTopic) => {
                    Some(ResponseError::UnknownTopicOrPartition)
                }
                (None, None, PartitionLookup::NotHere)
                    if shard
                        .topic(&topic.name)
                        .is_some_and(|m| data.index >= 0 && data.index < m.partition_count) =>
                {
                    Some(ResponseError::NotLeaderOrFollower)
                }
                (None, None, PartitionLookup::NotHere) => {
                    Some(ResponseError::UnknownTopicOrPartition)
                }
                (None, None, PartitionLookup::Local(log)) => match data.records {
                    None => Some(ResponseError::CorruptMessage),
                    // Retriable: the client backs off and retries until the disk has room.
                    Some(_) if log.is_storage_full() => Some(ResponseError::KafkaStorageError),
                    Some(records) => match (records.len(), log.append(records, now)) {
                        (bytes, Ok(info)) => {
                            let count = info.last_offset - info.base_offset + 1;
                            crate::metrics::produced(&topic.name.0, data.index, bytes, count);
                            answer.base_offset = info.base_offset;
                            answer.log_append_time_ms = info.log_append_time_ms;
                            if ctx.version >= 5 {
                                answer.log_start_offset = info.log_start_offset;
                            }
                            if log.unwritten_bytes() >= PARTITION_UNWRITTEN_BYTES_MAX {
                                backlogged.push(log.clone());
                            }
                            if acks == -1 {
                                durable_waits.push((
                                    topic_index,
                                    partition_index,
                                    log,
                                    info.last_offset,
                                ));
                            }
                            None
                        }
                        (_, Err(e)) => {
                            tracing::debug!(topic = %topic.name.0, partition = data.index, error = %e, "append refused");
                            if ctx.version >= 8 {
                                answer.error_message = Some(StrBytes::from_string(e.to_string()));
                                if let LogError::KeylessRecords { record_indexes } = &e {
                                    keyless_record_errors(
                                        &mut answer,
                                        &topic.name.0,
                                        data.index,
                                        record_indexes,
                                    );
                                }
                            }
                            Some(log_error(&e))
                        }
                    },
                },
            };
            if let Some(error) = error {
                answer.error_code = code(error);
                crate::metrics::error_code(ctx.api_key as i16, answer.error_code);
                answer.base_offset = -1;
            }
            partitions.push(answer);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partitions),
        );
    }
    let response = ProduceResponse::default().with_responses(responses);
    // Only acks=0 needs it: there is no answer to carry a refusal, so the connection closes.
    let refused = acks == 0
        && response
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .any(|p| p.error_code != 0);
    let no_backlog = backlogged.is_empty();
    // A partition whose disk backlog is full holds this request's answer (and so its
    // memory budget) until the writer catches up: producers that outrun the disk slow down
    // instead of growing the backlog without bound. acks=-1 waits for more than that anyway.
    let drained = async move {
        for log in backlogged {
            log.wait_unwritten_below(PARTITION_UNWRITTEN_BYTES_MAX)
                .await;
        }
        AfterSilence::KeepOpen
    };
    let appended_at = std::time::Instant::now();
    if acks != 0 && !commit_waits.is_empty() {
        let topics: Vec<String> = response
            .responses
            .iter()
            .map(|t| t.name.0.to_string())
            .collect();
        return Ok(Reply::Deferred(Box::pin(async move {
            let mut response = response;
            for wait in commit_waits {
                let outcome = wait.committed.await;
                let Some(answer) = response
                    .responses
                    .get_mut(wait.topic_index)
                    .and_then(|t| t.partition_responses.get_mut(wait.partition_index))
                else {
                    continue;
                };
                let topic = topics.get(wait.topic_index).map_or("", String::as_str);
                committed_answer(ctx, answer, topic, wait.bytes, outcome);
            }
            await_durable(ctx, &mut response, durable_waits).await;
            drained.await;
            ctx.encode(&response)
        })));
    }
    match acks {
        0 if refused => Ok(Reply::Close),
        0 if no_backlog => Ok(Reply::None),
        0 => Ok(Reply::Silent(Box::pin(drained))),
        -1 if !durable_waits.is_empty() => Ok(Reply::Deferred(Box::pin(async move {
            let mut response = response;
            await_durable(ctx, &mut response, durable_waits).await;
            crate::metrics::latency(
                crate::metrics::Hist::ProduceDurableWait,
                appended_at.elapsed(),
            );
            ctx.encode(&response)
        }))),
        _ if no_backlog => ctx.reply(&response),
        _ => Ok(Reply::Deferred(Box::pin(async move {
            drained.await;
            ctx.encode(&response)
        }))),
    }
}

/// Proposes a record set to a replicated partition's Raft group: the proposal to await
/// and the record set's size, or why it is refused before any proposal.
fn propose(
    replica: &Replica,
    records: Option<Bytes>,
    now: i64,
) -> Result<(Committed, usize), ResponseError> {
    let Some(records) = records else {
        return Err(ResponseError::CorruptMessage);
    };
    if !replica.is_leader() {
        return Err(ResponseError::NotLeaderOrFollower);
    }
    if replica.partition().is_storage_full() {
        return Err(ResponseError::KafkaStorageError);
    }
    replica
        .propose_record_set(&records, now)
        .map(|committed| (committed, records.len()))
        .map_err(|e| {
            tracing::debug!(error = %e, "proposal refused");
            replica_error(&e)
        })
}

/// A proposal to a replicated partition whose answer waits for its commit.
struct CommitWait {
    topic_index: usize,
    partition_index: usize,
    bytes: usize,
    committed: Committed,
}

/// Waits until each appended partition has its records durable; a failed flush answers
/// that partition's error.
async fn await_durable(
    ctx: RequestContext,
    response: &mut ProduceResponse,
    durable_waits: Vec<(usize, usize, PartitionLog, i64)>,
) {
    for (topic_index, partition_index, log, last_offset) in durable_waits {
        if let Err(e) = log.wait_durable(last_offset).await {
            tracing::error!(error = %e, "flush failed; produce not acknowledged");
            if let Some(answer) = response
                .responses
                .get_mut(topic_index)
                .and_then(|t| t.partition_responses.get_mut(partition_index))
            {
                answer.error_code = code(log_error(&e));
                crate::metrics::error_code(ctx.api_key as i16, answer.error_code);
                answer.base_offset = -1;
            }
        }
    }
}

/// Fills a replicated partition's answer from its proposal's outcome.
fn committed_answer(
    ctx: RequestContext,
    answer: &mut PartitionProduceResponse,
    topic: &str,
    bytes: usize,
    outcome: Result<AppendInfo, ReplicaError>,
) {
    match outcome {
        Ok(info) => {
            let count = info.last_offset - info.base_offset + 1;
            crate::metrics::produced(topic, answer.index, bytes, count);
            answer.base_offset = info.base_offset;
            answer.log_append_time_ms = info.log_append_time_ms;
            if ctx.version >= 5 {
                answer.log_start_offset = info.log_start_offset;
            }
        }
        Err(e) => {
            let partition = answer.index;
            tracing::debug!(topic, partition, error = %e, "replicated append refused");
            if ctx.version >= 8 {
                if let ReplicaError::Partition { source, .. } = &e {
                    answer.error_message = Some(StrBytes::from_string(source.to_string()));
                    if let LogError::KeylessRecords { record_indexes } = source {
                        keyless_record_errors(answer, topic, partition, record_indexes);
                    }
                }
            }
            answer.error_code = code(replica_error(&e));
            crate::metrics::error_code(ctx.api_key as i16, answer.error_code);
            answer.base_offset = -1;
        }
    }
}

/// The Kafka error for a proposal that failed: the partition log's refusal as on a single
/// node; leadership moving (retriable: the client refreshes its metadata); else the disk.
fn replica_error(error: &ReplicaError) -> ResponseError {
    match error {
        ReplicaError::Partition { source, .. } => log_error(source),
        ReplicaError::NotLeader { .. }
        | ReplicaError::Superseded { .. }
        | ReplicaError::Closed { .. }
        | ReplicaError::Raft { .. } => ResponseError::NotLeaderOrFollower,
        _ => ResponseError::KafkaStorageError,
    }
}

/// KIP-467 per-record errors for records refused by a compacted topic, worded as Kafka's
/// LogValidator words them.
fn keyless_record_errors(
    answer: &mut PartitionProduceResponse,
    topic: &str,
    partition: i32,
    record_indexes: &[i32],
) {
    let message = format!(
        "Compacted topic cannot accept message without key in topic partition {topic}-{partition}."
    );
    answer.record_errors = record_indexes
        .iter()
        .map(|&index| {
            BatchIndexAndErrorMessage::default()
                .with_batch_index(index)
                .with_batch_index_error_message(Some(StrBytes::from_string(message.clone())))
        })
        .collect();
    answer.error_message = Some(StrBytes::from_string(format!(
        "One or more records have been rejected due to {} record errors in total: {message}",
        record_indexes.len()
    )));
}
