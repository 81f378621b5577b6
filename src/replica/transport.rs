//! The seam between a replica and the network: Raft messages out, by group, and in through
//! [`Replica::step`](super::Replica::step); and reads of another replica's partition log,
//! which is how a snapshot's data travels (segment transfer), with the state attached
//! beside the log. The network's side is
//! `shard::replica_net`; the tests' is in memory.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use raft::eraftpb::Message;

/// Names one partition's Raft group: the same on every replica node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub topic: Rc<str>,
    pub partition: i32,
}

impl GroupKey {
    pub fn new(topic: &str, partition: i32) -> GroupKey {
        GroupKey {
            topic: Rc::from(topic),
            partition,
        }
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Where a replica's outgoing messages go. Each message names its target replica (`to`, a
/// node id). `send` must not block or fail, and must only queue (it is called while the
/// replica is busy, so it must not call back into it): a message that cannot be delivered
/// is dropped, and Raft retries (heartbeats, append probes) until the peer answers.
pub trait ReplicaTransport {
    fn send(&self, group: &GroupKey, messages: Vec<Message>);

    /// Reads the partition log of `group` on node `from`, whole batches from the one holding
    /// `offset`, at most about `max_bytes` (at least one batch). A partition log holds only
    /// committed data, so any replica can answer; empty once `offset` is its end.
    fn read_log(&self, group: &GroupKey, from: u64, offset: i64, max_bytes: usize) -> LogRead;

    /// Reads the committed attached state of `group` on node `from` as changes
    /// (`AttachedState::snapshot`; none when it has no state).
    fn read_state(&self, group: &GroupKey, from: u64) -> StateRead;
}

/// What [`ReplicaTransport::read_state`] resolves to.
pub type StateRead = Pin<Box<dyn Future<Output = Result<Vec<Bytes>, String>>>>;

/// What [`ReplicaTransport::read_log`] resolves to: the batches, or why there are none.
pub type LogRead = Pin<Box<dyn Future<Output = Result<Bytes, String>>>>;
