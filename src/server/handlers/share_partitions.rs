//! What ShareFetch and ShareAcknowledge share: the member a request speaks for, its
//! partitions resolved to this shard's share state, acknowledgement batches applied (and
//! dead-lettered) per partition, a closed session's records released, and the leader hint
//! of a partition's answer.

use std::rc::Rc;

use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::share_errors::share_error_code;
use crate::protocol::{code, ResponseError};
use crate::shard::{PartitionLookup, Shard};
use crate::share::partition_shares::{wait_durable, PartitionShares};
use crate::share::share_partition::{AckBatch, AckType};
use crate::share::ShareError;

/// A whole-request refusal: the top-level error code and message of the response.
pub(super) struct Refusal {
    pub error_code: i16,
    pub error_message: StrBytes,
}

impl Refusal {
    pub fn from_share_error(error: &ShareError) -> Refusal {
        Refusal {
            error_code: share_error_code(error),
            error_message: StrBytes::from_string(error.to_string()),
        }
    }
}

/// The group and member a share request speaks for; both are required.
pub(super) fn group_and_member(
    group_id: Option<&GroupId>,
    member_id: Option<&StrBytes>,
) -> Result<(String, String), Refusal> {
    let group = group_id.map(|g| g.0.to_string()).unwrap_or_default();
    let member = member_id.map(|m| m.to_string()).unwrap_or_default();
    if group.is_empty() || member.is_empty() {
        return Err(Refusal {
            error_code: code(ResponseError::InvalidRequest),
            error_message: StrBytes::from_static_str("group id and member id are required"),
        });
    }
    Ok((group, member))
}

/// A partition of the request or session, resolved to this shard's state or an error.
pub(super) struct Target {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
    pub shares: Result<Rc<PartitionShares>, ResponseError>,
}

/// Resolves a partition: its share state if this shard owns it, else the error to answer.
pub(super) async fn resolve(shard: &Shard, topic_id: Uuid, partition: i32) -> Target {
    let Some(meta) = shard.topic_by_id(topic_id) else {
        return Target {
            topic: String::new(),
            topic_id,
            partition,
            shares: Err(ResponseError::UnknownTopicId),
        };
    };
    let shares = match shard.partition(&meta.name, partition) {
        PartitionLookup::Local(log) => shard
            .share()
            .partition_shares(
                &meta.name,
                meta.id,
                partition,
                log,
                shard.replica(&meta.name, partition),
            )
            .await
            .map_err(|e| {
                tracing::warn!(topic = %meta.name, partition, error = %e, "share state unavailable");
                crate::server::handlers::share_errors::share_error(&e)
            }),
        PartitionLookup::NotHere if (0..meta.partition_count).contains(&partition) => {
            Err(ResponseError::NotLeaderOrFollower)
        }
        _ => Err(ResponseError::UnknownTopicOrPartition),
    };
    Target {
        topic: meta.name,
        topic_id,
        partition,
        shares,
    }
}

/// Wire acknowledgement batches → typed ones.
fn ack_batches(
    batches: impl Iterator<Item = (i64, i64, Vec<i8>)>,
) -> Result<Vec<AckBatch>, ShareError> {
    batches
        .map(|(first, last, types)| {
            let types = types
                .iter()
                .map(|t| {
                    AckType::from_wire(*t)
                        .ok_or_else(|| ShareError::InvalidRequest(format!("acknowledge type {t}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if types.is_empty() {
                return Err(ShareError::InvalidRequest("no acknowledge type".to_owned()));
            }
            Ok(AckBatch { first, last, types })
        })
        .collect()
}

/// Applies one partition's acknowledgements, waits until they are durable, and sends
/// rejected and over-limit records to the dead-letter topic. Returns the error code.
async fn acknowledge(
    shard: &Rc<Shard>,
    group: &str,
    member: &str,
    shares: &Rc<PartitionShares>,
    batches: Result<Vec<AckBatch>, ShareError>,
) -> i16 {
    let batches = match batches {
        Ok(batches) if batches.is_empty() => return 0,
        Ok(batches) => batches,
        Err(e) => return share_error_code(&e),
    };
    let config = shard.share().group_config(group);
    let (outcome, durable) = match shares.acknowledge(group, member, &batches, &config) {
        Ok(Ok(applied)) => applied,
        Ok(Err(refused)) => {
            tracing::debug!(%group, %member, error = %refused, "acknowledgement refused");
            return code(ResponseError::InvalidRecordState);
        }
        Err(e) => return share_error_code(&e),
    };
    if let Err(e) = wait_durable(durable).await {
        return share_error_code(&e);
    }
    if !outcome.dead_letters.is_empty() {
        crate::shard::dead_letter::dead_letter_logged(
            Rc::clone(shard),
            Rc::clone(shares),
            group.to_owned(),
            outcome.dead_letters,
        )
        .await;
    }
    0
}

/// A closed session: releases the member's locks on these partitions.
pub(super) async fn release_member(
    shard: &Rc<Shard>,
    group: &str,
    member: &str,
    targets: &[Target],
) {
    let shares: Vec<Rc<PartitionShares>> = targets
        .iter()
        .filter_map(|t| t.shares.as_ref().ok().cloned())
        .collect();
    for (shares, outcome) in shard.share().release_member(group, member, &shares) {
        if outcome.released {
            shares.notify_released();
        }
        if !outcome.dead_letters.is_empty() {
            crate::shard::dead_letter::dead_letter_logged(
                Rc::clone(shard),
                shares,
                group.to_owned(),
                outcome.dead_letters,
            )
            .await;
        }
    }
}

/// Applies the acknowledgement batches (first offset, last offset, types) a request carries
/// for `target`; returns the partition's acknowledgement error code.
pub(super) async fn acknowledge_target(
    shard: &Rc<Shard>,
    group: &str,
    member: &str,
    target: &Target,
    batches: impl Iterator<Item = (i64, i64, Vec<i8>)>,
) -> i16 {
    match &target.shares {
        Err(e) => code(*e),
        Ok(shares) => acknowledge(shard, group, member, shares, ack_batches(batches)).await,
    }
}

/// The leader to name in a partition's answer: its owner when this shard is not it.
pub(super) fn leader_hint(shard: &Shard, error: i16, target: &Target) -> i32 {
    if error == code(ResponseError::NotLeaderOrFollower) {
        match shard.topic(&target.topic) {
            Some(meta) => shard.leader_broker(&meta, target.partition),
            None => -1,
        }
    } else {
        shard.node_id()
    }
}
