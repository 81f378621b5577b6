//! CreateTopics, DeleteTopics and CreatePartitions: forwarded to the catalog owner (shard 0),
//! which answers once every shard has applied the change.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsRequest;
use kafka_protocol::messages::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use kafka_protocol::messages::create_topics_request::CreateTopicsRequest;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicResult, CreateTopicsResponse,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafka_protocol::messages::delete_topics_response::{
    DeletableTopicResult, DeleteTopicsResponse,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use super::{access, RequestContext};
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::Reply;
use crate::server::error_codes::admin_error;
use crate::shard::control::{AdminError, AdminRequest, NewPartitions, NewTopic};
use crate::shard::placement::{self, Placement, TopicLayout};
use crate::shard::topic_config::TopicOverrides;
use crate::shard::Shard;

fn error_text(error: &AdminError) -> Option<StrBytes> {
    Some(StrBytes::from_string(error.to_string()))
}

pub fn create_topics(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: CreateTopicsRequest = ctx.decode(&mut body)?;
    let denied: Vec<String> = request
        .topics
        .iter()
        .map(|t| t.name.0.to_string())
        .filter(|name| !access::create_topic(shard, session, name))
        .collect();
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        // Requests the owner never sees: bad replication factors and assignments.
        let mut precheck: Vec<Option<AdminError>> = Vec::new();
        let mut new_topics = Vec::new();
        let mut names = Vec::new();
        for topic in &request.topics {
            names.push(topic.name.clone());
            let assignments: Vec<(i32, Vec<i32>)> = topic
                .assignments
                .iter()
                .map(|a| {
                    (
                        a.partition_index,
                        a.broker_ids.iter().map(|b| b.0).collect(),
                    )
                })
                .collect();
            // -1: the broker's default.replication.factor.
            let replication_factor = match topic.replication_factor {
                -1 if topic.assignments.is_empty() => shard.config.default_replication_factor,
                asked => asked,
            };
            let layout = placement::check_new_topic(
                topic.num_partitions,
                replication_factor,
                &assignments,
                &shard.broker_ids(),
            );
            let layout = match layout {
                _ if denied.iter().any(|d| *d == *topic.name.0) => Err(AdminError::NotAuthorized),
                // The brokers create them, with the partition count their keys hash over.
                _ if placement::is_internal(&topic.name.0) => {
                    Err(AdminError::InvalidTopicName(format!(
                        "{} is an internal topic, created by the brokers",
                        &*topic.name.0
                    )))
                }
                layout => layout,
            };
            let (partition_count, placement, refusal) = match layout {
                Ok(TopicLayout {
                    partition_count,
                    placement,
                }) => (
                    partition_count.unwrap_or(shard.config.num_partitions),
                    placement,
                    None,
                ),
                Err(error) => (0, Placement::default(), Some(error)),
            };
            let mut overrides = TopicOverrides::new();
            for config in &topic.configs {
                if let Some(value) = &config.value {
                    overrides.insert(config.name.to_string(), value.to_string());
                }
            }
            if refusal.is_none() {
                new_topics.push(NewTopic {
                    name: topic.name.0.to_string(),
                    partition_count,
                    overrides,
                    placement,
                });
            }
            precheck.push(refusal);
        }
        let validate_only = request.validate_only;
        let mut created = match shard
            .admin(|reply| AdminRequest::CreateTopics {
                topics: new_topics,
                validate_only,
                reply,
            })
            .await
        {
            Ok(results) => results.into_iter(),
            Err(e) => vec![Err(e); precheck.iter().filter(|p| p.is_none()).count()].into_iter(),
        };
        let mut results = Vec::with_capacity(names.len());
        for (name, refusal) in names.into_iter().zip(precheck) {
            let outcome = match refusal {
                Some(error) => Err(error),
                None => created.next().unwrap_or(Err(AdminError::ShuttingDown)),
            };
            // Fields by version: error_message v1+, partition counts v5+, topic id v7+.
            let mut result = CreatableTopicResult::default().with_name(name);
            match outcome {
                Ok(meta) => {
                    if ctx.version >= 7 {
                        result.topic_id = meta.id;
                    }
                    if ctx.version >= 5 {
                        result.num_partitions = meta.partition_count;
                        result.replication_factor = meta.placement.replication_factor;
                    }
                }
                Err(error) => {
                    result.error_code = code(admin_error(&error));
                    if ctx.version >= 1 {
                        result.error_message = error_text(&error);
                    }
                }
            }
            results.push(result);
        }
        ctx.encode(&CreateTopicsResponse::default().with_topics(results))
    })))
}

