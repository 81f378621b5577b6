//! The `sluice` binary's subcommands.
//!
//! - `serve` — run the broker ([`serve`], owned by the broker side).
//! - `topic create|list|describe|delete|alter-config` — topic admin over the Kafka protocol.
//! - `produce` / `consume` — console tools like kafka-console-producer/-consumer.
//! - `group` / `share-group` — consumer-group and share-group administration.
//! - `user` — SCRAM users (add/list/delete), online or into a stopped broker's data dir.
//! - `acl add|list|remove` — Kafka ACLs (with `serve --authorizer acl`).
//! - `cluster status | add-node | remove-node` — a cluster node's view of the metadata Raft
//!   group, and changes of its members.
//!
//! Client commands print `error: ...` and exit 1 on failure; usage errors exit 2.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod acl;
pub mod args;
pub mod cli_error;
pub mod cluster;
pub mod config_show;
pub mod consume;
pub mod group;
pub mod produce;
pub mod serve;
pub mod share_group;
pub mod topic;
pub mod tune;
pub mod user;

pub use cli_error::CliError;

/// sluice: a Kafka-compatible, thread-per-core message broker.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker.
    Serve(serve::ServeArgs),
    /// Create, list, describe, delete and configure topics.
    Topic(topic::TopicArgs),
    /// Produce one message per input line (like kafka-console-producer).
    Produce(produce::ProduceArgs),
    /// Print messages of a topic, one value per line (like kafka-console-consumer).
    Consume(consume::ConsumeArgs),
    /// List, describe, reset offsets of and delete consumer groups.
    Group(group::GroupArgs),
    /// List, describe, reset start offsets of and delete share groups.
    ShareGroup(share_group::ShareGroupArgs),
    /// Add, list and delete SASL/SCRAM users.
    User(user::UserArgs),
    /// Add, list and remove ACLs (like kafka-acls.sh).
    Acl(acl::AclArgs),
    /// A cluster's metadata Raft group: a node's view, adding and removing nodes.
    Cluster(cluster::ClusterArgs),
    /// Load generator: produce/consume workloads with HDR latency (see perf/).
    Bench(crate::bench::BenchArgs),
    /// Show the effective broker configuration and where each value came from.
    Config(config_show::ConfigArgs),
    /// Check (and with --apply set) host settings for the broker; --probe-disk measures the disk.
    Tune(tune::TuneArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => return serve::run(args),
        Command::Bench(args) => return crate::bench::main(args),
        Command::Config(args) => return config_show::run(args),
        Command::Tune(args) => return tune::run(args),
        Command::Topic(args) => topic::run(args),
        Command::Produce(args) => produce::run(args),
        Command::Consume(args) => consume::run(args),
        Command::Group(args) => group::run(args),
        Command::ShareGroup(args) => share_group::run(args),
        Command::User(args) => user::run(args),
        Command::Acl(args) => acl::run(args),
        Command::Cluster(args) => cluster::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `sluice consume ... | head` closes our stdout; that is a normal way to stop.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
