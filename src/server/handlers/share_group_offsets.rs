//! DescribeShareGroupOffsets, AlterShareGroupOffsets and DeleteShareGroupOffsets (KIP-932,
//! lag from KIP-1226), served by the group's coordinator shard through
//! [`crate::shard::share_admin`].
//!
//! Kafka's conventions, kept here: a partition the group has no state for is described
//! with start offset -1 (and lag -1); a topic that does not exist gets
//! UNKNOWN_TOPIC_OR_PARTITION per partition (describe, alter) or per topic (delete), as does
//! a deleted topic the group has no state for. sluice adds each described partition's
//! in-flight count in a tagged field ([`crate::protocol::share_extensions`]).

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::alter_share_group_offsets_request::AlterShareGroupOffsetsRequest;
use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponse, AlterShareGroupOffsetsResponsePartition,
    AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_request::DeleteShareGroupOffsetsRequest;
use kafka_protocol::messages::delete_share_group_offsets_response::{
    DeleteShareGroupOffsetsResponse, DeleteShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::describe_share_group_offsets_request::{
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsRequestGroup,
};
use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponse, DescribeShareGroupOffsetsResponseGroup,
    DescribeShareGroupOffsetsResponsePartition, DescribeShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use super::share_errors::share_error_code;
use super::{access, RequestContext};
use crate::protocol::share_extensions::put_in_flight;
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::Reply;
use crate::shard::share_admin;
use crate::shard::Shard;
use crate::share::share_state::{PartitionStart, PartitionSummary, ResetTarget};
use crate::share::ShareError;

/// Kafka's start offset (and lag) of a share-partition that has no state yet.
const UNINITIALIZED_OFFSET: i64 = -1;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn error_parts(error: &ShareError) -> (i16, Option<StrBytes>) {
    (share_error_code(error), Some(text(&error.to_string())))
}

fn unknown_topic(topic: &str) -> ShareError {
    ShareError::UnknownTopicOrPartition(format!("topic '{topic}' does not exist"))
}

fn group_denied() -> (i16, Option<StrBytes>) {
    (
        code(ResponseError::GroupAuthorizationFailed),
        Some(text("not authorized for this share group")),
    )
}

fn topic_denied() -> (i16, Option<StrBytes>) {
    (
        code(ResponseError::TopicAuthorizationFailed),
        Some(text("not authorized to READ this topic")),
    )
}

/// The topics among `names` the session may not READ: their share state is left alone.
fn unreadable<'a>(
    shard: &Shard,
    session: &Session,
    names: impl Iterator<Item = &'a str>,
) -> BTreeSet<String> {
    access::denied_topics(shard, session, AclOperation::Read, names)
        .into_iter()
        .collect()
}

fn topic_id(shard: &Shard, topic: &str) -> uuid::Uuid {
    shard.topic(topic).map_or(uuid::Uuid::nil(), |meta| meta.id)
}

pub fn describe(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: DescribeShareGroupOffsetsRequest = ctx.decode(&mut body)?;
    // Kafka: DESCRIBE on each group, else GROUP_AUTHORIZATION_FAILED for that group.
    let allowed: Vec<bool> = request
        .groups
        .iter()
        .map(|g| access::group(shard, session, AclOperation::Describe, &g.group_id))
        .collect();
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let mut groups = Vec::with_capacity(request.groups.len());
        for (group, allowed) in request.groups.into_iter().zip(allowed) {
            if !allowed {
                let mut denied =
                    DescribeShareGroupOffsetsResponseGroup::default().with_group_id(group.group_id);
                (denied.error_code, denied.error_message) = group_denied();
                groups.push(denied);
                continue;
            }
            groups.push(describe_group(&shard, ctx.version, group).await);
        }
        ctx.encode(&DescribeShareGroupOffsetsResponse::default().with_groups(groups))
    })))
}

