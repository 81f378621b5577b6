//! Messages between shards. Only control-plane changes cross cores; the produce and fetch
//! path never does.

use futures_channel::oneshot;

pub use super::admin_error::AdminError;
use super::catalog::{CatalogChange, TopicMeta};
use super::topic_config::TopicOverrides;
use crate::security::acl::{AclBinding, AclFilter};

pub struct NewTopic {
    pub name: String,
    pub partition_count: i32,
    pub overrides: TopicOverrides,
    pub placement: super::placement::Placement,
}

/// CreatePartitions of one topic: its new total, and a manual assignment of the new
/// partitions (a list of broker ids each), if the request had one.
pub struct NewPartitions {
    pub name: String,
    pub count: i32,
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// How AlterConfigs (replace all) and IncrementalAlterConfigs (edit some) change overrides.
pub enum ConfigEdit {
    Replace(TopicOverrides),
    Incremental(Vec<ConfigOp>),
}

pub enum ConfigOp {
    Set(String, String),
    Delete(String),
    /// Adds comma-separated items to a list config (IncrementalAlterConfigs APPEND).
    Append(String, String),
    /// Removes comma-separated items from a list config (IncrementalAlterConfigs SUBTRACT).
    Subtract(String, String),
}

/// One user's SCRAM credential for one mechanism, to set or (`None`) to remove.
pub struct ScramChange {
    pub user: String,
    pub mechanism: crate::security::sasl::SaslMechanism,
    pub credential: Option<crate::security::sasl::ScramCredential>,
}

/// Requests to the catalog owner (shard 0).
pub enum AdminRequest {
    /// A fresh producer id for an idempotent producer (epoch 0).
    AllocateProducerId {
        reply: oneshot::Sender<Result<i64, AdminError>>,
    },
    CreateTopics {
        topics: Vec<NewTopic>,
        validate_only: bool,
        reply: oneshot::Sender<Vec<Result<TopicMeta, AdminError>>>,
    },
    DeleteTopics {
        names: Vec<String>,
        reply: oneshot::Sender<Vec<Result<(), AdminError>>>,
    },
    CreatePartitions {
        topics: Vec<NewPartitions>,
        validate_only: bool,
        reply: oneshot::Sender<Vec<Result<(), AdminError>>>,
    },
    AlterTopicConfig {
        name: String,
        edit: ConfigEdit,
        validate_only: bool,
        reply: oneshot::Sender<Result<(), AdminError>>,
    },
    /// Dynamic configs of a broker id, or of the cluster default when `broker` is "".
    AlterBrokerConfig {
        broker: String,
        edit: ConfigEdit,
        validate_only: bool,
        reply: oneshot::Sender<Result<(), AdminError>>,
    },
    /// In a cluster: a share group's config overrides, already validated (empty removes
    /// them).
    AlterGroupConfig {
        group: String,
        overrides: crate::share::share_config::GroupOverrides,
        reply: oneshot::Sender<Result<(), AdminError>>,
    },
    /// AlterUserScramCredentials, validated but for whether a deleted credential exists.
    AlterScramCredentials {
        changes: Vec<ScramChange>,
        reply: oneshot::Sender<Vec<Result<(), AdminError>>>,
    },
    /// New ACLs, already validated; ones that exist already are left as they are.
    CreateAcls {
        acls: Vec<AclBinding>,
        reply: oneshot::Sender<Result<(), AdminError>>,
    },
    /// Deletes the ACLs each filter selects; answers them, filter by filter.
    DeleteAcls {
        filters: Vec<AclFilter>,
        reply: oneshot::Sender<Result<Vec<Vec<AclBinding>>, AdminError>>,
    },
}

/// Messages every shard's control task handles.
pub enum ShardMessage {
    Apply {
        change: CatalogChange,
        reply: oneshot::Sender<Result<(), AdminError>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    /// In a cluster: every node registered so far (their brokers are listed in Metadata).
    Nodes(Vec<super::catalog_machine::NodeInfo>),
}
