//! The protocol edge of the group coordinator: `GroupError` → Kafka error codes.

use crate::group::GroupError;
use crate::protocol::{code, ResponseError};

pub fn group_error(error: &GroupError) -> ResponseError {
    match error {
        GroupError::NotCoordinator(_) => ResponseError::NotCoordinator,
        GroupError::LoadInProgress => ResponseError::CoordinatorLoadInProgress,
        GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
        GroupError::UnknownMemberId(_) => ResponseError::UnknownMemberId,
        GroupError::MemberIdRequired(_) => ResponseError::MemberIdRequired,
        GroupError::IllegalGeneration { .. } => ResponseError::IllegalGeneration,
        GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
        GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
        GroupError::InvalidSessionTimeout { .. } => ResponseError::InvalidSessionTimeout,
        GroupError::FencedInstanceId(_) => ResponseError::FencedInstanceId,
        GroupError::GroupIdNotFound(_) => ResponseError::GroupIdNotFound,
        GroupError::NonEmptyGroup(_) => ResponseError::NonEmptyGroup,
        GroupError::SubscribedToTopic(_) => ResponseError::GroupSubscribedToTopic,
        GroupError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        GroupError::OffsetMetadataTooLarge { .. } => ResponseError::OffsetMetadataTooLarge,
        GroupError::StaleMemberEpoch { .. } => ResponseError::StaleMemberEpoch,
        GroupError::FencedMemberEpoch { .. } => ResponseError::FencedMemberEpoch,
        GroupError::UnsupportedAssignor(_) => ResponseError::UnsupportedAssignor,
        GroupError::UnreleasedInstanceId(_) => ResponseError::UnreleasedInstanceId,
        GroupError::GroupIdUsedByOtherProtocol(_) => ResponseError::GroupIdNotFound,
        GroupError::InvalidRequest(_) => ResponseError::InvalidRequest,
        GroupError::UnsupportedVersion(_) => ResponseError::UnsupportedVersion,
        GroupError::InvalidRegularExpression(_) => ResponseError::InvalidRegularExpression,
        // Retriable: the client finds the coordinator again and retries.
        GroupError::Storage(_) | GroupError::ShuttingDown => ResponseError::CoordinatorNotAvailable,
    }
}

pub fn group_error_code(error: &GroupError) -> i16 {
    code(group_error(error))
}

/// `Some(error)` → its code, `None` → 0.
pub fn error_code(error: Option<&GroupError>) -> i16 {
    error.map_or(0, group_error_code)
}
