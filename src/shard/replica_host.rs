//! The replicas a shard hosts (issue 17, sixth slice part 2): a partition of a topic with
//! replica nodes (`Placement::replica_nodes`) has a [`Replica`] on its shard of every
//! replica node, over the same `PartitionLog` Fetch reads. The shard
//!
//! - opens it with the partition (the preferred leader, the first replica node, campaigns at
//!   once, so leadership starts out spread like the partitions);
//! - runs it as a task (`Replica::run`: drive whenever Raft has work);
//! - ticks every replica from one timer (`REPLICA_TICK_MS`) and publishes leadership changes
//!   to the node's [`ReplicaLeaders`](crate::cluster::ReplicaLeaders), which Metadata reads on
//!   any shard;
//! - steps the messages `replica_net` reads from peers into it.
//!
//! Produce on the leader proposes (`handlers::produce`); Produce, Fetch and ListOffsets on a
//! follower answer NOT_LEADER_OR_FOLLOWER (`Shard::partition` does not hand out a follower's
//! log).

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use super::catalog::TopicMeta;
use super::control::AdminError;
use super::Shard;
use crate::cluster::{PartitionLeader, ReplicaView};
use crate::log::PartitionLog;
use crate::replica::{GroupKey, RaftMessage, Replica, ReplicaConfig, ReplicaTransport};

/// Where a cluster node keeps its partitions' Raft logs, inside the data dir (one directory
/// per partition, named like the partition's).
pub const REPLICAS_DIR: &str = "replicas";

/// A replica this shard hosts, its driving task, and the leadership last published.
pub(super) struct Hosted {
    replica: Rc<Replica>,
    _run: crate::io::Task<()>,
    /// Opens the partition's share state when a committed change to it arrives first.
    _share_state: crate::io::Task<()>,
    published: RefCell<Option<ReplicaView>>,
    /// The partition's preferred leader (its first replica node).
    preferred: u64,
}