async fn describe_group(
    shard: &Shard,
    version: i16,
    request: DescribeShareGroupOffsetsRequestGroup,
) -> DescribeShareGroupOffsetsResponseGroup {
    let mut response =
        DescribeShareGroupOffsetsResponseGroup::default().with_group_id(request.group_id.clone());
    let summaries = match share_admin::describe_start_offsets(shard, &request.group_id).await {
        Ok(summaries) => summaries,
        Err(error) => {
            (response.error_code, response.error_message) = error_parts(&error);
            return response;
        }
    };
    let mut by_partition: BTreeMap<(String, i32), PartitionSummary> = summaries
        .into_iter()
        .map(|s| ((s.topic.clone(), s.partition), s))
        .collect();
    // The partitions asked for, or (no topics) every share-partition the group has on a
    // topic that still exists.
    let wanted: Vec<(String, Vec<i32>)> = match request.topics {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.topic_name.0.to_string(), t.partitions))
            .collect(),
        None => {
            let mut all: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for (topic, partition) in by_partition.keys() {
                if shard.topic(topic).is_some() {
                    all.entry(topic.clone()).or_default().push(*partition);
                }
            }
            all.into_iter().collect()
        }
    };
    response.topics = wanted
        .into_iter()
        .map(|(topic, partitions)| {
            let meta = shard.topic(&topic);
            let partitions = partitions
                .into_iter()
                .map(|partition| {
                    let exists = meta
                        .as_ref()
                        .is_some_and(|m| (0..m.partition_count).contains(&partition));
                    let summary = by_partition.remove(&(topic.clone(), partition));
                    partition_offsets(version, &topic, partition, exists, summary)
                })
                .collect();
            DescribeShareGroupOffsetsResponseTopic::default()
                .with_topic_name(TopicName(text(&topic)))
                .with_topic_id(meta.map_or(uuid::Uuid::nil(), |m| m.id))
                .with_partitions(partitions)
        })
        .collect();
    response
}

fn partition_offsets(
    version: i16,
    topic: &str,
    partition: i32,
    exists: bool,
    summary: Option<PartitionSummary>,
) -> DescribeShareGroupOffsetsResponsePartition {
    let mut out = DescribeShareGroupOffsetsResponsePartition::default()
        .with_partition_index(partition)
        .with_start_offset(UNINITIALIZED_OFFSET);
    if !exists {
        let error = ShareError::UnknownTopicOrPartition(format!(
            "partition {topic}-{partition} does not exist"
        ));
        (out.error_code, out.error_message) = error_parts(&error);
        return out;
    }
    if let Some(summary) = summary {
        out.start_offset = summary.start_offset;
        if version >= 1 {
            out.lag = summary.lag();
        }
        put_in_flight(&mut out.unknown_tagged_fields, summary.in_flight);
    }
    out
}

