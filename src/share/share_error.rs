//! Why a share-group request was refused. Mapped to Kafka error codes only at the protocol
//! edge (`server/handlers/share_errors.rs`).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ShareError {
    #[error("this shard is not the coordinator of share group '{0}'")]
    NotCoordinator(String),
    #[error("invalid group id")]
    InvalidGroupId,
    #[error("unknown member id '{0}'")]
    UnknownMemberId(String),
    #[error("member epoch {got} is fenced (current {expected})")]
    FencedMemberEpoch { expected: i32, got: i32 },
    #[error("share group '{0}' does not exist")]
    GroupIdNotFound(String),
    #[error("share group '{0}' has active members")]
    NonEmptyGroup(String),
    #[error("{0}")]
    UnknownTopicOrPartition(String),
    #[error("{0}")]
    InvalidRecordState(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("share session not found")]
    ShareSessionNotFound,
    #[error("share session epoch {got} is invalid (expected {expected:?})")]
    InvalidShareSessionEpoch { expected: Option<i32>, got: i32 },
    #[error("this broker holds as many share sessions as it may")]
    ShareSessionLimitReached,
    /// A replicated partition's share state is served by its leader, elsewhere.
    #[error("{0}")]
    NotLeader(String),
    #[error("share state storage: {0}")]
    Storage(String),
    #[error("the broker is shutting down")]
    ShuttingDown,
}
