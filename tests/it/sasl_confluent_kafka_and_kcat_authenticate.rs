//! confluent-kafka (librdkafka 2.16) and kcat authenticate over SASL_PLAINTEXT with
//! SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN, produce and consume, and get Kafka's error for a
//! wrong password; confluent-kafka's admin client creates a SCRAM user
//! (tests/python/sasl_scenarios.py).

use crate::common;
use crate::sasl_support;

use std::path::PathBuf;
use std::process::Command;

use common::{run_kcat, topic_name, write_lines, CLIENT_TIMEOUT};
use sasl_support::{sasl_broker, MECHANISMS};

const PASSWORD: &str = "kcat-and-python-pw";

#[test]
fn confluent_kafka_and_kcat_authenticate_with_every_mechanism() {
    let broker = sasl_broker(&[("alice", PASSWORD)], &[]);
    let bootstrap = broker.bootstrap().to_owned();

    for mechanism in MECHANISMS {
        let topic = topic_name("sasl-kcat");
        let sasl = |password: &'static str| {
            vec![
                "-X".to_owned(),
                "security.protocol=SASL_PLAINTEXT".to_owned(),
                "-X".to_owned(),
                format!("sasl.mechanisms={mechanism}"),
                "-X".to_owned(),
                "sasl.username=alice".to_owned(),
                "-X".to_owned(),
                format!("sasl.password={password}"),
            ]
        };
        let input = write_lines((0..10).map(|i| format!("{mechanism} line {i}")));
        let mut args = vec!["-b", &bootstrap, "-t", &topic, "-p", "0", "-P"];
        let good = sasl(PASSWORD);
        args.extend(good.iter().map(String::as_str));
        let produced = run_kcat(&args, Some(input.path()), CLIENT_TIMEOUT);
        assert!(
            produced.status.success(),
            "{mechanism}: {}",
            produced.stderr
        );

        let mut args = vec![
            "-b", &bootstrap, "-t", &topic, "-p", "0", "-C", "-o", "0", "-e",
        ];
        args.extend(good.iter().map(String::as_str));
        let consumed = run_kcat(&args, None, CLIENT_TIMEOUT);
        assert!(
            consumed.status.success(),
            "{mechanism}: {}",
            consumed.stderr
        );
        let lines: Vec<String> = String::from_utf8_lossy(&consumed.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        let expected: Vec<String> = (0..10).map(|i| format!("{mechanism} line {i}")).collect();
        assert_eq!(lines, expected, "{mechanism}");

        let bad = sasl("wrong-password");
        let mut args = vec!["-b", &bootstrap, "-L", "-m", "10"];
        args.extend(bad.iter().map(String::as_str));
        let refused = run_kcat(&args, None, CLIENT_TIMEOUT);
        assert!(
            !refused.status.success(),
            "{mechanism}: listed with a wrong password"
        );
        assert!(
            refused.stderr.contains("Authentication failed"),
            "{mechanism}: {}",
            refused.stderr
        );
    }

    if common::python_client_available("from confluent_kafka import Producer") {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/sasl_scenarios.py");
        let output = Command::new("python3")
            .arg(script)
            .args([&bootstrap, "alice", PASSWORD])
            .output()
            .expect("run python3");
        assert!(
            output.status.success(),
            "scenario failed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
