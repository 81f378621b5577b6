//! The transaction coordinator's APIs (KIP-98, KIP-890 part 1): AddPartitionsToTxn (with
//! its verify-only path), AddOffsetsToTxn and EndTxn, served by the transactional id's
//! coordinator shard. InitProducerId with a transactional id is in `producer_id`.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafka_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::end_txn_response::EndTxnResponse;
use kafka_protocol::messages::{ProducerId, TopicName};

use super::offsets::partition_exists;
use super::txn_errors::txn_error_code;
use super::{access, RequestContext};
use crate::group::offset_record::RECORD_STRING_BYTES_MAX;
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::Reply;
use crate::shard::Shard;

/// Versions from which these APIs know PRODUCER_FENCED.
const ADD_PARTITIONS_FENCED_FROM: i16 = 2;
const ADD_OFFSETS_FENCED_FROM: i16 = 2;
const END_TXN_FENCED_FROM: i16 = 2;

/// Per-partition codes of one transaction, by topic in request order.
type TopicCodes = Vec<(TopicName, Vec<(i32, i16)>)>;

/// Kafka's authorization refusal of one transaction's AddPartitionsToTxn: every partition
/// when the transactional id may not be written, else the partitions of topics that may not
/// be written, the others OPERATION_NOT_ATTEMPTED; `None` when allowed.
fn denials(
    shard: &Shard,
    session: &Session,
    txn: &AddPartitionsToTxnTransaction,
) -> Option<TopicCodes> {
    let txn_denied =
        !access::transactional_id(shard, session, AclOperation::Write, &txn.transactional_id);
    let topic_denied =
        |name: &TopicName| !access::topic(shard, session, AclOperation::Write, &name.0);
    if !txn_denied && !txn.topics.iter().any(|t| topic_denied(&t.name)) {
        return None;
    }
    let codes = txn.topics.iter().map(|t| {
        let error = if txn_denied {
            ResponseError::TransactionalIdAuthorizationFailed
        } else if topic_denied(&t.name) {
            ResponseError::TopicAuthorizationFailed
        } else {
            ResponseError::OperationNotAttempted
        };
        let partitions = t.partitions.iter().map(|p| (*p, code(error))).collect();
        (t.name.clone(), partitions)
    });
    Some(codes.collect())
}

fn topic_results(codes: TopicCodes) -> Vec<AddPartitionsToTxnTopicResult> {
    codes
        .into_iter()
        .map(|(name, partitions)| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(name)
                .with_results_by_partition(
                    partitions
                        .into_iter()
                        .map(|(index, error)| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(index)
                                .with_partition_error_code(error)
                        })
                        .collect(),
                )
        })
        .collect()
}

/// Adds (or, verify-only, checks) one transaction's partitions.
async fn add_partitions(
    shard: &Rc<Shard>,
    version: i16,
    txn: AddPartitionsToTxnTransaction,
) -> AddPartitionsToTxnResult {
    let transactional_id = txn.transactional_id.0.to_string();
    let producer = (txn.producer_id.0, txn.producer_epoch);
    let mut partitions = Vec::new();
    let mut unknown = false;
    for topic in &txn.topics {
        for p in &topic.partitions {
            unknown |= !partition_exists(shard, &topic.name.0, *p);
            partitions.push((topic.name.0.to_string(), *p));
        }
    }
    let same_code = |error: i16| -> TopicCodes {
        txn.topics
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    t.partitions.iter().map(|p| (*p, error)).collect(),
                )
            })
            .collect()
    };
    let codes = if unknown {
        // Kafka refuses the whole request: unknown partitions get their error, the others
        // OPERATION_NOT_ATTEMPTED.
        txn.topics
            .iter()
            .map(|t| {
                let codes = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let error = if partition_exists(shard, &t.name.0, *p) {
                            ResponseError::OperationNotAttempted
                        } else {
                            ResponseError::UnknownTopicOrPartition
                        };
                        (*p, code(error))
                    })
                    .collect();
                (t.name.clone(), codes)
            })
            .collect()
    } else if txn.verify_only {
        match shard.txn().verify(&transactional_id, producer, partitions) {
            Err(e) => same_code(txn_error_code(&e, version, ADD_PARTITIONS_FENCED_FROM)),
            Ok(verified) => txn
                .topics
                .iter()
                .map(|t| {
                    let codes = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let error = verified
                                .iter()
                                .find(|((topic, index), _)| *topic == *t.name.0 && index == p)
                                .and_then(|(_, result)| result.as_ref().err())
                                .map_or(0, |e| {
                                    txn_error_code(e, version, ADD_PARTITIONS_FENCED_FROM)
                                });
                            (*p, error)
                        })
                        .collect();
                    (t.name.clone(), codes)
                })
                .collect(),
        }
    } else {
        let added = shard
            .txn()
            .add(&transactional_id, producer, &partitions, None)
            .await;
        same_code(added.map_or_else(
            |e| txn_error_code(&e, version, ADD_PARTITIONS_FENCED_FROM),
            |()| 0,
        ))
    };
    AddPartitionsToTxnResult::default()
        .with_transactional_id(txn.transactional_id)
        .with_topic_results(topic_results(codes))
}

