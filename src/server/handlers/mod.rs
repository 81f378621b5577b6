//! One thin handler per Kafka API: decode → validate → route → call → encode.

mod access;
mod acls;
mod api_versions;
mod cluster;
mod configs;
mod delete_records;
mod fetch;
mod group_admin;
mod group_consumer;
mod group_errors;
mod group_find_coordinator;
mod group_membership;
mod list_offsets;
mod long_poll;
mod metadata;
mod offsets;
mod produce;
mod produce_order;
mod producer_id;
mod sasl_authentication;
mod share_acknowledge;
mod share_errors;
mod share_fetch;
mod share_group;
mod share_group_offsets;
mod share_partitions;
mod topics;
mod txn_coordinator_apis;
mod txn_errors;
mod txn_offset_commit;
mod txn_produce_verification;
mod unsupported;
mod user_scram_credentials;

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::connection::Reply;
use crate::log::PartitionLog;
use crate::protocol::api_versions::is_served;
use crate::protocol::request::{decode_body, decode_header, HeaderPrefix};
use crate::protocol::ResponseError;
use crate::protocol::{response, ProtocolError};
use crate::security::Session;
use crate::shard::{PartitionLookup, Shard};

/// What a handler needs to know about the request besides its body.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext {
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
}

impl RequestContext {
    pub fn encode<T: Encodable>(&self, body: &T) -> Result<Bytes, ProtocolError> {
        response::encode(self.api_key, self.version, self.correlation_id, body)
    }

    pub fn reply<T: Encodable>(&self, body: &T) -> Result<Reply, ProtocolError> {
        self.encode(body).map(Reply::Ready)
    }

    pub fn decode<T: Decodable>(&self, body: &mut Bytes) -> Result<T, ProtocolError> {
        decode_body(api_name(self.api_key), self.version, body)
    }
}

/// Who sent a request, as group descriptions report members (Kafka's client id and host).
#[derive(Debug, Clone, Default)]
pub struct ClientIdentity {
    pub client_id: String,
    /// The peer's address the way Kafka prints it: `/127.0.0.1`.
    pub client_host: String,
}

impl ClientIdentity {
    fn new(header: &RequestHeader, session: &Session) -> ClientIdentity {
        ClientIdentity {
            client_id: header
                .client_id
                .as_ref()
                .map(|id| id.to_string())
                .unwrap_or_default(),
            client_host: session
                .peer_ip()
                .map(|ip| format!("/{ip}"))
                .unwrap_or_default(),
        }
    }
}

/// The log of a partition this shard owns, or what Kafka answers a client that sent a
/// partition request to this broker: NOT_LEADER_OR_FOLLOWER for a partition of the topic
/// that another shard leads, UNKNOWN_TOPIC_OR_PARTITION otherwise.
fn local_partition(
    shard: &Shard,
    topic: &str,
    partition: i32,
) -> Result<PartitionLog, ResponseError> {
    match shard.partition(topic, partition) {
        PartitionLookup::Local(log) => Ok(log),
        PartitionLookup::NotHere
            if shard
                .topic(topic)
                .is_some_and(|m| (0..m.partition_count).contains(&partition)) =>
        {
            Err(ResponseError::NotLeaderOrFollower)
        }
        _ => Err(ResponseError::UnknownTopicOrPartition),
    }
}

