//! `sluice bench --security-protocol SSL` runs its whole workload over TLS: against a broker
//! whose SSL listener requires a client certificate it produces and consumes with the
//! certificate it is given, what it reports as acknowledged is in the log, and a bench that
//! does not trust the broker's CA fails instead of falling back to plaintext.

use crate::common;
use crate::tls_support::{client_auth_broker, Pki};

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use common::cli;

const PARTITIONS: i32 = 2;

#[test]
fn bench_produces_and_consumes_over_ssl_with_a_client_certificate() {
    let pki = Pki::new();
    pki.issue("bench", "/CN=bench", false);
    let (broker, plain_bootstrap) = client_auth_broker(&pki, "required", &[]);
    let ca = pki.ca().display().to_string();
    let topic = common::topic_name("bench-ssl");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let json_path = out_dir.path().join("report.json");
    let json_arg = json_path.display().to_string();
    let cert = pki.path("bench.pem").display().to_string();
    let key = pki.path("bench.key").display().to_string();
    let partitions = PARTITIONS.to_string();
    let bench = |ca: &str, json: &str| {
        cli::sluice(
            &[
                "bench",
                "--security-protocol",
                "SSL",
                "--tls-ca",
                ca,
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--topic",
                &topic,
                "--partitions",
                &partitions,
                "--producers",
                "1",
                "--consumers",
                "1",
                "--rate",
                "2000",
                "--warmup-secs",
                "0",
                "--duration-secs",
                "2",
                "--quiet",
                "--json",
                json,
            ],
            broker.bootstrap(),
        )
    };
    cli::stdout(&bench(&ca, &json_arg));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("read report")).expect("json");
    let produced = report["produce"]["msgs"].as_u64().expect("produce.msgs");
    let consumed = report["consume"]["msgs"].as_u64().expect("consume.msgs");
    assert_eq!(report["errors"].as_u64(), Some(0), "{report}");
    assert!(produced > 0 && consumed > 0, "{report}");

    // What the bench counted as acknowledged is in the log (read over plaintext).
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &plain_bootstrap)
        .create()
        .expect("consumer");
    let in_log: i64 = (0..PARTITIONS)
        .map(|p| {
            let (low, high) = consumer
                .fetch_watermarks(&topic, p, Duration::from_secs(10))
                .expect("watermarks");
            high - low
        })
        .sum();
    assert!(
        in_log >= i64::try_from(produced).expect("count fits"),
        "{in_log} records in the log, {produced} acknowledged"
    );

    // A CA that did not sign the broker's certificate: the bench fails its handshake.
    let other_ca = Pki::new();
    let failed_json = out_dir.path().join("failed.json").display().to_string();
    let output = bench(&other_ca.ca().display().to_string(), &failed_json);
    assert!(!output.status.success(), "an untrusted broker must fail");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("certificate") || stderr.contains("UnknownIssuer"),
        "{stderr}"
    );
}
