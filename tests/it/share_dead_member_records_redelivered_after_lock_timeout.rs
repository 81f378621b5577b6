//! A member that acquires records, never acknowledges them and dies (SIGKILL, no close):
//! its records go to another member once their lock (a short group-level
//! `share.record.lock.duration.ms`) expires, with delivery count 2.

use crate::common;
use crate::share_support;

#[test]
fn dead_member_records_redelivered_after_lock_timeout() {
    if !share_support::share_client_available() {
        return;
    }
    let broker = common::Broker::start();
    share_support::run_scenario("lock-timeout", broker.bootstrap(), &[]);
}
