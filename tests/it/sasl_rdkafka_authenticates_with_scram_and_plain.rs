//! librdkafka (the rdkafka crate) authenticates over SASL_PLAINTEXT with SCRAM-SHA-512,
//! SCRAM-SHA-256 and PLAIN against users bootstrapped offline, then produces and consumes;
//! a wrong password gets Kafka's authentication error, and the catalog holds no password.

use crate::common;
use crate::sasl_support;

use std::time::Duration;

use rdkafka::consumer::Consumer;

use common::{
    assign, consume_count, consumer, produce_all, producer, topic_name, wait_until, TestRecord,
    CLIENT_TIMEOUT,
};
use sasl_support::{recording_consumer, sasl_broker, sasl_settings, MECHANISMS};

const PASSWORD: &str = "alice-secret-7f3a";

#[test]
fn rdkafka_authenticates_with_every_mechanism_and_refuses_a_wrong_password() {
    let broker = sasl_broker(&[("alice", PASSWORD)], &[]);
    let bootstrap = broker.bootstrap().to_owned();

    for mechanism in MECHANISMS {
        let settings = sasl_settings(mechanism, "alice", PASSWORD);
        let topic = topic_name("sasl");
        let records: Vec<TestRecord> = (0..20)
            .map(|i| {
                TestRecord::new(format!("k{i}"), format!("{mechanism} value {i}")).partition(0)
            })
            .collect();
        let producer = producer(&bootstrap, &settings);
        let deliveries = produce_all(&producer, &topic, &records);
        assert!(
            deliveries.iter().all(|d| d.error.is_none()),
            "{mechanism}: {deliveries:?}"
        );
        let consumer = consumer(&bootstrap, &settings);
        assign(&consumer, &topic, &[(0, 0)]);
        let consumed = consume_count(&consumer, records.len(), CLIENT_TIMEOUT);
        let values: Vec<_> = consumed.iter().map(|c| c.value.clone()).collect();
        let expected: Vec<_> = records.iter().map(|r| r.value.clone()).collect();
        assert_eq!(values, expected, "{mechanism}");
    }
    for mechanism in MECHANISMS {
        let settings = sasl_settings(mechanism, "alice", "not-the-password");
        let (consumer, errors) = recording_consumer(&bootstrap, &settings);
        let _ = consumer.fetch_metadata(None, Duration::from_secs(2));
        wait_until("an authentication error", CLIENT_TIMEOUT, || {
            let _ = consumer.poll(Duration::from_millis(100));
            errors
                .seen()
                .iter()
                .any(|e| e.contains("Authentication failed"))
        });
        let seen = errors.seen();
        let expected = if mechanism == "PLAIN" {
            "Authentication failed: Invalid username or password".to_owned()
        } else {
            format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}")
        };
        assert!(
            seen.iter().any(|e| e.contains(&expected)),
            "{mechanism}: {seen:?}"
        );
    }

    let catalog = std::fs::read_to_string(broker.data_dir().join("catalog.toml")).expect("catalog");
    assert!(catalog.contains("alice"), "{catalog}");
    assert!(!catalog.contains(PASSWORD), "{catalog}");
}
