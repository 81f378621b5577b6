//! The protocol edge of share groups: `ShareError` → Kafka error codes.

use crate::protocol::{code, ResponseError};
use crate::share::ShareError;

pub fn share_error(error: &ShareError) -> ResponseError {
    match error {
        ShareError::NotCoordinator(_) => ResponseError::NotCoordinator,
        ShareError::InvalidGroupId => ResponseError::InvalidGroupId,
        ShareError::UnknownMemberId(_) => ResponseError::UnknownMemberId,
        ShareError::FencedMemberEpoch { .. } => ResponseError::FencedMemberEpoch,
        ShareError::GroupIdNotFound(_) => ResponseError::GroupIdNotFound,
        ShareError::NonEmptyGroup(_) => ResponseError::NonEmptyGroup,
        ShareError::UnknownTopicOrPartition(_) => ResponseError::UnknownTopicOrPartition,
        ShareError::InvalidRecordState(_) => ResponseError::InvalidRecordState,
        ShareError::InvalidRequest(_) => ResponseError::InvalidRequest,
        ShareError::InvalidConfig(_) => ResponseError::InvalidConfig,
        ShareError::ShareSessionNotFound => ResponseError::ShareSessionNotFound,
        ShareError::InvalidShareSessionEpoch { .. } => ResponseError::InvalidShareSessionEpoch,
        ShareError::ShareSessionLimitReached => ResponseError::ShareSessionLimitReached,
        ShareError::NotLeader(_) => ResponseError::NotLeaderOrFollower,
        ShareError::Storage(_) => ResponseError::KafkaStorageError,
        ShareError::ShuttingDown => ResponseError::CoordinatorNotAvailable,
    }
}

pub fn share_error_code(error: &ShareError) -> i16 {
    code(share_error(error))
}
