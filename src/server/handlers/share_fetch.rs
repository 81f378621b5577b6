//! ShareFetch (KIP-932), served by the shard that owns each partition: the share session
//! epoch is checked first (`share/share_session.rs`), then acknowledgements piggy-backed on
//! the request are applied, then records are acquired for the member from every partition
//! of its share session, long-polling until some are available or `max_wait_ms` passes. A
//! request with epoch -1 closes the session instead of fetching, releasing the member's
//! records.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::share_fetch_request::ShareFetchRequest;
use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, LeaderIdAndEpoch, PartitionData, ShareFetchResponse,
    ShareFetchableTopicResponse,
};
use uuid::Uuid;

use super::share_errors::share_error_code;
use super::share_partitions::{
    acknowledge_target, group_and_member, leader_hint, release_member, resolve, Refusal, Target,
};
use super::{access, long_poll, RequestContext};
use crate::constants::FETCH_WAIT_MS_MAX;
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::Reply;
use crate::shard::Shard;
use crate::share::share_session::{
    FetchSessionRequest, TopicPartition, FINAL_EPOCH, INITIAL_EPOCH,
};

/// Bytes read per partition when the request sets no limit.
const PARTITION_BYTES_DEFAULT: usize = 1 << 20;

pub fn handle(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: ShareFetchRequest = ctx.decode(&mut body)?;
    let group_id = request.group_id.as_ref().map_or("", |g| g.0.as_str());
    if !access::group(shard, session, AclOperation::Read, group_id) {
        let denied = code(ResponseError::GroupAuthorizationFailed);
        return ctx.reply(&ShareFetchResponse::default().with_error_code(denied));
    }
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let response = share_fetch(&shard, request)
            .await
            .unwrap_or_else(|refusal| {
                ShareFetchResponse::default()
                    .with_error_code(refusal.error_code)
                    .with_error_message(Some(refusal.error_message))
            });
        ctx.encode(&response)
    })))
}

struct PartitionOut {
    error: i16,
    ack_error: Option<i16>,
    records: Bytes,
    acquired: Vec<AcquiredRecords>,
}

async fn share_fetch(
    shard: &Rc<Shard>,
    request: ShareFetchRequest,
) -> Result<ShareFetchResponse, Refusal> {
    let mut response = ShareFetchResponse::default();
    let (group, member) = group_and_member(request.group_id.as_ref(), request.member_id.as_ref())?;
    let config = shard.share().group_config(&group);
    response.acquisition_lock_timeout_ms =
        i32::try_from(config.lock_duration_ms).unwrap_or(i32::MAX);
    // Only partitions that exist enter a session, so a client cannot grow one without
    // bound; the others are answered with their error below.
    let exists = |id: Uuid, partition: i32| {
        shard
            .topic_by_id(id)
            .is_some_and(|meta| (0..meta.partition_count).contains(&partition))
    };
    let mut requested = Vec::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            requested.push((topic.topic_id, p));
        }
    }
    let added: Vec<TopicPartition> = requested
        .iter()
        .map(|(id, p)| (*id, p.partition_index))
        .filter(|(id, partition)| exists(*id, *partition))
        .collect();
    let forgotten: Vec<TopicPartition> = request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
        .collect();
    let epoch = request.share_session_epoch;
    let session_request = FetchSessionRequest {
        epoch,
        added: &added,
        forgotten: &forgotten,
        has_acknowledgements: requested
            .iter()
            .any(|(_, p)| !p.acknowledgement_batches.is_empty()),
    };
    let session = match shard
        .share()
        .fetch_session(&group, &member, session_request)
    {
        Ok(session) => session,
        Err(e) => {
            tracing::debug!(%group, %member, epoch, error = %e, "ShareFetch session refused");
            return Err(Refusal::from_share_error(&e));
        }
    };
    // Every partition answered: the session's, plus any requested one that is not there
    // (an unknown topic id is answered with its error).
    let mut targets: Vec<Target> = Vec::new();
    for (topic_id, partition) in &session {
        targets.push(resolve(shard, *topic_id, *partition).await);
    }
    for (id, p) in &requested {
        if !targets
            .iter()
            .any(|t| t.topic_id == *id && t.partition == p.partition_index)
        {
            targets.push(resolve(shard, *id, p.partition_index).await);
        }
    }
    let mut outs: Vec<PartitionOut> = targets
        .iter()
        .map(|t| PartitionOut {
            error: t.shares.as_ref().err().map_or(0, |e| code(*e)),
            ack_error: None,
            records: Bytes::new(),
            acquired: Vec::new(),
        })
        .collect();
    // Acknowledgements first.
    for (id, p) in &requested {
        if p.acknowledgement_batches.is_empty() {
            continue;
        }
        let Some(index) = targets
            .iter()
            .position(|t| t.topic_id == *id && t.partition == p.partition_index)
        else {
            continue;
        };
        let batches = p
            .acknowledgement_batches
            .iter()
            .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone()));
        let ack_error = acknowledge_target(shard, &group, &member, &targets[index], batches).await;
        outs[index].ack_error = Some(ack_error);
    }
    if epoch == FINAL_EPOCH {
        release_member(shard, &group, &member, &targets).await;
    } else {
        fetch_records(shard, &request, &group, &member, &targets, &mut outs).await;
    }
    let full = epoch == INITIAL_EPOCH;
    let mut topics: BTreeMap<Uuid, Vec<PartitionData>> = BTreeMap::new();
    for (target, out) in targets.iter().zip(outs) {
        let interesting =
            full || out.error != 0 || out.ack_error.is_some() || !out.acquired.is_empty();
        if !interesting {
            continue;
        }
        let leader = leader_hint(shard, out.error, target);
        topics.entry(target.topic_id).or_default().push(
            PartitionData::default()
                .with_partition_index(target.partition)
                .with_error_code(out.error)
                .with_acknowledge_error_code(out.ack_error.unwrap_or(0))
                .with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(leader)
                        .with_leader_epoch(0),
                )
                .with_records(Some(out.records))
                .with_acquired_records(out.acquired),
        );
    }
    response.responses = topics
        .into_iter()
        .map(|(topic_id, partitions)| {
            ShareFetchableTopicResponse::default()
                .with_topic_id(topic_id)
                .with_partitions(partitions)
        })
        .collect();
    Ok(response)
}

