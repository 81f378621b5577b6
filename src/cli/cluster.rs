//! `sluice cluster status`: one node's view of the metadata Raft group, asked over its
//! cluster port — nodes, the Raft leader, term, last log and applied (committed) index.

use clap::{Args, Subcommand};

use crate::cluster::cluster_rpc::{call_once, RpcReply, RpcRequest};

use super::CliError;

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Print a node's view of the cluster as JSON.
    Status {
        /// The node's cluster address (its entry in --peers), host:port
        #[arg(long, env = "SLUICE_CLUSTER_NODE", default_value = "127.0.0.1:9093")]
        node: String,
    },
}

pub fn run(args: ClusterArgs) -> Result<(), CliError> {
    match args.command {
        ClusterCommand::Status { node } => {
            let unreachable =
                |e: std::io::Error| CliError::Usage(format!("cluster node {node}: {e}"));
            // The cluster protocol runs on tokio, as on the node's control plane.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(CliError::Output)?;
            let reply = runtime
                .block_on(call_once(&node, &RpcRequest::Status))
                .map_err(unreachable)?;
            let RpcReply::Status(status) = reply else {
                return Err(CliError::Usage(format!(
                    "cluster node {node} answered something other than its status"
                )));
            };
            let json = serde_json::to_string_pretty(&status)
                .map_err(|e| CliError::Output(std::io::Error::other(e)))?;
            println!("{json}");
            Ok(())
        }
    }
}
