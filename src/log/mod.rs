//! Per-partition segmented log (owned by the storage work).
