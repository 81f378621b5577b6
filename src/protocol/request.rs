//! Request headers. The fixed prefix (key, version, correlation id) is read by hand first,
//! so that a request the codec cannot decode can still be answered or refused by id.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

use super::ProtocolError;

/// The part of every request header that precedes anything version-dependent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

impl HeaderPrefix {
    pub fn parse(frame: &[u8]) -> Result<HeaderPrefix, ProtocolError> {
        let mut buf = frame;
        if buf.len() < 8 {
            return Err(ProtocolError::TruncatedHeader { len: frame.len() });
        }
        Ok(HeaderPrefix {
            api_key: buf.get_i16(),
            api_version: buf.get_i16(),
            correlation_id: buf.get_i32(),
        })
    }
}

/// Decodes the full header (client id, tagged fields), leaving `frame` at the body.
pub fn decode_header(
    api_key: ApiKey,
    api_version: i16,
    frame: &mut Bytes,
) -> Result<RequestHeader, ProtocolError> {
    let header_version = api_key.request_header_version(api_version);
    RequestHeader::decode(frame, header_version).map_err(|e| ProtocolError::Decode {
        api: "RequestHeader",
        version: header_version,
        reason: e.to_string(),
    })
}

/// Decodes a request body of type `T` at `version`.
pub fn decode_body<T: Decodable>(
    api: &'static str,
    version: i16,
    frame: &mut Bytes,
) -> Result<T, ProtocolError> {
    T::decode(frame, version).map_err(|e| ProtocolError::Decode {
        api,
        version,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_needs_eight_bytes() {
        assert!(HeaderPrefix::parse(&[0, 1, 0, 2, 0, 0, 0]).is_err());
        let prefix = HeaderPrefix::parse(&[0, 1, 0, 2, 0, 0, 0, 7]).expect("valid prefix");
        assert_eq!(
            prefix,
            HeaderPrefix {
                api_key: 1,
                api_version: 2,
                correlation_id: 7
            }
        );
    }
}
