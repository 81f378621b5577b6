//! The internal topics of a cluster of several nodes (issue 17): `__consumer_offsets` and
//! `__transaction_state`, whose partitions hold group offsets and transaction state as
//! Kafka's do (see `replica::state_partitions`). A group's or transactional id's
//! coordinator is the shard leading the partition its id hashes to; FindCoordinator names
//! it, creating the topic on the first lookup as Kafka does.

use std::rc::Rc;

use super::control::{AdminError, AdminRequest, NewTopic};
use super::{known_leader, placement, replicated_internal_state, BrokerAddress, Shard};
use crate::cluster::NodeId;
use crate::security::Session;

/// Replication factor of the internal topics (Kafka's `offsets.topic.replication.factor`,
/// `transaction.state.log.replication.factor`), capped by the number of initial peers.
const INTERNAL_TOPIC_REPLICATION_FACTOR: usize = 3;

/// Segment size of the internal topics' partitions: 32 of each per node, mostly small.
const INTERNAL_TOPIC_SEGMENT_BYTES: u64 = 16 << 20;

/// The internal topic whose leaders coordinate FindCoordinator key type `key_type`
/// (0: groups, and share groups; 1: transactional ids).
pub fn coordinating_topic(key_type: i8) -> &'static str {
    if key_type == 1 {
        crate::txn::txn_store::TXN_STATE_TOPIC
    } else {
        crate::group::OFFSETS_TOPIC
    }
}

impl Shard {
    /// The broker coordinating `key` (a group id or transactional id, whose state is in
    /// internal topic `topic`). With replicated internal topics it is the shard leading the
    /// key's partition, wherever that leadership is now; `None` while no leader is known or
    /// the topic does not exist yet (its creation is started here).
    pub fn internal_coordinator_broker(
        self: &Rc<Self>,
        session: &Session,
        key: &str,
        topic: &'static str,
    ) -> Option<BrokerAddress> {
        if !replicated_internal_state(self.config.cluster.as_ref()) {
            return self.coordinator_broker(session, key);
        }
        let node = match self.internal_leader(key, topic) {
            Some(leader) => leader?,
            None => {
                self.create_internal_topic(topic);
                return None;
            }
        };
        let partition = crate::group::offsets_partition(key);
        let shard = |shard_count: usize| partition as usize % shard_count.max(1);
        match &self.cluster {
            Some(cluster) if cluster.node_id == node => self
                .brokers_for(session)
                .get(shard(self.config.shard_count))
                .cloned(),
            _ => self.node_broker(session, node, shard),
        }
    }

    /// With replicated internal topics: the node coordinating `key` of `topic`, if that is
    /// another node (none known: this one, whose coordinator then refuses and the caller
    /// retries). Without them, the node the peers hash `key` to.
    pub fn remote_internal_coordinator(&self, key: &str, topic: &'static str) -> Option<NodeId> {
        if !replicated_internal_state(self.config.cluster.as_ref()) {
            return self.remote_coordinator_node(key);
        }
        let node = self.internal_leader(key, topic).flatten()?;
        (Some(node) != self.cluster.as_ref().map(|c| c.node_id)).then_some(node)
    }

    /// `None` when there is no such topic (or no cluster), else the leader of `key`'s
    /// partition as this node's replica knows it (a node without a replica names the
    /// preferred leader, which sends the client on if it is wrong).
    fn internal_leader(&self, key: &str, topic: &str) -> Option<Option<NodeId>> {
        let cluster = self.cluster.as_ref()?;
        let meta = self.topic(topic)?;
        let partition = i32::try_from(crate::group::offsets_partition(key)).ok()?;
        let Some(nodes) = meta.placement.replicas_of(partition) else {
            // One copy (a topic created with one node registered): its node leads it.
            return Some(meta.placement.node_of(partition));
        };
        Some(match known_leader(cluster, &meta, partition, nodes) {
            Some(node) => Some(node),
            None if nodes.contains(&cluster.node_id) => None,
            None => nodes.first().copied(),
        })
    }

    /// Creates internal topic `topic` (once at a time per shard): a partition per state
    /// partition, replicated on up to three nodes, compacted by key.
    fn create_internal_topic(self: &Rc<Self>, topic: &'static str) {
        if !self.creating_internal_topics.borrow_mut().insert(topic) {
            return;
        }
        let peers = self.config.cluster.as_ref().map_or(1, |p| p.peers.len());
        let new_topic = NewTopic {
            name: topic.to_owned(),
            partition_count: i32::try_from(crate::group::OFFSETS_PARTITION_COUNT)
                .unwrap_or(i32::MAX),
            overrides: [
                ("cleanup.policy", "compact".to_owned()),
                ("segment.bytes", INTERNAL_TOPIC_SEGMENT_BYTES.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            placement: placement::Placement {
                replication_factor: i16::try_from(peers.min(INTERNAL_TOPIC_REPLICATION_FACTOR))
                    .unwrap_or(1),
                ..Default::default()
            },
        };
        let shard = Rc::clone(self);
        crate::io::spawn(async move {
            let created = shard
                .admin(|reply| AdminRequest::CreateTopics {
                    topics: vec![new_topic],
                    validate_only: false,
                    reply,
                })
                .await;
            match created.map(|mut results| results.pop()) {
                Ok(Some(Ok(_)) | Some(Err(AdminError::TopicExists(_)))) => {
                    tracing::info!(topic, "internal topic created")
                }
                // Retried at the next FindCoordinator (too few nodes registered yet, say).
                Ok(Some(Err(e))) | Err(e) => {
                    tracing::warn!(topic, error = %e, "creating an internal topic")
                }
                Ok(None) => {}
            }
            shard.creating_internal_topics.borrow_mut().remove(topic);
        })
        .detach();
    }
}
