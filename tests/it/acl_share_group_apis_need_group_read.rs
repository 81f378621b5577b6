//! ShareGroupHeartbeat, ShareFetch and ShareAcknowledge need READ on the share group, and
//! ShareGroupDescribe and DescribeShareGroupOffsets need DESCRIBE (which READ implies):
//! without it each answers GROUP_AUTHORIZATION_FAILED; once granted the member joins and
//! fetches and the group can be described.

use crate::acl_support;
use crate::common;
use crate::share_support;

use acl_support::ANONYMOUS;
use share_support::share_protocol::{
    cluster, describe, describe_offsets, FetchPart, ShareMember, NONE,
};

const GROUP_AUTHORIZATION_FAILED: i16 = 30;

#[test]
fn share_group_apis_follow_the_group_acls() {
    let broker = acl_support::start_broker(&[]);
    let bootstrap = broker.bootstrap();
    let topic = common::topic_name("acl-share");
    let group = common::topic_name("acl-share-group");
    common::create_topic(bootstrap, &topic, 1);
    acl_support::allow(bootstrap, "User:bob", "read", &["--group", &group]);

    let mut cluster = cluster(bootstrap);
    let topic_id = cluster.topic(&topic).expect("topic metadata").topic_id;
    let (_, leader) = cluster.leader_connection(&topic, 0).expect("leader");
    let member = ShareMember::new(&group, "member-a");
    let part = [FetchPart::new(topic_id, 0)];
    let heartbeat = member.heartbeat(leader, 0, &[&topic]);
    assert_eq!(heartbeat.error_code, GROUP_AUTHORIZATION_FAILED);
    let fetched = member.fetch(leader, 0, &part, 0);
    assert_eq!(fetched.error_code, GROUP_AUTHORIZATION_FAILED);
    let acknowledged = member.acknowledge(leader, 1, topic_id, 0, &[(0, 0, 1)]);
    assert_eq!(acknowledged.error_code, GROUP_AUTHORIZATION_FAILED);
    let described = describe(leader, &group);
    assert_eq!(described.error_code, GROUP_AUTHORIZATION_FAILED);
    let offsets = describe_offsets(leader, &group, None);
    assert_eq!(offsets.error_code, GROUP_AUTHORIZATION_FAILED);

    acl_support::allow(bootstrap, ANONYMOUS, "read", &["--group", &group]);
    let fetched = member.fetch(leader, 0, &part, 0);
    assert_eq!(fetched.error_code, NONE, "{fetched:?}");
    let described = describe(leader, &group);
    assert_ne!(
        described.error_code, GROUP_AUTHORIZATION_FAILED,
        "{described:?}"
    );
    let offsets = describe_offsets(leader, &group, None);
    assert_ne!(
        offsets.error_code, GROUP_AUTHORIZATION_FAILED,
        "{offsets:?}"
    );
}
