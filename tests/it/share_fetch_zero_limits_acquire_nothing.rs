//! ShareFetch v1 with MaxBytes 0, or MaxRecords 0, acquires nothing (Kafka's
//! SharePartition.acquire takes no record for MaxRecords <= 0, and MaxBytes 0 leaves room for
//! none), over the raw protocol: afterwards an ordinary fetch acquires every record on its
//! first delivery, so the zero-limit fetches locked none of them.

use crate::common;
use crate::share_support;

use share_support::share_protocol::{
    acquired_offsets, cluster, group_from_earliest, FetchLimits, FetchPart, ShareMember, NONE,
};

const RECORDS_COUNT: i64 = 5;

#[test]
fn share_fetch_zero_limits_acquire_nothing() {
    let broker = common::Broker::start();
    let topic = common::topic_name("share-zero");
    common::create_topic(broker.bootstrap(), &topic, 1);
    share_support::produce_to_partition_0(broker.bootstrap(), &topic, RECORDS_COUNT);

    let mut cluster = cluster(broker.bootstrap());
    let topic_id = cluster.topic(&topic).expect("topic metadata").topic_id;
    let group = group_from_earliest(cluster.any_connection(), "zero");
    let (_, leader) = cluster.leader_connection(&topic, 0).expect("leader");
    let member = ShareMember::new(&group, "member-a");
    let part = [FetchPart::new(topic_id, 0)];

    for (epoch, max_bytes, max_records) in [(0, 0, 100), (1, 1 << 20, 0), (2, 0, 0)] {
        let limits = FetchLimits {
            max_bytes,
            max_records,
        };
        let response = member.fetch_limited(leader, epoch, &part, 0, limits);
        assert_eq!(response.error_code, NONE, "{limits:?}: {response:?}");
        assert_eq!(acquired_offsets(&response), vec![], "{limits:?}");
        let records_bytes: usize = response
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter())
            .filter_map(|p| p.records.as_ref().map(|r| r.len()))
            .sum();
        assert_eq!(records_bytes, 0, "{limits:?}: records sent");
    }

    let response = member.fetch(leader, 3, &[], 5_000);
    assert_eq!(response.error_code, NONE, "{response:?}");
    let first_deliveries: Vec<(i64, i16)> = (0..RECORDS_COUNT).map(|o| (o, 1)).collect();
    assert_eq!(acquired_offsets(&response), first_deliveries);
}
