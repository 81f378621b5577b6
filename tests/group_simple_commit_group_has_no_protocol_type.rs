//! A group that exists only because a consumer outside the group protocol committed offsets
//! to it (Kafka's "simple" group) is listed and described with an empty protocol type, as
//! Kafka describes it; admin tools tell it from a consumer group that way.

mod common;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sluice::client::group_admin::GroupAdmin;
use sluice::client::{Cluster, ConnectionConfig};

use common::{create_topic, topic_name, Broker, CLIENT_TIMEOUT};

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
}
