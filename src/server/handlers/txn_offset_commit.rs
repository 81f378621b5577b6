//! TxnOffsetCommit (KIP-98, KIP-447), served by the group's coordinator shard: the
//! committer is checked like an OffsetCommit's, then the offsets go to the transaction's
//! coordinator, which keeps them with the transaction and commits them to the group when
//! the transaction commits (and drops them when it aborts).

use std::rc::Rc;

use bytes::Bytes;
use futures_channel::oneshot;
use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};

use super::group_errors::group_error_code;
use super::offsets::partition_exists;
use super::txn_errors::txn_error_code;
use super::{access, RequestContext};
use crate::group::group_coordinator::CommitIdentity;
use crate::group::offset_record::{CommittedOffset, RECORD_STRING_BYTES_MAX};
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::{now_ms, Reply};
use crate::shard::Shard;
use crate::txn::txn_metadata::PendingOffset;
use crate::txn::{TxnError, TxnMessage};

/// Kafka's group coordinator answers a stale producer epoch here with
/// INVALID_PRODUCER_EPOCH at every version.
const FENCED_NEVER: i16 = i16::MAX;

async fn stage(
    shard: &Rc<Shard>,
    group: &str,
    transactional_id: String,
    producer: (i64, i16),
    offsets: Vec<PendingOffset>,
) -> Result<(), TxnError> {
    if let Some(node) =
        shard.remote_internal_coordinator(&transactional_id, crate::txn::txn_store::TXN_STATE_TOPIC)
    {
        // The transaction's coordinator is another node: it cannot tell this shard (the
        // group's coordinator) that the offsets are pending, so this shard notes it here.
        let partitions: Vec<(String, i32)> = offsets
            .iter()
            .map(|o| (o.topic.clone(), o.partition))
            .collect();
        shard
            .stage_offsets_on_node(node, transactional_id.clone(), producer, offsets)
            .await?;
        shard
            .txn()
            .note_pending_offsets(group, &transactional_id, partitions);
        return Ok(());
    }
    let coordinator = crate::txn::coordinator_shard(&transactional_id, shard.config.shard_count);
    if coordinator == shard.id {
        return shard
            .txn()
            .stage_offsets(&transactional_id, producer, offsets)
            .await;
    }
    let (reply, answer) = oneshot::channel();
    shard
        .txn()
        .send(
            coordinator,
            TxnMessage::StageOffsets {
                transactional_id,
                producer_id: producer.0,
                epoch: producer.1,
                offsets,
                reply,
            },
        )
        .await?;
    answer.await.map_err(|_| TxnError::ShuttingDown)?
}

pub fn txn_offset_commit(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: TxnOffsetCommitRequest = ctx.decode(&mut body)?;
    let group = request.group_id.0.to_string();
    let transactional_id = request.transactional_id.0.to_string();
    let producer = (request.producer_id.0, request.producer_epoch);
    let now = now_ms();
    let metadata_max = shard
        .groups()
        .config()
        .offset_metadata_bytes_max
        .min(RECORD_STRING_BYTES_MAX);
    // Per partition: `None` = accepted, pending the outcome of the whole commit.
    let mut outcomes = Vec::with_capacity(request.topics.len());
    let mut accepted = Vec::new();
    for topic in &request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let metadata = p
                .committed_metadata
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            let exists = partition_exists(shard, &topic.name.0, p.partition_index);
            let refusal = if !access::topic(shard, session, AclOperation::Read, &topic.name) {
                Some(code(ResponseError::TopicAuthorizationFailed))
            } else if metadata.len() > metadata_max {
                Some(code(ResponseError::OffsetMetadataTooLarge))
            } else if !exists {
                Some(code(ResponseError::UnknownTopicOrPartition))
            } else {
                accepted.push(PendingOffset {
                    group: group.clone(),
                    topic: topic.name.0.to_string(),
                    partition: p.partition_index,
                    offset: CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: if ctx.version >= 2 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata,
                        commit_timestamp_ms: now,
                    },
                });
                None
            };
            partitions.push((p.partition_index, refusal));
        }
        outcomes.push((topic.name.clone(), partitions));
    }
    let who = CommitIdentity {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        generation_or_epoch: request.generation_id,
        // Kafka checks a transactional commit's member epoch whatever the request version.
        member_epochs: true,
    };
    // Kafka: WRITE on the transactional id and READ on the group refuse the whole commit.
    let checked =
        if !access::transactional_id(shard, session, AclOperation::Write, &transactional_id) {
            Err(code(ResponseError::TransactionalIdAuthorizationFailed))
        } else if !access::group(shard, session, AclOperation::Read, &group) {
            Err(code(ResponseError::GroupAuthorizationFailed))
        } else if transactional_id.is_empty() || transactional_id.len() > RECORD_STRING_BYTES_MAX {
            Err(code(ResponseError::InvalidRequest))
        } else {
            shard
                .groups()
                .check_transaction_commit(&group, &who)
                .map_err(|e| group_error_code(&e))
        };
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let outcome = match checked {
            Err(error) => error,
            Ok(()) if accepted.is_empty() => 0,
            Ok(()) => {
                match stage(&shard, &group, transactional_id.clone(), producer, accepted).await {
                    Ok(()) => 0,
                    Err(e) => {
                        tracing::debug!(%transactional_id, %group, error = %e, "TxnOffsetCommit refused");
                        txn_error_code(&e, ctx.version, FENCED_NEVER)
                    }
                }
            }
        };
        let topics = outcomes
            .into_iter()
            .map(|(name, partitions)| {
                TxnOffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(index, refusal)| {
                                TxnOffsetCommitResponsePartition::default()
                                    .with_partition_index(index)
                                    .with_error_code(refusal.unwrap_or(outcome))
                            })
                            .collect(),
                    )
            })
            .collect();
        ctx.encode(&TxnOffsetCommitResponse::default().with_topics(topics))
    })))
}
