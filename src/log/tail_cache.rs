//! A partition's tail cache: its recent batches kept in memory for tailing readers, under a
//! byte budget shared by all the partitions of the shard.
//!
//! A per-partition budget made the shard's cache grow with its partition count and gave a
//! single busy partition only its own small slice; with one shard-wide budget a lone hot
//! partition may use all of it, and many busy partitions share it. A partition that has
//! written data trims its own oldest written batches while the shard is over budget, so
//! equally busy partitions end up with about equal shares. Unwritten batches are never
//! dropped (they are what the segment writer writes from).

use std::cell::Cell;
use std::collections::VecDeque;
use std::ops::Deref;

use bytes::Bytes;

/// A recent batch kept in memory for reads (every unwritten batch, plus recent written ones).
pub(crate) struct CachedBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The first `BROKER_FIELDS_END` bytes of the batch with the assigned offset set
    /// (`LOG_APPEND_TIME_FIELDS_END` bytes, stamped too, under LogAppendTime).
    pub prefix: Bytes,
    /// The whole batch as the producer sent it (its first bytes superseded by `prefix`).
    pub bytes: Bytes,
}

thread_local! {
    /// Bytes held by the tail caches of this executor thread (one shard).
    static SHARD_BYTES: Cell<u64> = const { Cell::new(0) };
}

/// Cached batches, oldest first. Reads go through `Deref`; changes through the methods,
/// which keep the shard's total.
#[derive(Default)]
pub(crate) struct TailCache {
    batches: VecDeque<CachedBatch>,
    bytes: u64,
}

impl Deref for TailCache {
    type Target = VecDeque<CachedBatch>;

    fn deref(&self) -> &VecDeque<CachedBatch> {
        &self.batches
    }
}

impl TailCache {
    pub(crate) fn push_back(&mut self, batch: CachedBatch) {
        let size = batch.bytes.len() as u64;
        self.batches.push_back(batch);
        self.bytes += size;
        SHARD_BYTES.with(|total| total.set(total.get() + size));
    }

    pub(crate) fn pop_front(&mut self) -> Option<CachedBatch> {
        let batch = self.batches.pop_front()?;
        let size = batch.bytes.len() as u64;
        self.bytes -= size;
        SHARD_BYTES.with(|total| total.set(total.get() - size));
        Some(batch)
    }

    /// Drops batches from the front while `drop` says so.
    pub(crate) fn drop_front_while(&mut self, mut drop: impl FnMut(&CachedBatch) -> bool) {
        while self.batches.front().is_some_and(&mut drop) {
            self.pop_front();
        }
    }

    /// Drops this partition's oldest batches below `written_offset` (already in the segment
    /// file) while the shard's caches hold more than `shard_bytes_max`
    /// ([`crate::constants::TAIL_CACHE_BYTES_PER_SHARD`] but in tests).
    pub(crate) fn trim(&mut self, written_offset: i64, shard_bytes_max: u64) {
        self.drop_front_while(|b| {
            b.last_offset < written_offset && SHARD_BYTES.with(Cell::get) > shard_bytes_max
        });
    }
}

impl Drop for TailCache {
    fn drop(&mut self) {
        let bytes = self.bytes;
        SHARD_BYTES.with(|total| total.set(total.get() - bytes));
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn batch(base_offset: i64, size: usize) -> CachedBatch {
        CachedBatch {
            base_offset,
            last_offset: base_offset,
            prefix: Bytes::new(),
            bytes: Bytes::from(vec![0u8; size]),
        }
    }

    fn shard_bytes() -> u64 {
        SHARD_BYTES.with(Cell::get)
    }

    /// Two partitions of a shard share one budget: the one that trims gives up its oldest
    /// written batches until the shard is within it, never unwritten ones, and dropping a
    /// cache gives its bytes back to the shard.
    #[test]
    fn partitions_share_the_shard_budget() {
        let before = shard_bytes();
        let mut busy = TailCache::default();
        let mut other = TailCache::default();
        for offset in 0..4 {
            other.push_back(batch(offset, 100));
        }
        for offset in 0..10 {
            busy.push_back(batch(offset, 100));
        }
        assert_eq!(shard_bytes() - before, 1400);
        // Budget 1000 (plus whatever this thread held before): `busy` drops 4 batches.
        busy.trim(10, before + 1000);
        assert_eq!(busy.front().map(|b| b.base_offset), Some(4));
        assert_eq!(other.len(), 4);
        assert_eq!(shard_bytes() - before, 1000);
        // Only batches below the written offset go, however far over budget.
        busy.trim(6, before);
        assert_eq!(busy.front().map(|b| b.base_offset), Some(6));
        drop(busy);
        drop(other);
        assert_eq!(shard_bytes(), before);
    }
}
