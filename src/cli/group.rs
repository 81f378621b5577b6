//! `sluice group ...`: consumer-group operations (like kafka-consumer-groups).
use std::collections::BTreeSet;
use std::io::Write;

use clap::{Args, Subcommand};

use crate::client::group_admin::GroupAdmin;

use super::args::{BootstrapArgs, ResetToArgs};
use super::CliError;

#[derive(Debug, Args)]
pub struct GroupArgs {
    #[command(subcommand)]
    pub command: GroupCommand,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List groups: id, type, state, coordinator.
    List {
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Show a group's members and, per partition, committed offset, log end and lag.
    Describe {
        group: String,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Move a group's committed offsets; refused while the group has members.
    ResetOffsets {
        group: String,
        /// Topic whose offsets to reset (repeatable) [default: every topic with offsets]
        #[arg(long = "topic")]
        topics: Vec<String>,
        #[command(flatten)]
        to: ResetToArgs,
        /// Show the new offsets without committing them
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Delete a group and its committed offsets; refused while it has members.
    Delete {
        group: String,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
}

fn out_err(e: std::io::Error) -> CliError {
    CliError::Output(e)
}

pub fn run(args: GroupArgs) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match args.command {
        GroupCommand::List { bootstrap } => {
            let mut admin = GroupAdmin::new(bootstrap.connect()?);
            writeln!(out, "GROUP\tTYPE\tSTATE\tCOORDINATOR").map_err(out_err)?;
            for g in admin.list_groups()? {
                let kind = if g.group_type.is_empty() {
                    "classic"
                } else {
                    &g.group_type
                };
                writeln!(
                    out,
                    "{}\t{kind}\t{}\t{}",
                    g.group_id, g.state, g.coordinator_id
                )
                .map_err(out_err)?;
            }
        }
        GroupCommand::Describe { group, bootstrap } => {
            let mut admin = GroupAdmin::new(bootstrap.connect()?);
            let description = admin.describe_group(&group)?;
            let committed = admin.committed_offsets(&group)?;
            writeln!(
                out,
                "Group: {}\tState: {}\tProtocol: {} {}\tCoordinator: {}\tMembers: {}",
                description.group_id,
                description.state,
                description.protocol_type,
                description.protocol,
                description.coordinator_id,
                description.members.len()
            )
            .map_err(out_err)?;
            let mut owner = std::collections::BTreeMap::new();
            for m in &description.members {
                let instance = m
                    .group_instance_id
                    .as_deref()
                    .map(|i| format!(" instance={i}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "Member: {}{instance}\tClient: {} {}",
                    m.member_id, m.client_id, m.client_host
                )
                .map_err(out_err)?;
                for (topic, parts) in &m.assignment {
                    for p in parts {
                        owner.insert((topic.clone(), *p), m.member_id.clone());
                    }
                }
            }
            let topics: BTreeSet<String> = committed
                .keys()
                .map(|(t, _)| t.clone())
                .chain(owner.keys().map(|(t, _)| t.clone()))
                .collect();
            writeln!(
                out,
                "TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tMEMBER"
            )
            .map_err(out_err)?;
            for topic in topics {
                for partition in admin.partitions(&topic)? {
                    let key = (topic.clone(), partition);
                    let current = committed.get(&key).copied();
                    if current.is_none() && !owner.contains_key(&key) {
                        continue;
                    }
                    let end = admin.list_offset(&topic, partition, -1)?;
                    let (current_text, lag) = match current {
                        Some(c) => (c.to_string(), (end - c).max(0).to_string()),
                        None => ("-".to_owned(), "-".to_owned()),
                    };
                    let member = owner.get(&key).map_or("-", String::as_str);
                    writeln!(
                        out,
                        "{topic}\t{partition}\t{current_text}\t{end}\t{lag}\t{member}"
                    )
                    .map_err(out_err)?;
                }
            }
        }
        GroupCommand::ResetOffsets {
            group,
            topics,
            to,
            dry_run,
            bootstrap,
        } => {
            let spec = to.spec()?;
            let mut admin = GroupAdmin::new(bootstrap.connect()?);
            let description = admin.describe_group(&group)?;
            if description.is_active() {
                return Err(CliError::Usage(format!(
                    "group '{group}' is {} with {} member(s); stop its consumers before resetting offsets",
                    description.state,
                    description.members.len()
                )));
            }
            let topics: Vec<String> = if topics.is_empty() {
                let committed = admin.committed_offsets(&group)?;
                committed
                    .keys()
                    .map(|(t, _)| t.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect()
            } else {
                topics
            };
            if topics.is_empty() {
                return Err(CliError::Usage(format!(
                    "group '{group}' has no committed offsets; name topics with --topic"
                )));
            }
            let mut targets = Vec::new();
            for topic in &topics {
                for partition in admin.partitions(topic)? {
                    let offset = admin.reset_target(topic, partition, spec)?;
                    targets.push((topic.clone(), partition, offset));
                }
            }
            if !dry_run {
                admin.commit_offsets(&group, &targets)?;
            }
            writeln!(out, "TOPIC\tPARTITION\tNEW-OFFSET").map_err(out_err)?;
            for (topic, partition, offset) in &targets {
                writeln!(out, "{topic}\t{partition}\t{offset}").map_err(out_err)?;
            }
            if dry_run {
                writeln!(out, "(dry run: nothing committed)").map_err(out_err)?;
            }
        }
        GroupCommand::Delete { group, bootstrap } => {
            let mut admin = GroupAdmin::new(bootstrap.connect()?);
            admin.delete_group(&group)?;
            writeln!(out, "Deleted group {group}.").map_err(out_err)?;
        }
    }
    Ok(())
}
