//! Topic administration: create, list, describe, delete, configs, partitions.
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteRecordsRequest,
    DeleteTopicsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::cluster::{Cluster, TopicMetadata};
use super::error::{check_error_code, ClientError};

/// Kafka's ConfigResource type for topics.
const RESOURCE_TYPE_TOPIC: i8 = 2;
/// How long the broker may take over a topic change before answering REQUEST_TIMED_OUT.
const ADMIN_TIMEOUT_MS: i32 = 30_000;

/// A topic to create. `None` asks for the broker's default (needs CreateTopics v4+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    pub partition_count: Option<i32>,
    pub replication_factor: Option<i16>,
    pub configs: Vec<(String, String)>,
}

/// One change for IncrementalAlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    Set { name: String, value: String },
    Delete { name: String },
}

/// Where a config value comes from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    Unknown,
    DynamicTopic,
    DynamicBroker,
    DynamicDefaultBroker,
    StaticBroker,
    Default,
    DynamicBrokerLogger,
    ClientMetrics,
    Group,
}

impl ConfigSource {
    fn from_code(code: i8) -> Self {
        match code {
            1 => Self::DynamicTopic,
            2 => Self::DynamicBroker,
            3 => Self::DynamicDefaultBroker,
            4 => Self::StaticBroker,
            5 => Self::Default,
            6 => Self::DynamicBrokerLogger,
            7 => Self::ClientMetrics,
            8 => Self::Group,
            _ => Self::Unknown,
        }
    }
}

/// One config entry from DescribeConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub is_sensitive: bool,
}

/// Admin operations over a [`Cluster`].
#[derive(Debug)]
pub struct Admin {
    cluster: Cluster,
}

