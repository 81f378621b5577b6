//! The seam between a replica and the network: Raft messages out, by group, and in through
//! [`Replica::step`](super::Replica::step). This slice has only the tests' in-memory
//! transport; the next one sends them shard-to-shard over the cluster port, coalescing the
//! heartbeats of all groups between one pair of nodes into one message per tick.

use std::fmt;
use std::rc::Rc;

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
}
