//! The topic catalog: names, ids, partition counts and config overrides.
//!
//! Shard 0 is the single writer: it persists the catalog (temp file, fsync, rename, fsync
//! the directory) and then hands each change to every shard, which keeps its own replica.
//! Nothing here is shared between threads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::io::dma_file;

use super::placement::Placement;
use super::topic_config::TopicOverrides;
use crate::security::acl::AclBinding;
use crate::security::sasl::scram_credential::{ScramEntry, UserEntry};
use crate::security::sasl::{SaslMechanism, ScramCredential};
use crate::share::share_config::GroupOverrides;

const CATALOG_FILE: &str = "catalog.toml";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    #[error("catalog {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("catalog {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    pub partition_count: i32,
    pub overrides: TopicOverrides,
    pub placement: Placement,
}

impl TopicMeta {
    /// The shard that owns `partition` (see [`Placement::owner`]).
    pub fn owner(&self, partition: i32, shard_count: usize) -> usize {
        self.placement.owner(&self.name, partition, shard_count)
    }
}

/// One change to the catalog, as shard 0 broadcasts it.
#[derive(Debug, Clone)]
pub enum CatalogChange {
    /// A new topic, or new partitions / configs of an existing one (same id).
    Upsert(TopicMeta),
    Delete {
        name: String,
    },
    /// The dynamic config overrides of a broker id, or of every broker when `broker` is "".
    BrokerConfig {
        broker: String,
        overrides: TopicOverrides,
    },
    /// A user's SCRAM credential for one mechanism: set, or removed when `None`.
    ScramCredential {
        user: String,
        mechanism: SaslMechanism,
        credential: Option<ScramCredential>,
    },
    /// ACLs added (already validated, not yet present) and removed (present).
    Acls {
        created: Vec<AclBinding>,
        deleted: Vec<AclBinding>,
    },
    /// In a cluster, a share group's config overrides (KRaft keeps group configs in its
    /// metadata too); empty removes them. A single node keeps them in `share_config`'s files.
    GroupConfig {
        group: String,
        overrides: GroupOverrides,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    topics: IndexMap<String, TopicMeta>,
    /// Dynamic broker configs by resource name: a broker id, or "" for the cluster default.
    brokers: BTreeMap<String, TopicOverrides>,
    /// SCRAM credentials by user, then mechanism (salted keys only, never a password).
    users: BTreeMap<String, BTreeMap<SaslMechanism, ScramCredential>>,
    /// Every ACL, each once.
    acls: Vec<AclBinding>,
    /// Share-group config overrides by group (in a cluster).
    groups: BTreeMap<String, GroupOverrides>,
    /// In a cluster, the metadata Raft log index of the last committed record this catalog
    /// reflects (0 on a single node): a record replayed after a restart at or below it is
    /// not applied to the shards again (see `catalog_machine`).
    applied_index: u64,
}

impl Catalog {
    pub fn get(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.get(name)
    }

    pub fn by_id(&self, id: Uuid) -> Option<&TopicMeta> {
        self.topics.values().find(|t| t.id == id)
    }

    pub fn topics(&self) -> impl Iterator<Item = &TopicMeta> {
        self.topics.values()
    }

    pub fn broker_overrides(&self, broker: &str) -> TopicOverrides {
        self.brokers.get(broker).cloned().unwrap_or_default()
    }

    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: SaslMechanism,
    ) -> Option<&ScramCredential> {
        self.users.get(user)?.get(&mechanism)
    }

    /// Every user with a SCRAM credential, and the mechanisms and iterations of each.
    pub fn scram_users(&self) -> impl Iterator<Item = (&str, Vec<(SaslMechanism, i32)>)> {
        self.users.iter().map(|(user, credentials)| {
            let mechanisms = credentials.iter().map(|(m, c)| (*m, c.iterations));
            (user.as_str(), mechanisms.collect())
        })
    }

