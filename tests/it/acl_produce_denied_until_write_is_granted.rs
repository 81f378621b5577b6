//! With the ACL authorizer on, a principal without WRITE on a topic gets
//! TOPIC_AUTHORIZATION_FAILED (rdkafka and kcat); after `sluice acl add` grants it WRITE,
//! both produce and the records read back.

use crate::acl_support;
use crate::common;

use std::time::Duration;

use acl_support::{kcat_produce_one, produce_one, ANONYMOUS};

#[test]
fn produce_is_refused_without_write_and_accepted_with_it() {
    let broker = acl_support::start_broker(&[]);
    let bootstrap = broker.bootstrap();
    let topic = common::topic_name("acl-write");
    common::create_topic(bootstrap, &topic, 1);
    // Someone else may write: the topic now has ACLs, and none for ANONYMOUS.
    acl_support::allow(bootstrap, "User:bob", "write", &["--topic", &topic]);

    let refused = produce_one(bootstrap, &topic).expect("produce without WRITE must fail");
    assert!(
        refused.contains("TopicAuthorizationFailed"),
        "rdkafka: {refused}"
    );
    let (_, stderr) = kcat_produce_one(bootstrap, &topic);
    assert!(
        stderr.contains("Topic authorization failed"),
        "kcat: {stderr}"
    );

    let added = acl_support::allow(bootstrap, ANONYMOUS, "write", &["--topic", &topic]);
    assert!(added.contains("WRITE\tALLOW"), "{added}");
    assert_eq!(produce_one(bootstrap, &topic), None);
    let (ok, stderr) = kcat_produce_one(bootstrap, &topic);
    assert!(ok, "kcat produce after the grant: {stderr}");

    // Reading back needs READ too.
    acl_support::allow(bootstrap, ANONYMOUS, "read", &["--topic", &topic]);
    let consumer = common::consumer(bootstrap, &[]);
    common::assign(&consumer, &topic, &[(0, 0)]);
    let consumed = common::consume_count(&consumer, 2, Duration::from_secs(60));
    assert_eq!(consumed.len(), 2);
}
