//! The APIs and versions sluice serves. ApiVersions advertises exactly this table, and
//! the connection layer refuses anything outside it with UNSUPPORTED_VERSION.

use kafka_protocol::messages::ApiKey;

/// One advertised range. `accept_min` is the lowest version actually served: Produce is
/// advertised from v0 because librdkafka <= 2.11 (and so Debian's kcat) disables
/// compression unless it sees v0, yet v0-2 (message format v0/v1) are refused, as Kafka 4 does.
#[derive(Debug, Clone, Copy)]
pub struct ApiRange {
    pub key: ApiKey,
    pub advertised_min: i16,
    pub accept_min: i16,
    pub max: i16,
}

const fn range(key: ApiKey, min: i16, max: i16) -> ApiRange {
    ApiRange {
        key,
        advertised_min: min,
        accept_min: min,
        max,
    }
}

pub const SUPPORTED: &[ApiRange] = &[
    ApiRange {
        key: ApiKey::Produce,
        advertised_min: 0,
        accept_min: 3,
        max: 12,
    },
    range(ApiKey::Fetch, 4, 16),
    range(ApiKey::ListOffsets, 1, 10),
    range(ApiKey::Metadata, 0, 12),
    range(ApiKey::ApiVersions, 0, 4),
    range(ApiKey::CreateTopics, 2, 7),
    range(ApiKey::DeleteTopics, 1, 6),
    range(ApiKey::CreatePartitions, 0, 3),
    range(ApiKey::DeleteRecords, 0, 2),
    range(ApiKey::DescribeConfigs, 1, 4),
    range(ApiKey::AlterConfigs, 0, 2),
    range(ApiKey::IncrementalAlterConfigs, 0, 1),
    // Consumer groups (src/group).
    range(ApiKey::FindCoordinator, 0, 6),
    range(ApiKey::JoinGroup, 0, 9),
    range(ApiKey::SyncGroup, 0, 5),
    range(ApiKey::Heartbeat, 0, 4),
    range(ApiKey::LeaveGroup, 0, 5),
    range(ApiKey::OffsetCommit, 2, 9),
    range(ApiKey::OffsetFetch, 1, 9),
    range(ApiKey::OffsetDelete, 0, 0),
    range(ApiKey::ListGroups, 0, 5),
    range(ApiKey::DescribeGroups, 0, 6),
    range(ApiKey::DeleteGroups, 0, 2),
    range(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    range(ApiKey::ConsumerGroupDescribe, 0, 1),
    range(ApiKey::DescribeCluster, 0, 1),
    range(ApiKey::OffsetForLeaderEpoch, 2, 4),
    range(ApiKey::SaslHandshake, 0, 1),
    // SASL (src/security/sasl).
    range(ApiKey::SaslAuthenticate, 0, 2),
    range(ApiKey::DescribeUserScramCredentials, 0, 0),
    range(ApiKey::AlterUserScramCredentials, 0, 0),
    range(ApiKey::InitProducerId, 0, 4),
    // Transactions (src/txn), without KIP-890 part 2 (EndTxn v5, TxnOffsetCommit v5).
    range(ApiKey::AddPartitionsToTxn, 0, 5),
    range(ApiKey::AddOffsetsToTxn, 0, 4),
    range(ApiKey::EndTxn, 0, 4),
    range(ApiKey::TxnOffsetCommit, 0, 4),
    // Share groups (src/share), at the versions librdkafka 2.16 uses.
    range(ApiKey::ShareGroupHeartbeat, 1, 1),
    range(ApiKey::ShareGroupDescribe, 1, 1),
    range(ApiKey::ShareFetch, 1, 1),
    range(ApiKey::ShareAcknowledge, 1, 1),
    // Share-group administration, at the versions Kafka 4.2 defines (v1 adds the lag).
    range(ApiKey::DescribeShareGroupOffsets, 0, 1),
    range(ApiKey::AlterShareGroupOffsets, 0, 0),
    range(ApiKey::DeleteShareGroupOffsets, 0, 0),
    // ACLs (src/security/acl); Kafka 4 removed v0.
    range(ApiKey::CreateAcls, 1, 3),
    range(ApiKey::DescribeAcls, 1, 3),
    range(ApiKey::DeleteAcls, 1, 3),
];

/// The served range for `api_key`, if any.
pub fn lookup(api_key: i16) -> Option<&'static ApiRange> {
    SUPPORTED.iter().find(|r| r.key as i16 == api_key)
}

/// Whether `version` of `api_key` is served (not merely advertised).
pub fn is_served(api_key: i16, version: i16) -> bool {
    lookup(api_key).is_some_and(|r| (r.accept_min..=r.max).contains(&version))
}

// Every served range must be one the codec can decode and encode.
const _: () = {
    let mut i = 0;
    while i < SUPPORTED.len() {
        assert!(SUPPORTED[i].accept_min <= SUPPORTED[i].max);
        assert!(SUPPORTED[i].advertised_min <= SUPPORTED[i].accept_min);
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_ranges_fit_the_codec() {
        for r in SUPPORTED {
            let codec = r.key.valid_versions();
            assert!(r.accept_min >= codec.min, "{:?}", r.key);
            assert!(r.max <= codec.max, "{:?}", r.key);
        }
    }

    #[test]
    fn produce_v0_is_advertised_but_not_served() {
        let produce = lookup(0).expect("produce is served");
        assert_eq!(produce.advertised_min, 0);
        assert!(!is_served(0, 2));
        assert!(is_served(0, 3));
    }
}
