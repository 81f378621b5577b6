//! A SASL_SSL listener needs both TLS and SASL: librdkafka authenticates with SCRAM-SHA-512
//! and PLAIN over TLS as a user `sluice user add` created, produces and reads back; a wrong
//! password fails authentication with Kafka's error, over TLS too.

use crate::common;
use crate::sasl_support::{add_user_offline, recording_consumer};
use crate::tls_support::{ssl_settings, tls_broker, tls_port, Pki};

use std::time::Duration;

use rdkafka::consumer::Consumer;

use common::{assign, consume_count, consumer, produce_all, producer, topic_name, TestRecord};

const PASSWORD: &str = "carol-tls-secret-91";

fn settings<'a>(
    ssl: &'a [(String, String)],
    mechanism: &'a str,
    password: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut settings: Vec<(&str, &str)> = ssl
        .iter()
        .filter(|(k, _)| k != "security.protocol")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    settings.extend([
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", mechanism),
        ("sasl.username", "carol"),
        ("sasl.password", password),
    ]);
    settings
}

#[test]
fn sasl_ssl_authenticates_scram_and_plain_and_refuses_a_wrong_password() {
    let pki = Pki::new();
    let port = tls_port();
    let mut broker = tls_broker(&pki, "SASL_SSL", port, &[]);
    broker.stop_graceful();
    add_user_offline(&broker, "carol", PASSWORD);
    broker.restart();
    let bootstrap = broker.bootstrap().to_owned();
    let ssl = ssl_settings(&pki);

    for mechanism in ["SCRAM-SHA-512", "PLAIN"] {
        let settings = settings(&ssl, mechanism, PASSWORD);
        let topic = topic_name("sasl-ssl");
        let records: Vec<TestRecord> = (0..10)
            .map(|i| TestRecord::new(format!("k{i}"), format!("{mechanism} {i}")).partition(0))
            .collect();
        let deliveries = produce_all(&producer(&bootstrap, &settings), &topic, &records);
        assert!(
            deliveries.iter().all(|d| d.error.is_none()),
            "{mechanism}: {deliveries:?}"
        );
        let reader = consumer(&bootstrap, &settings);
        assign(&reader, &topic, &[(0, 0)]);
        let consumed = consume_count(&reader, records.len(), common::CLIENT_TIMEOUT);
        assert_eq!(consumed.len(), records.len(), "{mechanism}");
    }

    let settings = settings(&ssl, "SCRAM-SHA-512", "wrong-password");
    let (consumer, errors) = recording_consumer(&bootstrap, &settings);
    let _ = consumer.fetch_metadata(None, Duration::from_secs(2));
    common::wait_until("an authentication error", common::CLIENT_TIMEOUT, || {
        let _ = consumer.poll(Duration::from_millis(100));
        errors
            .seen()
            .iter()
            .any(|e| e.contains("Authentication failed"))
    });
    let expected = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512";
    assert!(
        errors.seen().iter().any(|e| e.contains(expected)),
        "{:?}",
        errors.seen()
    );
}
