//! Answers for versions of the transaction APIs sluice does not serve (EndTxn and
//! TxnOffsetCommit v5, KIP-890 part 2). They are not advertised in ApiVersions; a client
//! that sends one anyway gets UNSUPPORTED_VERSION instead of a dropped connection (which
//! clients retry forever).

use bytes::Bytes;
use kafka_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnRequest;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::end_txn_response::EndTxnResponse;
use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::ApiKey;

use super::RequestContext;
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::server::connection::Reply;

const TXN_REFUSAL: ResponseError = ResponseError::UnsupportedVersion;

/// Builds an error answer for a known-but-unimplemented API, if sluice has one for it.
pub fn answer(ctx: RequestContext, mut body: Bytes) -> Option<Result<Reply, ProtocolError>> {
    if !(ctx.api_key.valid_versions().min..=ctx.api_key.valid_versions().max).contains(&ctx.version)
    {
        return None;
    }
    let refusal = code(TXN_REFUSAL);
    let reply = match ctx.api_key {
        ApiKey::AddOffsetsToTxn => {
            ctx.reply(&AddOffsetsToTxnResponse::default().with_error_code(refusal))
        }
        ApiKey::EndTxn => ctx.reply(&EndTxnResponse::default().with_error_code(refusal)),
        ApiKey::AddPartitionsToTxn => {
            ctx.decode::<AddPartitionsToTxnRequest>(&mut body)
                .and_then(|request| {
                    let results = request
                        .transactions
                        .into_iter()
                        .map(|txn| {
                            AddPartitionsToTxnResult::default()
                                .with_transactional_id(txn.transactional_id)
                                .with_topic_results(
                                    txn.topics
                                        .into_iter()
                                        .map(|topic| {
                                            AddPartitionsToTxnTopicResult::default()
                                        .with_name(topic.name)
                                        .with_results_by_partition(
                                            topic
                                                .partitions
                                                .into_iter()
                                                .map(|p| {
                                                    AddPartitionsToTxnPartitionResult::default()
                                                        .with_partition_index(p)
                                                        .with_partition_error_code(refusal)
                                                })
                                                .collect(),
                                        )
                                        })
                                        .collect(),
                                )
                        })
                        .collect();
                    // v4 batched transactions; before it, one transaction's topics sit at the top.
                    let mut response = AddPartitionsToTxnResponse::default();
                    if ctx.version >= 4 {
                        response.error_code = refusal;
                        response.results_by_transaction = results;
                    } else {
                        response.results_by_topic_v3_and_below =
                            results.into_iter().flat_map(|r| r.topic_results).collect();
                    }
                    ctx.reply(&response)
                })
        }
        ApiKey::TxnOffsetCommit => {
            ctx.decode::<TxnOffsetCommitRequest>(&mut body)
                .and_then(|request| {
                    let topics = request
                        .topics
                        .into_iter()
                        .map(|topic| {
                            TxnOffsetCommitResponseTopic::default()
                                .with_name(topic.name)
                                .with_partitions(
                                    topic
                                        .partitions
                                        .iter()
                                        .map(|p| {
                                            TxnOffsetCommitResponsePartition::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(refusal)
                                        })
                                        .collect(),
                                )
                        })
                        .collect();
                    ctx.reply(&TxnOffsetCommitResponse::default().with_topics(topics))
                })
        }
        _ => return None,
    };
    Some(reply)
}
