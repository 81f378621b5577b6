//! mTLS: with `--tls-client-auth required`, a client without a certificate fails its
//! handshake while other connections carry on, and a client certificate's subject is the
//! principal ACLs see: `User:CN=alice,OU=eng` may write, `User:CN=bob,OU=eng` gets
//! TOPIC_AUTHORIZATION_FAILED.

use crate::acl_support;
use crate::common;
use crate::sasl_support::recording_consumer;
use crate::tls_support::{borrowed, mtls_settings, ssl_settings, tls_broker, tls_port, Pki};

use std::time::Duration;

use rdkafka::consumer::Consumer;

use common::{produce_all, producer, topic_name, try_produce_all, TestRecord};

#[test]
fn client_certificate_subject_is_the_acl_principal() {
    let pki = Pki::new();
    pki.issue("alice", "/OU=eng/CN=alice", false);
    pki.issue("bob", "/OU=eng/CN=bob", false);
    let port = tls_port();
    let ca = pki.ca().display().to_string();
    // A PLAINTEXT listener too, for `sluice acl` (the cluster has no ACLs, so it is open).
    let plain_port = common::free_port_range(2);
    let plain = format!("PLAINTEXT://127.0.0.1:{plain_port}");
    let broker = tls_broker(
        &pki,
        "SSL",
        port,
        &[
            "--listener",
            &plain,
            "--tls-client-auth",
            "required",
            "--tls-ca",
            &ca,
            "--authorizer",
            "acl",
            "--allow-everyone-if-no-acl-found",
            "true",
        ],
    );
    let bootstrap = broker.bootstrap().to_owned();
    let admin_bootstrap = format!("127.0.0.1:{plain_port}");
    let topic = topic_name("mtls");
    common::create_topic(&admin_bootstrap, &topic, 1);
    acl_support::allow(
        &admin_bootstrap,
        "User:CN=alice,OU=eng",
        "write",
        &["--topic", &topic],
    );

    // No certificate: the handshake is refused.
    let (no_cert, errors) = recording_consumer(&bootstrap, &borrowed(&ssl_settings(&pki)));
    let _ = no_cert.fetch_metadata(None, Duration::from_secs(2));
    common::wait_until("a refused handshake", common::CLIENT_TIMEOUT, || {
        let _ = no_cert.poll(Duration::from_millis(100));
        !errors.seen().is_empty()
    });
    assert!(
        errors
            .seen()
            .iter()
            .any(|e| e.contains("SSL") || e.contains("ssl") || e.contains("Disconnected")),
        "{:?}",
        errors.seen()
    );

    let alice = mtls_settings(&pki, "alice");
    let records = [TestRecord::new("k", "from alice").partition(0)];
    let deliveries = produce_all(&producer(&bootstrap, &borrowed(&alice)), &topic, &records);
    assert!(
        deliveries.iter().all(|d| d.error.is_none()),
        "alice: {deliveries:?}"
    );

    let mut bob = mtls_settings(&pki, "bob");
    bob.push(("message.timeout.ms".to_owned(), "20000".to_owned()));
    let refused = try_produce_all(&producer(&bootstrap, &borrowed(&bob)), &topic, &records);
    let error = refused
        .into_iter()
        .next()
        .and_then(|d| d.error)
        .expect("bob must be refused");
    assert!(error.contains("TopicAuthorizationFailed"), "bob: {error}");
}
