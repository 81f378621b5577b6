//! The client layer's one error type.
//!
//! Broker error codes stay as [`ResponseError`] values so callers can match on them; `Display`
//! renders them the way Kafka's own tools do (`UNKNOWN_TOPIC_OR_PARTITION`).
use kafka_protocol::error::ResponseError;

/// A boxed codec error from `kafka-protocol` (which reports with `anyhow`).
pub type CodecError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong talking to a broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    #[error("i/o error talking to {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    #[error("timed out waiting for a response from {addr}")]
    Timeout { addr: String },

    #[error("no bootstrap broker reachable ({bootstrap}): {source}")]
    NoBrokerReachable {
        bootstrap: String,
        #[source]
        source: Box<ClientError>,
    },

    #[error("response from {addr} is {size_bytes} bytes, more than the {size_bytes_max} allowed")]
    ResponseTooLarge {
        addr: String,
        size_bytes: usize,
        size_bytes_max: usize,
    },

    #[error("cannot encode {api} v{version} request: {source}")]
    Encode {
        api: &'static str,
        version: i16,
        #[source]
        source: CodecError,
    },

    #[error("cannot decode {api} v{version} response from {addr}: {source}")]
    Decode {
        api: &'static str,
        version: i16,
        addr: String,
        #[source]
        source: CodecError,
    },

    #[error("response correlation id {got} from {addr} does not match request id {expected}")]
    CorrelationMismatch {
        addr: String,
        expected: i32,
        got: i32,
    },

    #[error("broker {addr} does not support {api} (client supports v{client_min}..v{client_max}{})",
        broker_range.map(|(min, max)| format!(", broker v{min}..v{max}")).unwrap_or_default())]
    UnsupportedApi {
        addr: String,
        api: &'static str,
        client_min: i16,
        client_max: i16,
        broker_range: Option<(i16, i16)>,
    },

    #[error("topic '{topic}' does not exist (UNKNOWN_TOPIC_OR_PARTITION)")]
    UnknownTopic { topic: String },

    #[error(
        "partition {partition} of topic '{topic}' does not exist (topic has {partition_count})"
    )]
    UnknownPartition {
        topic: String,
        partition: i32,
        partition_count: usize,
    },

    #[error("partition {topic}-{partition} has no leader")]
    NoLeader { topic: String, partition: i32 },

    #[error("broker id {node_id} is not in the cluster metadata")]
    UnknownBroker { node_id: i32 },

    /// The broker answered with an error code.
    #[error("{context}: {}{}", error_name(*error), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        context: String,
        error: ResponseError,
        message: Option<String>,
    },

    #[error("SASL authentication to {addr} failed: {reason}")]
    Sasl { addr: String, reason: String },

    #[error("response from {addr} is missing {what}")]
    MissingInResponse { addr: String, what: String },

    #[error("cannot build record batch: {source}")]
    RecordEncode {
        #[source]
        source: CodecError,
    },

    #[error("corrupt record batch at offset {offset} of {topic}-{partition}: {source}")]
    RecordDecode {
        topic: String,
        partition: i32,
        offset: i64,
        #[source]
        source: CodecError,
    },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl ClientError {
    /// The broker error code this error carries, if any.
    pub fn response_error(&self) -> Option<ResponseError> {
        match self {
            ClientError::Broker { error, .. } => Some(*error),
            ClientError::UnknownTopic { .. } => Some(ResponseError::UnknownTopicOrPartition),
            _ => None,
        }
    }

    /// Whether refreshing metadata and retrying may help.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Broker { error, .. } => error.is_retriable(),
            ClientError::NoLeader { .. }
            | ClientError::Io { .. }
            | ClientError::Timeout { .. }
            | ClientError::Connect { .. }
            | ClientError::NoBrokerReachable { .. } => true,
            _ => false,
        }
    }
}

/// Turns a non-zero Kafka error code into [`ClientError::Broker`].
pub fn check_error_code(
    code: i16,
    message: Option<&str>,
    context: impl FnOnce() -> String,
) -> Result<(), ClientError> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(error) => Err(ClientError::Broker {
            context: context(),
            error,
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        }),
    }
}

/// Kafka's spelling of an error code name: `UnknownTopicOrPartition` → `UNKNOWN_TOPIC_OR_PARTITION`.
pub fn error_name(error: ResponseError) -> String {
    if let ResponseError::Unknown(code) = error {
        return format!("UNKNOWN_ERROR_CODE_{code}");
    }
    let camel = format!("{error:?}");
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_match_kafka_spelling() {
        assert_eq!(
            error_name(ResponseError::UnknownTopicOrPartition),
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
        assert_eq!(
            error_name(ResponseError::TopicAlreadyExists),
            "TOPIC_ALREADY_EXISTS"
        );
        assert_eq!(
            error_name(ResponseError::Unknown(999)),
            "UNKNOWN_ERROR_CODE_999"
        );
    }

    #[test]
    fn broker_error_display_includes_message() {
        let err = check_error_code(36, Some("already there"), || "create topic 'x'".into());
        let text = err.map_err(|e| e.to_string()).err();
        assert_eq!(
            text.as_deref(),
            Some("create topic 'x': TOPIC_ALREADY_EXISTS: already there")
        );
    }
}
