//! Small cluster-level APIs: DescribeCluster, OffsetForLeaderEpoch.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::describe_cluster_response::{
    DescribeClusterBroker, DescribeClusterResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderEpochRequest;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::BrokerId;
use kafka_protocol::protocol::StrBytes;

use super::{access, RequestContext};
use crate::protocol::{authorized_operations, code, ProtocolError, ResponseError};
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use crate::security::Session;
use crate::server::connection::Reply;
use crate::shard::{PartitionLookup, Shard};

/// Every partition has had one leader, on its owning shard, since it was created.
const LEADER_EPOCH: i32 = 0;

pub fn describe_cluster(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: DescribeClusterRequest = ctx.decode(&mut body)?;
    let mut response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(shard.config.cluster_id.clone()))
        .with_controller_id(BrokerId(shard.controller_id()))
        .with_brokers(
            shard
                .cluster_brokers_for(session)
                .iter()
                .map(|b| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(b.node_id))
                        .with_host(StrBytes::from_string(b.host.clone()))
                        .with_port(i32::from(b.port))
                })
                .collect(),
        );
    if ctx.version >= 1 {
        response.endpoint_type = request.endpoint_type;
    }
    if request.include_cluster_authorized_operations {
        response.cluster_authorized_operations = shard.authorized_operations(
            session,
            ResourceType::Cluster,
            CLUSTER_RESOURCE_NAME,
            authorized_operations::CLUSTER,
        );
    }
    ctx.reply(&response)
}

pub fn offset_for_leader_epoch(
    shard: &Rc<Shard>,
    ctx: RequestContext,
    session: &Session,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    let request: OffsetForLeaderEpochRequest = ctx.decode(&mut body)?;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            // A consumer's request (Kafka checks CLUSTER_ACTION only for replicas): DESCRIBE
            // on the topic, else TOPIC_AUTHORIZATION_FAILED on each of its partitions.
            let describable = access::topic(shard, session, AclOperation::Describe, &topic.topic);
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let mut answer = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if !describable {
                        answer.error_code = code(ResponseError::TopicAuthorizationFailed);
                        return answer;
                    }
                    match shard.partition(&topic.topic, p.partition) {
                        PartitionLookup::Local(log) => {
                            if p.leader_epoch > LEADER_EPOCH {
                                answer.error_code = code(ResponseError::UnknownLeaderEpoch);
                            } else {
                                // Epoch 0 (or older) ends where the log ends.
                                answer.leader_epoch = LEADER_EPOCH;
                                answer.end_offset = log.log_end_offset();
                            }
                        }
                        PartitionLookup::NotHere => {
                            answer.error_code = code(ResponseError::NotLeaderOrFollower)
                        }
                        PartitionLookup::UnknownTopic => {
                            answer.error_code = code(ResponseError::UnknownTopicOrPartition)
                        }
                    }
                    answer
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    ctx.reply(&OffsetForLeaderEpochResponse::default().with_topics(topics))
}
