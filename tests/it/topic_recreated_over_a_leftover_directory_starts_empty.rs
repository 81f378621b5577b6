//! A topic created again under the name of a deleted one starts empty even when the deleted
//! topic's partition directory is still on disk, as a crash between DeleteTopics persisting
//! the catalog and removing the directory (or a removal lost with the page cache) leaves it.
//! The leftover is made by hand: the partition directory is copied aside while the broker is
//! stopped and put back after the deletion.

use crate::common;

use common::{BrokerOptions, TestRecord};

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("list partition directory") {
        let entry = entry.expect("directory entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy file");
    }
}

#[test]
fn topic_recreated_over_a_leftover_directory_starts_empty() {
    let mut broker = common::Broker::start_with(BrokerOptions {
        auto_create_topics: false,
        ..BrokerOptions::default()
    });
    let topic = common::topic_name("leftover");
    common::create_topic(broker.bootstrap(), &topic, 1);
    let old: Vec<TestRecord> = (0..3)
        .map(|i| TestRecord::new(format!("k{i}"), format!("old-{i}")).partition(0))
        .collect();
    common::produce_all(&common::producer(broker.bootstrap(), &[]), &topic, &old);
    broker.stop_graceful();
    let partition_dir = broker.data_dir().join(format!("{topic}-0"));
    let saved = tempfile::tempdir().expect("tempdir");
    copy_dir(&partition_dir, saved.path());

    broker.restart();
    sluice::client::Admin::new(
        sluice::client::Cluster::connect(broker.bootstrap(), Default::default()).expect("connect"),
    )
    .delete_topic(&topic)
    .expect("DeleteTopics");
    broker.stop_graceful();
    assert!(
        !partition_dir.exists(),
        "DeleteTopics removed the directory"
    );
    copy_dir(saved.path(), &partition_dir);

    broker.restart();
    common::create_topic(broker.bootstrap(), &topic, 1);
    let new = [TestRecord::new("k", "new-0").partition(0)];
    let deliveries = common::produce_all(&common::producer(broker.bootstrap(), &[]), &topic, &new);
    assert_eq!(
        deliveries.iter().map(|d| d.offset).collect::<Vec<_>>(),
        [0],
        "the new topic's first record"
    );
}