impl Admin {
    pub fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }

    pub fn cluster(&mut self) -> &mut Cluster {
        &mut self.cluster
    }

    /// Creates a topic and waits for the broker's answer.
    pub fn create_topic(&mut self, topic: &NewTopic) -> Result<(), ClientError> {
        let connection = self.cluster.admin_connection()?;
        let version = connection.version::<CreateTopicsRequest>()?;
        // Before v4, "broker default" (-1) is not allowed; 1 is Kafka's own default.
        let default_ok = version >= 4;
        let partition_count = topic
            .partition_count
            .unwrap_or(if default_ok { -1 } else { 1 });
        let replication_factor =
            topic
                .replication_factor
                .unwrap_or(if default_ok { -1 } else { 1 });
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(ADMIN_TIMEOUT_MS)
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(&topic.name))
                .with_num_partitions(partition_count)
                .with_replication_factor(replication_factor)
                .with_configs(
                    topic
                        .configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_string(k.clone()))
                                .with_value(Some(StrBytes::from_string(v.clone())))
                        })
                        .collect(),
                )]);
        let response =
            connection.send_version(&request, version, std::time::Duration::from_millis(30_000))?;
        let result = response
            .topics
            .iter()
            .find(|t| t.name.0.as_str() == topic.name)
            .ok_or_else(|| missing(connection.addr(), &topic.name))?;
        self.cluster.invalidate_topic(&topic.name);
        check_error_code(result.error_code, result.error_message.as_deref(), || {
            format!("cannot create topic '{}'", topic.name)
        })
    }

    /// All topics, sorted by name.
    pub fn list_topics(&mut self) -> Result<Vec<TopicMetadata>, ClientError> {
        self.cluster.refresh_metadata(None, false)
    }

    /// Partition and leader metadata for one topic, fresh from the broker.
    pub fn describe_topic(&mut self, name: &str) -> Result<TopicMetadata, ClientError> {
        self.cluster.invalidate_topic(name);
        self.cluster.topic(name)
    }

    /// Deletes a topic.
    pub fn delete_topic(&mut self, name: &str) -> Result<(), ClientError> {
        let connection = self.cluster.admin_connection()?;
        let version = connection.version::<DeleteTopicsRequest>()?;
        let mut request = DeleteTopicsRequest::default().with_timeout_ms(ADMIN_TIMEOUT_MS);
        if version >= 6 {
            request.topics = vec![DeleteTopicState::default().with_name(Some(topic_name(name)))];
        } else {
            request.topic_names = vec![topic_name(name)];
        }
        let response =
            connection.send_version(&request, version, std::time::Duration::from_millis(30_000))?;
        let result = response
            .responses
            .iter()
            .find(|r| r.name.as_ref().is_some_and(|n| n.0.as_str() == name))
            .or_else(|| response.responses.first())
            .ok_or_else(|| missing(connection.addr(), name))?;
        self.cluster.invalidate_topic(name);
        if result.error_code == kafka_protocol::error::ResponseError::UnknownTopicOrPartition.code()
        {
            return Err(ClientError::UnknownTopic {
                topic: name.to_owned(),
            });
        }
        check_error_code(result.error_code, result.error_message.as_deref(), || {
            format!("cannot delete topic '{name}'")
        })
    }

    /// Applies config changes to a topic with IncrementalAlterConfigs.
    pub fn alter_topic_config(
        &mut self,
        name: &str,
        changes: &[ConfigChange],
    ) -> Result<(), ClientError> {
        // Operation codes from Kafka's AlterConfigOp.OpType.
        const OP_SET: i8 = 0;
        const OP_DELETE: i8 = 1;
        let configs = changes
            .iter()
            .map(|change| match change {
                ConfigChange::Set { name, value } => AlterableConfig::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_config_operation(OP_SET)
                    .with_value(Some(StrBytes::from_string(value.clone()))),
                ConfigChange::Delete { name } => AlterableConfig::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_config_operation(OP_DELETE)
                    .with_value(None),
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TYPE_TOPIC)
                .with_resource_name(StrBytes::from_string(name.to_owned()))
                .with_configs(configs),
        ]);
        let connection = self.cluster.admin_connection()?;
        let (response, _) = connection.send(&request)?;
        let result = response
            .responses
            .first()
            .ok_or_else(|| missing(connection.addr(), name))?;
        topic_error(
            result.error_code,
            result.error_message.as_deref(),
            name,
            || format!("cannot alter configs of topic '{name}'"),
        )
    }

    /// Whether the broker implements DescribeConfigs at all.
    pub fn supports_describe_configs(&mut self) -> Result<bool, ClientError> {
        Ok(self
            .cluster
            .admin_connection()?
            .broker_versions(ApiKey::DescribeConfigs)
            .is_some())
    }

    /// All configs of a topic, as the broker reports them.
    pub fn describe_topic_configs(&mut self, name: &str) -> Result<Vec<ConfigEntry>, ClientError> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TYPE_TOPIC)
                .with_resource_name(StrBytes::from_string(name.to_owned()))
                .with_configuration_keys(None),
        ]);
        let connection = self.cluster.admin_connection()?;
        let (response, _) = connection.send(&request)?;
        let result = response
            .results
            .into_iter()
            .next()
            .ok_or_else(|| missing(connection.addr(), name))?;
        topic_error(
            result.error_code,
            result.error_message.as_deref(),
            name,
            || format!("cannot describe configs of topic '{name}'"),
        )?;
        let mut entries: Vec<ConfigEntry> = result
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: ConfigSource::from_code(c.config_source),
                read_only: c.read_only,
                is_sensitive: c.is_sensitive,
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Grows a topic to `partition_count` partitions in total.
    pub fn create_partitions(
        &mut self,
        name: &str,
        partition_count: i32,
    ) -> Result<(), ClientError> {
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(ADMIN_TIMEOUT_MS)
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(name))
                .with_count(partition_count)
                .with_assignments(None)]);
        let connection = self.cluster.admin_connection()?;
        let (response, _) = connection.send(&request)?;
        let result = response
            .results
            .first()
            .ok_or_else(|| missing(connection.addr(), name))?;
        self.cluster.invalidate_topic(name);
        topic_error(
            result.error_code,
            result.error_message.as_deref(),
            name,
            || format!("cannot create partitions for topic '{name}'"),
        )
    }
}

impl Admin {
    /// Deletes the records of `name`-`partition` below `offset` (-1: below the high
    /// watermark) by moving its log start offset; returns the new log start offset.
    pub fn delete_records(
        &mut self,
        name: &str,
        partition: i32,
        offset: i64,
    ) -> Result<i64, ClientError> {
        let request = DeleteRecordsRequest::default()
            .with_timeout_ms(ADMIN_TIMEOUT_MS)
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic_name(name))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(partition)
                    .with_offset(offset)])]);
        // Only the partition's leader can move its start.
        let (_, connection) = self.cluster.leader_connection(name, partition)?;
        let (response, _) = connection.send(&request)?;
        let result = response
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| missing(connection.addr(), name))?;
        topic_error(result.error_code, None, name, || {
            format!("cannot delete records of {name}-{partition} before offset {offset}")
        })?;
        Ok(result.low_watermark)
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

fn missing(addr: &str, topic: &str) -> ClientError {
    ClientError::MissingInResponse {
        addr: addr.to_owned(),
        what: format!("a result for topic '{topic}'"),
    }
}

/// Like [`check_error_code`], but an unknown topic gets its own readable error.
fn topic_error(
    code: i16,
    message: Option<&str>,
    topic: &str,
    context: impl FnOnce() -> String,
) -> Result<(), ClientError> {
    if code == kafka_protocol::error::ResponseError::UnknownTopicOrPartition.code() {
        return Err(ClientError::UnknownTopic {
            topic: topic.to_owned(),
        });
    }
    check_error_code(code, message, context)
}
