//! ApiVersions: advertises exactly `protocol::api_versions::SUPPORTED`.

use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};

use super::RequestContext;
use crate::protocol::api_versions::SUPPORTED;
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::server::connection::Reply;

fn table() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        SUPPORTED
            .iter()
            .map(|r| {
                ApiVersion::default()
                    .with_api_key(r.key as i16)
                    .with_min_version(r.advertised_min)
                    .with_max_version(r.max)
            })
            .collect(),
    )
}

pub fn handle(ctx: RequestContext) -> Result<Reply, ProtocolError> {
    ctx.reply(&table())
}

pub fn unsupported_version(ctx: RequestContext) -> Result<Reply, ProtocolError> {
    let body = table().with_error_code(code(ResponseError::UnsupportedVersion));
    let v0 = RequestContext { version: 0, ..ctx };
    v0.reply(&body)
}
