//! A sluice cluster's metadata: a Raft group of the nodes (like Kafka's KRaft quorum) that
//! orders every catalog change, run by openraft on a control-plane thread per node, off the
//! shards' data path. Design and the next slice (partition replication): docs/cluster.md.
//!
//! - [`peer_list`]: `--node-id` / `--peers` parsing.
//! - [`meta_store`]: the Raft log, vote and snapshot on disk, and the state-machine seam.
//! - [`cluster_rpc`]: the length-prefixed TCP protocol between nodes, client side.
//! - [`rpc_server`]: what a node answers on its cluster port.
//! - [`cluster_status`]: a node's view of the group, for `sluice cluster status`.
//! - [`control_plane`]: the thread, its tokio runtime, and the handle shards use.
//! - [`join_gate`]: whether a node with an empty `raft/` forms, follows or is fenced.
//! - [`membership_change`]: adding and removing voters at runtime (`sluice cluster add-node`).
//! - [`replica_leaders`]: the partition leaders a node's replicas know, shared by its shards.
//!
//! A node started without peers never touches this module.

pub mod cluster_rpc;
pub mod cluster_status;
pub mod control_plane;
pub mod join_gate;
pub mod membership_change;
pub mod meta_store;
pub mod peer_list;
pub mod replica_leaders;
pub mod rpc_server;

pub use cluster_rpc::MemberChange;
pub use cluster_rpc::{NodeAnswer, NodeHandler, ReplicaStreamHandler, StreamPurpose};
pub use cluster_status::ClusterStatus;
pub use control_plane::{ClusterError, ControlPlane};
pub use meta_store::{MetaOutcome, MetaRecord, MetaStateMachine};
pub use peer_list::{NodeId, PeerList, PeerListError};
pub use replica_leaders::{PartitionLeader, PartitionStatus, ReplicaLeaders, ReplicaView};
