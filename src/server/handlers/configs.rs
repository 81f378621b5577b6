//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics, share groups and
//! brokers (the dynamic broker configs Kafka allows, see `shard::broker_config`).

use std::borrow::Cow;
use std::rc::Rc;

use bytes::Bytes;
use futures_channel::oneshot;
use kafka_protocol::messages::alter_configs_request::AlterConfigsRequest;
use kafka_protocol::messages::alter_configs_response::{
    AlterConfigsResourceResponse, AlterConfigsResponse,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsRequest;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
};
use kafka_protocol::messages::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
use kafka_protocol::messages::incremental_alter_configs_response::{
    AlterConfigsResourceResponse as IncrementalResult, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{access, RequestContext};
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::Reply;
use crate::server::error_codes::admin_error;
use crate::shard::broker_config;
use crate::shard::control::{AdminError, AdminRequest, ConfigEdit, ConfigOp};
use crate::shard::topic_config::{self, TopicOverrides};
use crate::shard::Shard;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// GROUP: 32 on the wire in Kafka 4; librdkafka sends its own enum value 3 for it.
const RESOURCE_GROUP: i8 = 32;
const RESOURCE_GROUP_LIBRDKAFKA: i8 = 3;
/// DescribeConfigs source of a group config override (DYNAMIC_GROUP_CONFIG).
const SOURCE_GROUP: i8 = 8;
/// DescribeConfigs config sources.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_DEFAULT: i8 = 5;
/// IncrementalAlterConfigs operations on list configs.
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub fn describe(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: DescribeConfigsRequest = ctx.decode(&mut body)?;
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let mut result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let operation = AclOperation::DescribeConfigs;
            let name = resource.resource_name.as_str();
            if let Some(error) = denial(shard, session, resource.resource_type, name, operation) {
                result.error_code = code(error);
                return result;
            }
            let entries: Vec<(Cow<'static, str>, String, i8)> = match resource.resource_type {
                RESOURCE_TOPIC => match shard.topic(&resource.resource_name) {
                    None => {
                        result.error_code = code(ResponseError::UnknownTopicOrPartition);
                        Vec::new()
                    }
                    Some(meta) => match shard.topic_log_config(&meta) {
                        Ok(config) => {
                            let cluster = shard.broker_overrides("");
                            let own = shard.broker_overrides(&shard.id.to_string());
                            topic_config::describe(&config)
                                .into_iter()
                                // An override reads back as it was set (Kafka keeps a list
                                // config's order, e.g. `delete,compact`).
                                .map(|(key, value)| match meta.overrides.get(key) {
                                    Some(set) => (key.into(), set.clone(), SOURCE_TOPIC),
                                    None => {
                                        let source = match broker_config::topic_default_origin(
                                            &cluster, &own, key,
                                        ) {
                                            Some(true) => SOURCE_DYNAMIC_BROKER,
                                            Some(false) => SOURCE_DYNAMIC_DEFAULT_BROKER,
                                            None => SOURCE_DEFAULT,
                                        };
                                        (key.into(), value, source)
                                    }
                                })
                                .collect()
                        }
                        Err(e) => {
                            result.error_code = code(admin_error(&e));
                            Vec::new()
                        }
                    },
                },
                RESOURCE_GROUP | RESOURCE_GROUP_LIBRDKAFKA => {
                    let group = resource.resource_name.as_str();
                    let overrides = shard.share().group_overrides(group);
                    shard
                        .share()
                        .group_config(group)
                        .describe()
                        .into_iter()
                        .map(|(key, value)| {
                            let source = if overrides.contains_key(key) {
                                SOURCE_GROUP
                            } else {
                                SOURCE_DEFAULT
                            };
                            (key.into(), value, source)
                        })
                        .collect()
                }
                RESOURCE_BROKER => match broker_entries(shard, &resource.resource_name) {
                    Ok(entries) => entries,
                    Err(message) => {
                        result.error_code = code(ResponseError::InvalidRequest);
                        result.error_message = Some(StrBytes::from_string(message));
                        Vec::new()
                    }
                },
                _ => {
                    result.error_code = code(ResponseError::InvalidRequest);
                    result.error_message =
                        Some(StrBytes::from_static_str("unsupported resource type"));
                    Vec::new()
                }
            };
            let keys = resource.configuration_keys;
            result.configs = entries
                .into_iter()
                .filter(|(key, _, _)| {
                    keys.as_ref()
                        .is_none_or(|keys| keys.iter().any(|k| k.as_str() == *key))
                })
                .map(|(key, value, source)| {
                    let read_only = resource.resource_type == RESOURCE_BROKER
                        && !broker_config::is_dynamic(&key);
                    DescribeConfigsResourceResult::default()
                        .with_name(StrBytes::from_string(key.into_owned()))
                        .with_value(Some(StrBytes::from_string(value)))
                        .with_config_source(source)
                        .with_read_only(read_only)
                })
                .collect();
            result
        })
        .collect();
    ctx.reply(&DescribeConfigsResponse::default().with_results(results))
}

