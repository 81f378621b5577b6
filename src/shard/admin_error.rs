//! Why a catalog change (topic creation, deletion, partitions, configs) was refused.

/// Why a catalog change was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    #[error("invalid topic name: {0}")]
    InvalidTopicName(String),
    #[error("invalid partition count: {0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid config {0}")]
    InvalidConfig(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("Attempt to delete a user credential that does not exist")]
    NoScramCredential,
    #[error("the broker is shutting down")]
    ShuttingDown,
    #[error("not authorized")]
    NotAuthorized,
    /// In a cluster: no metadata leader is known, or the change raced another; retriable.
    #[error("no metadata controller: {0}")]
    NotController(String),
}
