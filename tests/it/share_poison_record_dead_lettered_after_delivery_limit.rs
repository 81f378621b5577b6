//! A poison record released on every delivery is delivered exactly
//! `share.delivery.count.limit` times, then archived into the dead-letter topic with
//! reason `delivery-limit`.

use crate::common;
use crate::share_support;

#[test]
fn poison_record_dead_lettered_after_delivery_limit() {
    if !share_support::share_client_available() {
        return;
    }
    let broker = common::Broker::start();
    share_support::run_scenario("dlq-poison", broker.bootstrap(), &[]);
}
