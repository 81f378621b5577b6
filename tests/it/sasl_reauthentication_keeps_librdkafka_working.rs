//! KIP-368: with a short `--sasl-session-lifetime-ms`, librdkafka re-authenticates its
//! connections in place and keeps producing and consuming; a connection that never
//! re-authenticates is closed on its first request after the lifetime.

use crate::common;
use crate::sasl_support;

use std::time::Duration;

use kafka_protocol::messages::MetadataRequest;
use sluice::client::{Connection, ConnectionConfig, SaslLogin};
use sluice::security::sasl::SaslMechanism;

use common::{
    assign, consume_count, consumer, produce_all, producer, topic_name, wait_until, TestRecord,
    CLIENT_TIMEOUT,
};
use sasl_support::{sasl_broker, sasl_settings};

const LIFETIME_MS: u64 = 1500;

#[test]
fn reauthentication_keeps_clients_working_and_expiry_closes_the_rest() {
    let lifetime = LIFETIME_MS.to_string();
    let broker = sasl_broker(
        &[("alice", "alice-pw")],
        &["--sasl-session-lifetime-ms", &lifetime],
    );
    let bootstrap = broker.bootstrap().to_owned();
    let addr = bootstrap.split(',').next().expect("address").to_owned();

    // sluice's own client does not re-authenticate: its connection must end after the lifetime.
    let config = ConnectionConfig {
        sasl: Some(SaslLogin {
            mechanism: SaslMechanism::ScramSha256,
            username: "alice".to_owned(),
            password: "alice-pw".to_owned(),
        }),
        ..ConnectionConfig::default()
    };
    let mut stale = Connection::connect(&addr, &config).expect("authenticates");
    assert!(stale.send(&MetadataRequest::default()).is_ok());

    let settings = sasl_settings("SCRAM-SHA-512", "alice", "alice-pw");
    let topic = topic_name("reauth");
    let producer = producer(&bootstrap, &settings);
    let consumer = consumer(&bootstrap, &settings);
    assign(&consumer, &topic, &[(0, 0)]);
    let mut produced = Vec::new();
    // Several lifetimes of traffic, so each connection has to re-authenticate more than once.
    for round in 0..8 {
        let records: Vec<TestRecord> = (0..5)
            .map(|i| {
                TestRecord::new(format!("k{i}"), format!("round {round} value {i}")).partition(0)
            })
            .collect();
        let deliveries = produce_all(&producer, &topic, &records);
        assert!(
            deliveries.iter().all(|d| d.error.is_none()),
            "{deliveries:?}"
        );
        produced.extend(records);
        std::thread::sleep(Duration::from_millis(LIFETIME_MS / 2));
    }
    let consumed = consume_count(&consumer, produced.len(), CLIENT_TIMEOUT);
    let values: Vec<_> = consumed.iter().map(|c| c.value.clone()).collect();
    let expected: Vec<_> = produced.iter().map(|r| r.value.clone()).collect();
    assert_eq!(values, expected);

    wait_until("the broker logs re-authentications", CLIENT_TIMEOUT, || {
        broker.stderr().contains("SASL re-authentication succeeded")
    });
    // The connection that did not re-authenticate is refused and closed.
    assert!(stale.send(&MetadataRequest::default()).is_err());
    assert!(broker.stderr().contains("SASL session expired"));
}
