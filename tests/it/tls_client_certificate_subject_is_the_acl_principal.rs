//! mTLS: with `--tls-client-auth required`, a client without a certificate fails its
//! handshake while other connections carry on, and a client certificate's subject is the
//! principal ACLs see: `User:CN=alice,OU=eng` may write, `User:CN=bob,OU=eng` gets
//! TOPIC_AUTHORIZATION_FAILED.

use crate::acl_support;
use crate::common;
use crate::tls_support::{
    acl_client_auth_broker, assert_handshake_refused, mtls_settings, produce_refusal, produces,
    ssl_settings, Pki,
};

use common::topic_name;

#[test]
fn client_certificate_subject_is_the_acl_principal() {
    let pki = Pki::new();
    pki.issue("alice", "/OU=eng/CN=alice", false);
    pki.issue("bob", "/OU=eng/CN=bob", false);
    let (broker, admin_bootstrap) = acl_client_auth_broker(&pki, "required");
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("mtls");
    common::create_topic(&admin_bootstrap, &topic, 1);
    acl_support::allow(
        &admin_bootstrap,
        "User:CN=alice,OU=eng",
        "write",
        &["--topic", &topic],
    );

    // No certificate: the handshake is refused.
    assert_handshake_refused(&bootstrap, &ssl_settings(&pki));

    produces(&mtls_settings(&pki, "alice"), &bootstrap, &topic);
    let error = produce_refusal(&mtls_settings(&pki, "bob"), &bootstrap, &topic);
    assert!(error.contains("TopicAuthorizationFailed"), "bob: {error}");
}