    pub fn acls(&self) -> &[AclBinding] {
        &self.acls
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    pub fn set_applied_index(&mut self, index: u64) {
        self.applied_index = index;
    }

    /// Every broker config resource with its overrides.
    pub fn all_broker_overrides(&self) -> &BTreeMap<String, TopicOverrides> {
        &self.brokers
    }

    pub fn group_overrides(&self) -> &BTreeMap<String, GroupOverrides> {
        &self.groups
    }

    pub fn apply(&mut self, change: &CatalogChange) {
        match change {
            CatalogChange::Upsert(meta) => {
                self.topics.insert(meta.name.clone(), meta.clone());
            }
            CatalogChange::Delete { name } => {
                self.topics.shift_remove(name);
            }
            CatalogChange::BrokerConfig { broker, overrides } => {
                if overrides.is_empty() {
                    self.brokers.remove(broker);
                } else {
                    self.brokers.insert(broker.clone(), overrides.clone());
                }
            }
            CatalogChange::ScramCredential {
                user,
                mechanism,
                credential,
            } => match credential {
                Some(credential) => {
                    let credentials = self.users.entry(user.clone()).or_default();
                    credentials.insert(*mechanism, credential.clone());
                }
                None => {
                    if let Some(credentials) = self.users.get_mut(user) {
                        credentials.remove(mechanism);
                        if credentials.is_empty() {
                            self.users.remove(user);
                        }
                    }
                }
            },
            CatalogChange::Acls { created, deleted } => {
                self.acls.retain(|acl| !deleted.contains(acl));
                for acl in created {
                    if !self.acls.contains(acl) {
                        self.acls.push(acl.clone());
                    }
                }
            }
            CatalogChange::GroupConfig { group, overrides } => {
                if overrides.is_empty() {
                    self.groups.remove(group);
                } else {
                    self.groups.insert(group.clone(), overrides.clone());
                }
            }
        }
    }

    pub fn load(data_dir: &Path) -> Result<Catalog, CatalogError> {
        let path = data_dir.join(CATALOG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Catalog::default()),
            Err(source) => return Err(CatalogError::Io { path, source }),
        };
        let corrupt = |reason: String| CatalogError::Corrupt {
            path: path.clone(),
            reason,
        };
        let file: CatalogFile = toml::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        let mut catalog = Catalog {
            applied_index: file.raft_index.unwrap_or(0),
            ..Catalog::default()
        };
        for entry in file.broker {
            catalog.brokers.insert(entry.id, entry.config);
        }
        for entry in file.user {
            let mut credentials = BTreeMap::new();
            for scram in &entry.scram {
                let (mechanism, credential) = scram
                    .decode()
                    .map_err(|e| corrupt(format!("user {}: {e}", entry.name)))?;
                credentials.insert(mechanism, credential);
            }
            catalog.users.insert(entry.name, credentials);
        }
        catalog.acls = file.acl;
        for entry in file.group {
            catalog.groups.insert(entry.id, entry.config);
        }
        for entry in file.topic {
            let meta = entry.into_meta().map_err(corrupt)?;
            catalog.topics.insert(meta.name.clone(), meta);
        }
        Ok(catalog)
    }

