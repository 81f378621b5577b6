//! Shard 0's catalog authority: validates admin requests one at a time, persists the new
//! catalog, then broadcasts the change to every shard and waits for all of them, so that
//! a topic is usable on every shard by the time CreateTopics answers.

use std::path::PathBuf;

use futures_channel::oneshot;
use uuid::Uuid;

use super::broker_config;
use super::catalog::{validate_topic_name, Catalog, CatalogChange, TopicMeta};
use super::control::{
    AdminError, AdminRequest, ConfigEdit, ConfigOp, NewPartitions, NewTopic, ScramChange,
    ShardMessage,
};
use super::placement;
use super::producer_ids::ProducerIdAllocator;
use super::topic_config;
use crate::constants::TOPIC_PARTITIONS_MAX;
use crate::log::LogConfig;
use crate::security::acl::{AclBinding, AclFilter};

pub struct CatalogOwner {
    catalog: Catalog,
    producer_ids: ProducerIdAllocator,
    data_dir: PathBuf,
    log_defaults: LogConfig,
    shards: Vec<async_channel::Sender<ShardMessage>>,
}

impl CatalogOwner {
    pub fn new(
        catalog: Catalog,
        producer_ids: ProducerIdAllocator,
        data_dir: PathBuf,
        log_defaults: LogConfig,
        shards: Vec<async_channel::Sender<ShardMessage>>,
    ) -> CatalogOwner {
        CatalogOwner {
            catalog,
            producer_ids,
            data_dir,
            log_defaults,
            shards,
        }
    }

    pub async fn run(mut self, inbox: async_channel::Receiver<AdminRequest>) {
        while let Ok(request) = inbox.recv().await {
            // Replies are dropped only when the requesting connection has gone away.
            match request {
                AdminRequest::AllocateProducerId { reply } => {
                    let id = self
                        .producer_ids
                        .allocate()
                        .await
                        .map_err(|e| AdminError::Storage(e.to_string()));
                    let _ = reply.send(id);
                }
                AdminRequest::CreateTopics {
                    topics,
                    validate_only,
                    reply,
                } => {
                    let mut results = Vec::with_capacity(topics.len());
                    for topic in topics {
                        results.push(self.create_topic(topic, validate_only).await);
                    }
                    let _ = reply.send(results);
                }
                AdminRequest::DeleteTopics { names, reply } => {
                    let mut results = Vec::with_capacity(names.len());
                    for name in names {
                        results.push(self.delete_topic(name).await);
                    }
                    let _ = reply.send(results);
                }
                AdminRequest::CreatePartitions {
                    topics,
                    validate_only,
                    reply,
                } => {
                    let mut results = Vec::with_capacity(topics.len());
                    for topic in topics {
                        results.push(self.create_partitions(topic, validate_only).await);
                    }
                    let _ = reply.send(results);
                }
                AdminRequest::AlterTopicConfig {
                    name,
                    edit,
                    validate_only,
                    reply,
                } => {
                    let _ = reply.send(self.alter_config(name, edit, validate_only).await);
                }
                AdminRequest::AlterBrokerConfig {
                    broker,
                    edit,
                    validate_only,
                    reply,
                } => {
                    let outcome = self.alter_broker_config(broker, edit, validate_only).await;
                    let _ = reply.send(outcome);
                }
                AdminRequest::AlterScramCredentials { changes, reply } => {
                    let mut results = Vec::with_capacity(changes.len());
                    for change in changes {
                        results.push(self.alter_scram_credential(change).await);
                    }
                    let _ = reply.send(results);
                }
                AdminRequest::CreateAcls { acls, reply } => {
                    let _ = reply.send(self.create_acls(acls).await);
                }
                AdminRequest::DeleteAcls { filters, reply } => {
                    let _ = reply.send(self.delete_acls(filters).await);
                }
            }
        }
    }