pub fn add_partitions_to_txn(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: AddPartitionsToTxnRequest = ctx.decode(&mut body)?;
    // v4 batches transactions (sent by brokers, verify-only or not); before it, one
    // transaction's fields sit at the top level.
    let transactions = if ctx.version >= 4 {
        request.transactions
    } else {
        vec![AddPartitionsToTxnTransaction::default()
            .with_transactional_id(request.v3_and_below_transactional_id)
            .with_producer_id(request.v3_and_below_producer_id)
            .with_producer_epoch(request.v3_and_below_producer_epoch)
            .with_topics(request.v3_and_below_topics)]
    };
    let refusals: Vec<Option<TopicCodes>> = transactions
        .iter()
        .map(|txn| denials(shard, session, txn))
        .collect();
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let mut results = Vec::with_capacity(transactions.len());
        for (txn, refusal) in transactions.into_iter().zip(refusals) {
            let result = match refusal {
                Some(codes) => AddPartitionsToTxnResult::default()
                    .with_transactional_id(txn.transactional_id)
                    .with_topic_results(topic_results(codes)),
                None => add_partitions(&shard, ctx.version, txn).await,
            };
            results.push(result);
        }
        let mut response = AddPartitionsToTxnResponse::default();
        if ctx.version >= 4 {
            response.results_by_transaction = results;
        } else {
            response.results_by_topic_v3_and_below =
                results.into_iter().flat_map(|r| r.topic_results).collect();
        }
        ctx.encode(&response)
    })))
}

pub fn add_offsets_to_txn(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: AddOffsetsToTxnRequest = ctx.decode(&mut body)?;
    let transactional_id = request.transactional_id.0.to_string();
    let group = request.group_id.0.to_string();
    let denied =
        if !access::transactional_id(shard, session, AclOperation::Write, &transactional_id) {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        } else if !access::group(shard, session, AclOperation::Read, &group) {
            Some(ResponseError::GroupAuthorizationFailed)
        } else {
            None
        };
    if let Some(error) = denied {
        return ctx.reply(&AddOffsetsToTxnResponse::default().with_error_code(code(error)));
    }
    let producer = (request.producer_id.0, request.producer_epoch);
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let error = if group.is_empty() || group.len() > RECORD_STRING_BYTES_MAX {
            code(ResponseError::InvalidGroupId)
        } else {
            shard
                .txn()
                .add(&transactional_id, producer, &[], Some(&group))
                .await
                .map_or_else(
                    |e| txn_error_code(&e, ctx.version, ADD_OFFSETS_FENCED_FROM),
                    |()| 0,
                )
        };
        ctx.encode(&AddOffsetsToTxnResponse::default().with_error_code(error))
    })))
}

pub fn end_txn(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: EndTxnRequest = ctx.decode(&mut body)?;
    let transactional_id = request.transactional_id.0.to_string();
    if !access::transactional_id(shard, session, AclOperation::Write, &transactional_id) {
        let denied = code(ResponseError::TransactionalIdAuthorizationFailed);
        let response = EndTxnResponse::default()
            .with_error_code(denied)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        return ctx.reply(&response);
    }
    let producer = (request.producer_id.0, request.producer_epoch);
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let result = shard
            .txn()
            .end_txn(&shard, &transactional_id, producer, request.committed)
            .await;
        if let Err(e) = &result {
            tracing::debug!(%transactional_id, error = %e, "EndTxn refused");
        }
        let error = result.map_or_else(
            |e| txn_error_code(&e, ctx.version, END_TXN_FENCED_FROM),
            |()| 0,
        );
        // v5 (KIP-890 part 2) would return the bumped epoch; sluice serves up to v4.
        let response = EndTxnResponse::default()
            .with_error_code(error)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        ctx.encode(&response)
    })))
}
