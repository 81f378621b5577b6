//! `sluice cluster status | add-node | remove-node`: a node's view of the metadata Raft group,
//! and changes of its members, asked over a node's cluster port (a follower passes changes on
//! to the leader).

use clap::{Args, Subcommand};

use crate::cluster::cluster_rpc::{call_once, RpcReply, RpcRequest};
use crate::cluster::{MemberChange, NodeId};

use super::CliError;

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// The node asked: any member's cluster address.
#[derive(Debug, Args)]
pub struct NodeArg {
    /// The node's cluster address (its entry in --peers), host:port
    #[arg(long, env = "SLUICE_CLUSTER_NODE", default_value = "127.0.0.1:9093")]
    node: String,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Print a node's view of the cluster as JSON: role, leader, voters, learners, and on the
    /// leader the last index each member acknowledged.
    Status {
        #[command(flatten)]
        node: NodeArg,
    },
    /// Add a node (started with --node-id ID and its cluster address) as a voter: it becomes a
    /// learner, catches up, then is promoted.
    AddNode {
        /// ID@host:port, the new node's id and cluster address
        member: String,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Remove a node from the cluster's voters and learners (refused for the last voter, or
    /// when the voters left could not form a majority).
    RemoveNode {
        /// The node's id
        id: NodeId,
        #[command(flatten)]
        node: NodeArg,
    },
}

pub fn run(args: ClusterArgs) -> Result<(), CliError> {
    let (node, request) = match args.command {
        ClusterCommand::Status { node } => (node.node, RpcRequest::Status),
        ClusterCommand::AddNode { member, node } => {
            let change = parse_member(&member)?;
            let request = RpcRequest::Members {
                change,
                forwarded: false,
            };
            (node.node, request)
        }
        ClusterCommand::RemoveNode { id, node } => {
            let request = RpcRequest::Members {
                change: MemberChange::Remove { node: id },
                forwarded: false,
            };
            (node.node, request)
        }
    };
    let unreachable = |e: std::io::Error| CliError::Usage(format!("cluster node {node}: {e}"));
    // The cluster protocol runs on tokio, as on the node's control plane.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Output)?;
    let reply = runtime
        .block_on(call_once(&node, &request))
        .map_err(unreachable)?;
    match reply {
        RpcReply::Status(status) => {
            let json = serde_json::to_string_pretty(&status)
                .map_err(|e| CliError::Output(std::io::Error::other(e)))?;
            println!("{json}");
            Ok(())
        }
        RpcReply::Members(Ok(done)) => {
            println!("{done}");
            Ok(())
        }
        RpcReply::Members(Err(refused)) => Err(CliError::Usage(refused)),
        _ => Err(CliError::Usage(format!(
            "cluster node {node} answered another request"
        ))),
    }
}

/// `ID@host:port`, as in --peers.
fn parse_member(member: &str) -> Result<MemberChange, CliError> {
    let (node, addr) = crate::cluster::peer_list::parse_member(member.trim())
        .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(MemberChange::Add { node, addr })
}
