//! `sluice topic ...`: topic admin.
use std::io::Write;

use clap::{Args, Subcommand};

use crate::client::admin::{ConfigChange, ConfigSource, NewTopic};
use crate::client::Admin;

use super::args::{parse_key_value, BootstrapArgs};
use super::CliError;

#[derive(Debug, Args)]
pub struct TopicArgs {
    #[command(subcommand)]
    pub command: TopicCommand,
}

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        /// Number of partitions [default: the broker's num.partitions]
        #[arg(long)]
        partitions: Option<i32>,
        /// Replication factor [default: the broker's default]
        #[arg(long)]
        replication_factor: Option<i16>,
        /// Topic config, e.g. --config retention.ms=60000 (repeatable)
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// List topic names, one per line.
    List {
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Show partitions, leaders and non-default configs of a topic.
    Describe {
        name: String,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Delete a topic.
    Delete {
        name: String,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Grow a topic to COUNT partitions in total (CreatePartitions).
    CreatePartitions {
        name: String,
        /// New total number of partitions
        #[arg(long)]
        count: i32,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Delete the records of a partition below an offset (DeleteRecords): its log start
    /// offset moves there.
    DeleteRecords {
        name: String,
        #[arg(long)]
        partition: i32,
        /// First offset to keep; -1 deletes everything below the high watermark
        #[arg(long, allow_negative_numbers = true)]
        before: i64,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Set or delete topic configs (IncrementalAlterConfigs).
    AlterConfig {
        name: String,
        /// Config to set (repeatable)
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// Config to reset to its default (repeatable)
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
}

pub fn run(args: TopicArgs) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match args.command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
            bootstrap,
        } => {
            if partitions.is_some_and(|p| p < 1) {
                return Err(CliError::Usage(
                    "--partitions must be at least 1".to_owned(),
                ));
            }
            let mut admin = Admin::new(bootstrap.connect()?);
            admin.create_topic(&NewTopic {
                name: name.clone(),
                partition_count: partitions,
                replication_factor,
                configs,
            })?;
            writeln!(out, "Created topic {name}.").map_err(CliError::Output)?;
        }
        TopicCommand::List { bootstrap } => {
            let mut admin = Admin::new(bootstrap.connect()?);
            for topic in admin.list_topics()? {
                writeln!(out, "{}", topic.name).map_err(CliError::Output)?;
            }
        }
        TopicCommand::Describe { name, bootstrap } => {
            let mut admin = Admin::new(bootstrap.connect()?);
            let topic = admin.describe_topic(&name)?;
            let configs = if admin.supports_describe_configs()? {
                admin
                    .describe_topic_configs(&name)?
                    .into_iter()
                    .filter(|c| c.source == ConfigSource::DynamicTopic)
                    .map(|c| {
                        let value = if c.is_sensitive {
                            "<sensitive>".to_owned()
                        } else {
                            c.value.unwrap_or_else(|| "null".to_owned())
                        };
                        format!("{}={value}", c.name)
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                String::new()
            };
            let replication_factor = topic.partitions.first().map_or(0, |p| p.replica_ids.len());
            let topic_id = if topic.topic_id.is_nil() {
                String::new()
            } else {
                format!("\tTopicId: {}", topic.topic_id)
            };
            writeln!(
                out,
                "Topic: {}{topic_id}\tPartitionCount: {}\tReplicationFactor: {replication_factor}\tConfigs: {configs}",
                topic.name,
                topic.partitions.len(),
            )
            .map_err(CliError::Output)?;
            for p in &topic.partitions {
                writeln!(
                    out,
                    "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
                    topic.name,
                    p.partition,
                    if p.leader_id < 0 {
                        "none".to_owned()
                    } else {
                        p.leader_id.to_string()
                    },
                    join_ids(&p.replica_ids),
                    join_ids(&p.isr_ids),
                )
                .map_err(CliError::Output)?;
            }
        }
        TopicCommand::Delete { name, bootstrap } => {
            let mut admin = Admin::new(bootstrap.connect()?);
            admin.delete_topic(&name)?;
            writeln!(out, "Deleted topic {name}.").map_err(CliError::Output)?;
        }
        TopicCommand::CreatePartitions {
            name,
            count,
            bootstrap,
        } => {
            let mut admin = Admin::new(bootstrap.connect()?);
            admin.create_partitions(&name, count)?;
            writeln!(out, "Topic {name} now has {count} partitions.").map_err(CliError::Output)?;
        }
        TopicCommand::DeleteRecords {
            name,
            partition,
            before,
            bootstrap,
        } => {
            let mut admin = Admin::new(bootstrap.connect()?);
            let start = admin.delete_records(&name, partition, before)?;
            writeln!(
                out,
                "Partition {partition} of topic {name} now starts at offset {start}."
            )
            .map_err(CliError::Output)?;
        }
        TopicCommand::AlterConfig {
            name,
            set,
            delete,
            bootstrap,
        } => {
            if set.is_empty() && delete.is_empty() {
                return Err(CliError::Usage(
                    "nothing to change: give --set KEY=VALUE and/or --delete KEY".to_owned(),
                ));
            }
            let changes: Vec<ConfigChange> = set
                .into_iter()
                .map(|(name, value)| ConfigChange::Set { name, value })
                .chain(delete.into_iter().map(|name| ConfigChange::Delete { name }))
                .collect();
            let mut admin = Admin::new(bootstrap.connect()?);
            admin.alter_topic_config(&name, &changes)?;
            writeln!(out, "Updated config of topic {name}.").map_err(CliError::Output)?;
        }
    }
    Ok(())
}

fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn parses_create_with_configs() {
        let cli = Cli::try_parse_from([
            "sluice",
            "topic",
            "create",
            "t",
            "--partitions",
            "3",
            "--config",
            "a=1",
            "--config",
            "b=x=y",
            "--bootstrap",
            "h:1",
        ])
        .expect("parse");
        let Command::Topic(TopicArgs {
            command:
                TopicCommand::Create {
                    name,
                    partitions,
                    configs,
                    bootstrap,
                    ..
                },
        }) = cli.command
        else {
            panic!("wrong command");
        };
        assert_eq!(name, "t");
        assert_eq!(partitions, Some(3));
        assert_eq!(
            configs,
            vec![("a".into(), "1".into()), ("b".into(), "x=y".into())]
        );
        assert_eq!(bootstrap.bootstrap, "h:1");
    }

    #[test]
    fn parses_alter_config() {
        let cli = Cli::try_parse_from([
            "sluice",
            "topic",
            "alter-config",
            "t",
            "--set",
            "k=v",
            "--delete",
            "d",
        ])
        .expect("parse");
        let Command::Topic(TopicArgs {
            command: TopicCommand::AlterConfig { set, delete, .. },
        }) = cli.command
        else {
            panic!("wrong command");
        };
        assert_eq!(set, vec![("k".into(), "v".into())]);
        assert_eq!(delete, vec!["d".to_owned()]);
    }

    #[test]
    fn rejects_bad_config_syntax() {
        assert!(
            Cli::try_parse_from(["sluice", "topic", "create", "t", "--config", "novalue"]).is_err()
        );
    }
}
