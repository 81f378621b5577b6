//! The protocol edge of the transaction coordinator: `TxnError` → Kafka error codes.

use crate::protocol::{code, ResponseError};
use crate::txn::TxnError;

/// The code for `error` in an API at `version`; `fenced_from` is the version from which the
/// API knows PRODUCER_FENCED. Older versions get INVALID_PRODUCER_EPOCH, as Kafka answers.
pub fn txn_error_code(error: &TxnError, version: i16, fenced_from: i16) -> i16 {
    code(match error {
        TxnError::NotCoordinator(_) => ResponseError::NotCoordinator,
        TxnError::LoadInProgress => ResponseError::CoordinatorLoadInProgress,
        TxnError::InvalidTransactionalId => ResponseError::InvalidRequest,
        TxnError::InvalidTransactionTimeout { .. } => ResponseError::InvalidTransactionTimeout,
        TxnError::InvalidProducerIdMapping { .. } => ResponseError::InvalidProducerIdMapping,
        TxnError::ProducerFenced { .. } if version < fenced_from => {
            ResponseError::InvalidProducerEpoch
        }
        TxnError::ProducerFenced { .. } => ResponseError::ProducerFenced,
        TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
        TxnError::InvalidTxnState(_) => ResponseError::InvalidTxnState,
        TxnError::TransactionAbortable => ResponseError::TransactionAbortable,
        // Retriable: the client finds the coordinator again and retries; a transaction left
        // prepared is completed by the coordinator's timers task.
        TxnError::Storage(_)
        | TxnError::Markers(_)
        | TxnError::ProducerIds(_)
        | TxnError::ShuttingDown => ResponseError::CoordinatorNotAvailable,
    })
}
