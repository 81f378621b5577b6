//! The Kafka wire protocol as sluice speaks it: framing, the table of API versions it
//! serves, request header parsing and response encoding. Codecs come from the
//! `kafka-protocol` crate; this layer knows nothing about storage or shards.

pub mod api_versions;
pub mod authorized_operations;
pub mod batch_layout;
pub mod fetch_response;
pub mod frame;
pub mod frame_pool;
pub mod record_batch;
pub mod request;
pub mod response;
pub mod share_extensions;

pub use kafka_protocol::error::ResponseError;

/// A Kafka error code for the wire.
pub fn code(error: ResponseError) -> i16 {
    error.code()
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    #[error("frame of {size} bytes is outside 1..={max}")]
    FrameSize { size: i64, max: usize },
    #[error("request header is truncated ({len} bytes)")]
    TruncatedHeader { len: usize },
    #[error("unknown API key {api_key}")]
    UnknownApiKey { api_key: i16 },
    #[error("cannot decode {api} v{version}: {reason}")]
    Decode {
        api: &'static str,
        version: i16,
        reason: String,
    },
    #[error("cannot encode {api} v{version}: {reason}")]
    Encode {
        api: &'static str,
        version: i16,
        reason: String,
    },
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The connection's security exchange (SASL) ends it; the message says why.
    #[error("{0}")]
    SecurityRefused(String),
}
