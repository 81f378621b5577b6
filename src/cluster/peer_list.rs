//! The cluster's membership as given on the command line: `--node-id N --peers
//! 1@host:port,2@host:port,3@host:port`, where each address is that node's cluster port.

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
    #[error("--node-id {node_id} is not in --peers")]
    SelfMissing { node_id: NodeId },
}

/// The node ids a Kafka broker id can be formed from (`node_id * 1000 + shard`) without
/// overflowing an i32.
pub const NODE_ID_MAX: NodeId = 2_000_000;

/// This node and every voter of the metadata Raft group, by id, with its cluster address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerList {
    pub node_id: NodeId,
    pub peers: BTreeMap<NodeId, String>,
}

impl PeerList {
    /// Parses `1@host:port,2@host:port` and checks that `node_id` is one of them.
    pub fn parse(node_id: NodeId, peers: &str) -> Result<PeerList, PeerListError> {
        let mut parsed = BTreeMap::new();
        for entry in peers.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let malformed = || PeerListError::Malformed {
                entry: entry.to_string(),
            };
            let (id, addr) = entry.split_once('@').ok_or_else(malformed)?;
            let (host, port) = addr.rsplit_once(':').ok_or_else(malformed)?;
            if host.is_empty() || port.parse::<u16>().is_err() {
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
            if parsed.insert(id, addr.to_string()).is_some() {
                return Err(PeerListError::Duplicate { node_id: id });
            }
        }
        if !parsed.contains_key(&node_id) {
            return Err(PeerListError::SelfMissing { node_id });
        }
        Ok(PeerList {
            node_id,
            peers: parsed,
        })
    }

    /// This node's own cluster address, where it listens for its peers.
    pub fn own_addr(&self) -> &str {
        // parse() guarantees the entry.
        self.peers.get(&self.node_id).map_or("", String::as_str)
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
}
