//! Metadata: every shard is a broker (in a cluster, every node's); each partition's leader
//! is the shard that owns it.
//! Unknown topics are auto-created (when the broker and the request allow it) before answering.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::metadata_request::MetadataRequest;
use kafka_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{access, RequestContext};
use crate::protocol::{authorized_operations, code, ProtocolError, ResponseError};
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use crate::security::Session;
use crate::server::connection::Reply;
use crate::server::error_codes::admin_error;
use crate::shard::catalog::{validate_topic_name, TopicMeta};
use crate::shard::control::{AdminError, AdminRequest, NewTopic};
use crate::shard::Shard;

/// Which authorized-operations fields the request asked for (both false before v8).
#[derive(Clone, Copy)]
struct AskedOperations {
    topic: bool,
    cluster: bool,
}

/// A topic as the request names it.
enum Wanted {
    Name(String),
    Id(Uuid),
}

pub fn handle(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: MetadataRequest = ctx.decode(&mut body)?;
    let asked = AskedOperations {
        topic: request.include_topic_authorized_operations,
        cluster: request.include_cluster_authorized_operations,
    };
    // v0 has no null list: an empty list there means "all topics".
    let wanted: Option<Vec<Wanted>> = match request.topics {
        None => None,
        Some(topics) if topics.is_empty() && ctx.version == 0 => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .map(|t| match t.name {
                    Some(name) => Wanted::Name(name.0.to_string()),
                    None => Wanted::Id(t.topic_id),
                })
                .collect(),
        ),
    };
    // Before v4 there is no flag and auto-creation is the broker's choice alone.
    let may_create =
        shard.config.auto_create_topics && (ctx.version < 4 || request.allow_auto_topic_creation);
    // Kafka only creates what the session may describe and create; the rest it refuses.
    let (to_create, mut failures): (Vec<String>, Vec<String>) = match (&wanted, may_create) {
        (Some(list), true) => list
            .iter()
            .filter_map(|w| match w {
                Wanted::Name(name)
                    if shard.topic(name).is_none()
                        && validate_topic_name(name).is_ok()
                        && !crate::shard::placement::is_internal(name)
                        && access::topic(shard, session, AclOperation::Describe, name) =>
                {
                    Some(name.clone())
                }
                _ => None,
            })
            .partition(|name| access::create_topic(shard, session, name)),
        _ => (Vec::new(), Vec::new()),
    };
    let mut failures: Vec<(String, AdminError)> = failures
        .drain(..)
        .map(|name| (name, AdminError::NotAuthorized))
        .collect();
    if to_create.is_empty() {
        return ctx.reply(&build(
            shard,
            session,
            ctx.version,
            wanted,
            &failures,
            asked,
        ));
    }
    let shard = Rc::clone(shard);
    let session = session.clone();
    Ok(Reply::Deferred(Box::pin(async move {
        let num_partitions = shard.config.num_partitions;
        let topics = to_create
            .iter()
            .cloned()
            .map(|name| NewTopic {
                name,
                partition_count: num_partitions,
                overrides: Default::default(),
                placement: crate::shard::placement::Placement {
                    replication_factor: shard.config.default_replication_factor,
                    ..Default::default()
                },
            })
            .collect();
        let created: Vec<(String, AdminError)> = match shard
            .admin(|reply| AdminRequest::CreateTopics {
                topics,
                validate_only: false,
                reply,
            })
            .await
        {
            // A concurrent creator may have won the race; the topic exists either way.
            Ok(results) => to_create
                .into_iter()
                .zip(results)
                .filter_map(|(name, r)| match r {
                    Err(AdminError::TopicExists(_)) | Ok(_) => None,
                    Err(e) => Some((name, e)),
                })
                .collect(),
            Err(e) => to_create
                .into_iter()
                .map(|name| (name, e.clone()))
                .collect(),
        };
        for (topic, error) in &created {
            tracing::warn!(%topic, %error, "auto-creating topic failed");
        }
        failures.extend(created);
        ctx.encode(&build(
            &shard,
            &session,
            ctx.version,
            wanted,
            &failures,
            asked,
        ))
    })))
}

