//! Replication factors and manual replica assignments (CreateTopics and CreatePartitions
//! `assignments`), checked in the order and with the errors of Kafka's controller
//! (`ReplicationControlManager`), then turned into shard placement.
//!
//! Each shard is advertised as its own broker (broker id = shard index; in a cluster
//! `node * 1000 + shard`), so an assignment is honoured: each partition lives on the first
//! broker its assignment lists (Kafka's preferred leader), in a cluster on that broker's
//! node; clients that place partitions expect to find them where they put them.
//! A replication factor up to the broker count is accepted, as Kafka accepts it, and
//! remembered (CreatePartitions checks new assignments against it). A single node keeps one
//! copy of each partition: its "brokers" are threads of one process writing to one disk, so
//! more in-process copies would add no protection against losing that disk or host. In a
//! cluster, a topic placed without assignments gets `replica_nodes`: a copy on that many
//! nodes (at most one per node), kept by the partition's Raft group (`replica`). Metadata
//! lists an assigned partition's replicas as assigned (clients such as librdkafka's admin
//! tests check them) with only the leader in sync, which is the truth.
//!
//! Example with 2 shards: `assignments = [(0, [1]), (1, [0, 1])]` is INVALID_REPLICA_ASSIGNMENT
//! (one replica, then two); `[(0, [1, 0]), (1, [0, 1])]` places partition 0 on shard 1 and
//! partition 1 on shard 0 with replication factor 2; `[(0, [2])]` is
//! INVALID_REPLICA_ASSIGNMENT (no broker 2); replication factor 3 is
//! INVALID_REPLICATION_FACTOR (only 2 brokers).

use std::collections::BTreeMap;

use super::admin_error::AdminError;
use crate::constants::CLUSTER_SHARDS_PER_NODE_MAX;

/// Where a topic's partitions live, and the replication factor its creator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Replicas per partition asked for (1 by default); one copy is kept either way.
    pub replication_factor: i16,
    /// The brokers a manual assignment gave each partition, by partition index, the leader
    /// first; empty (or past the end): placed by hash.
    pub replicas: Vec<Vec<i32>>,
    /// In a cluster, the node each partition lives on, by partition index (chosen round-robin
    /// when the partition was created); empty on a single node, where every partition is
    /// local. Inside its node a partition goes to a shard as above.
    pub nodes: Vec<u64>,
    /// In a cluster with a replication factor above 1: each partition's replica nodes, the
    /// preferred leader (`nodes[p]`) first; every replica of a partition lives on the same
    /// shard index of its node. Empty: one copy, on `nodes[p]`.
    pub replica_nodes: Vec<Vec<u64>>,
}

impl Default for Placement {
    fn default() -> Placement {
        Placement {
            replication_factor: 1,
            replicas: Vec::new(),
            nodes: Vec::new(),
            replica_nodes: Vec::new(),
        }
    }
}

impl Placement {
    /// The shard that owns `partition` of `topic`: the one its assignment names, if that
    /// shard exists (a restart with fewer shards falls back to the hash), else by hash.
    pub fn owner(&self, topic: &str, partition: i32, shard_count: usize) -> usize {
        // A cluster's broker id is node * CLUSTER_SHARDS_PER_NODE_MAX + shard; a single
        // node's is the shard, below that bound, which the remainder leaves as it is.
        let assigned = self
            .assigned(partition)
            .and_then(|brokers| u64::try_from(brokers[0]).ok())
            .and_then(|broker| usize::try_from(broker % CLUSTER_SHARDS_PER_NODE_MAX).ok())
            .filter(|&shard| shard < shard_count);
        assigned.unwrap_or_else(|| owner_shard(topic, partition, shard_count))
    }

    /// The cluster node `partition` lives on; `None` on a single node (or for a partition
    /// created before the node joined a cluster), where it is local.
    pub fn node_of(&self, partition: i32) -> Option<u64> {
        self.nodes.get(usize::try_from(partition).ok()?).copied()
    }

    /// The nodes holding a replica of `partition` when it is replicated (more than one).
    pub fn replicas_of(&self, partition: i32) -> Option<&[u64]> {
        let nodes = self.replica_nodes.get(usize::try_from(partition).ok()?)?;
        (nodes.len() > 1).then_some(nodes.as_slice())
    }

