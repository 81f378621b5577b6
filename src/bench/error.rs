//! The load generator's error type.

use crate::client::ClientError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Usage(String),
    #[error("TLS client configuration: {0}")]
    Tls(#[from] crate::security::tls::TlsError),
    #[error("connecting to broker {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("socket to {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("response frame of {size} bytes from {addr} is outside 1..={max}")]
    FrameSize { addr: String, size: i64, max: usize },
    #[error("cannot encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
    #[error("cannot decode {what} from {addr}: {reason}")]
    Decode {
        addr: String,
        what: &'static str,
        reason: String,
    },
    #[error("response from {addr} has correlation id {got}, expected {expected}")]
    Correlation {
        addr: String,
        expected: i32,
        got: i32,
    },
    #[error("broker {addr} answered {what} with error code {code}")]
    Broker {
        addr: String,
        what: &'static str,
        code: i16,
    },
    #[error("topic {topic} partition {partition} has no leader")]
    NoLeader { topic: String, partition: i32 },
    #[error("client thread failed: {0}")]
    Runtime(#[from] crate::io::runtime::RuntimeError),
    #[error("cannot write {path}: {source}")]
    Output {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
