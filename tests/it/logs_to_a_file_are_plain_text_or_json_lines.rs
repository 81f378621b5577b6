//! With stderr going to a file (as under systemd or a log shipper), the broker's log has no
//! ANSI colour codes, even without `NO_COLOR`; with `--log-format json` every line is one JSON
//! object. Each broker runs through start-up and a graceful stop, so the log holds the usual
//! lines of both.

use crate::common;

use common::{Broker, BrokerOptions};

/// Runs a broker (NO_COLOR removed) through start-up and SIGTERM; its whole stderr.
fn log_of_a_run(extra_args: &[&str]) -> String {
    let mut broker = Broker::start_with(BrokerOptions {
        shards_count: 1,
        extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
        envs: vec![("NO_COLOR".to_owned(), String::new())],
        ..BrokerOptions::default()
    });
    broker.stop_graceful();
    let log = std::fs::read(broker.stderr_file()).expect("read the broker's stderr");
    String::from_utf8(log).expect("the log is UTF-8")
}

#[test]
fn text_log_to_a_file_has_no_colour_codes() {
    let log = log_of_a_run(&[]);
    assert!(
        log.contains("starting sluice") && log.contains("stopped"),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "ESC in the log:\n{log:?}");
}

#[test]
fn json_log_is_one_object_per_line() {
    let log = log_of_a_run(&["--log-format", "json"]);
    let mut messages = Vec::new();
    for line in log.lines() {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n--- log ---\n{log}"));
        assert!(value["level"].is_string(), "no level: {line}");
        assert!(value["timestamp"].is_string(), "no timestamp: {line}");
        if let Some(message) = value["fields"]["message"].as_str() {
            messages.push(message.to_owned());
        }
    }
    assert!(
        messages.iter().any(|m| m == "starting sluice") && messages.iter().any(|m| m == "stopped"),
        "messages: {messages:?}"
    );
}
