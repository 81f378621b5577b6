//! Sparse per-segment indexes, kept in memory and persisted when a segment is sealed or the
//! log is closed.
//!
//! - Offset index: (offset relative to the segment base, file position of the batch that
//!   starts at that offset), one entry per `index_interval_bytes` of log.
//! - Time index: (largest batch max timestamp so far, relative offset of that batch), added
//!   with offset-index entries when the maximum grew.
//!
//! On disk (`.index`): entries as big-endian (u32 relative offset, u32 position), then a
//! footer: magic, entry count, segment size, next offset (relative), max timestamp, CRC32C.
//! `.timeindex`: entries as (i64 timestamp, u32 relative offset), then count and CRC32C.
//! A footer that does not match the segment file means "rebuild by scanning".

/// Index contents plus the segment facts recovery needs to trust a sealed segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SegmentIndex {
    /// (relative offset, position), increasing in both.
    offsets: Vec<(u32, u32)>,
    /// (timestamp, relative offset), increasing in both.
    times: Vec<(i64, u32)>,
    bytes_since_entry: u64,
    /// Largest max timestamp of any batch in the segment; -1 when empty.
    pub max_timestamp: i64,
}

const INDEX_MAGIC: u32 = 0x534c_4958; // "SLIX"
const FOOTER_BYTES: usize = 4 + 4 + 8 + 8 + 8 + 4;

/// What the `.index` footer says about its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub segment_bytes: u64,
    pub next_offset_relative: u64,
    pub max_timestamp: i64,
}

impl SegmentIndex {
    pub(crate) fn new() -> SegmentIndex {
        SegmentIndex {
            max_timestamp: -1,
            ..SegmentIndex::default()
        }
    }

    /// Records a batch of `size_bytes` at `position` whose base offset is `relative`.
    pub(crate) fn on_batch(
        &mut self,
        relative: u32,
        position: u32,
        size_bytes: u64,
        max_timestamp: i64,
        interval_bytes: u32,
    ) {
        if self.bytes_since_entry >= u64::from(interval_bytes) {
            self.offsets.push((relative, position));
            self.bytes_since_entry = 0;
            let last_time = self.times.last().map_or(-1, |t| t.0);
            if self.max_timestamp > last_time {
                self.times.push((self.max_timestamp, relative));
            }
        }
        self.bytes_since_entry += size_bytes;
        self.max_timestamp = self.max_timestamp.max(max_timestamp);
    }

    /// Position of a batch starting at or before `relative` (0 if none is indexed).
    pub(crate) fn position_for(&self, relative: u32) -> (u32, u32) {
        let i = self.offsets.partition_point(|e| e.0 <= relative);
        if i == 0 {
            (0, 0)
        } else {
            self.offsets[i - 1]
        }
    }

    /// A relative offset from which scanning finds the first batch with max timestamp >= ts:
    /// the last time-index entry whose timestamp is below `ts` (everything up to it is older).
    pub(crate) fn offset_before_timestamp(&self, ts: i64) -> u32 {
        let i = self.times.partition_point(|e| e.0 < ts);
        if i == 0 {
            0
        } else {
            self.times[i - 1].1
        }
    }

    #[cfg(test)]
    pub(crate) fn entry_count(&self) -> usize {
        self.offsets.len()
    }

    pub(crate) fn encode_offsets(&self, footer: Footer) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.offsets.len() * 8 + FOOTER_BYTES);
        for (rel, pos) in &self.offsets {
            out.extend_from_slice(&rel.to_be_bytes());
            out.extend_from_slice(&pos.to_be_bytes());
        }
        out.extend_from_slice(&INDEX_MAGIC.to_be_bytes());
        out.extend_from_slice(&(self.offsets.len() as u32).to_be_bytes());
        out.extend_from_slice(&footer.segment_bytes.to_be_bytes());
        out.extend_from_slice(&footer.next_offset_relative.to_be_bytes());
        out.extend_from_slice(&footer.max_timestamp.to_be_bytes());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    pub(crate) fn encode_times(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.times.len() * 12 + 8);
        for (ts, rel) in &self.times {
            out.extend_from_slice(&ts.to_be_bytes());
            out.extend_from_slice(&rel.to_be_bytes());
        }
        out.extend_from_slice(&(self.times.len() as u32).to_be_bytes());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Decodes both files; `None` if either is missing, torn or inconsistent.
    pub(crate) fn decode(offsets: &[u8], times: &[u8]) -> Option<(SegmentIndex, Footer)> {
        let body_len = offsets.len().checked_sub(FOOTER_BYTES)?;
        let (body, footer) = offsets.split_at(body_len);
        let crc_at = offsets.len() - 4;
        if crc32c::crc32c(&offsets[..crc_at]) != u32_at(offsets, crc_at) {
            return None;
        }
        if u32_at(footer, 0) != INDEX_MAGIC || body.len() % 8 != 0 {
            return None;
        }
        if u32_at(footer, 4) as usize != body.len() / 8 {
            return None;
        }
        let foot = Footer {
            segment_bytes: u64_at(footer, 8),
            next_offset_relative: u64_at(footer, 16),
            max_timestamp: u64_at(footer, 24) as i64,
        };
        let offsets_vec: Vec<(u32, u32)> = body
            .chunks_exact(8)
            .map(|c| (u32_at(c, 0), u32_at(c, 4)))
            .collect();
        let times_len = times.len().checked_sub(8)?;
        if crc32c::crc32c(&times[..times.len() - 4]) != u32_at(times, times.len() - 4) {
            return None;
        }
        if times_len % 12 != 0 || u32_at(times, times_len) as usize != times_len / 12 {
            return None;
        }
        let times_vec: Vec<(i64, u32)> = times[..times_len]
            .chunks_exact(12)
            .map(|c| (u64_at(c, 0) as i64, u32_at(c, 8)))
            .collect();
        let increasing = offsets_vec
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1)
            && times_vec
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
            && offsets_vec
                .last()
                .is_none_or(|e| u64::from(e.1) < foot.segment_bytes);
        if !increasing {
            return None;
        }
        let index = SegmentIndex {
            offsets: offsets_vec,
            times: times_vec,
            // Sealed segments take no more entries; a reopened active one may: start a new
            // interval.
            bytes_since_entry: 0,
            max_timestamp: foot.max_timestamp,
        };
        Some((index, foot))
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_and_round_trip() {
        let mut ix = SegmentIndex::new();
        for i in 0..100u32 {
            ix.on_batch(i * 10, i * 1000, 1000, i64::from(i) * 5, 4096);
        }
        assert!(ix.entry_count() > 10);
        let (rel, pos) = ix.position_for(555);
        assert!(rel <= 555 && pos == rel * 100);
        assert_eq!(ix.position_for(0), (0, 0));
        let start = ix.offset_before_timestamp(200);
        assert!(start <= 400);
        let footer = Footer {
            segment_bytes: 100_000,
            next_offset_relative: 1000,
            max_timestamp: ix.max_timestamp,
        };
        let (back, f) =
            SegmentIndex::decode(&ix.encode_offsets(footer), &ix.encode_times()).expect("decode");
        assert_eq!(f, footer);
        assert_eq!(back.offsets, ix.offsets);
        assert_eq!(back.times, ix.times);
        let mut torn = ix.encode_offsets(footer);
        torn.pop();
        assert!(SegmentIndex::decode(&torn, &ix.encode_times()).is_none());
    }
}
