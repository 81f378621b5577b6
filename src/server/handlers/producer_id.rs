//! InitProducerId for idempotent producers. Without a transactional id Kafka always hands
//! out a fresh producer id at epoch 0 (also when a producer asks to bump its epoch, KIP-360),
//! and so does sluice. Transactional ids are refused until transactions exist.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::ProducerId;

use super::RequestContext;
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::server::connection::Reply;
use crate::server::error_codes::admin_error;
use crate::shard::control::AdminRequest;
use crate::shard::Shard;

pub fn handle(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: InitProducerIdRequest = ctx.decode(&mut body)?;
    let refused = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if request.transactional_id.is_some() {
        return ctx.reply(
            &refused.with_error_code(code(ResponseError::TransactionalIdAuthorizationFailed)),
        );
    }
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let response = match shard
            .admin(|reply| AdminRequest::AllocateProducerId { reply })
            .await
            .and_then(|id| id)
        {
            Ok(id) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(0),
            Err(e) => {
                tracing::error!(error = %e, "cannot allocate a producer id");
                refused.with_error_code(code(admin_error(&e)))
            }
        };
        ctx.encode(&response)
    })))
}
