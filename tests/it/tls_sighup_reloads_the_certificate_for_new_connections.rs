//! SIGHUP rereads the TLS certificate: after the files are replaced with a certificate from
//! another CA, new connections verify only against the new CA; a broken file on a later
//! SIGHUP is logged and the working certificate kept.

use crate::common;
use crate::tls_support::{tls_broker, tls_port, Pki};

use std::process::Command;
use std::time::Duration;

/// Whether kcat can fetch Metadata over SSL trusting only `ca`.
fn metadata_ok(bootstrap: &str, ca: &std::path::Path) -> bool {
    let ca = format!("ssl.ca.location={}", ca.display());
    let output = common::run_kcat(
        &[
            "-L",
            "-b",
            bootstrap,
            "-m",
            "5",
            "-X",
            "security.protocol=SSL",
            "-X",
            &ca,
        ],
        None,
        Duration::from_secs(30),
    );
    output.status.success()
}

fn sighup(broker: &common::Broker) {
    let pid = broker.pid().expect("broker pid").to_string();
    let status = Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections() {
    let old = Pki::new();
    let new = Pki::new();
    let broker = tls_broker(&old, "SSL", tls_port(), &[]);
    let bootstrap = broker.bootstrap().to_owned();
    assert!(metadata_ok(&bootstrap, &old.ca()));
    assert!(!metadata_ok(&bootstrap, &new.ca()));

    for file in ["server.pem", "server.key"] {
        std::fs::copy(new.path(file), old.path(file)).expect("replace certificate");
    }
    sighup(&broker);
    common::wait_until("the new certificate", common::CLIENT_TIMEOUT, || {
        metadata_ok(&bootstrap, &new.ca())
    });
    assert!(!metadata_ok(&bootstrap, &old.ca()));

    std::fs::write(old.path("server.pem"), "not a certificate").expect("break certificate");
    sighup(&broker);
    common::wait_until("the failed reload logged", common::CLIENT_TIMEOUT, || {
        broker.stderr().contains("TLS reload failed")
    });
    assert!(metadata_ok(&bootstrap, &new.ca()));
}