    /// In a cluster: pins each manually assigned partition to the node of the first broker
    /// its assignment lists (where the hash-free round-robin put it before).
    pub fn pin_assigned_nodes(&mut self) {
        for (partition, brokers) in self.replicas.iter().enumerate() {
            let node = brokers.first().and_then(|b| u64::try_from(*b).ok());
            if let (Some(broker), Some(slot)) = (node, self.nodes.get_mut(partition)) {
                *slot = broker / CLUSTER_SHARDS_PER_NODE_MAX;
            }
        }
    }

    /// The replicas Metadata lists for `partition` led by `leader`: its assignment when that
    /// placed it, else the leader alone.
    pub fn replica_ids(&self, partition: i32, leader: i32) -> Vec<i32> {
        match self.assigned(partition) {
            Some(brokers) if brokers[0] == leader => brokers.to_vec(),
            _ => vec![leader],
        }
    }

    fn assigned(&self, partition: i32) -> Option<&[i32]> {
        let brokers = self.replicas.get(usize::try_from(partition).ok()?)?;
        (!brokers.is_empty()).then_some(brokers.as_slice())
    }
}

/// What a valid CreateTopics entry asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLayout {
    /// `None`: the broker's default partition count (`num_partitions` -1).
    pub partition_count: Option<i32>,
    pub placement: Placement,
}

/// Checks a CreateTopics entry: `assignments` are (partition index, broker ids), and
/// `brokers` every broker id known (this node's shards, and in a cluster every registered
/// node's).
pub fn check_new_topic(
    num_partitions: i32,
    replication_factor: i16,
    assignments: &[(i32, Vec<i32>)],
    brokers: &[i32],
) -> Result<TopicLayout, AdminError> {
    if assignments.is_empty() {
        if replication_factor < -1 || replication_factor == 0 {
            return Err(AdminError::InvalidReplicationFactor(
                "Replication factor must be larger than 0, or -1 to use the default value."
                    .to_owned(),
            ));
        }
        if num_partitions < -1 || num_partitions == 0 {
            return Err(AdminError::InvalidPartitions(
                "Number of partitions was set to an invalid non-positive value.".to_owned(),
            ));
        }
        // Kafka's default.replication.factor is 1.
        let replication_factor = replication_factor.max(1);
        check_replication_factor(replication_factor, brokers.len())?;
        return Ok(TopicLayout {
            partition_count: (num_partitions != -1).then_some(num_partitions),
            placement: Placement {
                replication_factor,
                replicas: Vec::new(),
                nodes: Vec::new(),
                replica_nodes: Vec::new(),
            },
        });
    }
    if replication_factor != -1 {
        return Err(AdminError::InvalidRequest(
            "A manual partition assignment was specified, but replication factor was not set to -1."
                .to_owned(),
        ));
    }
    if num_partitions != -1 {
        return Err(AdminError::InvalidRequest(
            "A manual partition assignment was specified, but numPartitions was not set to -1."
                .to_owned(),
        ));
    }
    let known = brokers;
    let mut brokers: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    let mut replicas_per_partition = None;
    for (partition, broker_ids) in assignments {
        if brokers.contains_key(partition) {
            return Err(AdminError::InvalidReplicaAssignment(format!(
                "Found multiple manual partition assignments for partition {partition}"
            )));
        }
        check_assignment(broker_ids, replicas_per_partition, known)?;
        replicas_per_partition = Some(broker_ids.len());
        brokers.insert(*partition, broker_ids.clone());
    }
    // Consecutive from 0: the keys are then exactly 0..len.
    let consecutive = brokers
        .keys()
        .enumerate()
        .all(|(i, &partition)| i64::try_from(i).is_ok_and(|i| i == i64::from(partition)));
    if !consecutive {
        return Err(AdminError::InvalidReplicaAssignment(
            "partitions should be a consecutive 0-based integer sequence".to_owned(),
        ));
    }
    // Distinct known brokers: never more than the broker count, so no factor check.
    let replication_factor =
        replicas_per_partition.map_or(1, |r| i16::try_from(r).unwrap_or(i16::MAX));
    let replicas: Vec<Vec<i32>> = brokers.into_values().collect();
    Ok(TopicLayout {
        partition_count: i32::try_from(replicas.len()).ok(),
        placement: Placement {
            replication_factor,
            replicas,
            nodes: Vec::new(),
            replica_nodes: Vec::new(),
        },
    })
}

