//! Static membership (KIP-345): a member with a group.instance.id that restarts within the
//! session timeout gets its partitions back without a rebalance of the other members.

use crate::common;
use crate::group_support;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{create_topic, topic_name, Broker, CLIENT_TIMEOUT};
use group_support::{assigned, drain, group_consumer, poll_until};

const PARTITIONS_COUNT: i32 = 4;

#[test]
fn group_static_member_restart_skips_rebalance() {
    let broker = Broker::start();
    let topic = topic_name("static");
    let group = topic_name("fleet");
    create_topic(broker.bootstrap(), &topic, PARTITIONS_COUNT);
    let session = [("session.timeout.ms", "20000")];
    let with_instance = |id: &str| {
        let mut overrides = session.to_vec();
        overrides.push(("group.instance.id", id));
        group_consumer(broker.bootstrap(), &group, &topic, &overrides)
    };

    let (a, a_rebalances) = with_instance("a");
    let (b, _) = with_instance("b");
    let mut received = vec![Vec::new(), Vec::new()];
    poll_until(
        &[&a, &b],
        &mut received,
        "two partitions each",
        CLIENT_TIMEOUT,
        |_| assigned(&a).len() == 2 && assigned(&b).len() == 2,
    );
    let b_partitions: BTreeSet<i32> = assigned(&b);
    let a_partitions: BTreeSet<i32> = assigned(&a);
    // Let the group settle, then count from here.
    drain(&[&a, &b], &mut received, Duration::from_millis(500));
    let before = a_rebalances.total();

    // A static member does not send LeaveGroup on close; its replacement takes its place.
    drop(b);
    let (b2, _) = with_instance("b");
    let mut received = vec![Vec::new(), Vec::new()];
    poll_until(
        &[&a, &b2],
        &mut received,
        "the restarted member's partitions",
        CLIENT_TIMEOUT,
        |_| !assigned(&b2).is_empty(),
    );
    assert_eq!(
        assigned(&b2),
        b_partitions,
        "the restarted member gets its old partitions"
    );
    // Heartbeats of `a` keep flowing; a rebalance would show as revoke/assign callbacks.
    drain(&[&a, &b2], &mut received, Duration::from_secs(3));
    assert_eq!(
        a_rebalances.total(),
        before,
        "the other member saw no rebalance"
    );
    assert_eq!(
        assigned(&a),
        a_partitions,
        "the other member kept its partitions"
    );
}