/// Routes one request frame of the connection whose security state is `session`. An `Err`
/// closes the connection: it is returned only when the request cannot be answered in a form
/// the client would understand.
pub fn dispatch(
    shard: &Rc<Shard>,
    mut frame: Bytes,
    session: &mut Session,
) -> Result<Reply, ProtocolError> {
    let prefix = HeaderPrefix::parse(&frame)?;
    let api_key = ApiKey::try_from(prefix.api_key).map_err(|_| ProtocolError::UnknownApiKey {
        api_key: prefix.api_key,
    })?;
    let ctx = RequestContext {
        api_key,
        version: prefix.api_version,
        correlation_id: prefix.correlation_id,
    };
    sasl_authentication::gate(session, api_key)?;
    if !is_served(prefix.api_key, prefix.api_version) {
        if api_key == ApiKey::ApiVersions {
            // KIP-511: answer a too-new ApiVersions with our ranges at v0 so the client can retry.
            return api_versions::unsupported_version(ctx);
        }
        let refused = || ProtocolError::Decode {
            api: api_name(api_key),
            version: prefix.api_version,
            reason: "API or version not supported".to_owned(),
        };
        let codec_versions = api_key.valid_versions();
        if !(codec_versions.min..=codec_versions.max).contains(&prefix.api_version) {
            return Err(refused());
        }
        decode_header(api_key, prefix.api_version, &mut frame)?;
        return unsupported::answer(ctx, frame).unwrap_or_else(|| Err(refused()));
    }
    // The full header (client id, tagged fields) is parsed to reach the body.
    let header: RequestHeader = decode_header(api_key, prefix.api_version, &mut frame)?;
    let client = || ClientIdentity::new(&header, session);
    match api_key {
        ApiKey::ApiVersions => api_versions::handle(ctx),
        ApiKey::Metadata => metadata::handle(shard, ctx, session, frame),
        ApiKey::Produce => produce::handle(shard, ctx, session, frame),
        ApiKey::Fetch => fetch::handle(shard, ctx, session, frame),
        ApiKey::ListOffsets => list_offsets::handle(shard, ctx, session, frame),
        ApiKey::CreateTopics => topics::create_topics(shard, ctx, session, frame),
        ApiKey::DeleteTopics => topics::delete_topics(shard, ctx, session, frame),
        ApiKey::CreatePartitions => topics::create_partitions(shard, ctx, session, frame),
        ApiKey::DeleteRecords => delete_records::handle(shard, ctx, session, frame),
        ApiKey::DescribeConfigs => configs::describe(shard, ctx, session, frame),
        ApiKey::AlterConfigs => configs::alter(shard, ctx, session, frame),
        ApiKey::IncrementalAlterConfigs => configs::incremental_alter(shard, ctx, session, frame),
        ApiKey::FindCoordinator => group_find_coordinator::handle(shard, ctx, session, frame),
        ApiKey::JoinGroup => group_membership::join_group(shard, ctx, client(), session, frame),
        ApiKey::SyncGroup => group_membership::sync_group(shard, ctx, session, frame),
        ApiKey::Heartbeat => group_membership::heartbeat(shard, ctx, session, frame),
        ApiKey::LeaveGroup => group_membership::leave_group(shard, ctx, session, frame),
        ApiKey::OffsetCommit => offsets::offset_commit(shard, ctx, session, frame),
        ApiKey::OffsetFetch => offsets::offset_fetch(shard, ctx, session, frame),
        ApiKey::OffsetDelete => offsets::offset_delete(shard, ctx, session, frame),
        ApiKey::ListGroups => group_admin::list_groups(shard, ctx, session, frame),
        ApiKey::DescribeGroups => group_admin::describe_groups(shard, ctx, session, frame),
        ApiKey::DeleteGroups => group_admin::delete_groups(shard, ctx, session, frame),
        ApiKey::ConsumerGroupHeartbeat => {
            group_consumer::heartbeat(shard, ctx, client(), session, frame)
        }
        ApiKey::ConsumerGroupDescribe => group_consumer::describe(shard, ctx, session, frame),
        ApiKey::DescribeCluster => cluster::describe_cluster(shard, ctx, session, frame),
        ApiKey::OffsetForLeaderEpoch => {
            cluster::offset_for_leader_epoch(shard, ctx, session, frame)
        }
        ApiKey::SaslHandshake => sasl_authentication::handshake(shard, ctx, frame, session),
        ApiKey::SaslAuthenticate => sasl_authentication::authenticate(shard, ctx, frame, session),
        ApiKey::DescribeUserScramCredentials => {
            user_scram_credentials::describe(shard, ctx, session, frame)
        }
        ApiKey::AlterUserScramCredentials => {
            user_scram_credentials::alter(shard, ctx, session, frame)
        }
        ApiKey::InitProducerId => producer_id::handle(shard, ctx, session, frame),
        ApiKey::ShareGroupHeartbeat => share_group::heartbeat(shard, ctx, client(), session, frame),
        ApiKey::ShareGroupDescribe => share_group::describe(shard, ctx, session, frame),
        ApiKey::ShareFetch => share_fetch::handle(shard, ctx, session, frame),
        ApiKey::ShareAcknowledge => share_acknowledge::handle(shard, ctx, session, frame),
        ApiKey::DescribeShareGroupOffsets => {
            share_group_offsets::describe(shard, ctx, session, frame)
        }
        ApiKey::AlterShareGroupOffsets => share_group_offsets::alter(shard, ctx, session, frame),
        ApiKey::DeleteShareGroupOffsets => share_group_offsets::delete(shard, ctx, session, frame),
        ApiKey::AddPartitionsToTxn => {
            txn_coordinator_apis::add_partitions_to_txn(shard, ctx, session, frame)
        }
        ApiKey::AddOffsetsToTxn => {
            txn_coordinator_apis::add_offsets_to_txn(shard, ctx, session, frame)
        }
        ApiKey::EndTxn => txn_coordinator_apis::end_txn(shard, ctx, session, frame),
        ApiKey::TxnOffsetCommit => txn_offset_commit::txn_offset_commit(shard, ctx, session, frame),
        ApiKey::CreateAcls => acls::create_acls(shard, ctx, session, frame),
        ApiKey::DescribeAcls => acls::describe_acls(shard, ctx, session, frame),
        ApiKey::DeleteAcls => acls::delete_acls(shard, ctx, session, frame),
        _ => Err(ProtocolError::Decode {
            api: api_name(api_key),
            version: prefix.api_version,
            reason: "no handler".to_owned(),
        }),
    }
}

fn api_name(api_key: ApiKey) -> &'static str {
    match api_key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::ConsumerGroupHeartbeat => "ConsumerGroupHeartbeat",
        ApiKey::ConsumerGroupDescribe => "ConsumerGroupDescribe",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
        ApiKey::SaslHandshake => "SaslHandshake",
        ApiKey::SaslAuthenticate => "SaslAuthenticate",
        ApiKey::DescribeUserScramCredentials => "DescribeUserScramCredentials",
        ApiKey::AlterUserScramCredentials => "AlterUserScramCredentials",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::ShareGroupHeartbeat => "ShareGroupHeartbeat",
        ApiKey::ShareGroupDescribe => "ShareGroupDescribe",
        ApiKey::ShareFetch => "ShareFetch",
        ApiKey::ShareAcknowledge => "ShareAcknowledge",
        ApiKey::DescribeShareGroupOffsets => "DescribeShareGroupOffsets",
        ApiKey::AlterShareGroupOffsets => "AlterShareGroupOffsets",
        ApiKey::DeleteShareGroupOffsets => "DeleteShareGroupOffsets",
        ApiKey::AddPartitionsToTxn => "AddPartitionsToTxn",
        ApiKey::AddOffsetsToTxn => "AddOffsetsToTxn",
        ApiKey::EndTxn => "EndTxn",
        ApiKey::TxnOffsetCommit => "TxnOffsetCommit",
        ApiKey::CreateAcls => "CreateAcls",
        ApiKey::DescribeAcls => "DescribeAcls",
        ApiKey::DeleteAcls => "DeleteAcls",
        _ => "request",
    }
}
