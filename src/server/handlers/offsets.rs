//! OffsetCommit, OffsetFetch and OffsetDelete, served by the group's coordinator shard.
//! A commit is answered only once its offsets are durable in the coordinator's offsets log.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequest;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_request::OffsetDeleteRequest;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::group_errors::{error_code, group_error_code};
use super::{access, RequestContext};
use crate::group::group_coordinator::CommitIdentity;
use crate::group::offset_record::{CommittedOffset, RECORD_STRING_BYTES_MAX};
use crate::group::GroupError;
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::{now_ms, Reply};
use crate::shard::Shard;

/// Whether `topic` exists with at least `partition + 1` partitions.
pub(super) fn partition_exists(shard: &Shard, topic: &str, partition: i32) -> bool {
    shard
        .topic(topic)
        .is_some_and(|meta| (0..meta.partition_count).contains(&partition))
}

pub fn offset_commit(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: OffsetCommitRequest = ctx.decode(&mut body)?;
    let group_id = request.group_id.0.to_string();
    // Kafka: READ on the group refuses every partition; READ on a topic refuses its own.
    let group_denied = !access::group(shard, session, AclOperation::Read, &group_id);
    let mut denied_topics: Vec<TopicName> = Vec::new();
    let now = now_ms();
    let metadata_max = shard
        .groups()
        .config()
        .offset_metadata_bytes_max
        .min(RECORD_STRING_BYTES_MAX);
    // Per-partition outcome: `None` = accepted (pending the group-level outcome).
    let mut outcomes: Vec<(TopicName, PartitionOutcomes)> = Vec::new();
    let mut accepted = Vec::new();
    for topic in &request.topics {
        let mut partitions = Vec::new();
        if group_denied || !access::topic(shard, session, AclOperation::Read, &topic.name) {
            denied_topics.push(topic.name.clone());
            let indexes = topic.partitions.iter().map(|p| (p.partition_index, None));
            outcomes.push((topic.name.clone(), indexes.collect()));
            continue;
        }
        for p in &topic.partitions {
            let metadata = p
                .committed_metadata
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            let refusal = if metadata.len() > metadata_max {
                Some(GroupError::OffsetMetadataTooLarge {
                    got: metadata.len(),
                    max: metadata_max,
                })
            } else if topic.name.0.len() > RECORD_STRING_BYTES_MAX
                || !partition_exists(shard, &topic.name.0, p.partition_index)
            {
                Some(GroupError::UnknownTopicOrPartition)
            } else {
                accepted.push((
                    topic.name.0.to_string(),
                    p.partition_index,
                    CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: if ctx.version >= 6 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata,
                        commit_timestamp_ms: now,
                    },
                ));
                None
            };
            partitions.push((p.partition_index, refusal));
        }
        outcomes.push((topic.name.clone(), partitions));
    }
    let who = CommitIdentity {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        generation_or_epoch: request.generation_id_or_member_epoch,
        member_epochs: ctx.version >= 9,
    };
    let denied_code = code(if group_denied {
        ResponseError::GroupAuthorizationFailed
    } else {
        ResponseError::TopicAuthorizationFailed
    });
    // Nothing left to commit: Kafka answers without asking the coordinator.
    let only_denied = accepted.is_empty() && !denied_topics.is_empty();
    let durable = (!only_denied).then(|| shard.groups().commit(&group_id, &who, accepted));
    let build = move |group_outcome: Option<GroupError>| {
        let topics = outcomes
            .into_iter()
            .map(|(name, partitions)| {
                let denied = denied_topics.contains(&name);
                let partitions = partitions
                    .into_iter()
                    .map(|(index, refusal)| {
                        if denied {
                            return OffsetCommitResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(denied_code);
                        }
                        // As in Kafka, unknown partitions are refused before the group is
                        // looked at; any other partition gets the group's refusal first.
                        let error = match refusal {
                            Some(GroupError::UnknownTopicOrPartition) => refusal,
                            _ => group_outcome.clone().or(refusal),
                        };
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(index)
                            .with_error_code(error_code(error.as_ref()))
                    })
                    .collect();
                OffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(partitions)
            })
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    };
    match durable {
        None => ctx.reply(&build(None)),
        Some(Err(error)) => ctx.reply(&build(Some(error))),
        Some(Ok(durable)) => Ok(Reply::Deferred(Box::pin(async move {
            let outcome = durable.await.err();
            if let Some(error) = &outcome {
                tracing::warn!(group = %group_id, %error, "offset commit failed");
            }
            ctx.encode(&build(outcome))
        }))),
    }
}