/// A BROKER resource's configs with their sources. The cluster default ("") lists only its
/// dynamic overrides, as Kafka does; a broker id lists every config, a per-broker override
/// winning over a cluster default over the static value.
fn broker_entries(
    shard: &Shard,
    name: &str,
) -> Result<Vec<(Cow<'static, str>, String, i8)>, String> {
    let cluster = shard.broker_overrides("");
    if name.is_empty() {
        return Ok(cluster
            .into_iter()
            .map(|(key, value)| (key.into(), value, SOURCE_DYNAMIC_DEFAULT_BROKER))
            .collect());
    }
    check_broker_id(shard, name)?;
    let own = shard.broker_overrides(name);
    let mut entries: Vec<(Cow<'static, str>, String, i8)> =
        topic_config::describe(&shard.config.log)
            .into_iter()
            .map(|(key, value)| (key.into(), value, SOURCE_DEFAULT))
            .collect();
    entries.push((
        "num.partitions".into(),
        shard.config.num_partitions.to_string(),
        SOURCE_DEFAULT,
    ));
    entries.push((
        "auto.create.topics.enable".into(),
        shard.config.auto_create_topics.to_string(),
        SOURCE_DEFAULT,
    ));
    let cluster_only: Vec<_> = cluster
        .into_iter()
        .filter(|(key, _)| !own.contains_key(key))
        .map(|(key, value)| (key, value, SOURCE_DYNAMIC_DEFAULT_BROKER))
        .collect();
    let dynamic = cluster_only.into_iter().chain(
        own.into_iter()
            .map(|(key, value)| (key, value, SOURCE_DYNAMIC_BROKER)),
    );
    for (key, value, source) in dynamic {
        match entries.iter_mut().find(|(have, _, _)| *have == key) {
            Some(entry) => *entry = (key.into(), value, source),
            None => entries.push((key.into(), value, source)),
        }
    }
    Ok(entries)
}

/// A BROKER resource names "" (the cluster default) or one of the brokers (a shard each);
/// Kafka refuses anything else with INVALID_REQUEST and these messages.
fn check_broker_id(shard: &Shard, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Ok(());
    }
    let id: i32 = name
        .parse()
        .map_err(|_| format!("Broker id must be an integer, but it is: {name}"))?;
    if shard.brokers.iter().any(|b| b.node_id == id) {
        Ok(())
    } else {
        Err(format!(
            "Unexpected broker id, expected {} or empty string, but received {name}",
            shard.id
        ))
    }
}

async fn alter_broker(
    shard: &Shard,
    broker: &str,
    edit: Result<ConfigEdit, String>,
    validate_only: bool,
) -> Outcome {
    let invalid = |message: String| {
        (
            code(ResponseError::InvalidRequest),
            Some(StrBytes::from_string(message)),
        )
    };
    if let Err(message) = check_broker_id(shard, broker) {
        return invalid(message);
    }
    let edit = match edit {
        Ok(edit) => edit,
        Err(reason) => return invalid(reason),
    };
    let broker = broker.to_owned();
    config_change(shard, |reply| AdminRequest::AlterBrokerConfig {
        broker,
        edit,
        validate_only,
        reply,
    })
    .await
}

/// Sends a config change to the catalog owner and turns its answer into an outcome.
async fn config_change(
    shard: &Shard,
    make: impl FnOnce(oneshot::Sender<Result<(), AdminError>>) -> AdminRequest,
) -> Outcome {
    match shard.admin(make).await.and_then(|r| r) {
        Ok(()) => (0, None),
        Err(error) => failure(&error),
    }
}

/// One resource's outcome as (error code, message).
type Outcome = (i16, Option<StrBytes>);

