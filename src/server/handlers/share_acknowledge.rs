//! ShareAcknowledge (KIP-932): acknowledgements without a fetch, served by the shard that
//! owns each partition. The share session epoch is checked first (0 is refused: only a
//! ShareFetch opens a session); epoch -1 also closes the member's share session, releasing
//! the records it still holds.

use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::share_acknowledge_request::ShareAcknowledgeRequest;
use kafka_protocol::messages::share_acknowledge_response::{
    LeaderIdAndEpoch, PartitionData, ShareAcknowledgeResponse, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::share_errors::share_error_code;
use super::share_fetch::{ack_batches, acknowledge, release_member, resolve, Target};
use super::RequestContext;
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::server::connection::Reply;
use crate::shard::Shard;
use crate::share::share_session::FINAL_EPOCH;

pub fn handle(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: ShareAcknowledgeRequest = ctx.decode(&mut body)?;
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let response = share_acknowledge(&shard, request).await;
        ctx.encode(&response)
    })))
}

async fn share_acknowledge(
    shard: &Rc<Shard>,
    request: ShareAcknowledgeRequest,
) -> ShareAcknowledgeResponse {
    let mut response = ShareAcknowledgeResponse::default();
    let group = request
        .group_id
        .as_ref()
        .map(|g| g.0.to_string())
        .unwrap_or_default();
    let member = request
        .member_id
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default();
    if group.is_empty() || member.is_empty() {
        response.error_code = code(ResponseError::InvalidRequest);
        response.error_message = Some(StrBytes::from_static_str(
            "group id and member id are required",
        ));
        return response;
    }
    let epoch = request.share_session_epoch;
    let closed = match shard.share().acknowledge_session(&group, &member, epoch) {
        Ok(closed) => closed,
        Err(e) => {
            tracing::debug!(%group, %member, epoch, error = %e, "ShareAcknowledge session refused");
            response.error_code = share_error_code(&e);
            response.error_message = Some(StrBytes::from_string(e.to_string()));
            return response;
        }
    };
    let mut topics: BTreeMap<Uuid, Vec<PartitionData>> = BTreeMap::new();
    let mut acked: Vec<Target> = Vec::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            let target = resolve(shard, topic.topic_id, p.partition_index).await;
            let error = match &target.shares {
                Err(e) => code(*e),
                Ok(shares) => {
                    let batches = ack_batches(
                        p.acknowledgement_batches
                            .iter()
                            .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone())),
                    );
                    acknowledge(shard, &group, &member, shares, batches).await
                }
            };
            let leader = if error == code(ResponseError::NotLeaderOrFollower) {
                i32::try_from(shard.owner_of(&target.topic, target.partition)).unwrap_or(-1)
            } else {
                shard.node_id()
            };
            topics.entry(topic.topic_id).or_default().push(
                PartitionData::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(error)
                    .with_current_leader(
                        LeaderIdAndEpoch::default()
                            .with_leader_id(leader)
                            .with_leader_epoch(0),
                    ),
            );
            acked.push(target);
        }
    }
    if epoch == FINAL_EPOCH {
        let mut targets = acked;
        for (topic, partition) in &closed {
            if let Some(meta) = shard.topic(topic) {
                targets.push(resolve(shard, meta.id, *partition).await);
            }
        }
        release_member(shard, &group, &member, &targets).await;
    }
    response.responses = topics
        .into_iter()
        .map(|(topic_id, partitions)| {
            ShareAcknowledgeTopicResponse::default()
                .with_topic_id(topic_id)
                .with_partitions(partitions)
        })
        .collect();
    response
}
