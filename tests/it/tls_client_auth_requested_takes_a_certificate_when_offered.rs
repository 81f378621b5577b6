//! `--tls-client-auth requested` (Kafka's `ssl.client.auth=requested`): a client without a
//! certificate connects as `User:ANONYMOUS`, one with a certificate from the trusted CA is
//! its subject, and one whose certificate another CA signed fails its handshake.

use crate::acl_support;
use crate::common;
use crate::tls_support::{
    acl_client_auth_broker, assert_handshake_refused, mtls_settings, produce_refusal, produces,
    ssl_settings, Pki,
};

#[test]
fn requested_client_auth_takes_a_certificate_when_offered() {
    let pki = Pki::new();
    pki.issue("alice", "/OU=eng/CN=alice", false);
    // A second CA the broker does not trust, and a client certificate it signed.
    let stranger_pki = Pki::new();
    stranger_pki.issue("stranger", "/OU=eng/CN=alice", false);
    let (broker, admin_bootstrap) = acl_client_auth_broker(&pki, "requested");
    let bootstrap = broker.bootstrap().to_owned();
    let alice_topic = common::topic_name("requested-alice");
    let anonymous_topic = common::topic_name("requested-anonymous");
    common::create_topic(&admin_bootstrap, &alice_topic, 1);
    common::create_topic(&admin_bootstrap, &anonymous_topic, 1);
    acl_support::allow(
        &admin_bootstrap,
        "User:CN=alice,OU=eng",
        "write",
        &["--topic", &alice_topic],
    );
    acl_support::allow(
        &admin_bootstrap,
        "User:ANONYMOUS",
        "write",
        &["--topic", &anonymous_topic],
    );

    // No certificate: the handshake succeeds and the principal is ANONYMOUS.
    let no_cert = ssl_settings(&pki);
    produces(&no_cert, &bootstrap, &anonymous_topic);
    let error = produce_refusal(&no_cert, &bootstrap, &alice_topic);
    assert!(
        error.contains("TopicAuthorizationFailed"),
        "anonymous: {error}"
    );

    // A trusted certificate: the principal is its subject, not ANONYMOUS.
    let alice = mtls_settings(&pki, "alice");
    produces(&alice, &bootstrap, &alice_topic);
    let error = produce_refusal(&alice, &bootstrap, &anonymous_topic);
    assert!(error.contains("TopicAuthorizationFailed"), "alice: {error}");

    // A certificate from an unknown CA (with the same subject) is refused at the handshake,
    // not downgraded to ANONYMOUS.
    let mut stranger = ssl_settings(&pki);
    stranger.push((
        "ssl.certificate.location".to_owned(),
        stranger_pki.path("stranger.pem").display().to_string(),
    ));
    stranger.push((
        "ssl.key.location".to_owned(),
        stranger_pki.path("stranger.key").display().to_string(),
    ));
    assert_handshake_refused(&bootstrap, &stranger);
}