async fn alter_topic(
    shard: &Shard,
    resource_type: i8,
    name: &str,
    edit: Result<ConfigEdit, String>,
    validate_only: bool,
) -> Outcome {
    if resource_type != RESOURCE_TOPIC {
        return (
            code(ResponseError::InvalidRequest),
            Some(StrBytes::from_static_str(
                "only topic configs can be altered",
            )),
        );
    }
    let edit = match edit {
        Ok(edit) => edit,
        Err(reason) => {
            return (
                code(ResponseError::InvalidRequest),
                Some(StrBytes::from_string(reason)),
            )
        }
    };
    let name = name.to_owned();
    config_change(shard, |reply| AdminRequest::AlterTopicConfig {
        name,
        edit,
        validate_only,
        reply,
    })
    .await
}

/// On a single node, a share group's configs live with its coordinator shard, which stores
/// and spreads them; in a cluster they are metadata, committed through the catalog from any
/// node (as KRaft does), so every partition leader applies them.
async fn alter_group(
    shard: &Shard,
    group: &str,
    ops: Result<Vec<ConfigOp>, String>,
    validate_only: bool,
) -> Outcome {
    let ops = match ops.map(|ops| ops.into_iter()) {
        Ok(ops) => match ops
            .into_iter()
            .map(|op| match op {
                ConfigOp::Set(name, value) => Ok((name, Some(value))),
                ConfigOp::Delete(name) => Ok((name, None)),
                // No share-group config is a list.
                ConfigOp::Append(name, _) | ConfigOp::Subtract(name, _) => Err(name),
            })
            .collect::<Result<Vec<_>, String>>()
        {
            Ok(ops) => ops,
            Err(name) => {
                return (
                    code(ResponseError::InvalidConfig),
                    Some(StrBytes::from_string(format!(
                        "{name}: config value append or subtract is not allowed: not a list"
                    ))),
                )
            }
        },
        Err(reason) => {
            return (
                code(ResponseError::InvalidRequest),
                Some(StrBytes::from_string(reason)),
            )
        }
    };
    let share = shard.share();
    if shard.in_cluster() {
        return match share.edit_group_config(group, ops) {
            Ok(_) if validate_only => (0, None),
            Ok(overrides) => {
                let group = group.to_owned();
                config_change(shard, |reply| AdminRequest::AlterGroupConfig {
                    group,
                    overrides,
                    reply,
                })
                .await
            }
            Err(e) => (
                code(super::share_errors::share_error(&e)),
                Some(StrBytes::from_string(e.to_string())),
            ),
        };
    }
    let coordinator = crate::group::coordinator_shard(group, share.shard_count());
    let result = if coordinator == shard.id {
        share.alter_group_config(group, ops, validate_only).await
    } else {
        let (reply, answer) = futures_channel::oneshot::channel();
        let message = crate::share::ShareMessage::AlterGroupConfig {
            group: group.to_owned(),
            ops,
            validate_only,
            reply,
        };
        match share.send(coordinator, message).await {
            Ok(()) => answer
                .await
                .unwrap_or(Err(crate::share::ShareError::ShuttingDown)),
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) => (0, None),
        Err(e) => (
            code(super::share_errors::share_error(&e)),
            Some(StrBytes::from_string(e.to_string())),
        ),
    }
}

/// Kafka's refusal of a config resource the session may not `operation` (DESCRIBE_CONFIGS
/// or ALTER_CONFIGS): broker resources are checked on the cluster.
fn denial(
    shard: &Shard,
    session: &Session,
    resource_type: i8,
    name: &str,
    operation: AclOperation,
) -> Option<ResponseError> {
    match resource_type {
        RESOURCE_TOPIC => (!access::topic(shard, session, operation, name))
            .then_some(ResponseError::TopicAuthorizationFailed),
        RESOURCE_BROKER => (!access::cluster(shard, session, operation))
            .then_some(ResponseError::ClusterAuthorizationFailed),
        RESOURCE_GROUP | RESOURCE_GROUP_LIBRDKAFKA => {
            (!access::group(shard, session, operation, name))
                .then_some(ResponseError::GroupAuthorizationFailed)
        }
        _ => None,
    }
}

fn denials<'a>(
    shard: &Shard,
    session: &Session,
    resources: impl Iterator<Item = (i8, &'a str)>,
    operation: AclOperation,
) -> Vec<Option<ResponseError>> {
    resources
        .map(|(resource_type, name)| denial(shard, session, resource_type, name, operation))
        .collect()
}