    async fn create_topic(
        &mut self,
        topic: NewTopic,
        validate_only: bool,
    ) -> Result<TopicMeta, AdminError> {
        validate_topic_name(&topic.name).map_err(AdminError::InvalidTopicName)?;
        if self.catalog.get(&topic.name).is_some() {
            return Err(AdminError::TopicExists(topic.name));
        }
        if !(1..=TOPIC_PARTITIONS_MAX).contains(&topic.partition_count) {
            return Err(AdminError::InvalidPartitions(format!(
                "{} is not in 1..={TOPIC_PARTITIONS_MAX}",
                topic.partition_count
            )));
        }
        topic_config::log_config(&self.log_defaults, &topic.overrides)
            .map_err(|e| AdminError::InvalidConfig(e.to_string()))?;
        let meta = TopicMeta {
            name: topic.name,
            id: Uuid::new_v4(),
            partition_count: topic.partition_count,
            overrides: topic.overrides,
            placement: topic.placement,
        };
        if !validate_only {
            self.commit(CatalogChange::Upsert(meta.clone())).await?;
        }
        Ok(meta)
    }

    async fn delete_topic(&mut self, name: String) -> Result<(), AdminError> {
        if self.catalog.get(&name).is_none() {
            return Err(AdminError::UnknownTopic(name));
        }
        self.commit(CatalogChange::Delete { name }).await
    }

    async fn create_partitions(
        &mut self,
        topic: NewPartitions,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let NewPartitions {
            name,
            count,
            assignments,
        } = topic;
        let Some(current) = self.catalog.get(&name) else {
            return Err(AdminError::UnknownTopic(name));
        };
        // Kafka's messages for a count that does not grow.
        if count == current.partition_count {
            return Err(AdminError::InvalidPartitions(format!(
                "Topic already has {count} partition(s)."
            )));
        }
        if count < current.partition_count || count > TOPIC_PARTITIONS_MAX {
            return Err(AdminError::InvalidPartitions(format!(
                "The topic {name} currently has {} partition(s); {count} would not be an increase (at most {TOPIC_PARTITIONS_MAX}).",
                current.partition_count
            )));
        }
        let mut meta = current.clone();
        if let Some(assignments) = assignments {
            // Each shard is a broker (see `placement`).
            let placed = placement::check_new_partitions(
                count - meta.partition_count,
                &assignments,
                self.shards.len(),
                meta.placement.replication_factor,
            )?;
            let first_new = usize::try_from(meta.partition_count).unwrap_or(0);
            meta.placement.replicas.resize(first_new, Vec::new());
            meta.placement.replicas.extend(placed);
        }
        meta.partition_count = count;
        if validate_only {
            return Ok(());
        }
        self.commit(CatalogChange::Upsert(meta)).await
    }

    async fn alter_config(
        &mut self,
        name: String,
        edit: ConfigEdit,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let Some(current) = self.catalog.get(&name) else {
            return Err(AdminError::UnknownTopic(name));
        };
        let mut meta = current.clone();
        match edit {
            ConfigEdit::Replace(overrides) => meta.overrides = overrides,
            ConfigEdit::Incremental(ops) => {
                for op in ops {
                    match &op {
                        ConfigOp::Set(key, value) => {
                            meta.overrides.insert(key.clone(), value.clone());
                        }
                        ConfigOp::Delete(key) => {
                            meta.overrides.remove(key);
                        }
                        ConfigOp::Append(key, items) | ConfigOp::Subtract(key, items) => {
                            let append = matches!(op, ConfigOp::Append(..));
                            let current = topic_config::effective_value(
                                &self.log_defaults,
                                &meta.overrides,
                                key,
                            );
                            let value = topic_config::edit_list(key, &current, items, append)
                                .map_err(|e| AdminError::InvalidConfig(e.to_string()))?;
                            meta.overrides.insert(key.clone(), value);
                        }
                    }
                }
            }
        }
        topic_config::log_config(&self.log_defaults, &meta.overrides)
            .map_err(|e| AdminError::InvalidConfig(e.to_string()))?;
        if validate_only {
            return Ok(());
        }
        self.commit(CatalogChange::Upsert(meta)).await
    }

