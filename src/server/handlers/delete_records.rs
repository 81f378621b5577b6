//! DeleteRecords: moves partitions' log start offsets forward (Kafka's `deleteRecords`
//! admin call). Each partition is answered by the shard that owns it, as produce is: a
//! partition of another shard gets NOT_LEADER_OR_FOLLOWER, and clients send it to its leader.
//! With one replica the low watermark reaches the requested offset at once, so the request's
//! timeout never matters.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::delete_records_request::DeleteRecordsRequest;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};

use super::{access, local_partition, RequestContext};
use crate::log::PartitionLog;
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::{now_ms, Reply};
use crate::server::error_codes::log_error;
use crate::shard::Shard;

/// The requested offset that means "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub fn handle(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: DeleteRecordsRequest = ctx.decode(&mut body)?;
    let names = request.topics.iter().map(|t| t.name.0.as_str());
    let denied = access::denied_topics(shard, session, AclOperation::Delete, names);
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in request.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for wanted in topic.partitions {
                let outcome = match local_partition(&shard, &topic.name, wanted.partition_index) {
                    _ if denied.iter().any(|d| *d == *topic.name.0) => {
                        Err(ResponseError::TopicAuthorizationFailed)
                    }
                    Ok(log) if deletion_allowed(&shard, &topic.name) => {
                        delete_before(&log, wanted.offset).await
                    }
                    Ok(_) => Err(ResponseError::PolicyViolation),
                    Err(error) => Err(error),
                };
                let mut answer = DeleteRecordsPartitionResult::default()
                    .with_partition_index(wanted.partition_index)
                    .with_low_watermark(-1);
                match outcome {
                    Ok(low_watermark) => answer.low_watermark = low_watermark,
                    Err(error) => answer.error_code = code(error),
                }
                partitions.push(answer);
            }
            topics.push(
                DeleteRecordsTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(partitions),
            );
        }
        ctx.encode(&DeleteRecordsResponse::default().with_topics(topics))
    })))
}

/// Kafka refuses DeleteRecords on a topic whose `cleanup.policy` lacks `delete`
/// (POLICY_VIOLATION): a compacted topic keeps the latest record of every key.
fn deletion_allowed(shard: &Shard, topic: &str) -> bool {
    shard
        .topic(topic)
        .and_then(|meta| shard.topic_log_config(&meta).ok())
        .is_none_or(|config| config.cleanup.delete)
}

async fn delete_before(log: &PartitionLog, offset: i64) -> Result<i64, ResponseError> {
    let offset = if offset == HIGH_WATERMARK {
        log.high_watermark()
    } else {
        offset
    };
    log.delete_records_before(offset, now_ms())
        .await
        .map_err(|e| {
            tracing::debug!(error = %e, "delete records refused");
            log_error(&e)
        })
}
