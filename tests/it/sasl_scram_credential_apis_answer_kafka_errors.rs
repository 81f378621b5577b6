//! DescribeUserScramCredentials and AlterUserScramCredentials answer as Kafka 4 does: the
//! stored mechanisms and iterations, and RESOURCE_NOT_FOUND, DUPLICATE_RESOURCE,
//! UNACCEPTABLE_CREDENTIAL and UNSUPPORTED_SASL_MECHANISM with Kafka's messages. A user set
//! over the protocol can then authenticate.

use crate::sasl_support;

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest, MetadataRequest,
};
use kafka_protocol::protocol::StrBytes;
use sluice::client::{Connection, ConnectionConfig, SaslLogin};
use sluice::security::sasl::scram_credential::salt_password;
use sluice::security::sasl::SaslMechanism;

use sasl_support::sasl_broker;

const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const RESOURCE_NOT_FOUND: i16 = 91;
const DUPLICATE_RESOURCE: i16 = 92;
const UNACCEPTABLE_CREDENTIAL: i16 = 93;

fn login(addr: &str, mechanism: SaslMechanism, user: &str, password: &str) -> Connection {
    let config = ConnectionConfig {
        sasl: Some(SaslLogin {
            mechanism,
            username: user.to_owned(),
            password: password.to_owned(),
        }),
        ..ConnectionConfig::default()
    };
    Connection::connect(addr, &config).expect("authenticates")
}

fn upsertion(
    name: &str,
    mechanism: i8,
    iterations: i32,
    password: &str,
) -> ScramCredentialUpsertion {
    let hash = SaslMechanism::from_scram_type(mechanism)
        .and_then(SaslMechanism::scram_hash)
        .unwrap_or(sluice::security::sasl::ScramHash::Sha256);
    let (salt, salted) = salt_password(hash, password.as_bytes(), iterations).expect("random");
    ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_string(name.to_owned()))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(Bytes::from(salt))
        .with_salted_password(Bytes::from(salted))
}

fn deletion(name: &str, mechanism: i8) -> ScramCredentialDeletion {
    ScramCredentialDeletion::default()
        .with_name(StrBytes::from_string(name.to_owned()))
        .with_mechanism(mechanism)
}

fn alter(
    admin: &mut Connection,
    deletions: Vec<ScramCredentialDeletion>,
    upsertions: Vec<ScramCredentialUpsertion>,
) -> Vec<(String, i16, Option<String>)> {
    let request = AlterUserScramCredentialsRequest::default()
        .with_deletions(deletions)
        .with_upsertions(upsertions);
    let (response, _) = admin.send(&request).expect("AlterUserScramCredentials");
    let mut results: Vec<_> = response
        .results
        .iter()
        .map(|r: &AlterUserScramCredentialsResult| {
            (
                r.user.to_string(),
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    results.sort();
    results
}

/// One DescribeUserScramCredentials result: user, error code, message, and the
/// (mechanism, iterations) of each credential.
type Described = (String, i16, Option<String>, Vec<(i8, i32)>);

fn describe(admin: &mut Connection, users: Option<&[&str]>) -> Vec<Described> {
    let users = users.map(|names| {
        names
            .iter()
            .map(|n| UserName::default().with_name(StrBytes::from_string((*n).to_owned())))
            .collect()
    });
    let request = DescribeUserScramCredentialsRequest::default().with_users(users);
    let (response, _) = admin.send(&request).expect("DescribeUserScramCredentials");
    assert_eq!(response.error_code, 0);
    let mut results: Vec<_> = response
        .results
        .iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
                r.credential_infos
                    .iter()
                    .map(|c| (c.mechanism, c.iterations))
                    .collect(),
            )
        })
        .collect();
    results.sort();
    results
}

fn ok(user: &str) -> (String, i16, Option<String>) {
    (user.to_owned(), 0, None)
}

fn refused(user: &str, code: i16, message: &str) -> (String, i16, Option<String>) {
    (user.to_owned(), code, Some(message.to_owned()))
}

#[test]
fn scram_credential_apis_answer_like_kafka() {
    let broker = sasl_broker(&[("admin", "admin-pw")], &[]);
    let addr = broker
        .bootstrap()
        .split(',')
        .next()
        .expect("address")
        .to_owned();
    let mut admin = login(&addr, SaslMechanism::ScramSha512, "admin", "admin-pw");

    assert_eq!(
        alter(
            &mut admin,
            vec![],
            vec![upsertion("bob", 1, 8192, "bob-pw")]
        ),
        [ok("bob")]
    );
    assert_eq!(
        describe(&mut admin, Some(&["bob"])),
        [("bob".to_owned(), 0, None, vec![(1, 8192)])]
    );
    assert_eq!(
        describe(&mut admin, None),
        [
            ("admin".to_owned(), 0, None, vec![(1, 4096), (2, 4096)]),
            ("bob".to_owned(), 0, None, vec![(1, 8192)]),
        ]
    );

    let results = alter(
        &mut admin,
        vec![deletion("dave", 2), deletion("bob", 1), deletion("bob", 1)],
        vec![
            upsertion("carol", 1, 100, "pw"),
            upsertion("frank", 2, 20_000, "pw"),
            upsertion("grace", 7, 4096, "pw"),
            upsertion("", 1, 4096, "pw"),
            upsertion("heidi", 2, 4096, "pw"),
            upsertion("heidi", 1, 4096, "pw"),
        ],
    );
    assert_eq!(
        results,
        [
            refused("", UNACCEPTABLE_CREDENTIAL, "Username must not be empty"),
            refused(
                "bob",
                DUPLICATE_RESOURCE,
                "A user credential cannot be altered twice in the same request"
            ),
            refused("carol", UNACCEPTABLE_CREDENTIAL, "Too few iterations"),
            refused(
                "dave",
                RESOURCE_NOT_FOUND,
                "Attempt to delete a user credential that does not exist"
            ),
            refused("frank", UNACCEPTABLE_CREDENTIAL, "Too many iterations"),
            refused(
                "grace",
                UNSUPPORTED_SASL_MECHANISM,
                "Unknown SCRAM mechanism"
            ),
            refused(
                "heidi",
                DUPLICATE_RESOURCE,
                "A user credential cannot be altered twice in the same request"
            ),
        ]
    );

    assert_eq!(
        describe(&mut admin, Some(&["nobody", "bob", "bob"])),
        [
            (
                "bob".to_owned(),
                DUPLICATE_RESOURCE,
                Some(
                    "Cannot describe SCRAM credentials for the same user twice in a single request: bob"
                        .to_owned()
                ),
                vec![]
            ),
            (
                "nobody".to_owned(),
                RESOURCE_NOT_FOUND,
                Some("Attempt to describe a user credential that does not exist: nobody".to_owned()),
                vec![]
            ),
        ]
    );

    // The credential set over the protocol works, for SCRAM and (checked against it) PLAIN.
    let mut bob = login(&addr, SaslMechanism::ScramSha256, "bob", "bob-pw");
    assert!(bob.send(&MetadataRequest::default()).is_ok());
    let mut bob = login(&addr, SaslMechanism::Plain, "bob", "bob-pw");
    assert!(bob.send(&MetadataRequest::default()).is_ok());

    assert_eq!(
        alter(&mut admin, vec![deletion("bob", 1)], vec![]),
        [ok("bob")]
    );
    assert_eq!(
        describe(&mut admin, Some(&["bob"])),
        [(
            "bob".to_owned(),
            RESOURCE_NOT_FOUND,
            Some("Attempt to describe a user credential that does not exist: bob".to_owned()),
            vec![]
        )]
    );
}