pub fn delete_topics(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: DeleteTopicsRequest = ctx.decode(&mut body)?;
    // v6 names topics by name or id; earlier versions by name only.
    let mut wanted: Vec<(Option<String>, uuid::Uuid)> = request
        .topic_names
        .iter()
        .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
        .collect();
    for state in &request.topics {
        let name = match &state.name {
            Some(name) => Some(name.0.to_string()),
            None => shard.topic_by_id(state.topic_id).map(|m| m.name),
        };
        wanted.push((name, state.topic_id));
    }
    let named = wanted.iter().filter_map(|(n, _)| n.as_deref());
    let denied = access::denied_topics(shard, session, AclOperation::Delete, named);
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let names: Vec<String> = wanted
            .iter()
            .filter_map(|(n, _)| n.clone())
            .filter(|n| !denied.contains(n))
            .collect();
        let asked = names.len();
        let mut outcomes = match shard
            .admin(|reply| AdminRequest::DeleteTopics { names, reply })
            .await
        {
            Ok(results) => results.into_iter(),
            Err(e) => vec![Err(e); asked].into_iter(),
        };
        let responses = wanted
            .into_iter()
            .map(|(name, id)| {
                // Fields by version: error_message v5+, topic id v6+.
                let mut result = DeletableTopicResult::default();
                if ctx.version >= 6 {
                    result.topic_id = id;
                }
                match name {
                    None => result.error_code = code(ResponseError::UnknownTopicId),
                    Some(name) => {
                        let outcome = if denied.contains(&name) {
                            Err(AdminError::NotAuthorized)
                        } else {
                            outcomes.next().unwrap_or(Err(AdminError::ShuttingDown))
                        };
                        if let Err(error) = outcome {
                            result.error_code = code(admin_error(&error));
                            if ctx.version >= 5 {
                                result.error_message = error_text(&error);
                            }
                        }
                        result.name = Some(TopicName(StrBytes::from_string(name)));
                    }
                }
                result
            })
            .collect();
        ctx.encode(&DeleteTopicsResponse::default().with_responses(responses))
    })))
}

pub fn create_partitions(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: CreatePartitionsRequest = ctx.decode(&mut body)?;
    let names = request.topics.iter().map(|t| t.name.0.as_str());
    let denied = access::denied_topics(shard, session, AclOperation::Alter, names);
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let is_denied = |name: &TopicName| denied.iter().any(|d| *d == *name.0);
        let topics: Vec<NewPartitions> = request
            .topics
            .iter()
            .filter(|t| !is_denied(&t.name))
            .map(|t| NewPartitions {
                name: t.name.0.to_string(),
                count: t.count,
                assignments: t.assignments.as_ref().map(|assignments| {
                    assignments
                        .iter()
                        .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                        .collect()
                }),
            })
            .collect();
        let count = topics.len();
        let validate_only = request.validate_only;
        let mut outcomes = match shard
            .admin(|reply| AdminRequest::CreatePartitions {
                topics,
                validate_only,
                reply,
            })
            .await
        {
            Ok(results) => results.into_iter(),
            Err(e) => vec![Err(e); count].into_iter(),
        };
        let results = request
            .topics
            .into_iter()
            .map(|topic| {
                let outcome = if is_denied(&topic.name) {
                    Err(AdminError::NotAuthorized)
                } else {
                    outcomes.next().unwrap_or(Err(AdminError::ShuttingDown))
                };
                let mut result = CreatePartitionsTopicResult::default().with_name(topic.name);
                if let Err(error) = outcome {
                    result.error_code = code(admin_error(&error));
                    result.error_message = error_text(&error);
                }
                result
            })
            .collect();
        ctx.encode(&CreatePartitionsResponse::default().with_results(results))
    })))
}
