//! SCRAM user administration: DescribeUserScramCredentials and AlterUserScramCredentials.
//! The password never leaves the client: it sends a random salt and the salted password,
//! as Kafka's admin client does.
use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::cluster::Cluster;
use super::error::{check_error_code, ClientError};
use crate::security::sasl::scram_credential::salt_password;
use crate::security::sasl::SaslMechanism;

/// A user and the SCRAM mechanisms (with iterations) it has credentials for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramUser {
    pub name: String,
    pub mechanisms: Vec<(SaslMechanism, i32)>,
}

pub struct UserAdmin {
    cluster: Cluster,
}

impl UserAdmin {
    pub fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }

    /// Every user with SCRAM credentials, or just `names`.
    pub fn describe(&mut self, names: &[String]) -> Result<Vec<ScramUser>, ClientError> {
        let users = (!names.is_empty()).then(|| {
            names
                .iter()
                .map(|n| UserName::default().with_name(StrBytes::from_string(n.clone())))
                .collect()
        });
        let request = DescribeUserScramCredentialsRequest::default().with_users(users);
        let (response, _) = self.cluster.admin_connection()?.send(&request)?;
        check_error_code(
            response.error_code,
            response.error_message.as_deref(),
            || "describe SCRAM users".to_owned(),
        )?;
        let mut users = Vec::with_capacity(response.results.len());
        for result in response.results {
            check_error_code(result.error_code, result.error_message.as_deref(), || {
                format!("describe user '{}'", result.user.as_str())
            })?;
            let mechanisms = result
                .credential_infos
                .iter()
                .filter_map(|c| Some((SaslMechanism::from_scram_type(c.mechanism)?, c.iterations)))
                .collect();
            users.push(ScramUser {
                name: result.user.to_string(),
                mechanisms,
            });
        }
        users.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(users)
    }

    /// Sets `name`'s password for each SCRAM mechanism in `mechanisms`.
    pub fn upsert(
        &mut self,
        name: &str,
        password: &str,
        mechanisms: &[SaslMechanism],
        iterations: i32,
    ) -> Result<(), ClientError> {
        // One request per mechanism: Kafka refuses a user named twice in one request.
        for mechanism in mechanisms {
            let Some(hash) = mechanism.scram_hash() else {
                continue;
            };
            let (salt, salted) =
                salt_password(hash, password.as_bytes(), iterations).map_err(|e| {
                    ClientError::Sasl {
                        addr: "local".to_owned(),
                        reason: format!("no randomness for a salt: {e}"),
                    }
                })?;
            let upsertion = ScramCredentialUpsertion::default()
                .with_name(StrBytes::from_string(name.to_owned()))
                .with_mechanism(mechanism.scram_type())
                .with_iterations(iterations)
                .with_salt(Bytes::from(salt))
                .with_salted_password(Bytes::from(salted));
            let request =
                AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]);
            self.alter(&request, name, "set the password of")?;
        }
        Ok(())
    }

    /// Removes `name`'s credential for `mechanism`.
    pub fn delete(&mut self, name: &str, mechanism: SaslMechanism) -> Result<(), ClientError> {
        let deletion = ScramCredentialDeletion::default()
            .with_name(StrBytes::from_string(name.to_owned()))
            .with_mechanism(mechanism.scram_type());
        let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion]);
        self.alter(&request, name, "delete")
    }

    fn alter(
        &mut self,
        request: &AlterUserScramCredentialsRequest,
        name: &str,
        what: &str,
    ) -> Result<(), ClientError> {
        let connection = self.cluster.admin_connection()?;
        let addr = connection.addr().to_owned();
        let (response, _) = connection.send(request)?;
        let result = response
            .results
            .first()
            .ok_or_else(|| ClientError::MissingInResponse {
                addr,
                what: format!("the result for user '{name}'"),
            })?;
        check_error_code(result.error_code, result.error_message.as_deref(), || {
            format!("cannot {what} user '{name}'")
        })
    }
}