fn build(
    shard: &Shard,
    session: &Session,
    version: i16,
    wanted: Option<Vec<Wanted>>,
    failures: &[(String, AdminError)],
    asked: AskedOperations,
) -> MetadataResponse {
    let describable = |name: &str| access::topic(shard, session, AclOperation::Describe, name);
    let refused = |name: Option<String>, id: Uuid| {
        MetadataResponseTopic::default()
            .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
            .with_topic_id(id)
            .with_error_code(code(ResponseError::TopicAuthorizationFailed))
    };
    let topics = match wanted {
        // Listing every topic omits the ones the session may not describe.
        None => shard
            .topics()
            .iter()
            .filter(|meta| describable(&meta.name))
            .map(|meta| describe(shard, session, meta, version, asked))
            .collect(),
        Some(list) => list
            .into_iter()
            .map(|w| match w {
                Wanted::Name(name) if !describable(&name) => refused(Some(name), Uuid::nil()),
                Wanted::Name(name) => match shard.topic(&name) {
                    Some(meta) => describe(shard, session, &meta, version, asked),
                    None => {
                        let error = if let Err(reason) = validate_topic_name(&name) {
                            tracing::debug!(%name, %reason, "metadata for an invalid topic name");
                            ResponseError::InvalidTopicException
                        } else if let Some((_, e)) = failures.iter().find(|(n, _)| *n == name) {
                            admin_error(e)
                        } else {
                            ResponseError::UnknownTopicOrPartition
                        };
                        MetadataResponseTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(name))))
                            .with_error_code(code(error))
                    }
                },
                Wanted::Id(id) => match shard.topic_by_id(id) {
                    Some(meta) if !describable(&meta.name) => refused(None, id),
                    Some(meta) => describe(shard, session, &meta, version, asked),
                    None => MetadataResponseTopic::default()
                        .with_topic_id(id)
                        .with_error_code(code(ResponseError::UnknownTopicId)),
                },
            })
            .collect(),
    };
    let mut response = MetadataResponse::default()
        .with_brokers(
            shard
                .cluster_brokers_for(session)
                .iter()
                .map(|b| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(b.node_id))
                        .with_host(StrBytes::from_string(b.host.clone()))
                        .with_port(i32::from(b.port))
                })
                .collect(),
        )
        .with_cluster_id(Some(StrBytes::from_string(shard.config.cluster_id.clone())))
        .with_controller_id(BrokerId(shard.controller_id()))
        .with_topics(topics);
    if asked.cluster {
        response.cluster_authorized_operations = shard.authorized_operations(
            session,
            ResourceType::Cluster,
            CLUSTER_RESOURCE_NAME,
            authorized_operations::CLUSTER,
        );
    }
    response
}

fn describe(
    shard: &Shard,
    session: &Session,
    meta: &TopicMeta,
    version: i16,
    asked: AskedOperations,
) -> MetadataResponseTopic {
    // Leader epochs exist from v7; the codec refuses fields a version does not have.
    let leader_epoch = if version >= 7 { 0 } else { -1 };
    let partitions = (0..meta.partition_count)
        .map(|p| {
            let leader = shard.leader_broker(meta, p);
            // A replicated partition lists every replica as in sync: followers are not told
            // apart by lag yet (docs/cluster.md). Otherwise only the leader's copy exists (see
            // shard::placement): the one in sync.
            let (replicas, isr) = match shard.replica_brokers(meta, p) {
                Some(replicas) => (replicas.clone(), replicas),
                None => (meta.placement.replica_ids(p, leader), vec![leader]),
            };
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(leader_epoch)
                .with_replica_nodes(replicas.into_iter().map(BrokerId).collect())
                .with_isr_nodes(isr.into_iter().map(BrokerId).collect())
        })
        .collect();
    let mut topic = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(meta.name.clone()))))
        .with_topic_id(meta.id)
        .with_is_internal(crate::shard::placement::is_internal(&meta.name))
        .with_partitions(partitions);
    if asked.topic {
        topic.topic_authorized_operations = shard.authorized_operations(
            session,
            ResourceType::Topic,
            &meta.name,
            authorized_operations::TOPIC,
        );
    }
    topic
}