fn failure(error: &AdminError) -> Outcome {
    (
        code(admin_error(error)),
        Some(StrBytes::from_string(error.to_string())),
    )
}

pub fn alter(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: AlterConfigsRequest = ctx.decode(&mut body)?;
    let resources = request.resources.iter();
    let named = resources.map(|r| (r.resource_type, r.resource_name.as_str()));
    let denied = denials(shard, session, named, AclOperation::AlterConfigs);
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let mut responses = Vec::with_capacity(request.resources.len());
        for (resource, denied) in request.resources.into_iter().zip(denied) {
            if let Some(error) = denied {
                responses.push(
                    AlterConfigsResourceResponse::default()
                        .with_resource_type(resource.resource_type)
                        .with_resource_name(resource.resource_name)
                        .with_error_code(code(error)),
                );
                continue;
            }
            let overrides: TopicOverrides = resource
                .configs
                .iter()
                .filter_map(|c| {
                    c.value
                        .as_ref()
                        .map(|v| (c.name.to_string(), v.to_string()))
                })
                .collect();
            let edit = Ok(ConfigEdit::Replace(overrides));
            let (error_code, error_message) = if resource.resource_type == RESOURCE_BROKER {
                alter_broker(&shard, &resource.resource_name, edit, request.validate_only).await
            } else {
                alter_topic(
                    &shard,
                    resource.resource_type,
                    &resource.resource_name,
                    edit,
                    request.validate_only,
                )
                .await
            };
            responses.push(
                AlterConfigsResourceResponse::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name)
                    .with_error_code(error_code)
                    .with_error_message(error_message),
            );
        }
        ctx.encode(&AlterConfigsResponse::default().with_responses(responses))
    })))
}

pub fn incremental_alter(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: IncrementalAlterConfigsRequest = ctx.decode(&mut body)?;
    let resources = request.resources.iter();
    let named = resources.map(|r| (r.resource_type, r.resource_name.as_str()));
    let denied = denials(shard, session, named, AclOperation::AlterConfigs);
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let mut responses = Vec::with_capacity(request.resources.len());
        for (resource, denied) in request.resources.into_iter().zip(denied) {
            if let Some(error) = denied {
                responses.push(
                    IncrementalResult::default()
                        .with_resource_type(resource.resource_type)
                        .with_resource_name(resource.resource_name)
                        .with_error_code(code(error)),
                );
                continue;
            }
            let ops: Result<Vec<ConfigOp>, String> = resource
                .configs
                .iter()
                .map(|c| match (c.config_operation, &c.value) {
                    (0, Some(value)) => Ok(ConfigOp::Set(c.name.to_string(), value.to_string())),
                    (0, None) => Err(format!("SET of {} needs a value", c.name.as_str())),
                    (1, _) => Ok(ConfigOp::Delete(c.name.to_string())),
                    (OP_APPEND, Some(value)) => {
                        Ok(ConfigOp::Append(c.name.to_string(), value.to_string()))
                    }
                    (OP_SUBTRACT, Some(value)) => {
                        Ok(ConfigOp::Subtract(c.name.to_string(), value.to_string()))
                    }
                    (OP_APPEND | OP_SUBTRACT, None) => Err(format!(
                        "APPEND or SUBTRACT of {} needs a value",
                        c.name.as_str()
                    )),
                    (op, _) => Err(format!(
                        "operation {op} is not supported on {}",
                        c.name.as_str()
                    )),
                })
                .collect();
            let (error_code, error_message) = if matches!(
                resource.resource_type,
                RESOURCE_GROUP | RESOURCE_GROUP_LIBRDKAFKA
            ) {
                alter_group(&shard, &resource.resource_name, ops, request.validate_only).await
            } else if resource.resource_type == RESOURCE_BROKER {
                let edit = ops.map(ConfigEdit::Incremental);
                alter_broker(&shard, &resource.resource_name, edit, request.validate_only).await
            } else {
                alter_topic(
                    &shard,
                    resource.resource_type,
                    &resource.resource_name,
                    ops.map(ConfigEdit::Incremental),
                    request.validate_only,
                )
                .await
            };
            responses.push(
                IncrementalResult::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name)
                    .with_error_code(error_code)
                    .with_error_message(error_message),
            );
        }
        ctx.encode(&IncrementalAlterConfigsResponse::default().with_responses(responses))
    })))
}
