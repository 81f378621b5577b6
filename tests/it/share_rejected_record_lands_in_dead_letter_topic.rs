//! A record the consumer REJECTs is appended to the group's dead-letter topic
//! (`errors.deadletterqueue.topic.name`) with its original headers plus dlq.topic,
//! dlq.partition, dlq.offset, dlq.group, dlq.delivery.count and dlq.reason.

use crate::common;
use crate::share_support;

#[test]
fn rejected_record_lands_in_dead_letter_topic() {
    if !share_support::share_client_available() {
        return;
    }
    let broker = common::Broker::start();
    share_support::run_scenario("dlq-reject", broker.bootstrap(), &[]);
}
