//! kill -9 of the broker in the middle of a share-group run: afterwards no acknowledged
//! record is delivered again, the records that were acquired at the crash come back at once
//! (their 120 s locks do not survive the crash), and no record is lost.

use crate::common;
use crate::share_support;

#[test]
fn share_state_survives_broker_kill() {
    if !share_support::share_client_available() {
        return;
    }
    let mut broker = common::Broker::start();
    let state = tempfile::NamedTempFile::new().expect("state file");
    let state_path = state.path().to_str().expect("utf-8 path").to_owned();
    share_support::run_scenario("crash-before", broker.bootstrap(), &[&state_path]);
    broker.kill();
    broker.restart();
    share_support::run_scenario("crash-after", broker.bootstrap(), &[&state_path]);
}
