//! DescribeUserScramCredentials and AlterUserScramCredentials, answered as Kafka 4's
//! ScramImage and ScramControlManager do (same checks, codes and messages).

use std::rc::Rc;

use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::messages::alter_user_scram_credentials_request::AlterUserScramCredentialsRequest;
use kafka_protocol::messages::alter_user_scram_credentials_response::{
    AlterUserScramCredentialsResponse, AlterUserScramCredentialsResult,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::DescribeUserScramCredentialsRequest;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResponse, DescribeUserScramCredentialsResult,
};
use kafka_protocol::protocol::StrBytes;

use super::{access, RequestContext};
use crate::protocol::{code, ProtocolError, ResponseError};
use crate::security::acl::AclOperation;
use crate::security::sasl::scram_credential::{SCRAM_ITERATIONS_MAX, SCRAM_ITERATIONS_MIN};
use crate::security::sasl::{CredentialSource, SaslMechanism, ScramCredential};
use crate::security::Session;
use crate::server::connection::Reply;
use crate::server::error_codes::admin_error;
use crate::shard::control::{AdminError, AdminRequest, ScramChange};
use crate::shard::Shard;

const DUPLICATE_ALTER: &str = "A user credential cannot be altered twice in the same request";

pub fn describe(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: DescribeUserScramCredentialsRequest = ctx.decode(&mut body)?;
    // Kafka: DESCRIBE on the cluster, else the whole request is refused.
    if !access::cluster(shard, session, AclOperation::Describe) {
        return ctx.reply(
            &DescribeUserScramCredentialsResponse::default()
                .with_error_code(code(ResponseError::ClusterAuthorizationFailed))
                .with_error_message(None),
        );
    }
    let known: IndexMap<String, Vec<(SaslMechanism, i32)>> =
        shard.scram_users().into_iter().collect();
    // Each asked-for user once, with how many times it was asked for.
    let mut wanted: IndexMap<String, usize> = IndexMap::new();
    match request.users.filter(|users| !users.is_empty()) {
        None => wanted.extend(known.keys().map(|user| (user.clone(), 1))),
        Some(users) => {
            for user in users {
                *wanted.entry(user.name.to_string()).or_default() += 1;
            }
        }
    }
    let mut results = Vec::with_capacity(wanted.len());
    for (user, count) in &wanted {
        let mut result = DescribeUserScramCredentialsResult::default()
            .with_user(StrBytes::from_string(user.clone()))
            .with_error_message(None);
        if *count > 1 {
            result.error_code = code(ResponseError::DuplicateResource);
            result.error_message = Some(StrBytes::from_string(format!(
                "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
            )));
        } else if let Some(mechanisms) = known.get(user) {
            result.credential_infos = mechanisms
                .iter()
                .map(|(m, iterations)| {
                    CredentialInfo::default()
                        .with_mechanism(m.scram_type())
                        .with_iterations(*iterations)
                })
                .collect();
        } else {
            result.error_code = code(ResponseError::ResourceNotFound);
            result.error_message = Some(StrBytes::from_string(format!(
                "Attempt to describe a user credential that does not exist: {user}"
            )));
        }
        results.push(result);
    }
    ctx.reply(
        &DescribeUserScramCredentialsResponse::default()
            .with_error_message(None)
            .with_results(results),
    )
}

