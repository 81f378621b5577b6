//! Consumer groups: the coordinator of every group whose id hashes to this shard, with
//! durable committed offsets.
//!
//! Placement: a group id hashes to one of [`OFFSETS_PARTITION_COUNT`] offsets partitions,
//! and offsets partition `p` lives on shard `p % shard_count`. Every request about a group
//! (join, sync, heartbeat, commit, fetch) is sent by clients to that shard's broker (the
//! FindCoordinator answer), so a group's state is plain single-threaded state on one core.
//! Fixing the partition count (as Kafka's `__consumer_offsets` does) means a restart with a
//! different shard count moves whole offsets logs between shards instead of losing offsets.
//!
//! - [`group_coordinator`] — the per-shard entry point the handlers call.
//! - [`classic_group`] — the JoinGroup/SyncGroup/Heartbeat state machine (KIP-394, KIP-345).
//! - [`consumer_group`] — the KIP-848 ConsumerGroupHeartbeat state machine.
//! - [`assignor`] — server-side `uniform` and `range` assignors for KIP-848.
//! - [`offset_store`] — the durable offsets logs, replayed at start-up and compacted.
//! - [`offset_record`] — the on-disk encoding of one offsets-log record.
//! - [`offsets_replicas`] — in a cluster, offsets partitions as replicated partitions, so a
//!   group's coordinator moves with its partition's leadership.
//! - [`subscription_regex`] — KIP-848 subscriptions by regular expression.
//! - [`group_timers`] — the per-shard task that expires sessions and rebalance deadlines.

pub mod assignor;
pub mod classic_group;
pub mod consumer_group;
mod error;
pub mod group_coordinator;
pub mod group_timers;
pub mod offset_record;
pub mod offset_store;
pub mod offsets_replicas;
pub mod subscription_regex;

pub use error::GroupError;
pub use group_coordinator::GroupCoordinator;
pub use offsets_replicas::OFFSETS_TOPIC;

/// Resolves once an offsets change is durable: in the shard's offsets log, or committed by
/// a majority of its replicated offsets partition.
pub type Durable = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), GroupError>>>>;

/// Number of offsets partitions; a group's partition is fixed by its id, whatever the shard
/// count. More shards than this leaves the extra shards without groups.
pub const OFFSETS_PARTITION_COUNT: u32 = 32;

/// The topics as the coordinator sees them: its shard's replica of the topic catalog.
/// KIP-848 assignments follow partition counts, and regex subscriptions every topic name.
pub trait TopicCatalog {
    fn partition_count(&self, topic: &str) -> Option<i32>;
    fn topic_names(&self) -> Vec<String>;
}

/// A fixed set of topics, by name and partition count.
impl TopicCatalog for std::collections::BTreeMap<String, i32> {
    fn partition_count(&self, topic: &str) -> Option<i32> {
        self.get(topic).copied()
    }

    fn topic_names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}

/// Longest group id served. Kafka's own offsets records hold the group id as an int16-length
/// string, so Kafka cannot store a longer one either; refusing it up front answers
/// INVALID_GROUP_ID rather than failing at the log.
pub const GROUP_ID_BYTES_MAX: usize = i16::MAX as usize;
const _: () = assert!(GROUP_ID_BYTES_MAX <= offset_record::RECORD_STRING_BYTES_MAX);

/// The offsets partition of `group_id`.
pub fn offsets_partition(group_id: &str) -> u32 {
    (key_hash(group_id) % u64::from(OFFSETS_PARTITION_COUNT)) as u32
}

/// FNV-1a of a key: stable across nodes and versions, since placement depends on it.
fn key_hash(key: &str) -> u64 {
    use std::hash::Hasher;
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(key.as_bytes());
    hasher.finish()
}

/// The shard that coordinates `group_id`.
pub fn coordinator_shard(group_id: &str, shard_count: usize) -> usize {
    offsets_partition(group_id) as usize % shard_count.max(1)
}

/// Which coordinator keys (group ids, transactional ids) this node serves. A single node
/// serves every key. In a cluster, a key's node is the one a hash of the key picks among the
/// configured peers ([`NodeKeys::slot_of`]); FindCoordinator names that node's broker, and
/// the other nodes answer NOT_COORDINATOR, as Kafka's brokers do, so a client that asks the
/// wrong node looks the coordinator up again instead of splitting the group. shard/ builds
/// the value from the peer list (group/ sits below cluster/ and cannot read it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeKeys {
    /// This node's position among the peers, ordered by node id.
    slot: usize,
    /// How many peers share the keys.
    slots: usize,
}

impl NodeKeys {
    /// Every key: a single node.
    pub const ALL: NodeKeys = NodeKeys { slot: 0, slots: 1 };

    /// The keys that hash to `slot` of `slots` (a cluster node's share).
    pub fn slot(slot: usize, slots: usize) -> NodeKeys {
        NodeKeys {
            slot,
            slots: slots.max(1),
        }
    }

    /// The slot (peer position, by node id) coordinating `key` among `slots` peers.
    pub fn slot_of(key: &str, slots: usize) -> usize {
        usize::try_from(key_hash(key) % slots.max(1) as u64).unwrap_or(0)
    }

    /// A slot outside `0..slots` owns nothing: a node added after the cluster was formed,
    /// which is not among the peers the keys hash over.
    pub fn owns(&self, key: &str) -> bool {
        self.slot < self.slots
            && (self.slots <= 1 || NodeKeys::slot_of(key, self.slots) == self.slot)
    }
}

/// Tunables of the group coordinator (Kafka's `group.*` and `offsets.*` broker settings).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms` (Kafka: 6000; lower here so tests can fail over fast).
    pub session_timeout_ms_min: i32,
    /// `group.max.session.timeout.ms`.
    pub session_timeout_ms_max: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group
    /// waits for more members.
    pub initial_rebalance_delay_ms: i64,
    /// `offsets.retention.minutes`, in ms: offsets of a group empty this long are deleted.
    pub offsets_retention_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_bytes_max: usize,
    /// `group.consumer.session.timeout.ms` (KIP-848).
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (KIP-848).
    pub consumer_heartbeat_interval_ms: i32,
    /// An offsets log is rewritten as a snapshot once it holds this many bytes more than the
    /// last snapshot did.
    pub offsets_compact_bytes: u64,
}

impl Default for GroupConfig {
    fn default() -> GroupConfig {
        GroupConfig {
            session_timeout_ms_min: 1_000,
            session_timeout_ms_max: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offset_metadata_bytes_max: 4096,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
            offsets_compact_bytes: 64 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_always_maps_to_the_same_shard() {
        for shard_count in 1..8 {
            let shard = coordinator_shard("orders", shard_count);
            assert!(shard < shard_count);
            assert_eq!(shard, coordinator_shard("orders", shard_count));
            assert_eq!(shard, offsets_partition("orders") as usize % shard_count);
        }
    }

    #[test]
    fn every_key_has_exactly_one_node() {
        let nodes: Vec<NodeKeys> = (0..3).map(|slot| NodeKeys::slot(slot, 3)).collect();
        for key in ["orders", "payments", "txn-1", "", "g"] {
            assert_eq!(nodes.iter().filter(|n| n.owns(key)).count(), 1, "{key}");
            assert!(NodeKeys::ALL.owns(key));
            // A node added after the cluster formed is outside the slots: it owns nothing.
            assert!(!NodeKeys::slot(3, 3).owns(key));
            assert!(!NodeKeys::slot(1, 1).owns(key));
        }
    }
}
