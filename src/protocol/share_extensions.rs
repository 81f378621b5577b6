//! sluice's additions to the share-group admin protocol, carried in tagged fields so that
//! Kafka clients, which skip tags they do not know, read the responses unchanged.
//!
//! DescribeShareGroupOffsets has no field for the records a share-partition has in flight
//! (acquired by a member, or released and waiting for redelivery), which operators ask for
//! next to the start offset and lag. sluice puts that count in tagged field
//! [`IN_FLIGHT_TAG`] of each `DescribeShareGroupOffsetsResponsePartition`, as a 4-byte
//! big-endian count. `sluice share-group describe` reads it; other clients ignore it.

use std::collections::BTreeMap;

use bytes::Bytes;

/// Far above the tags Kafka allocates (counted up from 0 per message), so a future Kafka
/// field cannot collide with it.
pub const IN_FLIGHT_TAG: i32 = 0x534c_0001;

/// Adds the in-flight count to a partition's tagged fields.
pub fn put_in_flight(tagged: &mut BTreeMap<i32, Bytes>, count: usize) {
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    tagged.insert(IN_FLIGHT_TAG, Bytes::copy_from_slice(&count.to_be_bytes()));
}

/// The in-flight count, when the broker sent one (sluice does; Kafka does not).
pub fn in_flight(tagged: &BTreeMap<i32, Bytes>) -> Option<u32> {
    let bytes: [u8; 4] = tagged.get(&IN_FLIGHT_TAG)?.as_ref().try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_round_trips_and_ignores_malformed_values() {
        let mut tagged = BTreeMap::new();
        assert_eq!(in_flight(&tagged), None);
        put_in_flight(&mut tagged, 42);
        assert_eq!(in_flight(&tagged), Some(42));
        tagged.insert(IN_FLIGHT_TAG, Bytes::from_static(&[1, 2]));
        assert_eq!(in_flight(&tagged), None);
    }
}
