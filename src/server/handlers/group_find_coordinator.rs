//! FindCoordinator: a group's or a transactional id's coordinator is the shard its id hashes
//! to (see `group` and `txn`).

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use kafka_protocol::messages::BrokerId;
use kafka_protocol::protocol::StrBytes;

use super::{access, RequestContext};
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::Session;
use crate::server::connection::Reply;
use crate::shard::Shard;

/// FindCoordinator key types.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

struct Found {
    error: Option<(ResponseError, String)>,
    node_id: i32,
    host: String,
    port: i32,
}

fn find(shard: &Rc<Shard>, session: &Session, key: &str, key_type: i8) -> Found {
    let not_available = |reason: &str| Found {
        error: Some((ResponseError::CoordinatorNotAvailable, reason.to_owned())),
        node_id: -1,
        host: String::new(),
        port: -1,
    };
    if key_type != KEY_TYPE_GROUP && key_type != KEY_TYPE_TRANSACTION {
        return Found {
            error: Some((
                ResponseError::InvalidRequest,
                format!("unknown key type {key_type}"),
            )),
            node_id: -1,
            host: String::new(),
            port: -1,
        };
    }
    let denied = if key_type == KEY_TYPE_TRANSACTION {
        (!access::transactional_id(shard, session, AclOperation::Describe, key))
            .then_some(ResponseError::TransactionalIdAuthorizationFailed)
    } else {
        (!access::group(shard, session, AclOperation::Describe, key))
            .then_some(ResponseError::GroupAuthorizationFailed)
    };
    if let Some(error) = denied {
        return Found {
            error: Some((error, error.to_string())),
            node_id: -1,
            host: String::new(),
            port: -1,
        };
    }
    if key.is_empty() {
        let error = if key_type == KEY_TYPE_TRANSACTION {
            ResponseError::InvalidRequest
        } else {
            ResponseError::InvalidGroupId
        };
        return Found {
            error: Some((error, "empty key".to_owned())),
            node_id: -1,
            host: String::new(),
            port: -1,
        };
    }
    // In a cluster a key follows the leader of its internal topic's partition.
    let topic = crate::shard::internal_topics::coordinating_topic(key_type);
    let broker = shard.internal_coordinator_broker(session, key, topic);
    match broker {
        Some(broker) => Found {
            error: None,
            node_id: broker.node_id,
            host: broker.host.clone(),
            port: i32::from(broker.port),
        },
        None => not_available("the coordinator shard is not serving"),
    }
}

pub fn handle(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: FindCoordinatorRequest = ctx.decode(&mut body)?;
    let key_type = if ctx.version >= 1 {
        request.key_type
    } else {
        KEY_TYPE_GROUP
    };
    let mut response = FindCoordinatorResponse::default();
    if ctx.version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let found = find(shard, session, key, key_type);
                let mut coordinator = Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(found.node_id))
                    .with_host(StrBytes::from_string(found.host))
                    .with_port(found.port);
                if let Some((error, message)) = found.error {
                    coordinator.error_code = code(error);
                    coordinator.error_message = Some(StrBytes::from_string(message));
                }
                coordinator
            })
            .collect();
    } else {
        let found = find(shard, session, &request.key, key_type);
        response.node_id = BrokerId(found.node_id);
        response.host = StrBytes::from_string(found.host);
        response.port = found.port;
        if let Some((error, message)) = found.error {
            response.error_code = code(error);
            if ctx.version >= 1 {
                response.error_message = Some(StrBytes::from_string(message));
            }
        }
    }
    ctx.reply(&response)
}
