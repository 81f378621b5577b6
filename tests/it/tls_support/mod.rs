//! Helpers for the TLS scenarios: a CA, a server certificate and client certificates made
//! with the `openssl` CLI in a temp dir at test time, a broker with a PLAINTEXT listener (for
//! `sluice` admin commands) and a TLS listener on fixed ports, and librdkafka's SSL settings.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{free_port_range, Broker, BrokerOptions};

/// Runs `openssl ARGS` in `dir`, which must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (apt install openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A throwaway PKI: one CA signing the broker's certificate (for 127.0.0.1 and localhost)
/// and any client certificates asked for.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("sluice-pki-")
            .tempdir()
            .expect("pki dir");
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=sluice-test-ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        );
        let pki = Pki { dir };
        pki.issue("server", "/CN=localhost", true);
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// Issues `NAME.pem` and `NAME.key` for `subject` (e.g. `/OU=eng/CN=alice`), signed by
    /// the CA; a server certificate names 127.0.0.1 and localhost.
    pub fn issue(&self, name: &str, subject: &str, server: bool) {
        let dir = self.dir.path();
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let pem = format!("{name}.pem");
        let ext = format!("{name}.ext");
        openssl(
            dir,
            &[
                "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", &key, "-out",
                &csr,
            ],
        );
        let extensions = if server {
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
        } else {
            "extendedKeyUsage=clientAuth\n"
        };
        std::fs::write(dir.join(&ext), extensions).expect("write extensions");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ],
        );
    }
}

/// The first of `count` consecutive free ports, for a listener a test names up front.
pub fn tls_port() -> u16 {
    free_port_range(2)
}

/// A broker whose first listener is `PROTOCOL://127.0.0.1:PORT` with the PKI's server
/// certificate, plus a PLAINTEXT listener for admin commands when `plaintext_too`.
pub fn tls_broker(pki: &Pki, protocol: &str, port: u16, extra_args: &[&str]) -> Broker {
    tls_broker_partitions(pki, protocol, port, extra_args, 1)
}

/// `tls_broker` whose auto-created topics get `num_partitions`.
pub fn tls_broker_partitions(
    pki: &Pki,
    protocol: &str,
    port: u16,
    extra_args: &[&str],
    num_partitions: u32,
) -> Broker {
    let mut args = vec![
        "--listener".to_owned(),
        format!("{protocol}://127.0.0.1:{port}"),
        "--tls-cert".to_owned(),
        pki.path("server.pem").display().to_string(),
        "--tls-key".to_owned(),
        pki.path("server.key").display().to_string(),
    ];
    args.extend(extra_args.iter().map(|a| (*a).to_owned()));
    Broker::start_with(BrokerOptions {
        extra_args: args,
        num_partitions,
        ..BrokerOptions::default()
    })
}

/// librdkafka settings for an SSL listener signed by the PKI's CA.
pub fn ssl_settings(pki: &Pki) -> Vec<(String, String)> {
    vec![
        ("security.protocol".to_owned(), "SSL".to_owned()),
        ("ssl.ca.location".to_owned(), pki.ca().display().to_string()),
    ]
}

/// The same with a client certificate `NAME.pem`/`NAME.key`.
pub fn mtls_settings(pki: &Pki, name: &str) -> Vec<(String, String)> {
    let mut settings = ssl_settings(pki);
    settings.push((
        "ssl.certificate.location".to_owned(),
        pki.path(&format!("{name}.pem")).display().to_string(),
    ));
    settings.push((
        "ssl.key.location".to_owned(),
        pki.path(&format!("{name}.key")).display().to_string(),
    ));
    settings
}

/// Borrowed pairs for the common client builders.
pub fn borrowed(settings: &[(String, String)]) -> Vec<(&str, &str)> {
    settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// A broker with an SSL listener verifying client certificates against the PKI's CA
/// (`--tls-client-auth CLIENT_AUTH`), a PLAINTEXT listener for `sluice` admin commands, and
/// `extra_args`. Returns the broker and the PLAINTEXT bootstrap.
pub fn client_auth_broker(pki: &Pki, client_auth: &str, extra_args: &[&str]) -> (Broker, String) {
    let ca = pki.ca().display().to_string();
    let plain_port = free_port_range(2);
    let plain = format!("PLAINTEXT://127.0.0.1:{plain_port}");
    let mut args = vec![
        "--listener",
        &plain,
        "--tls-client-auth",
        client_auth,
        "--tls-ca",
        &ca,
    ];
    args.extend_from_slice(extra_args);
    let broker = tls_broker(pki, "SSL", tls_port(), &args);
    (broker, format!("127.0.0.1:{plain_port}"))
}

/// `client_auth_broker` with ACLs on, open where no ACL names the resource (so a test
/// restricts only the topics it grants on).
pub fn acl_client_auth_broker(pki: &Pki, client_auth: &str) -> (Broker, String) {
    client_auth_broker(
        pki,
        client_auth,
        &[
            "--authorizer",
            "acl",
            "--allow-everyone-if-no-acl-found",
            "true",
        ],
    )
}

/// Produces one record to partition 0 of `topic`, which must succeed.
pub fn produces(settings: &[(String, String)], bootstrap: &str, topic: &str) {
    use crate::common::{produce_all, producer, TestRecord};
    let records = [TestRecord::new("k", "v").partition(0)];
    let deliveries = produce_all(&producer(bootstrap, &borrowed(settings)), topic, &records);
    assert!(
        deliveries.iter().all(|d| d.error.is_none()),
        "{topic}: {deliveries:?}"
    );
}

/// The error of a one-record produce to `topic` that must be refused.
pub fn produce_refusal(settings: &[(String, String)], bootstrap: &str, topic: &str) -> String {
    use crate::common::{producer, try_produce_all, TestRecord};
    let mut settings = settings.to_vec();
    settings.push(("message.timeout.ms".to_owned(), "20000".to_owned()));
    let records = [TestRecord::new("k", "v").partition(0)];
    try_produce_all(&producer(bootstrap, &borrowed(&settings)), topic, &records)
        .into_iter()
        .next()
        .and_then(|d| d.error)
        .expect("the produce must be refused")
}

/// A librdkafka client with `settings` must fail its handshake: Metadata fails and the
/// client reports an SSL error or a disconnect.
pub fn assert_handshake_refused(bootstrap: &str, settings: &[(String, String)]) {
    use crate::common::{wait_until, CLIENT_TIMEOUT};
    use rdkafka::consumer::Consumer;
    use std::time::Duration;
    let (consumer, errors) =
        crate::sasl_support::recording_consumer(bootstrap, &borrowed(settings));
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(2));
    assert!(
        metadata.is_err(),
        "the handshake must fail: {:?}",
        metadata.map(|m| m.brokers().len())
    );
    wait_until("a refused handshake", CLIENT_TIMEOUT, || {
        let _ = consumer.poll(Duration::from_millis(100));
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
}
