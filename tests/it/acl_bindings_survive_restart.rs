//! ACLs are kept in the catalog: after a SIGKILL and a restart they are listed again and
//! still decide (a DENY that beats a wildcard ALLOW keeps refusing produce).

use crate::acl_support;
use crate::common;

use acl_support::{acl, produce_one, ANONYMOUS};

#[test]
fn acls_are_listed_and_enforced_after_a_kill_and_restart() {
    let mut broker = acl_support::start_broker(&[]);
    let topic = common::topic_name("acl-restart");
    common::create_topic(broker.bootstrap(), &topic, 1);
    acl_support::allow(broker.bootstrap(), "User:*", "all", &["--topic", "*"]);
    acl(
        broker.bootstrap(),
        &[
            "add",
            "--deny-principal",
            ANONYMOUS,
            "--operation",
            "write",
            "--topic",
            "acl-",
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    let before = acl(broker.bootstrap(), &["list"]);
    assert!(produce_one(broker.bootstrap(), &topic).is_some());

    broker.kill();
    broker.restart();

    let after = acl(broker.bootstrap(), &["list"]);
    assert_eq!(after, before);
    assert!(
        after.contains("TOPIC\tPREFIXED\tacl-\tUser:ANONYMOUS\t*\tWRITE\tDENY"),
        "{after}"
    );
    let refused = produce_one(broker.bootstrap(), &topic).expect("still denied");
    assert!(refused.contains("TopicAuthorizationFailed"), "{refused}");
}
