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

/// Decoding hostile bodies of every served request type must fail cleanly: no panic, and
/// no allocation sized by a count read off the wire (the vendored codec's patch).
#[cfg(test)]
mod hostile_input {
    use bytes::Bytes;
    use kafka_protocol::messages::*;
    use proptest::prelude::*;

    use super::decode_body;
    use crate::protocol::api_versions::SUPPORTED;

    fn decode_any(api_key: ApiKey, version: i16, body: Bytes) {
        let mut body = body;
        let name = "hostile";
        // The result is irrelevant: only a panic or an abort would fail the test.
        let _ = match api_key {
            ApiKey::Produce => decode_body::<ProduceRequest>(name, version, &mut body).map(drop),
            ApiKey::Fetch => decode_body::<FetchRequest>(name, version, &mut body).map(drop),
            ApiKey::ListOffsets => {
                decode_body::<ListOffsetsRequest>(name, version, &mut body).map(drop)
            }
            ApiKey::Metadata => decode_body::<MetadataRequest>(name, version, &mut body).map(drop),
            ApiKey::ApiVersions => {
                decode_body::<ApiVersionsRequest>(name, version, &mut body).map(drop)
            }
            ApiKey::CreateTopics => {
                decode_body::<CreateTopicsRequest>(name, version, &mut body).map(drop)
            }
            ApiKey::DeleteTopics => {
                decode_body::<DeleteTopicsRequest>(name, version, &mut body).map(drop)
            }
            ApiKey::CreatePartitions => {
                decode_body::<CreatePartitionsRequest>(name, version, &mut body).map(drop)
            }
            ApiKey::DescribeConfigs => {
                decode_body::<DescribeConfigsRequest>(name, version, &mut body).map(drop)
            }
            ApiKey::AlterConfigs => {
                decode_body::<AlterConfigsRequest>(name, version, &mut body).map(drop)
            }
            ApiKey::IncrementalAlterConfigs => {
                decode_body::<IncrementalAlterConfigsRequest>(name, version, &mut body).map(drop)
            }
            _ => Ok(()),
        };
    }

    fn served() -> Vec<(ApiKey, i16)> {
        SUPPORTED
            .iter()
            .flat_map(|r| (r.accept_min..=r.max).map(move |v| (r.key, v)))
            .collect()
    }

    #[test]
    fn huge_array_counts_do_not_allocate() {
        // Every i32 and every varint in this body reads as a huge count.
        let body = Bytes::from([0x7f_u8, 0xff, 0xff, 0xff].repeat(64));
        for (api_key, version) in served() {
            decode_any(api_key, version, body.clone());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn random_bodies_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let body = Bytes::from(bytes);
            for (api_key, version) in served() {
                decode_any(api_key, version, body.clone());
            }
        }
    }
}
