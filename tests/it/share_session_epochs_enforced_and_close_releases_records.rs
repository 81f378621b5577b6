//! Share session epochs (KIP-932) over the raw protocol: a fetch or acknowledgement for a
//! session the broker does not hold gets SHARE_SESSION_NOT_FOUND, a wrong epoch
//! INVALID_SHARE_SESSION_EPOCH, a ShareAcknowledge with epoch 0 is refused, an opening
//! ShareFetch may not acknowledge, and a full session cache refuses new sessions with
//! SHARE_SESSION_LIMIT_REACHED. Closing a session (epoch -1, by ShareAcknowledge or by
//! ShareFetch) releases the member's records at once: another member acquires them although
//! their one-hour lock is far from expiring.

use crate::common;
use crate::share_support;

use common::{BrokerOptions, TestRecord};
use share_support::share_protocol::{
    acquired_offsets, cluster, partition_errors, set_group_config, FetchPart, ShareMember, ACCEPT,
    INVALID_REQUEST, INVALID_SHARE_SESSION_EPOCH, NONE, SHARE_SESSION_LIMIT_REACHED,
    SHARE_SESSION_NOT_FOUND,
};

const RECORDS_COUNT: i64 = 10;
/// Long enough that nothing in this test is released by a lock timeout.
const LOCK_MS: &str = "3600000";

#[test]
fn share_session_epochs_enforced_and_close_releases_records() {
    let broker = common::Broker::start_with(BrokerOptions {
        extra_args: vec![
            "--share-record-lock-duration-ms".into(),
            LOCK_MS.into(),
            "--share-max-share-sessions".into(),
            "2".into(),
        ],
        ..BrokerOptions::default()
    });
    let topic = common::topic_name("share-epochs");
    common::create_topic(broker.bootstrap(), &topic, 1);
    let producer = common::producer(broker.bootstrap(), &[]);
    let records: Vec<TestRecord> = (0..RECORDS_COUNT)
        .map(|i| TestRecord::new(format!("k{i}"), format!("v{i}")).partition(0))
        .collect();
    common::produce_all(&producer, &topic, &records);

    let mut cluster = cluster(broker.bootstrap());
    let metadata = cluster.topic(&topic).expect("topic metadata");
    let topic_id = metadata.topic_id;
    let group = common::topic_name("epochs");
    set_group_config(
        cluster.any_connection(),
        &group,
        "share.auto.offset.reset",
        "earliest",
    );
    let (_, leader) = cluster.leader_connection(&topic, 0).expect("leader");
    let part = FetchPart::new(topic_id, 0);
    let a = ShareMember::new(&group, "member-a");
    let b = ShareMember::new(&group, "member-b");
    let c = ShareMember::new(&group, "member-c");
    let d = ShareMember::new(&group, "member-d");

    // No session yet: continuing or closing one is refused, and only a fetch opens one.
    let response = a.fetch(leader, 1, std::slice::from_ref(&part), 0);
    assert_eq!(response.error_code, SHARE_SESSION_NOT_FOUND, "{response:?}");
    let response = a.acknowledge(leader, -1, topic_id, 0, &[]);
    assert_eq!(response.error_code, SHARE_SESSION_NOT_FOUND, "{response:?}");
    let response = a.acknowledge(leader, 0, topic_id, 0, &[]);
    assert_eq!(
        response.error_code, INVALID_SHARE_SESSION_EPOCH,
        "{response:?}"
    );

    // Epoch 0 opens the session and acquires every record (a one-hour lock).
    let response = a.fetch(leader, 0, std::slice::from_ref(&part), 5_000);
    assert_eq!(response.error_code, NONE, "{response:?}");
    let held: Vec<(i64, i16)> = (0..RECORDS_COUNT).map(|o| (o, 1)).collect();
    assert_eq!(acquired_offsets(&response), held);

    // An opening fetch may not acknowledge; refused, it leaves the session as it was.
    let response = a.fetch(leader, 0, &[part.clone().acking(0, 0, ACCEPT)], 0);
    assert_eq!(response.error_code, INVALID_REQUEST, "{response:?}");
    // A wrong epoch, ahead or behind, is refused.
    for wrong in [5, 2] {
        let response = a.fetch(leader, wrong, std::slice::from_ref(&part), 0);
        assert_eq!(
            response.error_code, INVALID_SHARE_SESSION_EPOCH,
            "epoch {wrong}: {response:?}"
        );
    }
    // The right epoch (1) is accepted: offset 0 is acknowledged.
    let response = a.acknowledge(leader, 1, topic_id, 0, &[(0, 0, ACCEPT)]);
    assert_eq!(response.error_code, NONE, "{response:?}");
    let errors: Vec<i16> = response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect();
    assert_eq!(errors, vec![NONE]);
    // ... and the next epoch is 2, for a ShareFetch as for a ShareAcknowledge.
    let response = a.acknowledge(leader, 1, topic_id, 0, &[]);
    assert_eq!(
        response.error_code, INVALID_SHARE_SESSION_EPOCH,
        "{response:?}"
    );

    // b opens the second session the shard may hold; its records are all locked by a.
    let response = b.fetch(leader, 0, std::slice::from_ref(&part), 200);
    assert_eq!(response.error_code, NONE, "{response:?}");
    assert_eq!(acquired_offsets(&response), vec![]);
    // A third session does not fit.
    let response = d.fetch(leader, 0, std::slice::from_ref(&part), 0);
    assert_eq!(
        response.error_code, SHARE_SESSION_LIMIT_REACHED,
        "{response:?}"
    );

    // a closes its session with ShareAcknowledge epoch -1: its records are released now,
    // not in an hour, and b acquires them for their second delivery.
    let response = a.acknowledge(leader, -1, topic_id, 0, &[]);
    assert_eq!(response.error_code, NONE, "{response:?}");
    let response = b.fetch(leader, 1, std::slice::from_ref(&part), 5_000);
    assert_eq!(response.error_code, NONE, "{response:?}");
    let redelivered: Vec<(i64, i16)> = (1..RECORDS_COUNT).map(|o| (o, 2)).collect();
    assert_eq!(acquired_offsets(&response), redelivered);
    // a's session is gone.
    let response = a.fetch(leader, 2, std::slice::from_ref(&part), 0);
    assert_eq!(response.error_code, SHARE_SESSION_NOT_FOUND, "{response:?}");

    // b closes with a ShareFetch at epoch -1 that acknowledges 1..=4: those are done, and
    // 5..=9 are released for c (third delivery). The freed slot lets c open a session.
    let response = b.fetch(leader, -1, &[part.clone().acking(1, 4, ACCEPT)], 0);
    assert_eq!(response.error_code, NONE, "{response:?}");
    assert_eq!(partition_errors(&response), vec![(0, NONE, NONE)]);
    assert_eq!(
        acquired_offsets(&response),
        vec![],
        "a closing fetch acquires nothing"
    );
    let response = c.fetch(leader, 0, std::slice::from_ref(&part), 5_000);
    assert_eq!(response.error_code, NONE, "{response:?}");
    let third: Vec<(i64, i16)> = (5..RECORDS_COUNT).map(|o| (o, 3)).collect();
    assert_eq!(acquired_offsets(&response), third);
}
