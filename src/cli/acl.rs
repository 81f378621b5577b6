//! `sluice acl add|list|remove`: Kafka ACLs, as kafka-acls.sh manages them.
use std::io::Write;

use clap::{Args, Subcommand};

use crate::client::acl_admin;
use crate::security::acl::{
    AclBinding, AclFilter, AclOperation, AclPermission, PatternType, ResourceType,
    CLUSTER_RESOURCE_NAME, WILDCARD,
};

use super::args::BootstrapArgs;
use super::CliError;

#[derive(Debug, Args)]
pub struct AclArgs {
    #[command(subcommand)]
    pub command: AclCommand,
}

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Add ACLs: every principal × operation on the resource.
    Add {
        #[command(flatten)]
        resource: ResourceArgs,
        #[command(flatten)]
        entry: EntryArgs,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// List ACLs (all of them, or those matching the options), one per line.
    List {
        #[command(flatten)]
        resource: ResourceArgs,
        #[command(flatten)]
        entry: EntryArgs,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Remove the ACLs matching the options and print them.
    Remove {
        #[command(flatten)]
        resource: ResourceArgs,
        #[command(flatten)]
        entry: EntryArgs,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
}

/// Which resource: at most one of these; none means any (list/remove only).
#[derive(Debug, Clone, Args)]
#[group(id = "resource", multiple = false)]
pub struct ResourceArgs {
    #[arg(long, value_name = "NAME")]
    pub topic: Option<String>,
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
    #[arg(long, value_name = "ID")]
    pub transactional_id: Option<String>,
    #[arg(long)]
    pub cluster: bool,
}

/// Who, where, what, and how the resource name matches.
#[derive(Debug, Clone, Args)]
pub struct EntryArgs {
    /// Principal to allow, e.g. User:alice or User:* (repeatable)
    #[arg(long, value_name = "PRINCIPAL")]
    pub allow_principal: Vec<String>,
    /// Principal to deny (repeatable)
    #[arg(long, value_name = "PRINCIPAL")]
    pub deny_principal: Vec<String>,
    /// Host (IP address) the ACL applies to [add: *; list/remove: any]
    #[arg(long)]
    pub host: Option<String>,
    /// Operation, e.g. read, write, describe, all (repeatable) [list/remove: any]
    #[arg(long, value_name = "OPERATION", value_parser = parse_operation)]
    pub operation: Vec<AclOperation>,
    /// literal or prefixed [add: literal]; list/remove also take any and match [default there: any]
    #[arg(long, value_name = "TYPE", value_parser = parse_pattern_type)]
    pub resource_pattern_type: Option<PatternType>,
}

fn parse_operation(text: &str) -> Result<AclOperation, String> {
    AclOperation::parse(text).ok_or_else(|| format!("'{text}' is not a Kafka ACL operation"))
}

fn parse_pattern_type(text: &str) -> Result<PatternType, String> {
    PatternType::parse(text)
        .ok_or_else(|| format!("'{text}' is not one of literal, prefixed, match, any"))
}

impl ResourceArgs {
    fn resource(&self) -> Option<(ResourceType, String)> {
        if let Some(topic) = &self.topic {
            Some((ResourceType::Topic, topic.clone()))
        } else if let Some(group) = &self.group {
            Some((ResourceType::Group, group.clone()))
        } else if let Some(id) = &self.transactional_id {
            Some((ResourceType::TransactionalId, id.clone()))
        } else {
            self.cluster
                .then(|| (ResourceType::Cluster, CLUSTER_RESOURCE_NAME.to_owned()))
        }
    }
}

impl EntryArgs {
    /// `(principal, permission)` pairs; empty when no principal was given.
    fn principals(&self) -> Vec<(String, AclPermission)> {
        let allow = self
            .allow_principal
            .iter()
            .map(|p| (p.clone(), AclPermission::Allow));
        let deny = self
            .deny_principal
            .iter()
            .map(|p| (p.clone(), AclPermission::Deny));
        allow.chain(deny).collect()
    }
}

fn bindings(resource: &ResourceArgs, entry: &EntryArgs) -> Result<Vec<AclBinding>, CliError> {
    let usage = |m: &str| CliError::Usage(m.to_owned());
    let (resource_type, resource_name) = resource.resource().ok_or_else(|| {
        usage("one of --topic, --group, --transactional-id or --cluster is required")
    })?;
    let principals = entry.principals();
    if principals.is_empty() {
        return Err(usage("--allow-principal or --deny-principal is required"));
    }
    if entry.operation.is_empty() {
        return Err(usage("--operation is required"));
    }
    let pattern_type = entry.resource_pattern_type.unwrap_or(PatternType::Literal);
    let host = entry.host.clone().unwrap_or_else(|| WILDCARD.to_owned());
    let mut acls = Vec::new();
    for (principal, permission) in principals {
        for operation in &entry.operation {
            acls.push(AclBinding {
                resource_type,
                resource_name: resource_name.clone(),
                pattern_type,
                principal: principal.clone(),
                host: host.clone(),
                operation: *operation,
                permission,
            });
        }
    }
    Ok(acls)
}

/// One filter per principal given (or one for any principal), per operation given.
fn filters(resource: &ResourceArgs, entry: &EntryArgs) -> Vec<AclFilter> {
    let (resource_type, resource_name) = match resource.resource() {
        Some((t, name)) => (t, Some(name)),
        None => (ResourceType::Any, None),
    };
    let principals: Vec<(Option<String>, AclPermission)> = match entry.principals() {
        p if p.is_empty() => vec![(None, AclPermission::Any)],
        p => p.into_iter().map(|(p, perm)| (Some(p), perm)).collect(),
    };
    let operations = match entry.operation.as_slice() {
        [] => vec![AclOperation::Any],
        ops => ops.to_vec(),
    };
    let mut filters = Vec::new();
    for (principal, permission) in &principals {
        for operation in &operations {
            filters.push(AclFilter {
                resource_type,
                resource_name: resource_name.clone(),
                pattern_type: entry.resource_pattern_type.unwrap_or(PatternType::Any),
                principal: principal.clone(),
                host: entry.host.clone(),
                operation: *operation,
                permission: *permission,
            });
        }
    }
    filters
}

fn print(acls: &[AclBinding]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    for acl in acls {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            acl.resource_type.name(),
            acl.pattern_type.name(),
            acl.resource_name,
            acl.principal,
            acl.host,
            acl.operation.name(),
            acl.permission.name()
        )
        .map_err(CliError::Output)?;
    }
    Ok(())
}

pub fn run(args: AclArgs) -> Result<(), CliError> {
    match args.command {
        AclCommand::Add {
            resource,
            entry,
            bootstrap,
        } => {
            let acls = bindings(&resource, &entry)?;
            acl_admin::create_acls(&mut bootstrap.connect()?, &acls)?;
            print(&acls)
        }
        AclCommand::List {
            resource,
            entry,
            bootstrap,
        } => {
            let mut cluster = bootstrap.connect()?;
            let mut found: Vec<AclBinding> = Vec::new();
            for filter in filters(&resource, &entry) {
                for acl in acl_admin::describe_acls(&mut cluster, &filter)? {
                    if !found.contains(&acl) {
                        found.push(acl);
                    }
                }
            }
            print(&found)
        }
        AclCommand::Remove {
            resource,
            entry,
            bootstrap,
        } => {
            let mut cluster = bootstrap.connect()?;
            let mut removed = Vec::new();
            for filter in filters(&resource, &entry) {
                removed.extend(acl_admin::delete_acls(&mut cluster, &filter)?);
            }
            print(&removed)
        }
    }
}