    async fn alter_broker_config(
        &mut self,
        broker: String,
        edit: ConfigEdit,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let overrides = match edit {
            ConfigEdit::Replace(overrides) => overrides,
            ConfigEdit::Incremental(ops) => {
                let cluster = self.catalog.broker_overrides("");
                let inherited = |name: &str| {
                    cluster
                        .get(name)
                        .filter(|_| !broker.is_empty())
                        .cloned()
                        .or_else(|| broker_config::static_value(&self.log_defaults, name))
                };
                broker_config::edit(self.catalog.broker_overrides(&broker), ops, inherited)
                    .map_err(AdminError::InvalidConfig)?
            }
        };
        // Kafka answers INVALID_REQUEST here, not INVALID_CONFIG (KAFKA-13609).
        broker_config::validate(&overrides).map_err(AdminError::InvalidRequest)?;
        // A default every topic would refuse must not get in, or no topic could open.
        let defaults = broker_config::topic_defaults(&overrides, &overrides);
        topic_config::log_config(&self.log_defaults, &defaults)
            .map_err(|e| AdminError::InvalidRequest(e.to_string()))?;
        if validate_only {
            return Ok(());
        }
        self.commit(CatalogChange::BrokerConfig { broker, overrides })
            .await
    }

    async fn alter_scram_credential(&mut self, change: ScramChange) -> Result<(), AdminError> {
        let exists = self
            .catalog
            .scram_credential(&change.user, change.mechanism)
            .is_some();
        if change.credential.is_none() && !exists {
            return Err(AdminError::NoScramCredential);
        }
        self.commit(CatalogChange::ScramCredential {
            user: change.user,
            mechanism: change.mechanism,
            credential: change.credential,
        })
        .await
    }

    async fn create_acls(&mut self, acls: Vec<AclBinding>) -> Result<(), AdminError> {
        let mut created: Vec<AclBinding> = Vec::with_capacity(acls.len());
        for acl in acls {
            if !self.catalog.acls().contains(&acl) && !created.contains(&acl) {
                created.push(acl);
            }
        }
        if created.is_empty() {
            return Ok(());
        }
        self.commit(CatalogChange::Acls {
            created,
            deleted: Vec::new(),
        })
        .await
    }

    async fn delete_acls(
        &mut self,
        filters: Vec<AclFilter>,
    ) -> Result<Vec<Vec<AclBinding>>, AdminError> {
        let matched: Vec<Vec<AclBinding>> = filters
            .iter()
            .map(|filter| {
                let acls = self.catalog.acls().iter();
                acls.filter(|acl| filter.matches(acl)).cloned().collect()
            })
            .collect();
        let mut deleted: Vec<AclBinding> = Vec::new();
        for acl in matched.iter().flatten() {
            if !deleted.contains(acl) {
                deleted.push(acl.clone());
            }
        }
        if !deleted.is_empty() {
            self.commit(CatalogChange::Acls {
                created: Vec::new(),
                deleted,
            })
            .await?;
        }
        Ok(matched)
    }

    /// Persists `change`, then applies it on every shard. The file is written first so a
    /// crash never leaves shards serving a topic that a restart would forget.
    async fn commit(&mut self, change: CatalogChange) -> Result<(), AdminError> {
        let mut next = self.catalog.clone();
        next.apply(&change);
        next.persist(&self.data_dir)
            .await
            .map_err(|e| AdminError::Storage(e.to_string()))?;
        self.catalog = next;
        let mut answers = Vec::with_capacity(self.shards.len());
        for shard in &self.shards {
            let (reply, answer) = oneshot::channel();
            shard
                .send(ShardMessage::Apply {
                    change: change.clone(),
                    reply,
                })
                .await
                .map_err(|_| AdminError::ShuttingDown)?;
            answers.push(answer);
        }
        for answer in answers {
            answer.await.map_err(|_| AdminError::ShuttingDown)??;
        }
        Ok(())
    }
}