/// Offsets of one topic: `(partition, committed offset)`.
type TopicOffsets = (String, Vec<(i32, Option<CommittedOffset>)>);
/// `(partition, refusal)`; `None` means accepted, pending the group-level outcome.
type PartitionOutcomes = Vec<(i32, Option<GroupError>)>;

type Fetched = Result<Vec<(String, i32, Option<CommittedOffset>)>, GroupError>;

/// Offsets of one group for OffsetFetch: `topics` `None` means every committed offset.
fn fetch_group(
    shard: &Shard,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    member: Option<(Option<&str>, i32)>,
) -> Fetched {
    if let Some((member_id, epoch)) = member {
        shard
            .groups()
            .check_fetch_member(group_id, member_id, epoch)?;
    }
    shard.groups().fetch_offsets(group_id, topics)
}

/// Groups fetched rows by topic in first-seen order.
fn by_topic(rows: Vec<(String, i32, Option<CommittedOffset>)>) -> Vec<TopicOffsets> {
    let mut topics: Vec<TopicOffsets> = Vec::new();
    for (topic, partition, offset) in rows {
        match topics.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, parts)) => parts.push((partition, offset)),
            None => topics.push((topic, vec![(partition, offset)])),
        }
    }
    topics
}

pub fn offset_fetch(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: OffsetFetchRequest = ctx.decode(&mut body)?;
    let version = ctx.version;
    // Kafka: DESCRIBE on the group, else GROUP_AUTHORIZATION_FAILED; a topic the session may
    // not DESCRIBE is left out of "every offset" and refused when named.
    let describable = |topic: &str| access::topic(shard, session, AclOperation::Describe, topic);
    let fetch_authorized = |group: &str,
                            topics: Option<Vec<(String, Vec<i32>)>>,
                            member: Option<(Option<&str>, i32)>| {
        if !access::group(shard, session, AclOperation::Describe, group) {
            return Err(code(ResponseError::GroupAuthorizationFailed));
        }
        let every = topics.is_none();
        let rows = fetch_group(shard, group, topics, member).map_err(|e| group_error_code(&e))?;
        let rows = rows.into_iter();
        Ok(rows
            .filter(|(topic, _, _)| !every || describable(topic))
            .collect::<Vec<_>>())
    };
    let topic_denied_code = code(ResponseError::TopicAuthorizationFailed);
    let mut response = OffsetFetchResponse::default();
    // KIP-447 (v7+): an offset an open transaction commits is unstable until it ends;
    // clients retry UNSTABLE_OFFSET_COMMIT.
    let unstable = |group: &str, topic: &str, partition: i32| {
        version >= 7
            && request.require_stable
            && shard.txn().is_offset_pending(group, topic, partition)
    };
    let unstable_code = code(ResponseError::UnstableOffsetCommit);
    if version >= 8 {
        for group in &request.groups {
            let topics = group.topics.as_ref().map(|topics| {
                topics
                    .iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let member = (version >= 9).then_some((group.member_id.as_deref(), group.member_epoch));
            let mut out = OffsetFetchResponseGroup::default().with_group_id(group.group_id.clone());
            match fetch_authorized(&group.group_id.0, topics, member) {
                Err(error_code) => out.error_code = error_code,
                Ok(rows) => {
                    out.topics = by_topic(rows)
                        .into_iter()
                        .map(|(topic, parts)| {
                            let partitions = parts
                                .into_iter()
                                .map(|(index, offset)| {
                                    if !describable(&topic) {
                                        return OffsetFetchResponsePartitions::default()
                                            .with_partition_index(index)
                                            .with_committed_offset(-1)
                                            .with_error_code(topic_denied_code);
                                    }
                                    let pending = unstable(&group.group_id.0, &topic, index);
                                    let offset = offset.filter(|_| !pending);
                                    let offset = offset.unwrap_or(CommittedOffset {
                                        offset: -1,
                                        leader_epoch: -1,
                                        metadata: String::new(),
                                        commit_timestamp_ms: -1,
                                    });
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(index)
                                        .with_error_code(if pending { unstable_code } else { 0 })
                                        .with_committed_offset(offset.offset)
                                        .with_committed_leader_epoch(offset.leader_epoch)
                                        .with_metadata(Some(StrBytes::from_string(offset.metadata)))
                                })
                                .collect();
                            OffsetFetchResponseTopics::default()
                                .with_name(TopicName(StrBytes::from_string(topic)))
                                .with_partitions(partitions)
                        })
                        .collect();
                }
            }
            response.groups.push(out);
        }
        return ctx.reply(&response);
    }
    let requested: Option<Vec<(String, Vec<i32>)>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let partition = |index: i32, offset: Option<CommittedOffset>, error: i16| {
        let offset = offset.unwrap_or(CommittedOffset {
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: -1,
        });
        let mut p = OffsetFetchResponsePartition::default()
            .with_partition_index(index)
            .with_committed_offset(offset.offset)
            .with_metadata(Some(StrBytes::from_string(offset.metadata)))
            .with_error_code(error);
        if version >= 5 {
            p.committed_leader_epoch = offset.leader_epoch;
        }
        p
    };
    let topic = |name: String, partitions| {
        OffsetFetchResponseTopic::default()
            .with_name(TopicName(StrBytes::from_string(name)))
            .with_partitions(partitions)
    };
    match fetch_authorized(&request.group_id.0, requested.clone(), None) {
        Ok(rows) => {
            response.topics = by_topic(rows)
                .into_iter()
                .map(|(name, parts)| {
                    let partitions = parts
                        .into_iter()
                        .map(|(i, o)| {
                            if !describable(&name) {
                                partition(i, None, topic_denied_code)
                            } else if unstable(&request.group_id.0, &name, i) {
                                partition(i, None, unstable_code)
                            } else {
                                partition(i, o, 0)
                            }
                        })
                        .collect();
                    topic(name, partitions)
                })
                .collect();
        }
        Err(code) => {
            if version >= 2 {
                response.error_code = code;
            }
            // v1 has no top-level error: every requested partition carries it.
            response.topics = requested
                .unwrap_or_default()
                .into_iter()
                .map(|(name, parts)| {
                    topic(
                        name,
                        parts
                            .into_iter()
                            .map(|i| partition(i, None, code))
                            .collect(),
                    )
                })
                .collect();
        }
    }
    ctx.reply(&response)
}

pub fn offset_delete(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: OffsetDeleteRequest = ctx.decode(&mut body)?;
    let group_id: GroupId = request.group_id.clone();
    if !access::group(shard, session, AclOperation::Delete, &group_id) {
        let denied = code(ResponseError::GroupAuthorizationFailed);
        return ctx.reply(&OffsetDeleteResponse::default().with_error_code(denied));
    }
    // Kafka refuses the partitions of topics the session may not READ, and deletes the rest.
    let names = request.topics.iter().map(|t| t.name.0.as_str());
    let denied_topics = access::denied_topics(shard, session, AclOperation::Read, names);
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .filter(|t| !denied_topics.iter().any(|d| *d == *t.name.0))
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    let outcome = shard
        .groups()
        .delete_offsets(&group_id.0, partitions.clone());
    let build = move |results: Vec<Result<(), GroupError>>, durable_error: Option<GroupError>| {
        let mut topics: Vec<OffsetDeleteResponseTopic> = Vec::new();
        for ((topic, partition), result) in partitions.into_iter().zip(results) {
            let error = result.err().or_else(|| durable_error.clone());
            let entry = OffsetDeleteResponsePartition::default()
                .with_partition_index(partition)
                .with_error_code(error_code(error.as_ref()));
            match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
                Some(t) => t.partitions.push(entry),
                None => topics.push(
                    OffsetDeleteResponseTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic)))
                        .with_partitions(vec![entry]),
                ),
            }
        }
        for denied in &request.topics {
            if !denied_topics.iter().any(|d| *d == *denied.name.0) {
                continue;
            }
            let refused = denied.partitions.iter().map(|p| {
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code(ResponseError::TopicAuthorizationFailed))
            });
            topics.push(
                OffsetDeleteResponseTopic::default()
                    .with_name(denied.name.clone())
                    .with_partitions(refused.collect()),
            );
        }
        OffsetDeleteResponse::default().with_topics(topics)
    };
    match outcome {
        Err(error) => {
            ctx.reply(&OffsetDeleteResponse::default().with_error_code(group_error_code(&error)))
        }
        Ok((results, durable)) => Ok(Reply::Deferred(Box::pin(async move {
            let durable_error = durable.await.err();
            ctx.encode(&build(results, durable_error))
        }))),
    }
}
