//! Why the transaction coordinator refused a request. Mapped to Kafka error codes only at
//! the protocol edge (`server/handlers/txn_errors.rs`).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxnError {
    #[error("this shard does not coordinate transactional id '{0}'")]
    NotCoordinator(String),
    #[error("the coordinator is loading its state")]
    LoadInProgress,
    #[error("invalid transactional id")]
    InvalidTransactionalId,
    #[error("transaction timeout {got} ms is outside 1..={max} ms")]
    InvalidTransactionTimeout { got: i32, max: i32 },
    #[error("producer id {got} is not the one of transactional id '{transactional_id}'")]
    InvalidProducerIdMapping { transactional_id: String, got: i64 },
    /// A newer producer with the same transactional id exists (or the coordinator bumped
    /// the epoch to abort a timed-out transaction).
    #[error("producer epoch {got} is fenced by epoch {current}")]
    ProducerFenced { got: i16, current: i16 },
    #[error("a transaction of this producer is being completed")]
    ConcurrentTransactions,
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(&'static str),
    /// KIP-890: a partition written to outside the transaction; the client aborts.
    #[error("the partition is not part of the transaction")]
    TransactionAbortable,
    #[error("transaction state storage: {0}")]
    Storage(String),
    #[error("writing transaction markers: {0}")]
    Markers(String),
    #[error("producer ids: {0}")]
    ProducerIds(String),
    #[error("the coordinator is shutting down")]
    ShuttingDown,
}
