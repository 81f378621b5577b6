//! The client's view of a cluster: bootstrap, Metadata, and one connection per broker.
//!
//! Partition requests (Produce, Fetch, ListOffsets) must go to the partition's leader, so the
//! cluster keeps a node id → address map from the last Metadata response and opens
//! connections lazily. Admin requests go to any broker (the controller when known).
use std::collections::HashMap;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::connection::{Connection, ConnectionConfig};
use super::error::{check_error_code, ClientError};

/// What the client knows about one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub name: String,
    /// `Uuid::nil()` when the broker's Metadata version has no topic ids.
    pub topic_id: Uuid,
    pub is_internal: bool,
    /// Sorted by partition index.
    pub partitions: Vec<PartitionMetadata>,
}

/// What the client knows about one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub partition: i32,
    /// -1 when there is no leader.
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub replica_ids: Vec<i32>,
    pub isr_ids: Vec<i32>,
    pub error_code: i16,
}

/// A broker from Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMetadata {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerMetadata {
    pub fn addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Connections to a cluster and its last known metadata.
#[derive(Debug)]
pub struct Cluster {
    config: ConnectionConfig,
    bootstrap: Vec<String>,
    /// The connection used for admin and metadata requests.
    bootstrap_connection: Connection,
    connections: HashMap<i32, Connection>,
    brokers: HashMap<i32, BrokerMetadata>,
    controller_id: i32,
    topics: HashMap<String, TopicMetadata>,
    /// Whether metadata lookups for one topic may create it (producers do, admin does not).
    allow_auto_topic_creation: bool,
}

