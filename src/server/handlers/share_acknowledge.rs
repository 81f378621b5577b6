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
use uuid::Uuid;

use super::share_partitions::{
    acknowledge_target, group_and_member, leader_hint, release_member, resolve, Refusal, Target,
};
use super::{access, RequestContext};
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::Reply;
use crate::shard::Shard;
use crate::share::share_session::FINAL_EPOCH;

pub fn handle(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: ShareAcknowledgeRequest = ctx.decode(&mut body)?;
    let group_id = request.group_id.as_ref().map_or("", |g| g.0.as_str());
    if !access::group(shard, session, AclOperation::Read, group_id) {
        let denied = code(ResponseError::GroupAuthorizationFailed);
        return ctx.reply(&ShareAcknowledgeResponse::default().with_error_code(denied));
    }
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let response = share_acknowledge(&shard, request)
            .await
            .unwrap_or_else(|refusal| {
                ShareAcknowledgeResponse::default()
                    .with_error_code(refusal.error_code)
                    .with_error_message(Some(refusal.error_message))
            });
        ctx.encode(&response)
    })))
}

async fn share_acknowledge(
    shard: &Rc<Shard>,
    request: ShareAcknowledgeRequest,
) -> Result<ShareAcknowledgeResponse, Refusal> {
    let mut response = ShareAcknowledgeResponse::default();
    let (group, member) = group_and_member(request.group_id.as_ref(), request.member_id.as_ref())?;
    let epoch = request.share_session_epoch;
    let closed = match shard.share().acknowledge_session(&group, &member, epoch) {
        Ok(closed) => closed,
        Err(e) => {
            tracing::debug!(%group, %member, epoch, error = %e, "ShareAcknowledge session refused");
            return Err(Refusal::from_share_error(&e));
        }
    };
    let mut topics: BTreeMap<Uuid, Vec<PartitionData>> = BTreeMap::new();
    let mut acked: Vec<Target> = Vec::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            let target = resolve(shard, topic.topic_id, p.partition_index).await;
            let batches = p
                .acknowledgement_batches
                .iter()
                .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone()));
            let error = acknowledge_target(shard, &group, &member, &target, batches).await;
            let leader = leader_hint(shard, error, &target);
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
        for (topic_id, partition) in &closed {
            targets.push(resolve(shard, *topic_id, *partition).await);
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
    Ok(response)
}
