//! `sluice user add|list|delete`: SCRAM users, over the Kafka protocol
//! (Describe/AlterUserScramCredentials), or with `--data-dir` straight into the catalog of a
//! stopped broker, which is how the first user of a SASL-only broker is made (Kafka's
//! `kafka-storage format --add-scram`).
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::client::user_admin::UserAdmin;
use crate::security::sasl::scram_credential::{salt_password, SCRAM_ITERATIONS_MIN};
use crate::security::sasl::{SaslMechanism, ScramCredential};
use crate::shard::catalog::{Catalog, CatalogChange};

use super::args::{parse_sasl_mechanism, BootstrapArgs};
use super::CliError;

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user or change its password (one SCRAM credential per mechanism).
    Add {
        name: String,
        #[arg(long, env = "SLUICE_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// SCRAM mechanism(s) to store a credential for; PLAIN logins check either [default: SCRAM-SHA-256,SCRAM-SHA-512]
        #[arg(long = "mechanism", value_parser = parse_scram_mechanism, value_delimiter = ',')]
        mechanisms: Vec<SaslMechanism>,
        /// PBKDF2 iterations, 4096..=16384
        #[arg(long, default_value_t = SCRAM_ITERATIONS_MIN)]
        iterations: i32,
        /// Write into the catalog of this data dir instead (the broker must be stopped)
        #[arg(long, conflicts_with = "bootstrap")]
        data_dir: Option<PathBuf>,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// List users and their SCRAM mechanisms, one user per line.
    List {
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Delete a user's credentials (all of its mechanisms unless --mechanism is given).
    Delete {
        name: String,
        #[arg(long = "mechanism", value_parser = parse_scram_mechanism, value_delimiter = ',')]
        mechanisms: Vec<SaslMechanism>,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
}

fn parse_scram_mechanism(name: &str) -> Result<SaslMechanism, String> {
    parse_sasl_mechanism(name)?
        .scram_hash()
        .and(SaslMechanism::parse(name))
        .ok_or_else(|| format!("expected SCRAM-SHA-256 or SCRAM-SHA-512, got '{name}'"))
}

fn scram_or_both(mechanisms: &[SaslMechanism]) -> Vec<SaslMechanism> {
    if mechanisms.is_empty() {
        vec![SaslMechanism::ScramSha256, SaslMechanism::ScramSha512]
    } else {
        mechanisms.to_vec()
    }
}

pub fn run(args: UserArgs) -> Result<(), CliError> {
    match args.command {
        UserCommand::Add {
            name,
            password,
            mechanisms,
            iterations,
            data_dir,
            bootstrap,
        } => {
            let mechanisms = scram_or_both(&mechanisms);
            match data_dir {
                Some(dir) => add_offline(&dir, &name, &password, &mechanisms, iterations),
                None => Ok(UserAdmin::new(bootstrap.connect()?).upsert(
                    &name,
                    &password,
                    &mechanisms,
                    iterations,
                )?),
            }
        }
        UserCommand::List { bootstrap } => {
            let users = UserAdmin::new(bootstrap.connect()?).describe(&[])?;
            let mut out = std::io::stdout().lock();
            for user in users {
                let mechanisms: Vec<String> = user
                    .mechanisms
                    .iter()
                    .map(|(m, iterations)| format!("{m}:{iterations}"))
                    .collect();
                writeln!(out, "{} {}", user.name, mechanisms.join(" "))
                    .map_err(CliError::Output)?;
            }
            Ok(())
        }
        UserCommand::Delete {
            name,
            mechanisms,
            bootstrap,
        } => {
            let mut admin = UserAdmin::new(bootstrap.connect()?);
            let mechanisms = if mechanisms.is_empty() {
                let users = admin.describe(std::slice::from_ref(&name))?;
                users
                    .into_iter()
                    .flat_map(|u| u.mechanisms.into_iter().map(|(m, _)| m))
                    .collect()
            } else {
                mechanisms
            };
            for mechanism in mechanisms {
                admin.delete(&name, mechanism)?;
            }
            Ok(())
        }
    }
}

/// Adds the user to the catalog of a stopped broker. The data dir's lock (the one the
/// broker holds while it runs) keeps this from racing a live broker, whose next catalog
/// write would otherwise drop the user.
fn add_offline(
    data_dir: &Path,
    name: &str,
    password: &str,
    mechanisms: &[SaslMechanism],
    iterations: i32,
) -> Result<(), CliError> {
    if name.is_empty() {
        return Err(CliError::Usage(
            "the user name must not be empty".to_owned(),
        ));
    }
    let range =
        SCRAM_ITERATIONS_MIN..=crate::security::sasl::scram_credential::SCRAM_ITERATIONS_MAX;
    if !range.contains(&iterations) {
        return Err(CliError::Usage(format!(
            "--iterations {iterations} is not in {}..={}",
            range.start(),
            range.end()
        )));
    }
    let offline = |e: String| CliError::Usage(format!("{}: {e}", data_dir.display()));
    std::fs::create_dir_all(data_dir).map_err(|e| offline(e.to_string()))?;
    let _lock =
        crate::server::process::lock_data_dir(data_dir).map_err(|e| offline(e.to_string()))?;
    let mut catalog = Catalog::load(data_dir).map_err(|e| offline(e.to_string()))?;
    for mechanism in mechanisms {
        let Some(hash) = mechanism.scram_hash() else {
            continue;
        };
        let (salt, salted) = salt_password(hash, password.as_bytes(), iterations)
            .map_err(|e| offline(format!("no randomness for a salt: {e}")))?;
        catalog.apply(&CatalogChange::ScramCredential {
            user: name.to_owned(),
            mechanism: *mechanism,
            credential: Some(ScramCredential::from_salted_password(
                hash, salt, &salted, iterations,
            )),
        });
    }
    // The catalog is written through io's atomic-write helper, which runs on an executor.
    crate::io::block_on_local(catalog.persist(data_dir)).map_err(|e| offline(e.to_string()))?;
    if data_dir.join(crate::server::process::RAFT_DIR).is_dir() {
        // Credentials of a cluster are replicated through its metadata Raft group; this file
        // is one node's copy (docs/cluster.md).
        eprintln!(
            "note: {} belongs to a cluster node: {name} can authenticate on this node only; \
             add it again through a running node (--bootstrap) to replicate it",
            data_dir.display()
        );
    }
    Ok(())
}
