//! The log cleaner's key index: for each key seen in the dirty part of a log, the offset of
//! its newest record. Like Kafka's `SkimpyOffsetMap` it stores a 128-bit hash of each key, not
//! the key, in a fixed-size open-addressing table, so its memory is set once (a budget in
//! bytes) whatever the keys are; a log with more distinct keys is cleaned in several passes.
//!
//! A hash collision between two keys (chance ~2^-64 per pair within one pass) would make the
//! cleaner drop the older key's records; Kafka accepts the same risk with MD5. The hash is
//! keyed with random keys per map, so producers cannot pick colliding keys in advance.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Bytes per slot: the 128-bit key hash and the offset.
const SLOT_BYTES: usize = 24;
/// Fill the table to at most this fraction (Kafka's `log.cleaner.io.buffer.load.factor`),
/// which keeps linear probes short.
const LOAD_FACTOR_PERCENT: usize = 90;

#[derive(Clone, Copy, Default)]
struct Slot {
    /// All zero marks an empty slot; a real hash of zero is nudged to 1.
    hash: [u64; 2],
    offset: i64,
}

/// Key hash -> newest offset. One per shard's cleaner; reused (cleared) for every pass.
pub struct OffsetMap {
    hasher: RandomState,
    slots: Vec<Slot>,
    used: usize,
    used_max: usize,
}

impl OffsetMap {
    /// A map using about `budget_bytes` of memory.
    pub fn with_budget(budget_bytes: usize) -> OffsetMap {
        let count = (budget_bytes / SLOT_BYTES).max(16);
        OffsetMap {
            hasher: RandomState::new(),
            slots: vec![Slot::default(); count],
            used: 0,
            used_max: count * LOAD_FACTOR_PERCENT / 100,
        }
    }

    pub fn clear(&mut self) {
        self.slots.fill(Slot::default());
        self.used = 0;
    }

    /// Distinct keys the map holds.
    pub fn len(&self) -> usize {
        self.used
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Records `offset` as the newest for `key` (offsets arrive in increasing order). Returns
    /// false, changing nothing, when `key` is new and the map is full.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let hash = self.hash_key(key);
        let i = self.probe(hash);
        if self.slots[i].hash == hash {
            self.slots[i].offset = offset;
            return true;
        }
        if self.used >= self.used_max {
            return false;
        }
        self.slots[i] = Slot { hash, offset };
        self.used += 1;
        true
    }

    /// The newest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        let hash = self.hash_key(key);
        let slot = self.slots[self.probe(hash)];
        (slot.hash == hash).then_some(slot.offset)
    }

    /// Two SipHash-1-3 digests of the key under different prefixes: 128 bits.
    fn hash_key(&self, key: &[u8]) -> [u64; 2] {
        let digest = |salt: u8| {
            let mut hasher = self.hasher.build_hasher();
            hasher.write_u8(salt);
            hasher.write(key);
            hasher.finish()
        };
        let hash = [digest(0), digest(1)];
        if hash == [0, 0] {
            [0, 1]
        } else {
            hash
        }
    }

    /// The slot holding `hash`, or the empty slot where it would go. The load factor keeps
    /// at least one slot empty, so the probe ends.
    fn probe(&self, hash: [u64; 2]) -> usize {
        let count = self.slots.len();
        let mut i = (hash[0] % count as u64) as usize;
        loop {
            let slot = &self.slots[i];
            if slot.hash == hash || slot.hash == [0, 0] {
                return i;
            }
            i = (i + 1) % count;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_offset_and_refuses_new_keys_when_full() {
        let mut map = OffsetMap::with_budget(SLOT_BYTES * 20);
        assert!(map.put(b"a", 1));
        assert!(map.put(b"b", 2));
        assert!(map.put(b"a", 3));
        assert_eq!(
            (map.get(b"a"), map.get(b"b"), map.get(b"c")),
            (Some(3), Some(2), None)
        );
        let mut key = 0u32;
        while map.put(&key.to_be_bytes(), 10) {
            key += 1;
        }
        assert_eq!(map.len(), 18, "90% of 20 slots");
        assert!(map.put(b"a", 4), "a known key still updates when full");
        map.clear();
        assert!(map.is_empty());
        assert_eq!(map.get(b"a"), None);
    }
}
