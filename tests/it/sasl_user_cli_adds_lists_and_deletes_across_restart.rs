//! `sluice user add|list|delete` over the Kafka protocol, itself authenticated with SASL:
//! a user added online can log in, survives a restart (as salted keys: the catalog holds no
//! password), and after `user delete` can no longer log in.

use crate::common;
use crate::sasl_support;

use std::process::Command;

use common::cli::stdout;
use sasl_support::sasl_broker;

/// `sluice ARGS` as the admin user, authenticated with `mechanism`.
fn sluice_as(
    bootstrap: &str,
    mechanism: &str,
    user: &str,
    password: &str,
    args: &[&str],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .args(["--bootstrap", bootstrap])
        .args(["--sasl-mechanism", mechanism, "--sasl-username", user])
        .args(["--sasl-password", password])
        .output()
        .expect("run sluice")
}

fn admin(bootstrap: &str, args: &[&str]) -> String {
    stdout(&sluice_as(
        bootstrap,
        "SCRAM-SHA-512",
        "admin",
        "admin-pw",
        args,
    ))
}

#[test]
fn user_cli_round_trip_survives_restart() {
    let mut broker = sasl_broker(
        &[("admin", "admin-pw")],
        &[
            "--sasl-enabled-mechanisms",
            "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
        ],
    );
    let bootstrap = broker.bootstrap().to_owned();

    admin(
        &bootstrap,
        &["user", "add", "bob", "--password", "bob-pw-93c1"],
    );
    admin(
        &bootstrap,
        &[
            "user",
            "add",
            "carol",
            "--password",
            "carol-pw",
            "--mechanism",
            "SCRAM-SHA-256",
            "--iterations",
            "8192",
        ],
    );
    let listed = admin(&bootstrap, &["user", "list"]);
    assert_eq!(
        listed,
        "admin SCRAM-SHA-256:4096 SCRAM-SHA-512:4096\n\
         bob SCRAM-SHA-256:4096 SCRAM-SHA-512:4096\n\
         carol SCRAM-SHA-256:8192\n"
    );
    for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] {
        let output = sluice_as(
            &bootstrap,
            mechanism,
            "bob",
            "bob-pw-93c1",
            &["topic", "list"],
        );
        assert!(output.status.success(), "bob with {mechanism}: {output:?}");
    }

    broker.stop_graceful();
    let catalog = std::fs::read_to_string(broker.data_dir().join("catalog.toml")).expect("catalog");
    assert!(catalog.contains("bob"), "{catalog}");
    for password in ["bob-pw-93c1", "carol-pw", "admin-pw"] {
        assert!(!catalog.contains(password), "{password} in {catalog}");
    }
    broker.restart();
    let bootstrap = broker.bootstrap().to_owned();
    assert_eq!(admin(&bootstrap, &["user", "list"]), listed);
    let output = sluice_as(&bootstrap, "PLAIN", "carol", "carol-pw", &["topic", "list"]);
    assert!(output.status.success(), "carol after restart: {output:?}");

    admin(&bootstrap, &["user", "delete", "bob"]);
    assert_eq!(
        admin(&bootstrap, &["user", "list"]),
        "admin SCRAM-SHA-256:4096 SCRAM-SHA-512:4096\ncarol SCRAM-SHA-256:8192\n"
    );
    let output = sluice_as(
        &bootstrap,
        "SCRAM-SHA-512",
        "bob",
        "bob-pw-93c1",
        &["topic", "list"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SASL_AUTHENTICATION_FAILED"), "{stderr}");

    // Without credentials the CLI cannot get past the SASL listener.
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["user", "list", "--bootstrap", &bootstrap])
        .output()
        .expect("run sluice");
    assert!(!output.status.success(), "{output:?}");
}
