//! ListOffsets: the first offset at or after a timestamp, or a special position: latest
//! (-1), earliest (-2), the record with the largest timestamp (-3, v7+), the earliest local
//! offset (-4, v8+; the log start, as there is no tiered storage) or the latest tiered offset
//! (-5, v9+; none, so -1 as Kafka answers without tiered storage). A special position asked
//! at a version below its own is UNSUPPORTED_VERSION for that partition, as in Kafka.
//! Latest is the last stable offset for a read_committed consumer (isolation level 1, v2+),
//! the high watermark otherwise.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::list_offsets_request::ListOffsetsRequest;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};

use super::{access, local_partition, RequestContext};
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::Reply;
use crate::server::error_codes::log_error;
use crate::shard::Shard;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// The first ListOffsets version that may ask for a special (negative) timestamp.
fn first_version_for(timestamp: i64) -> Option<i16> {
    match timestamp {
        LATEST | EARLIEST => Some(0),
        MAX_TIMESTAMP => Some(7),
        EARLIEST_LOCAL => Some(8),
        LATEST_TIERED => Some(9),
        _ => None,
    }
}
const READ_COMMITTED: i8 = 1;

pub fn handle(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: ListOffsetsRequest = ctx.decode(&mut body)?;
    let names = request.topics.iter().map(|t| t.name.0.as_str());
    let denied = access::denied_topics(shard, session, AclOperation::Describe, names);
    let committed = ctx.version >= 2 && request.isolation_level == READ_COMMITTED;
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in request.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for wanted in topic.partitions {
                // Kafka's answer for an error or no such record: no timestamp, offset or epoch.
                let mut answer = ListOffsetsPartitionResponse::default()
                    .with_partition_index(wanted.partition_index)
                    .with_timestamp(-1)
                    .with_offset(-1)
                    .with_leader_epoch(-1);
                let served = wanted.timestamp >= 0
                    || first_version_for(wanted.timestamp).is_some_and(|v| ctx.version >= v);
                if denied.iter().any(|d| *d == *topic.name.0) {
                    answer.error_code = code(ResponseError::TopicAuthorizationFailed);
                    partitions.push(answer);
                    continue;
                }
                if !served {
                    answer.error_code = code(ResponseError::UnsupportedVersion);
                    partitions.push(answer);
                    continue;
                }
                let log = match local_partition(&shard, &topic.name, wanted.partition_index) {
                    Ok(log) => log,
                    Err(error) => {
                        answer.error_code = code(error);
                        partitions.push(answer);
                        continue;
                    }
                };
                let found = match wanted.timestamp {
                    LATEST if committed => Ok(Some((log.last_stable_offset(), -1))),
                    LATEST => Ok(Some((log.high_watermark(), -1))),
                    EARLIEST | EARLIEST_LOCAL => Ok(Some((log.log_start_offset(), -1))),
                    // Nothing is tiered: Kafka answers offset -1 with epoch -1.
                    LATEST_TIERED => Ok(None),
                    MAX_TIMESTAMP => log.offset_for_max_timestamp().await,
                    ts => log.offset_for_timestamp(ts).await,
                };
                match found {
                    Ok(Some((offset, timestamp))) => {
                        answer.offset = offset;
                        answer.timestamp = timestamp;
                        if ctx.version >= 4 {
                            // sluice's only leader epoch (see Metadata).
                            answer.leader_epoch = 0;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => answer.error_code = code(log_error(&e)),
                }
                partitions.push(answer);
            }
            topics.push(
                ListOffsetsTopicResponse::default()
                    .with_name(topic.name)
                    .with_partitions(partitions),
            );
        }
        ctx.encode(&ListOffsetsResponse::default().with_topics(topics))
    })))
}
