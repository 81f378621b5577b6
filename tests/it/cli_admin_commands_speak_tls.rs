//! The `sluice` admin commands reach brokers that have only TLS listeners: with `--tls-ca`
//! they create, list and describe topics over SSL, produce and consume a record, and over
//! SASL_SSL they authenticate too. A CA that did not sign the broker's certificate is refused
//! with a readable error rather than falling back to plaintext.

use crate::common;
use crate::sasl_support::add_user_offline;
use crate::tls_support::{tls_broker, tls_port, Pki};

use common::cli;

const PASSWORD: &str = "dora-cli-secret-17";

#[test]
fn topic_produce_and_consume_commands_work_over_ssl() {
    let pki = Pki::new();
    let broker = tls_broker(&pki, "SSL", tls_port(), &[]);
    let ca = pki.ca().display().to_string();
    let topic = common::topic_name("cli-ssl");

    let created = cli::sluice(
        &[
            "topic",
            "create",
            &topic,
            "--partitions",
            "2",
            "--tls-ca",
            &ca,
        ],
        broker.bootstrap(),
    );
    assert!(cli::stdout(&created).contains(&topic));
    let listed = cli::sluice(&["topic", "list", "--tls-ca", &ca], broker.bootstrap());
    assert!(cli::stdout(&listed).lines().any(|l| l.trim() == topic));

    let values = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(values.path(), "over-tls\n").expect("write values");
    let values = values.path().display().to_string();
    let produced = cli::sluice(
        &[
            "produce",
            &topic,
            "--partition",
            "1",
            "--file",
            &values,
            "--tls-ca",
            &ca,
        ],
        broker.bootstrap(),
    );
    cli::stdout(&produced);
    let consumed = cli::sluice(
        &[
            "consume",
            &topic,
            "--partition",
            "1",
            "--from",
            "earliest",
            "--max-messages",
            "1",
            "--tls-ca",
            &ca,
        ],
        broker.bootstrap(),
    );
    let consumed = cli::stdout(&consumed);
    assert!(consumed.contains("over-tls"), "{consumed}");

    let other = Pki::new();
    let error = cli::refused(
        &[
            "topic",
            "list",
            "--tls-ca",
            &other.ca().display().to_string(),
        ],
        broker.bootstrap(),
    );
    assert!(
        error.to_lowercase().contains("certificate"),
        "a CA that did not sign the broker should be named as the problem: {error}"
    );
}

#[test]
fn topic_commands_authenticate_over_sasl_ssl() {
    let pki = Pki::new();
    let mut broker = tls_broker(&pki, "SASL_SSL", tls_port(), &[]);
    broker.stop_graceful();
    add_user_offline(&broker, "dora", PASSWORD);
    broker.restart();
    let ca = pki.ca().display().to_string();
    let topic = common::topic_name("cli-sasl-ssl");
    let login = |password: &'static str| {
        [
            "--tls-ca",
            ca.as_str(),
            "--sasl-mechanism",
            "SCRAM-SHA-512",
            "--sasl-username",
            "dora",
            "--sasl-password",
            password,
        ]
    };

    let mut create = vec!["topic", "create", topic.as_str()];
    create.extend(login(PASSWORD));
    cli::stdout(&cli::sluice(&create, broker.bootstrap()));
    let mut list = vec!["topic", "list"];
    list.extend(login(PASSWORD));
    let listed = cli::stdout(&cli::sluice(&list, broker.bootstrap()));
    assert!(listed.lines().any(|l| l.trim() == topic), "{listed}");

    let mut wrong = vec!["topic", "list"];
    wrong.extend(login("not-the-password"));
    let error = cli::refused(&wrong, broker.bootstrap());
    assert!(
        error.to_lowercase().contains("authentication"),
        "a wrong password should fail authentication: {error}"
    );
}
