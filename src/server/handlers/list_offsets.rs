//! ListOffsets: earliest (-2), latest (-1), or the first offset at or after a timestamp.
//! Latest is the last stable offset for a read_committed consumer (isolation level 1, v2+),
//! the high watermark otherwise.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::list_offsets_request::ListOffsetsRequest;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};

use super::RequestContext;
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::server::connection::Reply;
use crate::server::error_codes::log_error;
use crate::shard::{PartitionLookup, Shard};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const READ_COMMITTED: i8 = 1;

pub fn handle(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: ListOffsetsRequest = ctx.decode(&mut body)?;
    let committed = ctx.version >= 2 && request.isolation_level == READ_COMMITTED;
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in request.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for wanted in topic.partitions {
                let mut answer = ListOffsetsPartitionResponse::default()
                    .with_partition_index(wanted.partition_index)
                    .with_timestamp(-1)
                    .with_offset(-1);
                if ctx.version >= 4 {
                    answer.leader_epoch = 0;
                }
                let log = match shard.partition(&topic.name, wanted.partition_index) {
                    PartitionLookup::Local(log) => log,
                    PartitionLookup::NotHere
                        if shard.topic(&topic.name).is_some_and(|m| {
                            (0..m.partition_count).contains(&wanted.partition_index)
                        }) =>
                    {
                        answer.error_code = code(ResponseError::NotLeaderOrFollower);
                        partitions.push(answer);
                        continue;
                    }
                    _ => {
                        answer.error_code = code(ResponseError::UnknownTopicOrPartition);
                        partitions.push(answer);
                        continue;
                    }
                };
                match wanted.timestamp {
                    LATEST if committed => answer.offset = log.last_stable_offset(),
                    LATEST => answer.offset = log.high_watermark(),
                    EARLIEST => answer.offset = log.log_start_offset(),
                    ts if ts >= 0 => match log.offset_for_timestamp(ts).await {
                        Ok(Some((offset, timestamp))) => {
                            answer.offset = offset;
                            answer.timestamp = timestamp;
                        }
                        Ok(None) => {}
                        Err(e) => answer.error_code = code(log_error(&e)),
                    },
                    // -3 (max timestamp, KIP-734) and beyond need versions we do not serve.
                    _ => answer.error_code = code(ResponseError::InvalidRequest),
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
