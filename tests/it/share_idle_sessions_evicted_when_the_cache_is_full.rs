//! A full share session cache makes room by evicting sessions idle for longer than their
//! group's `share.session.timeout.ms`: sessions that nobody closes (here under a member id
//! the group never knew, as a crashed or misbehaving client leaves them) cannot lock every
//! other client out with SHARE_SESSION_LIMIT_REACHED. A session in use is never evicted.

use crate::common;
use crate::share_support;

use std::time::{Duration, Instant};

use common::BrokerOptions;
use share_support::share_protocol::{
    cluster, set_group_config, FetchPart, ShareMember, NONE, SHARE_SESSION_LIMIT_REACHED,
    SHARE_SESSION_NOT_FOUND,
};

/// The group's session timeout. Long enough that a stalled CI machine does not let the
/// fresh session go idle between its use and the refused open that follows.
const SESSION_TIMEOUT: Duration = Duration::from_millis(5_000);

#[test]
fn share_idle_sessions_evicted_when_the_cache_is_full() {
    let broker = common::Broker::start_with(BrokerOptions {
        extra_args: vec!["--share-max-share-sessions".into(), "1".into()],
        ..BrokerOptions::default()
    });
    let topic = common::topic_name("share-evict");
    common::create_topic(broker.bootstrap(), &topic, 1);
    let mut cluster = cluster(broker.bootstrap());
    let topic_id = cluster.topic(&topic).expect("topic metadata").topic_id;
    let group = common::topic_name("evict");
    set_group_config(
        cluster.any_connection(),
        &group,
        "share.session.timeout.ms",
        &SESSION_TIMEOUT.as_millis().to_string(),
    );
    let (_, leader) = cluster.leader_connection(&topic, 0).expect("leader");
    let parts = [FetchPart::new(topic_id, 0)];
    // Neither member ever heartbeats: the coordinator never hears of them, so only
    // eviction can free their sessions.
    let ghost = ShareMember::new(&group, "member-ghost");
    let newcomer = ShareMember::new(&group, "member-newcomer");

    let response = ghost.fetch(leader, 0, &parts, 0);
    assert_eq!(response.error_code, NONE, "{response:?}");
    // In use, the ghost's session holds the only place.
    let response = ghost.fetch(leader, 1, &parts, 0);
    assert_eq!(response.error_code, NONE, "{response:?}");
    let used = Instant::now();
    let response = newcomer.fetch(leader, 0, &parts, 0);
    assert_eq!(
        response.error_code, SHARE_SESSION_LIMIT_REACHED,
        "{response:?}"
    );

    // Idle past the session timeout, it gives way to the newcomer.
    let idle_at = used + SESSION_TIMEOUT + Duration::from_millis(500);
    std::thread::sleep(idle_at.saturating_duration_since(Instant::now()));
    let response = newcomer.fetch(leader, 0, &parts, 0);
    assert_eq!(response.error_code, NONE, "{response:?}");
    let response = ghost.fetch(leader, 2, &parts, 0);
    assert_eq!(response.error_code, SHARE_SESSION_NOT_FOUND, "{response:?}");
}