    /// Writes the catalog so that a crash leaves either the old or the new file whole.
    pub async fn persist(&self, data_dir: &Path) -> Result<(), CatalogError> {
        let file = CatalogFile {
            raft_index: (self.applied_index != 0).then_some(self.applied_index),
            topic: self.topics.values().map(TopicEntry::of).collect(),
            broker: self
                .brokers
                .iter()
                .map(|(id, config)| BrokerEntry {
                    id: id.clone(),
                    config: config.clone(),
                })
                .collect(),
            user: self
                .users
                .iter()
                .map(|(name, credentials)| UserEntry {
                    name: name.clone(),
                    scram: credentials
                        .iter()
                        .map(|(m, c)| ScramEntry::new(*m, c))
                        .collect(),
                })
                .collect(),
            acl: self.acls.clone(),
            group: self
                .groups
                .iter()
                .map(|(id, config)| GroupEntry {
                    id: id.clone(),
                    config: config.clone(),
                })
                .collect(),
        };
        let path = data_dir.join(CATALOG_FILE);
        let io_err = |source| CatalogError::Io {
            path: path.clone(),
            source,
        };
        let text = toml::to_string(&file).map_err(|e| CatalogError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        dma_file::write_file_atomic(&path, text.as_bytes())
            .await
            .map_err(io_err)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CatalogFile {
    /// See `Catalog::applied_index`; absent on a single node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    raft_index: Option<u64>,
    #[serde(default)]
    topic: Vec<TopicEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    broker: Vec<BrokerEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    user: Vec<UserEntry>,
    acl: Vec<AclBinding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    group: Vec<GroupEntry>,
}

/// One share group's config overrides.
#[derive(Debug, Serialize, Deserialize)]
struct GroupEntry {
    id: String,
    config: GroupOverrides,
}

/// One broker resource's dynamic configs; `id` is "" for the cluster default.
#[derive(Debug, Serialize, Deserialize)]
struct BrokerEntry {
    id: String,
    config: TopicOverrides,
}

/// A topic as the catalog file and the cluster's metadata records write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicEntry {
    name: String,
    id: String,
    partitions: i32,
    /// The replication factor asked for, when not 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replication_factor: Option<i16>,
    /// Replicas of manually placed partitions (see `Placement`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    placement: Vec<Vec<i32>>,
    /// In a cluster, the node of each partition (see `Placement::nodes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    nodes: Vec<u64>,
    /// In a cluster, the replica nodes of each partition of a replicated topic (see
    /// `Placement::replica_nodes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    replica_nodes: Vec<Vec<u64>>,
    #[serde(default)]
    config: TopicOverrides,
}

impl TopicEntry {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn of(meta: &TopicMeta) -> TopicEntry {
        TopicEntry {
            name: meta.name.clone(),
            id: meta.id.to_string(),
            partitions: meta.partition_count,
            replication_factor: (meta.placement.replication_factor != 1)
                .then_some(meta.placement.replication_factor),
            placement: meta.placement.replicas.clone(),
            nodes: meta.placement.nodes.clone(),
            replica_nodes: meta.placement.replica_nodes.clone(),
            config: meta.overrides.clone(),
        }
    }

    /// The topic, or why the entry cannot be one.
    pub fn into_meta(self) -> Result<TopicMeta, String> {
        let id = Uuid::parse_str(&self.id).map_err(|e| format!("topic {}: {e}", self.name))?;
        if self.partitions < 1 {
            return Err(format!("topic {} has no partitions", self.name));
        }
        Ok(TopicMeta {
            name: self.name,
            id,
            partition_count: self.partitions,
            overrides: self.config,
            placement: Placement {
                replication_factor: self.replication_factor.unwrap_or(1),
                replicas: self.placement,
                nodes: self.nodes,
                replica_nodes: self.replica_nodes,
            },
        })
    }
}

/// Kafka's legal topic names: 1..=249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 249 {
        return Err(format!(
            "topic name length {} is not in 1..=249",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err("topic name cannot be '.' or '..'".to_owned());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("topic name contains illegal character {bad:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_round_trips_through_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut catalog = Catalog::default();
        catalog.apply(&CatalogChange::Upsert(TopicMeta {
            name: "logs".into(),
            id: Uuid::new_v4(),
            partition_count: 4,
            overrides: TopicOverrides::from([("retention.ms".into(), "1000".into())]),
            placement: Placement {
                replication_factor: 2,
                replicas: vec![vec![1, 0], vec![], vec![0, 1]],
                nodes: vec![2, 3, 1, 2],
                replica_nodes: vec![vec![2, 3], vec![3, 1], vec![1, 2], vec![2, 3]],
            },
        }));
        crate::io::block_on_local(catalog.persist(dir.path())).expect("persist");
        let loaded = Catalog::load(dir.path()).expect("load");
        assert_eq!(loaded.get("logs"), catalog.get("logs"));
    }

    /// The catalog is written through io's atomic-write helper (on the runtime, not with
    /// blocking calls on the shard's thread): a write failure injected there reaches it,
    /// and the file on disk stays the previous one.
    #[test]
    fn catalog_writes_go_through_the_io_seam() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut catalog = Catalog::default();
        crate::io::block_on_local(catalog.persist(dir.path())).expect("first persist");
        catalog.apply(&CatalogChange::Upsert(TopicMeta {
            name: "logs".into(),
            id: Uuid::new_v4(),
            partition_count: 1,
            overrides: TopicOverrides::new(),
            placement: Placement::default(),
        }));
        let failed = crate::io::block_on_local(async {
            dma_file::faults::enable();
            dma_file::faults::fail_writes_after(0, libc::EIO);
            let result = catalog.persist(dir.path()).await;
            dma_file::faults::disable();
            result
        });
        assert!(failed.is_err(), "an injected EIO must fail the persist");
        let loaded = Catalog::load(dir.path()).expect("load");
        assert!(
            loaded.get("logs").is_none(),
            "the old catalog stays in place"
        );
    }

    #[test]
    fn acls_round_trip_through_the_file_once_each() {
        use crate::security::acl::{AclOperation, AclPermission, PatternType, ResourceType};
        let dir = tempfile::tempdir().expect("tempdir");
        let acl = AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "app-".into(),
            pattern_type: PatternType::Prefixed,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Write,
            permission: AclPermission::Allow,
        };
        let mut catalog = Catalog::default();
        let twice = vec![acl.clone(), acl.clone()];
        catalog.apply(&CatalogChange::Acls {
            created: twice,
            deleted: Vec::new(),
        });
        crate::io::block_on_local(catalog.persist(dir.path())).expect("persist");
        let loaded = Catalog::load(dir.path()).expect("load");
        assert_eq!(loaded.acls(), std::slice::from_ref(&acl));
        catalog.apply(&CatalogChange::Acls {
            created: Vec::new(),
            deleted: vec![acl],
        });
        assert!(catalog.acls().is_empty());
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("logs.app-1_x").is_ok());
        for bad in ["", ".", "..", "a b", "a/b", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
    }
}
