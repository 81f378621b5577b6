//! `sluice group list|describe|reset-offsets|delete` against a live group: lag per
//! partition, resets refused while members are connected, then applied, then deletion.

use crate::common;
use crate::group_support;

use rdkafka::consumer::{CommitMode, Consumer};

use common::cli::{sluice, stdout};
use common::{create_topic, produce_all, producer, topic_name, Broker, TestRecord, CLIENT_TIMEOUT};
use group_support::{committed_offsets, group_consumer, poll_until};

const PARTITIONS_COUNT: i32 = 2;

#[test]
fn group_cli_describes_resets_and_deletes() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap().to_owned();
    let topic = topic_name("cli");
    let group = topic_name("cli-group");
    create_topic(&bootstrap, &topic, PARTITIONS_COUNT);
    let records: Vec<TestRecord> = (0..20)
        .map(|i| TestRecord::new(format!("k{i}"), format!("v{i}")).partition(i % 2))
        .collect();
    produce_all(&producer(&bootstrap, &[]), &topic, &records[..10]);

    let (consumer, _) =
        group_consumer(&bootstrap, &group, &topic, &[("client.id", "cli-test-app")]);
    let mut received = vec![Vec::new()];
    poll_until(
        &[&consumer],
        &mut received,
        "the first ten",
        CLIENT_TIMEOUT,
        |r| r[0].len() >= 10,
    );
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    produce_all(&producer(&bootstrap, &[]), &topic, &records[10..]);

    let listed = stdout(&sluice(&["group", "list"], &bootstrap));
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&group) && l.contains("Stable")),
        "{listed}"
    );
    let described = stdout(&sluice(&["group", "describe", &group], &bootstrap));
    assert!(described.contains("Members: 1"), "{described}");
    // Members show who they are, as Kafka's DescribeGroups reports them.
    assert!(
        described.contains("Client: cli-test-app /127.0.0.1"),
        "client id and host in\n{described}"
    );
    for p in 0..PARTITIONS_COUNT {
        let row = format!("{topic}\t{p}\t5\t10\t5\t");
        assert!(described.contains(&row), "lag row {row:?} in\n{described}");
    }

    let refused = sluice(
        &["group", "reset-offsets", &group, "--to-earliest"],
        &bootstrap,
    );
    assert!(
        !refused.status.success(),
        "reset must be refused while the group is active"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("stop its consumers"));

    drop(consumer); // LeaveGroup: the group becomes Empty
    common::wait_until("the group to empty", CLIENT_TIMEOUT, || {
        stdout(&sluice(&["group", "describe", &group], &bootstrap)).contains("State: Empty")
    });
    stdout(&sluice(
        &["group", "reset-offsets", &group, "--to-offset", "3"],
        &bootstrap,
    ));
    let committed = committed_offsets(&bootstrap, &group, &topic, PARTITIONS_COUNT);
    assert!(committed.values().all(|o| *o == Some(3)), "{committed:?}");
    stdout(&sluice(
        &[
            "group",
            "reset-offsets",
            &group,
            "--topic",
            &topic,
            "--to-latest",
        ],
        &bootstrap,
    ));
    let committed = committed_offsets(&bootstrap, &group, &topic, PARTITIONS_COUNT);
    assert!(committed.values().all(|o| *o == Some(10)), "{committed:?}");

    stdout(&sluice(&["group", "delete", &group], &bootstrap));
    let listed = stdout(&sluice(&["group", "list"], &bootstrap));
    assert!(!listed.contains(&group), "{listed}");
    let committed = committed_offsets(&bootstrap, &group, &topic, PARTITIONS_COUNT);
    assert!(committed.values().all(Option::is_none), "{committed:?}");
}
