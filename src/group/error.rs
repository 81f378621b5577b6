//! Why the coordinator refused a request. Mapped to Kafka error codes only at the protocol
//! edge (`server/handlers/group_errors.rs`).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    #[error("this shard is not the coordinator of group '{0}'")]
    NotCoordinator(String),
    #[error("the coordinator is loading its offsets")]
    LoadInProgress,
    #[error("invalid group id")]
    InvalidGroupId,
    #[error("unknown member id '{0}'")]
    UnknownMemberId(String),
    /// KIP-394: the client must join again with this member id.
    #[error("member id required")]
    MemberIdRequired(String),
    #[error("generation {got} is not the group's generation {expected}")]
    IllegalGeneration { expected: i32, got: i32 },
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    #[error("the member's protocol type or protocols do not match the group's")]
    InconsistentGroupProtocol,
    #[error("session timeout {got} ms is outside {min}..={max} ms")]
    InvalidSessionTimeout { got: i32, min: i32, max: i32 },
    #[error("group instance id '{0}' is used by another member")]
    FencedInstanceId(String),
    #[error("group '{0}' does not exist")]
    GroupIdNotFound(String),
    #[error("group '{0}' has active members")]
    NonEmptyGroup(String),
    #[error("group '{0}' is subscribed to the topic")]
    SubscribedToTopic(String),
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("offset metadata of {got} bytes exceeds {max}")]
    OffsetMetadataTooLarge { got: usize, max: usize },
    #[error("member epoch {got} is stale (current {expected})")]
    StaleMemberEpoch { expected: i32, got: i32 },
    #[error("member epoch {got} is fenced (current {expected})")]
    FencedMemberEpoch { expected: i32, got: i32 },
    #[error("unsupported assignor '{0}'")]
    UnsupportedAssignor(String),
    #[error("instance id '{0}' is still in use")]
    UnreleasedInstanceId(String),
    #[error("group '{0}' uses another protocol")]
    GroupIdUsedByOtherProtocol(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidRegularExpression(String),
    #[error("unsupported version: {0}")]
    UnsupportedVersion(&'static str),
    #[error("offsets storage: {0}")]
    Storage(String),
    #[error("the coordinator is shutting down")]
    ShuttingDown,
}
