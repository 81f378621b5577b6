//! The protocol edge: typed errors of the layers below become Kafka error codes here.

use crate::log::LogError;
use crate::protocol::ResponseError;
use crate::shard::control::AdminError;

pub fn log_error(error: &LogError) -> ResponseError {
    match error {
        LogError::CorruptMessage { .. } => ResponseError::CorruptMessage,
        LogError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::InvalidRecord { .. } | LogError::KeylessRecords { .. } => {
            ResponseError::InvalidRecord
        }
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        LogError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        // A partition closing under a topic deletion or shutdown: clients refresh metadata.
        LogError::Closed => ResponseError::NotLeaderOrFollower,
        // Kafka clients treat KAFKA_STORAGE_ERROR as retriable: the right answer for a
        // full disk, which frees up once retention runs or an operator acts.
        LogError::StorageFull | LogError::CorruptLog { .. } | LogError::Io { .. } => {
            ResponseError::KafkaStorageError
        }
    }
}

pub fn admin_error(error: &AdminError) -> ResponseError {
    match error {
        AdminError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        AdminError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        AdminError::InvalidTopicName(_) => ResponseError::InvalidTopicException,
        AdminError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        AdminError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        AdminError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
        AdminError::InvalidRequest(_) => ResponseError::InvalidRequest,
        AdminError::InvalidConfig(_) => ResponseError::InvalidConfig,
        AdminError::Storage(_) => ResponseError::KafkaStorageError,
        AdminError::NoScramCredential => ResponseError::ResourceNotFound,
        AdminError::ShuttingDown => ResponseError::UnknownServerError,
        AdminError::NotAuthorized => ResponseError::TopicAuthorizationFailed,
        AdminError::NotController(_) => ResponseError::NotController,
    }
}