/// Checks the assignments of CreatePartitions for `additional` new partitions of a topic
/// created with `replication_factor`; returns their replicas, the leader first.
pub fn check_new_partitions(
    additional: i32,
    assignments: &[Vec<i32>],
    brokers: &[i32],
    replication_factor: i16,
) -> Result<Vec<Vec<i32>>, AdminError> {
    if usize::try_from(additional).ok() != Some(assignments.len()) {
        return Err(AdminError::InvalidReplicaAssignment(format!(
            "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
            assignments.len()
        )));
    }
    let mut placed = Vec::with_capacity(assignments.len());
    for broker_ids in assignments {
        let replicas = usize::try_from(replication_factor).unwrap_or(1);
        check_assignment(broker_ids, Some(replicas), brokers)?;
        placed.push(broker_ids.clone());
    }
    Ok(placed)
}

/// Kafka's `validateManualPartitionAssignment`: known brokers, none twice, and as many as
/// the partitions before (`replicas`).
fn check_assignment(
    broker_ids: &[i32],
    replicas: Option<usize>,
    known: &[i32],
) -> Result<(), AdminError> {
    if broker_ids.is_empty() {
        return Err(AdminError::InvalidReplicaAssignment(
            "The manual partition assignment includes an empty replica list.".to_owned(),
        ));
    }
    let mut sorted = broker_ids.to_vec();
    sorted.sort_unstable();
    for (i, &broker) in sorted.iter().enumerate() {
        if !known.contains(&broker) {
            return Err(AdminError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes broker {broker}, but no such broker is registered."
            )));
        }
        if i > 0 && sorted[i - 1] == broker {
            return Err(AdminError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes the broker {broker} more than once."
            )));
        }
    }
    if let Some(replicas) = replicas {
        if sorted.len() != replicas {
            return Err(AdminError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {replicas} replica(s).",
                sorted.len()
            )));
        }
    }
    Ok(())
}

fn check_replication_factor(replicas: i16, broker_count: usize) -> Result<(), AdminError> {
    if usize::try_from(replicas).map_or(true, |r| r > broker_count) {
        return Err(AdminError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {replicas} time(s): The target replication factor of {replicas} cannot be reached because only {broker_count} broker(s) are registered."
        )));
    }
    Ok(())
}

/// Whether `topic` is an internal topic (see `internal_topics`): written by the
/// coordinators only, never matched by subscription patterns, marked internal in Metadata,
/// and placed so that partition `p` is on the shard coordinating its keys.
pub fn is_internal(topic: &str) -> bool {
    topic == crate::group::OFFSETS_TOPIC || topic == crate::txn::txn_store::TXN_STATE_TOPIC
}

/// Which shard owns a partition. Consecutive partitions of a topic land on consecutive
/// shards, starting from a per-topic offset so that single-partition topics spread too.
pub fn owner_shard(topic: &str, partition: i32, shard_count: usize) -> usize {
    if is_internal(topic) {
        // The shard coordinating the partition's keys (`group::coordinator_shard`).
        let partition = u64::from(partition.unsigned_abs());
        return (partition % shard_count.max(1) as u64) as usize;
    }
    let hash = fnv_hash(topic);
    let partition = u64::from(partition.unsigned_abs());
    let count = shard_count.max(1) as u64;
    ((hash % count + partition) % count) as usize
}

