//! A group that exists only because a consumer outside the group protocol committed offsets
//! to it (Kafka's "simple" group) is listed and described with an empty protocol type, as
//! Kafka describes it; admin tools tell it from a consumer group that way. A consumer group
//! whose members joined and left keeps its protocol type "consumer" (librdkafka's
//! 0081_admin ListConsumerGroups checks it is not reported as a simple group).

use crate::common;
use crate::group_support;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sluice::client::group_admin::GroupAdmin;
use sluice::client::{Cluster, ConnectionConfig};

use common::{create_topic, topic_name, Broker, CLIENT_TIMEOUT};
use group_support::{assigned, group_consumer, poll_until};

#[test]
fn group_simple_commit_group_has_no_protocol_type() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("simple-commit");
    create_topic(&bootstrap, &topic, 1);
    let group = topic_name("simple-group");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create consumer");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&topic, 0, Offset::Offset(0))
        .expect("offset");
    consumer
        .commit(&offsets, CommitMode::Sync)
        .expect("commit without joining");

    // librdkafka lists the groups (ListGroups) and then describes them (DescribeGroups).
    let groups = consumer
        .fetch_group_list(Some(&group), CLIENT_TIMEOUT)
        .expect("group list");
    let described = groups
        .groups()
        .iter()
        .find(|g| g.name() == group)
        .expect("the group is listed");
    assert_eq!(described.state(), "Empty");
    assert_eq!(described.protocol_type(), "");
    // ListGroups itself, raw (librdkafka reports DescribeGroups' answer above).
    let cluster = Cluster::connect(&bootstrap, ConnectionConfig::default()).expect("connect");
    let listed = GroupAdmin::new(cluster)
        .list_groups()
        .expect("ListGroups")
        .into_iter()
        .find(|g| g.group_id == group)
        .expect("the group is listed");
    assert_eq!(listed.protocol_type, "");

    // A consumer group that had a member, now empty.
    let joined = topic_name("joined-group");
    let (member, _) = group_consumer(&bootstrap, &joined, &topic, &[]);
    poll_until(
        &[&member],
        &mut [Vec::new()],
        "an assignment",
        CLIENT_TIMEOUT,
        |_| !assigned(&member).is_empty(),
    );
    member
        .commit(&offsets, CommitMode::Sync)
        .expect("commit as a member");
    drop(member);
    let groups = consumer
        .fetch_group_list(Some(&joined), CLIENT_TIMEOUT)
        .expect("group list");
    let described = groups
        .groups()
        .iter()
        .find(|g| g.name() == joined)
        .expect("the group is listed");
    assert_eq!(described.state(), "Empty");
    assert_eq!(described.protocol_type(), "consumer");
    let cluster = Cluster::connect(&bootstrap, ConnectionConfig::default()).expect("connect");
    let listed = GroupAdmin::new(cluster)
        .list_groups()
        .expect("ListGroups")
        .into_iter()
        .find(|g| g.group_id == joined)
        .expect("the group is listed");
    assert_eq!(listed.protocol_type, "consumer");
}
