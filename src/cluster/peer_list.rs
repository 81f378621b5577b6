//! The cluster's *initial* membership as given on the command line: `--node-id N --peers
//! 1@host:port,2@host:port,3@host:port`, where each address is that node's cluster port. The
//! committed membership may differ later (`sluice cluster add-node / remove-node`); the list
//! still fixes which node coordinates which group and transactional id. A node added after
//! the cluster was formed is given the same list and its own address (`--cluster-addr`).

use std::collections::BTreeMap;

/// A node's id in the cluster (Raft's node id). Kafka broker ids are derived from it.
pub type NodeId = u64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerListError {
    #[error("peer {entry:?}: expected id@host:port")]
    Malformed { entry: String },
    #[error("peer {entry:?}: node id must be a number from 0 to {max}")]
    BadNodeId { entry: String, max: NodeId },
    #[error("node id {node_id} is listed twice in --peers")]
    Duplicate { node_id: NodeId },
    #[error(
        "--node-id {node_id} is not in --peers: a node added to a running cluster names its own \
         cluster address with --cluster-addr"
    )]
    SelfMissing { node_id: NodeId },
    #[error("--cluster-addr {addr:?}: expected host:port")]
    BadOwnAddr { addr: String },
    #[error("--cluster-addr {addr} differs from node {node_id}'s entry in --peers ({listed})")]
    OwnAddrConflict {
        node_id: NodeId,
        addr: String,
        listed: String,
    },
}

/// The node ids a Kafka broker id can be formed from (`node_id * 1000 + shard`) without
/// overflowing an i32.
pub const NODE_ID_MAX: NodeId = 2_000_000;

/// This node and the initial voters of the metadata Raft group, by id, with their cluster
/// addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerList {
    pub node_id: NodeId,
    /// The initial members (`--peers`), the same list on every node.
    pub peers: BTreeMap<NodeId, String>,
    /// This node's cluster address: its `--peers` entry, or `--cluster-addr`.
    own_addr: String,
}

fn is_host_port(addr: &str) -> bool {
    addr.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

/// One `id@host:port` entry.
pub fn parse_member(entry: &str) -> Result<(NodeId, String), PeerListError> {
    let malformed = || PeerListError::Malformed {
        entry: entry.to_string(),
    };
    let (id, addr) = entry.split_once('@').ok_or_else(malformed)?;
    if !is_host_port(addr) {
        return Err(malformed());
    }
    let id: NodeId = id
        .parse()
        .ok()
        .filter(|id| *id <= NODE_ID_MAX)
        .ok_or_else(|| PeerListError::BadNodeId {
            entry: entry.to_string(),
            max: NODE_ID_MAX,
        })?;
    Ok((id, addr.to_string()))
}

impl PeerList {
    /// Parses `1@host:port,2@host:port` and checks that `node_id` is one of them.
    pub fn parse(node_id: NodeId, peers: &str) -> Result<PeerList, PeerListError> {
        PeerList::parse_with(node_id, peers, None)
    }

    /// As [`PeerList::parse`]; a node not in `peers` (added to a running cluster) needs its
    /// own cluster address, `cluster_addr`.
    pub fn parse_with(
        node_id: NodeId,
        peers: &str,
        cluster_addr: Option<&str>,
    ) -> Result<PeerList, PeerListError> {
        let mut parsed = BTreeMap::new();
        for entry in peers.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, addr) = parse_member(entry)?;
            if parsed.insert(id, addr).is_some() {
                return Err(PeerListError::Duplicate { node_id: id });
            }
        }
        if let Some(addr) = cluster_addr.filter(|a| !is_host_port(a)) {
            return Err(PeerListError::BadOwnAddr {
                addr: addr.to_owned(),
            });
        }
        let own_addr = match (parsed.get(&node_id), cluster_addr) {
            (Some(listed), Some(addr)) if listed != addr => {
                return Err(PeerListError::OwnAddrConflict {
                    node_id,
                    addr: addr.to_owned(),
                    listed: listed.clone(),
                })
            }
            (Some(listed), _) => listed.clone(),
            (None, Some(addr)) => addr.to_owned(),
            (None, None) => return Err(PeerListError::SelfMissing { node_id }),
        };
        Ok(PeerList {
            node_id,
            peers: parsed,
            own_addr,
        })
    }

    /// This node's own cluster address, where it listens for its peers.
    pub fn own_addr(&self) -> &str {
        &self.own_addr
    }

    /// Whether this node is one of the initial members (it may form the cluster; a node
    /// added later only ever joins one).
    pub fn is_initial_member(&self) -> bool {
        self.peers.contains_key(&self.node_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_three_nodes_and_finds_itself() {
        let list = PeerList::parse(2, "1@127.0.0.1:9101, 2@127.0.0.1:9102,3@localhost:9103")
            .expect("valid list");
        assert_eq!(list.peers.len(), 3);
        assert_eq!(list.own_addr(), "127.0.0.1:9102");
        assert_eq!(list.peers[&3], "localhost:9103");
    }

    #[test]
    fn rejects_bad_lists() {
        assert!(matches!(
            PeerList::parse(1, "1@h:1,1@h:2"),
            Err(PeerListError::Duplicate { node_id: 1 })
        ));
        assert!(matches!(
            PeerList::parse(4, "1@h:1,2@h:2"),
            Err(PeerListError::SelfMissing { node_id: 4 })
        ));
        assert!(matches!(
            PeerList::parse(1, "1@h"),
            Err(PeerListError::Malformed { .. })
        ));
        assert!(matches!(
            PeerList::parse(1, "1@h:99999"),
            Err(PeerListError::Malformed { .. })
        ));
        assert!(matches!(
            PeerList::parse(1, "x@h:1"),
            Err(PeerListError::BadNodeId { .. })
        ));
    }

    #[test]
    fn a_node_added_later_names_its_own_address() {
        let added = PeerList::parse_with(4, "1@h:1,2@h:2,3@h:3", Some("h:4")).expect("valid");
        assert_eq!(added.own_addr(), "h:4");
        assert!(!added.is_initial_member());
        assert_eq!(added.peers.len(), 3, "the initial members stay as given");
        assert!(matches!(
            PeerList::parse_with(1, "1@h:1", Some("h:9")),
            Err(PeerListError::OwnAddrConflict { .. })
        ));
        assert!(matches!(
            PeerList::parse_with(4, "1@h:1", Some("h")),
            Err(PeerListError::BadOwnAddr { .. })
        ));
    }
}