impl Cluster {
    /// Connects to the first reachable address in `bootstrap` (comma-separated host:port list).
    pub fn connect(bootstrap: &str, config: ConnectionConfig) -> Result<Self, ClientError> {
        let addrs: Vec<String> = bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if addrs.is_empty() {
            return Err(ClientError::InvalidArgument(
                "empty bootstrap server list".to_owned(),
            ));
        }
        let mut last_err = None;
        for addr in &addrs {
            match Connection::connect(addr, &config) {
                Ok(connection) => {
                    return Ok(Self {
                        config,
                        bootstrap: addrs,
                        bootstrap_connection: connection,
                        connections: HashMap::new(),
                        brokers: HashMap::new(),
                        controller_id: -1,
                        topics: HashMap::new(),
                        allow_auto_topic_creation: false,
                    })
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(ClientError::NoBrokerReachable {
            bootstrap: addrs.join(","),
            source: Box::new(last_err.unwrap_or(ClientError::InvalidArgument(
                "no bootstrap address".to_owned(),
            ))),
        })
    }

    pub fn bootstrap(&self) -> &[String] {
        &self.bootstrap
    }

    /// Lets [`Cluster::topic`] lookups auto-create missing topics, as a Kafka producer does.
    pub fn set_allow_auto_topic_creation(&mut self, allow: bool) {
        self.allow_auto_topic_creation = allow;
    }

    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// The connection for admin requests: the controller's if known, else the bootstrap one.
    pub fn admin_connection(&mut self) -> Result<&mut Connection, ClientError> {
        if self.controller_id >= 0 && self.brokers.contains_key(&self.controller_id) {
            return self.broker_connection(self.controller_id);
        }
        Ok(&mut self.bootstrap_connection)
    }

    /// The bootstrap connection, for requests any broker can answer.
    pub fn any_connection(&mut self) -> &mut Connection {
        &mut self.bootstrap_connection
    }

    /// A connection to broker `node_id`, opened on first use.
    pub fn broker_connection(&mut self, node_id: i32) -> Result<&mut Connection, ClientError> {
        if !self.connections.contains_key(&node_id) {
            let broker = self
                .brokers
                .get(&node_id)
                .ok_or(ClientError::UnknownBroker { node_id })?;
            let connection = Connection::connect(&broker.addr(), &self.config)?;
            self.connections.insert(node_id, connection);
        }
        self.connections
            .get_mut(&node_id)
            .ok_or(ClientError::UnknownBroker { node_id })
    }

    /// Drops the connection to `node_id` (after an I/O error) so the next use reconnects.
    pub fn forget_connection(&mut self, node_id: i32) {
        self.connections.remove(&node_id);
    }

    /// Fetches metadata for `topics` (all topics when `None`) and caches it.
    pub fn refresh_metadata(
        &mut self,
        topics: Option<&[&str]>,
        allow_auto_topic_creation: bool,
    ) -> Result<Vec<TopicMetadata>, ClientError> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|name| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string((*name).to_owned()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(allow_auto_topic_creation);
        let response = match self.bootstrap_connection.send(&request) {
            Ok((response, _version)) => response,
            // The bootstrap broker went away (restart): reconnect once and ask again.
            Err(ClientError::Io { .. } | ClientError::Timeout { .. }) => {
                self.reconnect_bootstrap()?;
                self.bootstrap_connection.send(&request)?.0
            }
            Err(e) => return Err(e),
        };
        let addr = self.bootstrap_connection.addr().to_owned();
        self.apply_metadata(response, &addr)
    }

    /// Replaces the bootstrap connection with a fresh one to the first reachable address.
    fn reconnect_bootstrap(&mut self) -> Result<(), ClientError> {
        let mut last_err = None;
        for addr in &self.bootstrap {
            match Connection::connect(addr, &self.config) {
                Ok(connection) => {
                    self.bootstrap_connection = connection;
                    self.connections.clear();
                    return Ok(());
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(ClientError::NoBrokerReachable {
            bootstrap: self.bootstrap.join(","),
            source: Box::new(last_err.unwrap_or(ClientError::InvalidArgument(
                "no bootstrap address".to_owned(),
            ))),
        })
    }

    fn apply_metadata(
        &mut self,
        response: MetadataResponse,
        addr: &str,
    ) -> Result<Vec<TopicMetadata>, ClientError> {
        check_error_code(response.error_code, None, || {
            format!("Metadata from {addr}")
        })?;
        self.brokers = response
            .brokers
            .into_iter()
            .map(|b| {
                let broker = BrokerMetadata {
                    node_id: b.node_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.map(|r| r.to_string()),
                };
                (broker.node_id, broker)
            })
            .collect();
        // A broker whose address changed gets a fresh connection.
        let brokers = &self.brokers;
        self.connections
            .retain(|id, conn| brokers.get(id).is_some_and(|b| b.addr() == conn.addr()));
        self.controller_id = response.controller_id.0;
        let mut topics = Vec::with_capacity(response.topics.len());
        for topic in response.topics {
            let Some(name) = topic.name.map(|n| n.0.to_string()) else {
                continue;
            };
            if topic.error_code
                == kafka_protocol::error::ResponseError::UnknownTopicOrPartition.code()
            {
                self.topics.remove(&name);
                return Err(ClientError::UnknownTopic { topic: name });
            }
            check_error_code(topic.error_code, None, || {
                format!("metadata for topic '{name}'")
            })?;
            let mut partitions: Vec<PartitionMetadata> = topic
                .partitions
                .into_iter()
                .map(|p| PartitionMetadata {
                    partition: p.partition_index,
                    leader_id: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replica_ids: p.replica_nodes.iter().map(|id| id.0).collect(),
                    isr_ids: p.isr_nodes.iter().map(|id| id.0).collect(),
                    error_code: p.error_code,
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            let metadata = TopicMetadata {
                name: name.clone(),
                topic_id: topic.topic_id,
                is_internal: topic.is_internal,
                partitions,
            };
            self.topics.insert(name, metadata.clone());
            topics.push(metadata);
        }
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Cached metadata for `topic`, fetched if not cached.
    pub fn topic(&mut self, topic: &str) -> Result<TopicMetadata, ClientError> {
        if let Some(metadata) = self.topics.get(topic) {
            return Ok(metadata.clone());
        }
        self.refresh_metadata(Some(&[topic]), self.allow_auto_topic_creation)?;
        self.topics
            .get(topic)
            .cloned()
            .ok_or_else(|| ClientError::UnknownTopic {
                topic: topic.to_owned(),
            })
    }

    /// Forgets cached metadata for `topic`, so the next lookup asks the broker.
    pub fn invalidate_topic(&mut self, topic: &str) {
        self.topics.remove(topic);
    }

    pub fn brokers(&self) -> impl Iterator<Item = &BrokerMetadata> {
        self.brokers.values()
    }

    /// The leader broker id of `topic`-`partition`.
    pub fn leader_id(&mut self, topic: &str, partition: i32) -> Result<i32, ClientError> {
        let metadata = self.topic(topic)?;
        let p = metadata
            .partitions
            .iter()
            .find(|p| p.partition == partition)
            .ok_or_else(|| ClientError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
                partition_count: metadata.partitions.len(),
            })?;
        if p.leader_id < 0 {
            return Err(ClientError::NoLeader {
                topic: topic.to_owned(),
                partition,
            });
        }
        Ok(p.leader_id)
    }

    /// A connection to the leader of `topic`-`partition`.
    pub fn leader_connection(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Result<(i32, &mut Connection), ClientError> {
        let leader_id = self.leader_id(topic, partition)?;
        Ok((leader_id, self.broker_connection(leader_id)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_addr_brackets_ipv6() {
        let b = BrokerMetadata {
            node_id: 0,
            host: "::1".into(),
            port: 9092,
            rack: None,
        };
        assert_eq!(b.addr(), "[::1]:9092");
        let b = BrokerMetadata {
            host: "localhost".into(),
            ..b
        };
        assert_eq!(b.addr(), "localhost:9092");
    }
}