pub fn alter(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: AlterShareGroupOffsetsRequest = ctx.decode(&mut body)?;
    // Kafka: READ on the group, else the whole request is refused; READ on each topic, else
    // its partitions get TOPIC_AUTHORIZATION_FAILED and keep their start offsets.
    if !access::group(shard, session, AclOperation::Read, &request.group_id) {
        let mut response = AlterShareGroupOffsetsResponse::default();
        (response.error_code, response.error_message) = group_denied();
        return ctx.reply(&response);
    }
    let denied = unreadable(
        shard,
        session,
        request.topics.iter().map(|t| t.topic_name.0.as_str()),
    );
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let starts: Vec<PartitionStart> = request
            .topics
            .iter()
            .filter(|t| !denied.contains(t.topic_name.0.as_str()))
            .flat_map(|t| {
                t.partitions.iter().map(|p| PartitionStart {
                    topic: t.topic_name.0.to_string(),
                    partition: p.partition_index,
                    to: ResetTarget::Offset(p.start_offset),
                })
            })
            .collect();
        let mut response = AlterShareGroupOffsetsResponse::default();
        match share_admin::alter_start_offsets(&shard, &request.group_id, starts).await {
            Err(error) => (response.error_code, response.error_message) = error_parts(&error),
            Ok(moved) => {
                let mut topics: Vec<AlterShareGroupOffsetsResponseTopic> = Vec::new();
                for m in moved {
                    let result = match m.result {
                        Err(_) if shard.topic(&m.topic).is_none() => Err(unknown_topic(&m.topic)),
                        other => other,
                    };
                    let mut partition = AlterShareGroupOffsetsResponsePartition::default()
                        .with_partition_index(m.partition);
                    if let Err(error) = &result {
                        (partition.error_code, partition.error_message) = error_parts(error);
                    }
                    match topics
                        .iter_mut()
                        .find(|t| t.topic_name.0.as_str() == m.topic)
                    {
                        Some(topic) => topic.partitions.push(partition),
                        None => topics.push(
                            AlterShareGroupOffsetsResponseTopic::default()
                                .with_topic_name(TopicName(text(&m.topic)))
                                .with_topic_id(topic_id(&shard, &m.topic))
                                .with_partitions(vec![partition]),
                        ),
                    }
                }
                for topic in request
                    .topics
                    .iter()
                    .filter(|t| denied.contains(t.topic_name.0.as_str()))
                {
                    let partitions = topic
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut partition = AlterShareGroupOffsetsResponsePartition::default()
                                .with_partition_index(p.partition_index);
                            (partition.error_code, partition.error_message) = topic_denied();
                            partition
                        })
                        .collect();
                    topics.push(
                        AlterShareGroupOffsetsResponseTopic::default()
                            .with_topic_name(topic.topic_name.clone())
                            .with_topic_id(topic_id(&shard, &topic.topic_name))
                            .with_partitions(partitions),
                    );
                }
                response.responses = topics;
            }
        }
        ctx.encode(&response)
    })))
}

pub fn delete(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: DeleteShareGroupOffsetsRequest = ctx.decode(&mut body)?;
    // Kafka: DELETE on the group, else the whole request is refused; READ on each topic,
    // else that topic gets TOPIC_AUTHORIZATION_FAILED and keeps its state.
    if !access::group(shard, session, AclOperation::Delete, &request.group_id) {
        let mut response = DeleteShareGroupOffsetsResponse::default();
        (response.error_code, response.error_message) = group_denied();
        return ctx.reply(&response);
    }
    let denied = unreadable(
        shard,
        session,
        request.topics.iter().map(|t| t.topic_name.0.as_str()),
    );
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let requested: Vec<String> = request
            .topics
            .iter()
            .map(|t| t.topic_name.0.to_string())
            .collect();
        let known: BTreeSet<String> = requested
            .iter()
            .filter(|t| !denied.contains(*t) && shard.topic(t).is_some())
            .cloned()
            .collect();
        let mut response = DeleteShareGroupOffsetsResponse::default();
        match share_admin::delete_start_offsets(&shard, &request.group_id, &known).await {
            Err(error) => (response.error_code, response.error_message) = error_parts(&error),
            Ok(deleted) => {
                response.responses = requested
                    .iter()
                    .map(|topic| {
                        let mut out = DeleteShareGroupOffsetsResponseTopic::default()
                            .with_topic_name(TopicName(text(topic)))
                            .with_topic_id(topic_id(&shard, topic));
                        if denied.contains(topic) {
                            (out.error_code, out.error_message) = topic_denied();
                            return out;
                        }
                        let error = if !known.contains(topic) {
                            Some(unknown_topic(topic))
                        } else if !deleted.contains(topic) {
                            Some(ShareError::UnknownTopicOrPartition(
                                "There is no offset information to delete.".to_owned(),
                            ))
                        } else {
                            None
                        };
                        if let Some(error) = error {
                            (out.error_code, out.error_message) = error_parts(&error);
                        }
                        out
                    })
                    .collect();
            }
        }
        ctx.encode(&response)
    })))
}
