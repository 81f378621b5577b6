//! mTLS principals escape the subject as RFC 2253 does (Kafka's `X500Principal.getName()`):
//! a certificate whose common name is `mallory,OU=admins` is `User:CN=mallory\,OU\=admins`,
//! not the `User:CN=mallory,OU=admins` of a certificate issued to mallory in OU admins, so
//! the ACLs of the one do not let the other in.

use crate::acl_support;
use crate::common;
use crate::tls_support::{acl_client_auth_broker, mtls_settings, produce_refusal, produces, Pki};

#[test]
fn comma_in_a_common_name_does_not_forge_another_principal() {
    let pki = Pki::new();
    // Two RDNs: OU=admins, then CN=mallory; RFC 2253 prints `CN=mallory,OU=admins`.
    pki.issue("admin", "/OU=admins/CN=mallory", false);
    // One RDN whose common name holds the comma and `OU=admins` as text.
    pki.issue("forger", "/CN=mallory,OU=admins", false);
    let (broker, admin_bootstrap) = acl_client_auth_broker(&pki, "required");
    let bootstrap = broker.bootstrap().to_owned();
    let topic = common::topic_name("dn-escape");
    common::create_topic(&admin_bootstrap, &topic, 1);
    acl_support::allow(
        &admin_bootstrap,
        "User:CN=mallory,OU=admins",
        "write",
        &["--topic", &topic],
    );

    produces(&mtls_settings(&pki, "admin"), &bootstrap, &topic);
    let forger = mtls_settings(&pki, "forger");
    let error = produce_refusal(&forger, &bootstrap, &topic);
    assert!(
        error.contains("TopicAuthorizationFailed"),
        "forger: {error}"
    );

    // The escaped name is the forger's principal: granting it lets the forger in.
    acl_support::allow(
        &admin_bootstrap,
        "User:CN=mallory\\,OU\\=admins",
        "write",
        &["--topic", &topic],
    );
    produces(&forger, &bootstrap, &topic);
}