fn fnv_hash(text: &str) -> u64 {
    use std::hash::Hasher;
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(text.as_bytes());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(result: Result<TopicLayout, AdminError>) -> &'static str {
        match result {
            Ok(_) => "ok",
            Err(AdminError::InvalidRequest(_)) => "request",
            Err(AdminError::InvalidReplicaAssignment(_)) => "assignment",
            Err(AdminError::InvalidReplicationFactor(_)) => "factor",
            Err(AdminError::InvalidPartitions(_)) => "partitions",
            Err(_) => "other",
        }
    }

    #[test]
    fn topics_without_assignments_check_factor_then_count() {
        let layout = |partition_count, replication_factor| TopicLayout {
            partition_count,
            placement: Placement {
                replication_factor,
                replicas: Vec::new(),
                nodes: Vec::new(),
                replica_nodes: Vec::new(),
            },
        };
        assert_eq!(
            check_new_topic(-1, -1, &[], &[0, 1]).ok(),
            Some(layout(None, 1))
        );
        assert_eq!(
            check_new_topic(3, 2, &[], &[0, 1]).ok(),
            Some(layout(Some(3), 2))
        );
        assert_eq!(kind(check_new_topic(0, 0, &[], &[0, 1])), "factor");
        assert_eq!(kind(check_new_topic(0, 1, &[], &[0, 1])), "partitions");
        assert_eq!(kind(check_new_topic(1, 3, &[], &[0, 1])), "factor");
    }

    #[test]
    fn assignments_are_checked_as_kafka_does_and_single_replicas_honoured() {
        let one = |p: i32, b: i32| (p, vec![b]);
        assert_eq!(
            check_new_topic(-1, -1, &[one(1, 0), one(0, 1)], &[0, 1])
                .ok()
                .map(|l| l.placement),
            Some(Placement {
                replication_factor: 1,
                replicas: vec![vec![1], vec![0]],
                nodes: Vec::new(),
                replica_nodes: Vec::new(),
            })
        );
        // The first broker listed (the preferred leader) gets the partition.
        assert_eq!(
            check_new_topic(-1, -1, &[(0, vec![1, 0])], &[0, 1])
                .ok()
                .map(|l| l.placement),
            Some(Placement {
                replication_factor: 2,
                replicas: vec![vec![1, 0]],
                nodes: Vec::new(),
                replica_nodes: Vec::new(),
            })
        );
        assert_eq!(
            kind(check_new_topic(2, -1, &[one(0, 0)], &[0, 1])),
            "request"
        );
        assert_eq!(
            kind(check_new_topic(-1, 1, &[one(0, 0)], &[0, 1])),
            "request"
        );
        assert_eq!(
            kind(check_new_topic(-1, -1, &[one(0, 2)], &[0, 1])),
            "assignment"
        );
        assert_eq!(
            kind(check_new_topic(-1, -1, &[one(0, -1)], &[0, 1])),
            "assignment"
        );
        assert_eq!(
            kind(check_new_topic(-1, -1, &[(0, vec![])], &[0, 1])),
            "assignment"
        );
        assert_eq!(
            kind(check_new_topic(-1, -1, &[(0, vec![1, 1])], &[0, 1])),
            "assignment"
        );
        assert_eq!(
            kind(check_new_topic(-1, -1, &[one(0, 0), one(0, 1)], &[0, 1])),
            "assignment"
        );
        assert_eq!(
            kind(check_new_topic(
                -1,
                -1,
                &[one(0, 0), (1, vec![0, 1])],
                &[0, 1]
            )),
            "assignment"
        );
        assert_eq!(
            kind(check_new_topic(-1, -1, &[one(0, 0), one(2, 1)], &[0, 1])),
            "assignment"
        );
    }

    #[test]
    fn cluster_assignments_name_cluster_brokers_and_pin_their_nodes() {
        let known = [1000, 1001, 2000, 2001];
        let one = |p: i32, b: i32| (p, vec![b]);
        let mut layout = check_new_topic(-1, -1, &[one(0, 2001), one(1, 1000)], &known)
            .expect("cluster broker ids");
        assert_eq!(
            kind(check_new_topic(-1, -1, &[one(0, 1)], &known)),
            "assignment",
            "a single node's id is no cluster broker"
        );
        assert_eq!(
            kind(check_new_topic(-1, -1, &[one(0, 3000)], &known)),
            "assignment"
        );
        assert_eq!(kind(check_new_topic(1, 5, &[], &known)), "factor");
        let placement = &mut layout.placement;
        placement.nodes = vec![1, 1];
        placement.pin_assigned_nodes();
        assert_eq!(placement.nodes, [2, 1]);
        assert_eq!(placement.owner("t", 0, 2), 1);
        assert_eq!(placement.owner("t", 1, 2), 0);
        assert_eq!(placement.replica_ids(0, 2001), [2001]);
    }

    #[test]
    fn new_partitions_need_known_brokers_as_many_as_the_topic_has() {
        assert_eq!(
            check_new_partitions(2, &[vec![1], vec![0]], &[0, 1], 1).ok(),
            Some(vec![vec![1], vec![0]])
        );
        assert_eq!(
            check_new_partitions(1, &[vec![1, 0]], &[0, 1], 2).ok(),
            Some(vec![vec![1, 0]])
        );
        for bad in [
            check_new_partitions(2, &[vec![1]], &[0, 1], 1),
            check_new_partitions(1, &[vec![2]], &[0, 1], 1),
            check_new_partitions(1, &[vec![0, 1]], &[0, 1], 1),
            check_new_partitions(1, &[vec![0]], &[0, 1], 2),
        ] {
            assert!(
                matches!(bad, Err(AdminError::InvalidReplicaAssignment(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn partitions_spread_evenly_over_shards() {
        let mut counts = [0usize; 2];
        for p in 0..64 {
            counts[owner_shard("t", p, 2)] += 1;
        }
        assert_eq!(counts, [32, 32]);
    }
}