impl Shard {
    pub(super) fn replica_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.config
            .data_dir
            .join(REPLICAS_DIR)
            .join(format!("{topic}-{partition}"))
    }

    /// Opens the replica of `partition` of `meta` over `log` if the partition is replicated
    /// and this node is one of its replicas (and it is not open yet).
    pub(super) async fn open_replica(
        &self,
        meta: &TopicMeta,
        partition: i32,
        log: &PartitionLog,
    ) -> Result<(), AdminError> {
        let (Some(cluster), Some(nodes)) = (&self.cluster, meta.placement.replicas_of(partition))
        else {
            return Ok(());
        };
        if !nodes.contains(&cluster.node_id) {
            return Ok(());
        }
        let key = (meta.name.clone(), partition);
        if self.replicas.borrow().contains_key(&key) {
            return Ok(());
        }
        let transport: Rc<dyn ReplicaTransport> = cluster.net.clone();
        let replica = Replica::open(
            GroupKey::new(&meta.name, partition),
            ReplicaConfig {
                compact_bytes: self.config.replica_log_compact_bytes,
                ..ReplicaConfig::new(cluster.node_id, nodes.to_vec())
            },
            self.replica_dir(&meta.name, partition),
            log.clone(),
            transport,
        )
        .await
        .map_err(|e| {
            AdminError::Storage(format!(
                "opening the replica of {}-{partition}: {e}",
                meta.name
            ))
        })?;
        let replica = Rc::new(replica);
        if nodes.first() == Some(&cluster.node_id) && replica.leader().is_none() {
            // With pre-vote this cannot depose a working leader: at worst it is refused.
            if let Err(e) = replica.campaign() {
                tracing::debug!(topic = %meta.name, partition, error = %e, "campaign refused");
            }
        }
        if let Ok(state_partition) = u32::try_from(partition) {
            if meta.name == crate::group::OFFSETS_TOPIC {
                self.groups
                    .attach_offsets_replica(state_partition, Rc::clone(&replica));
            } else if meta.name == crate::txn::txn_store::TXN_STATE_TOPIC {
                self.txn
                    .attach_state_replica(state_partition, Rc::clone(&replica));
            }
        }
        let running = Rc::clone(&replica);
        let run = crate::io::spawn(async move {
            if let Err(e) = running.run().await {
                // The replica stopped (its disk failed, or it needs a snapshot): its
                // proposals fail and it answers as a non-leader until the broker restarts.
                tracing::error!(group = %running.group(), error = %e, "replica stopped");
            }
        });
        let share_state = self.open_share_state_on_change(meta, partition, log, &replica);
        self.replicas.borrow_mut().insert(
            key,
            Hosted {
                replica,
                _run: run,
                _share_state: share_state,
                published: RefCell::new(None),
                preferred: nodes.first().copied().unwrap_or(cluster.node_id),
            },
        );
        Ok(())
    }

    /// A task that opens the partition's share state (`share::partition_shares`) once the
    /// replica applies a change to it with none attached: on a follower, or at a restart,
    /// nothing else opens it, and the replica holds its applied checkpoint back until then.
    fn open_share_state_on_change(
        &self,
        meta: &TopicMeta,
        partition: i32,
        log: &PartitionLog,
        replica: &Rc<Replica>,
    ) -> crate::io::Task<()> {
        let share = Rc::clone(&self.share);
        let (topic, topic_id, log) = (meta.name.clone(), meta.id, log.clone());
        let replica = Rc::clone(replica);
        crate::io::spawn(async move {
            replica.state_changes_waiting().await;
            if replica.has_attached_state() {
                return;
            }
            let opened = share
                .partition_shares(&topic, topic_id, partition, log, Some(Rc::clone(&replica)))
                .await;
            if let Err(e) = opened {
                tracing::error!(%topic, partition, error = %e, "opening a replicated partition's share state");
            }
        })
    }

    /// The committed share state of a replicated partition, as changes (for a follower
    /// installing a snapshot). State on disk or waiting in the replica is opened first.
    pub(super) async fn replicated_share_state(
        &self,
        topic: &str,
        partition: i32,
        replica: &Rc<Replica>,
    ) -> Result<Vec<bytes::Bytes>, String> {
        let Some(meta) = self.topic(topic) else {
            return Err(format!("no topic {topic} here"));
        };
        let dir =
            crate::share::share_state_store::partition_dir(&self.config.data_dir, topic, partition);
        let stored = replica.has_waiting_state_changes() || crate::io::dma_file::exists(&dir);
        if !replica.has_attached_state() && stored {
            let log = replica.partition().clone();
            self.share
                .partition_shares(topic, meta.id, partition, log, Some(Rc::clone(replica)))
                .await
                .map_err(|e| e.to_string())?;
        }
        match replica.state_snapshot() {
            Some(snapshot) => snapshot.map_err(|e| e.to_string()),
            None => Ok(Vec::new()),
        }
    }

    /// The replica of `partition` of `topic` this shard hosts, if any.
    pub fn replica(&self, topic: &str, partition: i32) -> Option<Rc<Replica>> {
        let replicas = self.replicas.borrow();
        let hosted = replicas.get(&(topic.to_owned(), partition))?;
        Some(Rc::clone(&hosted.replica))
    }

    /// Hands a peer's message to the replica it is for; a message for a partition this
    /// shard does not host (not created here yet, or deleted) is dropped: Raft resends.
    pub(super) fn step_replica(&self, topic: &str, partition: i32, message: RaftMessage) {
        if let Some(replica) = self.replica(topic, partition) {
            if let Err(e) = replica.step(message) {
                tracing::debug!(group = %replica.group(), error = %e, "replica refused a message");
            }
        }
    }

    /// Closes and forgets the replicas of a deleted topic, and removes their Raft logs.
    pub(super) async fn drop_replicas_of(&self, topic: &str) -> Result<(), AdminError> {
        let dropped: Vec<((String, i32), Hosted)> = {
            let mut replicas = self.replicas.borrow_mut();
            let keys: Vec<(String, i32)> = replicas
                .keys()
                .filter(|(t, _)| t == topic)
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|k| replicas.remove(&k).map(|h| (k, h)))
                .collect()
        };
        for ((topic, partition), hosted) in dropped {
            if let Ok(state_partition) = u32::try_from(partition) {
                if topic == crate::group::OFFSETS_TOPIC {
                    self.groups.detach_offsets_replica(state_partition);
                } else if topic == crate::txn::txn_store::TXN_STATE_TOPIC {
                    self.txn.detach_state_replica(state_partition);
                }
            }
            if let Err(e) = hosted.replica.close().await {
                tracing::warn!(%topic, partition, error = %e, "closing a deleted topic's replica");
            }
            if let Some(cluster) = &self.cluster {
                cluster.plane.replica_leaders().remove(&topic, partition);
            }
            self.remove_replica_dir(&topic, partition).await?;
        }
        Ok(())
    }

    /// Removes a partition's Raft log directory, if there is one.
    pub(super) async fn remove_replica_dir(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(), AdminError> {
        let dir = self.replica_dir(topic, partition);
        if !crate::io::dma_file::exists(&dir) {
            return Ok(());
        }
        let failed = |e| AdminError::Storage(format!("removing {dir:?}: {e}"));
        crate::io::dma_file::remove_dir_all(&dir).map_err(failed)?;
        crate::io::dma_file::sync_dir(&self.config.data_dir.join(REPLICAS_DIR))
            .await
            .map_err(failed)
    }

    /// Closes every replica (shutdown): waiting proposals fail, Raft logs are flushed.
    pub(super) async fn close_replicas(&self) {
        let hosted: Vec<Hosted> = self.replicas.borrow_mut().drain().map(|(_, h)| h).collect();
        for hosted in hosted {
            if let Err(e) = hosted.replica.close().await {
                tracing::warn!(group = %hosted.replica.group(), error = %e, "closing a replica");
            }
        }
    }

    /// One Raft clock tick for every hosted replica; publishes leadership that changed.
    /// With `rebalance`, a leader that is not its partition's preferred leader hands
    /// leadership back to it once it has the whole log (after a restart, say), so leaders
    /// stay spread over the nodes as placement spread them.
    fn tick_replicas(&self, rebalance: bool) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let mut changes = Vec::new();
        for ((topic, partition), hosted) in self.replicas.borrow().iter() {
            hosted.replica.tick();
            hosted.replica.release_if_deposed();
            let replica = &hosted.replica;
            if rebalance && replica.is_leader() && hosted.preferred != cluster.node_id {
                let matched = replica.follower_matches().get(&hosted.preferred).copied();
                if matched == Some(replica.last_index()) {
                    tracing::info!(group = %replica.group(), to = hosted.preferred, "handing leadership back to the preferred replica");
                    replica.transfer_leader(hosted.preferred);
                }
            }
            // A stopped replica's last view would name a leader that may be long gone.
            let now = ReplicaView {
                leader: PartitionLeader {
                    node: replica.leader().filter(|_| !replica.is_closed()),
                    term: replica.term(),
                },
                last_index: replica.last_index(),
                commit_index: replica.commit_index(),
                matched: replica.follower_matches(),
            };
            let mut published = hosted.published.borrow_mut();
            if published.as_ref() != Some(&now) {
                *published = Some(now.clone());
                changes.push(((topic.clone(), *partition), now));
            }
        }
        cluster.plane.replica_leaders().update(changes);
    }
}

/// Ticks the shard's replicas every `REPLICA_TICK_MS` until the task is dropped.
pub async fn tick_loop(shard: Rc<Shard>) {
    let period = Duration::from_millis(crate::constants::REPLICA_TICK_MS);
    let mut ticks: u64 = 0;
    loop {
        crate::io::sleep(period).await;
        ticks = ticks.wrapping_add(1);
        shard.tick_replicas(
            ticks.is_multiple_of(crate::constants::REPLICA_PREFERRED_LEADER_CHECK_TICKS),
        );
    }
}
