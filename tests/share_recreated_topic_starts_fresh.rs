//! A share group reads topic T; T is deleted and created again under the same name while a
//! share consumer stays subscribed. The new topic's records all reach the consumer (its
//! share state is keyed by topic id, and the deleted topic's state is dropped with it, so
//! offsets 0.. of the new topic are not skipped as already acknowledged), no share fetch
//! fails on the deleted topic's closed log, and after kill -9 and a restart the new topic's
//! state is what comes back.

mod common;
mod share_support;

#[test]
fn share_recreated_topic_starts_fresh() {
    if !share_support::share_client_available() {
        return;
    }
    let mut broker = common::Broker::start();
    let state = tempfile::NamedTempFile::new().expect("state file");
    let state_path = state.path().to_str().expect("utf-8 path").to_owned();
    share_support::run_scenario("recreate-before", broker.bootstrap(), &[&state_path]);
    let stderr = broker.stderr();
    assert!(
        !stderr.contains("share fetch failed"),
        "share fetches failed:\n{stderr}"
    );
    broker.kill();
    broker.restart();
    share_support::run_scenario("recreate-after", broker.bootstrap(), &[&state_path]);
    let stderr = broker.stderr();
    assert!(
        !stderr.contains("share fetch failed"),
        "share fetches failed after the restart:\n{stderr}"
    );
}