/// Acquires records from `targets`, waiting up to `max_wait_ms` for some to be available.
async fn fetch_records(
    shard: &Rc<Shard>,
    request: &ShareFetchRequest,
    group: &str,
    member: &str,
    targets: &[Target],
    outs: &mut [PartitionOut],
) {
    let config = shard.share().group_config(group);
    let member: Rc<str> = Rc::from(member);
    let wait = Duration::from_millis(
        u64::try_from(request.max_wait_ms)
            .unwrap_or(0)
            .min(FETCH_WAIT_MS_MAX),
    );
    let deadline = Instant::now() + wait;
    // Limits of 0 (or less) acquire nothing, as in Kafka: its SharePartition.acquire takes
    // no record for MaxRecords <= 0, and MaxBytes <= 0 leaves no room for one. The fetch
    // still waits as any other that finds nothing to acquire. BatchSize only shapes how
    // Kafka groups acquired records into in-flight batches; sluice keeps each record's state
    // and reports contiguous ranges, which clients acknowledge alike, so it is not needed.
    let records_max = usize::try_from(request.max_records).unwrap_or(0);
    let bytes_max = usize::try_from(request.max_bytes).unwrap_or(0);
    let partition_bytes = |target: &Target| {
        request
            .topics
            .iter()
            .filter(|t| t.topic_id == target.topic_id)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == target.partition)
            .and_then(|p| usize::try_from(p.partition_max_bytes).ok())
            .filter(|b| *b > 0)
            .unwrap_or(PARTITION_BYTES_DEFAULT)
    };
    let answer_now = outs.iter().any(|o| o.ack_error.is_some() || o.error != 0);
    loop {
        let mut records_left = records_max;
        let mut bytes_left = bytes_max;
        let mut any = false;
        for (target, out) in targets.iter().zip(outs.iter_mut()) {
            let Ok(shares) = &target.shares else { continue };
            if records_left == 0 || bytes_left == 0 {
                break;
            }
            let bytes = partition_bytes(target).min(bytes_left);
            match shares
                .acquire(group, &member, &config, bytes, records_left)
                .await
            {
                Ok(acquired) => {
                    if acquired.ranges.is_empty() {
                        continue;
                    }
                    any = true;
                    let count: i64 = acquired.ranges.iter().map(|r| r.last - r.first + 1).sum();
                    records_left =
                        records_left.saturating_sub(usize::try_from(count).unwrap_or(usize::MAX));
                    bytes_left = bytes_left.saturating_sub(acquired.records.len());
                    out.records = acquired.records;
                    out.acquired = acquired
                        .ranges
                        .iter()
                        .map(|r| {
                            AcquiredRecords::default()
                                .with_first_offset(r.first)
                                .with_last_offset(r.last)
                                .with_delivery_count(r.delivery_count)
                        })
                        .collect();
                }
                Err(e) => {
                    tracing::warn!(topic = %target.topic, partition = target.partition, error = %e, "share fetch failed");
                    out.error = share_error_code(&e);
                    any = true;
                }
            }
        }
        let now = Instant::now();
        if any || answer_now || now >= deadline || targets.is_empty() {
            return;
        }
        let waits: Vec<Pin<Box<dyn Future<Output = ()>>>> = targets
            .iter()
            .filter_map(|t| t.shares.as_ref().ok())
            .map(|shares| Box::pin(shares.changed()) as Pin<Box<dyn Future<Output = ()>>>)
            .collect();
        futures_lite::future::or(long_poll::wait_any(waits), crate::io::sleep(deadline - now))
            .await;
    }
}
