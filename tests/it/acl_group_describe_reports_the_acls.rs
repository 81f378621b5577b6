//! DescribeGroups needs DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED otherwise), and
//! the authorized operations it reports when asked are the ones the ACLs allow: READ
//! (and the DESCRIBE it implies), not DELETE.
//!
//! The client is pip confluent-kafka's AdminClient (describe_consumer_groups).

use crate::acl_support;
use crate::common;
use crate::share_support;

use acl_support::ANONYMOUS;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

const SCRIPT: &str = r#"
import sys
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
future = admin.describe_consumer_groups([sys.argv[2]], include_authorized_operations=True)
try:
    group = future[sys.argv[2]].result(30)
    print(" ".join(sorted(op.name for op in group.authorized_operations or [])))
except Exception as e:
    print(e.args[0].name())
"#;

fn describe(bootstrap: &str, group: &str) -> String {
    acl_support::python(SCRIPT, &[bootstrap, group])
}

#[test]
fn describe_groups_follows_the_group_acls() {
    if !share_support::share_client_available() {
        return;
    }
    let broker = acl_support::start_broker(&[]);
    let bootstrap = broker.bootstrap();
    let topic = common::topic_name("acl-describe-group");
    let group = common::topic_name("acl-described");
    common::create_topic(bootstrap, &topic, 1);
    acl_support::allow(bootstrap, "User:bob", "all", &["--group", &group]);
    assert_eq!(describe(bootstrap, &group), "GROUP_AUTHORIZATION_FAILED");

    // A commit makes the group exist.
    acl_support::allow(bootstrap, ANONYMOUS, "read", &["--group", &group]);
    let consumer = common::consumer(bootstrap, &[("group.id", &group)]);
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&topic, 0, Offset::Offset(0))
        .expect("offset");
    consumer
        .commit(&offsets, CommitMode::Sync)
        .expect("commit with READ on the group and the topic");
    assert_eq!(describe(bootstrap, &group), "DESCRIBE READ");
}