pub fn alter(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: AlterUserScramCredentialsRequest = ctx.decode(&mut body)?;
    // Kafka: ALTER on the cluster, else every user named is refused.
    if !access::cluster(shard, session, AclOperation::Alter) {
        let named = request.deletions.iter().map(|d| &d.name);
        let named: indexmap::IndexSet<String> = named
            .chain(request.upsertions.iter().map(|u| &u.name))
            .map(|name| name.to_string())
            .collect();
        let results = named.into_iter().map(|user| {
            alter_refusal(
                ResponseError::ClusterAuthorizationFailed,
                "Cluster authorization failed.".into(),
            )
            .with_user(StrBytes::from_string(user))
        });
        return ctx
            .reply(&AlterUserScramCredentialsResponse::default().with_results(results.collect()));
    }
    // Kafka's order of checks: deletions, then upsertions; a user named twice is refused
    // whole, and a refused user's later entries are ignored.
    let mut refused: IndexMap<String, (ResponseError, String)> = IndexMap::new();
    let mut deletions: IndexMap<String, ScramChange> = IndexMap::new();
    let mut upsertions: IndexMap<String, ScramChange> = IndexMap::new();
    for deletion in request.deletions {
        let user = deletion.name.to_string();
        if refused.contains_key(&user) {
            continue;
        }
        if deletions.shift_remove(&user).is_some() {
            refused.insert(
                user,
                (ResponseError::DuplicateResource, DUPLICATE_ALTER.into()),
            );
            continue;
        }
        let checked = checked_mechanism(&user, deletion.mechanism).and_then(|mechanism| {
            // The owner checks again: this replica can trail it by a moment.
            match shard.scram_credential(&user, mechanism) {
                Some(_) => Ok(mechanism),
                None => Err((
                    ResponseError::ResourceNotFound,
                    AdminError::NoScramCredential.to_string(),
                )),
            }
        });
        match checked {
            Ok(mechanism) => {
                let change = ScramChange {
                    user: user.clone(),
                    mechanism,
                    credential: None,
                };
                deletions.insert(user, change);
            }
            Err(refusal) => {
                refused.insert(user, refusal);
            }
        }
    }
    for upsertion in request.upsertions {
        let user = upsertion.name.to_string();
        if refused.contains_key(&user) {
            continue;
        }
        if deletions.shift_remove(&user).is_some() || upsertions.shift_remove(&user).is_some() {
            refused.insert(
                user,
                (ResponseError::DuplicateResource, DUPLICATE_ALTER.into()),
            );
            continue;
        }
        let checked = checked_mechanism(&user, upsertion.mechanism).and_then(|mechanism| {
            let too = |what: &str| {
                (
                    ResponseError::UnacceptableCredential,
                    format!("Too {what} iterations"),
                )
            };
            if upsertion.iterations < SCRAM_ITERATIONS_MIN {
                return Err(too("few"));
            }
            if upsertion.iterations > SCRAM_ITERATIONS_MAX {
                return Err(too("many"));
            }
            Ok(mechanism)
        });
        match checked {
            Ok(mechanism) => {
                let Some(hash) = mechanism.scram_hash() else {
                    continue; // checked_mechanism admits SCRAM mechanisms only
                };
                let credential = ScramCredential::from_salted_password(
                    hash,
                    upsertion.salt.to_vec(),
                    &upsertion.salted_password,
                    upsertion.iterations,
                );
                let change = ScramChange {
                    user: user.clone(),
                    mechanism,
                    credential: Some(credential),
                };
                upsertions.insert(user, change);
            }
            Err(refusal) => {
                refused.insert(user, refusal);
            }
        }
    }
    let shard = Rc::clone(shard);
    Ok(Reply::Deferred(Box::pin(async move {
        let changes: Vec<ScramChange> = deletions
            .into_values()
            .chain(upsertions.into_values())
            .collect();
        let users: Vec<String> = changes.iter().map(|c| c.user.clone()).collect();
        let outcomes = match shard
            .admin(|reply| AdminRequest::AlterScramCredentials { changes, reply })
            .await
        {
            Ok(outcomes) => outcomes,
            Err(e) => vec![Err(e); users.len()],
        };
        let mut results = Vec::with_capacity(users.len() + refused.len());
        for (user, outcome) in users.into_iter().zip(outcomes) {
            let result = match outcome {
                Ok(()) => AlterUserScramCredentialsResult::default().with_error_message(None),
                Err(error) => alter_refusal(admin_error(&error), error.to_string()),
            };
            results.push(result.with_user(StrBytes::from_string(user)));
        }
        for (user, (error, message)) in refused {
            results.push(alter_refusal(error, message).with_user(StrBytes::from_string(user)));
        }
        ctx.encode(&AlterUserScramCredentialsResponse::default().with_results(results))
    })))
}

/// The SCRAM mechanism of `mechanism_type` for a named user, or Kafka's refusal.
fn checked_mechanism(
    user: &str,
    mechanism_type: i8,
) -> Result<SaslMechanism, (ResponseError, String)> {
    if user.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            "Username must not be empty".into(),
        ));
    }
    SaslMechanism::from_scram_type(mechanism_type).ok_or((
        ResponseError::UnsupportedSaslMechanism,
        "Unknown SCRAM mechanism".into(),
    ))
}

fn alter_refusal(error: ResponseError, message: String) -> AlterUserScramCredentialsResult {
    AlterUserScramCredentialsResult::default()
        .with_error_code(code(error))
        .with_error_message(Some(StrBytes::from_string(message)))
}
