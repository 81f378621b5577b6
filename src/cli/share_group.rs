//! `sluice share-group ...`: share-group operations (like kafka-share-groups), mirroring
//! `sluice group ...`.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use clap::{Args, Subcommand};

use crate::client::group_admin::GroupAdmin;
use crate::client::share_admin::{
    is_group_not_found, is_non_empty_group, ShareAdmin, ShareGroupDescription, ShareOffset,
    SHARE_GROUP_TYPE,
};
use crate::client::ClientError;

use super::args::{BootstrapArgs, ResetToArgs};
use super::CliError;

#[derive(Debug, Args)]
pub struct ShareGroupArgs {
    #[command(subcommand)]
    pub command: ShareGroupCommand,
}

#[derive(Debug, Subcommand)]
pub enum ShareGroupCommand {
    /// List share groups: id, state, coordinator.
    List {
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Show a share group's members and, per partition, start offset, log end, lag and
    /// records in flight.
    Describe {
        group: String,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Move a share group's start offsets; the broker refuses while the group has members.
    Reset {
        group: String,
        /// Topic whose start offsets to move (repeatable) [default: every topic the group has
        /// state for]
        #[arg(long = "topic")]
        topics: Vec<String>,
        #[command(flatten)]
        to: ResetToArgs,
        /// Show the new start offsets without applying them
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Forget a share group's state for some topics; refused while it has members.
    DeleteOffsets {
        group: String,
        /// Topic whose state to forget (repeatable, at least one)
        #[arg(long = "topic", required = true)]
        topics: Vec<String>,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Delete a share group and its state on every partition; refused while it has members.
    Delete {
        group: String,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
}

fn connect(bootstrap: &BootstrapArgs) -> Result<ShareAdmin, CliError> {
    Ok(ShareAdmin::new(GroupAdmin::new(bootstrap.connect()?)))
}

/// Turns the broker's refusals about the group into sentences.
fn explain(group: &str, action: &str, error: ClientError) -> CliError {
    if is_group_not_found(&error) {
        CliError::Usage(format!("share group '{group}' does not exist"))
    } else if is_non_empty_group(&error) {
        CliError::Usage(format!(
            "share group '{group}' has active members; stop its consumers before {action}"
        ))
    } else {
        CliError::Client(error)
    }
}

/// The group, refusing with a readable error when there is no share group of that name
/// (also before deleting: DeleteGroups would delete a consumer group of that name).
fn existing_group(admin: &mut ShareAdmin, group: &str) -> Result<ShareGroupDescription, CliError> {
    admin
        .describe_group(group)
        .map_err(|e| explain(group, "changing it", e))
}

fn text_or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

pub fn run(args: ShareGroupArgs) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match args.command {
        ShareGroupCommand::List { bootstrap } => {
            let mut admin = connect(&bootstrap)?;
            writeln!(out, "GROUP\tSTATE\tCOORDINATOR").map_err(CliError::Output)?;
            for g in admin.groups().list_groups()? {
                if g.group_type == SHARE_GROUP_TYPE {
                    writeln!(out, "{}\t{}\t{}", g.group_id, g.state, g.coordinator_id)
                        .map_err(CliError::Output)?;
                }
            }
        }
        ShareGroupCommand::Describe { group, bootstrap } => {
            let mut admin = connect(&bootstrap)?;
            let description = existing_group(&mut admin, &group)?;
            let offsets = admin.start_offsets(&group)?;
            describe(&mut out, &mut admin, &description, offsets)?;
        }
        ShareGroupCommand::Reset {
            group,
            topics,
            to,
            dry_run,
            bootstrap,
        } => {
            let spec = to.spec()?;
            let mut admin = connect(&bootstrap)?;
            existing_group(&mut admin, &group)?;
            let topics: BTreeSet<String> = if topics.is_empty() {
                admin
                    .start_offsets(&group)?
                    .into_iter()
                    .map(|o| o.topic)
                    .collect()
            } else {
                topics.into_iter().collect()
            };
            if topics.is_empty() {
                return Err(CliError::Usage(format!(
                    "share group '{group}' has no start offsets yet; name topics with --topic"
                )));
            }
            let mut targets = Vec::new();
            for topic in &topics {
                for partition in admin.groups().partitions(topic)? {
                    let offset = admin.groups().reset_target(topic, partition, spec)?;
                    targets.push((topic.clone(), partition, offset));
                }
            }
            if !dry_run {
                admin
                    .alter_start_offsets(&group, &targets)
                    .map_err(|e| explain(&group, "resetting its start offsets", e))?;
            }
            writeln!(out, "TOPIC\tPARTITION\tNEW-START-OFFSET").map_err(CliError::Output)?;
            for (topic, partition, offset) in &targets {
                writeln!(out, "{topic}\t{partition}\t{offset}").map_err(CliError::Output)?;
            }
            if dry_run {
                writeln!(out, "(dry run: nothing changed)").map_err(CliError::Output)?;
            }
        }
        ShareGroupCommand::DeleteOffsets {
            group,
            topics,
            bootstrap,
        } => {
            let mut admin = connect(&bootstrap)?;
            existing_group(&mut admin, &group)?;
            admin
                .delete_start_offsets(&group, &topics)
                .map_err(|e| explain(&group, "deleting its start offsets", e))?;
            writeln!(
                out,
                "Deleted the start offsets of share group {group} for {}.",
                topics.join(", ")
            )
            .map_err(CliError::Output)?;
        }
        ShareGroupCommand::Delete { group, bootstrap } => {
            let mut admin = connect(&bootstrap)?;
            existing_group(&mut admin, &group)?;
            admin
                .groups()
                .delete_group(&group)
                .map_err(|e| explain(&group, "deleting it", e))?;
            writeln!(out, "Deleted share group {group}.").map_err(CliError::Output)?;
        }
    }
    Ok(())
}

/// The group line, one line per member, then one row per share-partition (and per assigned
/// partition the group has no state for yet).
fn describe(
    out: &mut impl Write,
    admin: &mut ShareAdmin,
    description: &ShareGroupDescription,
    offsets: Vec<ShareOffset>,
) -> Result<(), CliError> {
    writeln!(
        out,
        "Group: {}\tState: {}\tEpoch: {}\tAssignor: {}\tCoordinator: {}\tMembers: {}",
        description.group_id,
        description.state,
        description.group_epoch,
        description.assignor,
        description.coordinator_id,
        description.members.len()
    )
    .map_err(CliError::Output)?;
    let mut rows: BTreeMap<(String, i32), Option<ShareOffset>> = BTreeMap::new();
    for m in &description.members {
        let assigned: Vec<String> = m
            .assignment
            .iter()
            .flat_map(|(topic, parts)| parts.iter().map(move |p| format!("{topic}-{p}")))
            .collect();
        writeln!(
            out,
            "Member: {}\tEpoch: {}\tRack: {}\tSubscribed: {}\tAssigned: {}",
            m.member_id,
            m.member_epoch,
            m.rack_id.as_deref().unwrap_or("-"),
            m.subscribed.join(","),
            assigned.join(",")
        )
        .map_err(CliError::Output)?;
        for (topic, parts) in &m.assignment {
            for p in parts {
                rows.entry((topic.clone(), *p)).or_insert(None);
            }
        }
    }
    for offset in offsets {
        rows.insert((offset.topic.clone(), offset.partition), Some(offset));
    }
    writeln!(
        out,
        "TOPIC\tPARTITION\tSTART-OFFSET\tLOG-END-OFFSET\tLAG\tIN-FLIGHT"
    )
    .map_err(CliError::Output)?;
    for ((topic, partition), offset) in rows {
        let end = admin.groups().list_offset(&topic, partition, -1)?;
        let (start, lag, in_flight) = match offset.filter(|o| o.start_offset >= 0) {
            // A broker without DescribeShareGroupOffsets v1 sends no lag; the log end
            // less the start offset is then an upper bound, marked as such.
            Some(o) => (
                o.start_offset.to_string(),
                o.lag.map_or_else(
                    || format!("<={}", (end - o.start_offset).max(0)),
                    |lag| lag.to_string(),
                ),
                text_or_dash(o.in_flight),
            ),
            None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        writeln!(
            out,
            "{topic}\t{partition}\t{start}\t{end}\t{lag}\t{in_flight}"
        )
        .map_err(CliError::Output)?;
    }
    Ok(())
}
