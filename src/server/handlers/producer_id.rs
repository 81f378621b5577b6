//! InitProducerId. Without a transactional id Kafka always hands out a fresh producer id at
//! epoch 0 (also when a producer asks to bump its epoch, KIP-360), and so does sluice. With
//! one, the transactional id's coordinator answers (see [`crate::txn`]).

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::ProducerId;

use super::access;
use super::txn_errors::txn_error_code;
use super::RequestContext;
use crate::group::offset_record::RECORD_STRING_BYTES_MAX;
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::Session;
use crate::server::connection::Reply;
use crate::server::error_codes::admin_error;
use crate::shard::control::AdminRequest;
use crate::shard::Shard;

/// InitProducerId knows PRODUCER_FENCED from v4.
const INIT_FENCED_FROM: i16 = 4;

pub fn handle(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: InitProducerIdRequest = ctx.decode(&mut body)?;
    let refused = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    // Kafka: WRITE on the transactional id; without one, IDEMPOTENT_WRITE on the cluster or
    // WRITE on some topic (KIP-679).
    let denied = match &request.transactional_id {
        Some(id) => (!access::transactional_id(shard, session, AclOperation::Write, id))
            .then_some(ResponseError::TransactionalIdAuthorizationFailed),
        None => (!access::cluster(shard, session, AclOperation::IdempotentWrite)
            && !shard.authorize_any(session, AclOperation::Write, ResourceType::Topic))
        .then_some(ResponseError::ClusterAuthorizationFailed),
    };
    if let Some(error) = denied {
        return ctx.reply(&refused.with_error_code(code(error)));
    }
    if let Some(transactional_id) = request.transactional_id {
        let transactional_id = transactional_id.0.to_string();
        if transactional_id.len() > RECORD_STRING_BYTES_MAX {
            return ctx.reply(&refused.with_error_code(code(ResponseError::InvalidRequest)));
        }
        // v3+ (KIP-360): the producer id and epoch the client had, or -1.
        let expected = if ctx.version >= 3 {
            (request.producer_id.0, request.producer_epoch)
        } else {
            (-1, -1)
        };
        let timeout_ms = request.transaction_timeout_ms;
        let shard = Rc::clone(shard);
        return Ok(Reply::Deferred(Box::pin(async move {
            let response = match shard
                .txn()
                .init_producer_id(&shard, &transactional_id, timeout_ms, expected)
                .await
            {
                Ok((id, epoch)) => InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(id))
                    .with_producer_epoch(epoch),
                Err(e) => {
                    tracing::debug!(%transactional_id, error = %e, "InitProducerId refused");
                    refused.with_error_code(txn_error_code(&e, ctx.version, INIT_FENCED_FROM))
                }
            };
            ctx.encode(&response)
        })));
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
