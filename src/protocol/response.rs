//! Response encoding: size prefix, response header, body, in one buffer.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use super::ProtocolError;

/// Encodes `body` as the response to request `correlation_id` of `api_key` v`version`.
pub fn encode<T: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<Bytes, ProtocolError> {
    // ApiVersions answers with header v0 whatever the version, so that a client that
    // sent a version we do not know can still parse the error and our ranges (KIP-511).
    let header_version = if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encode_error = |reason: String| ProtocolError::Encode {
        api: "response",
        version,
        reason,
    };
    let header_size = header
        .compute_size(header_version)
        .map_err(|e| encode_error(e.to_string()))?;
    let body_size = body
        .compute_size(version)
        .map_err(|e| encode_error(e.to_string()))?;
    let total = header_size + body_size;
    let size_prefix = i32::try_from(total)
        .map_err(|_| encode_error(format!("response of {total} bytes exceeds the frame limit")))?;
    let mut buf = BytesMut::with_capacity(4 + total);
    buf.put_i32(size_prefix);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| encode_error(e.to_string()))?;
    body.encode(&mut buf, version)
        .map_err(|e| encode_error(e.to_string()))?;
    Ok(buf.freeze())
}
