//! Producer ids for idempotent producers, unique for the life of the data dir.
//!
//! Shard 0 hands them out. It reserves them in blocks: the end of the current block is
//! made durable (temp file, fsync, rename) before any id from it is given out, so after a
//! crash allocation resumes past every id that might have been used, and none is reused.
//!
//! In a cluster this file is only read: ids come in blocks from the metadata Raft group
//! (`CatalogOwner::allocate_producer_id`), so they are unique across nodes.

use std::path::{Path, PathBuf};

/// Ids reserved per durable write, and per block a cluster node takes from the metadata
/// group (`MetaChange::AllocateProducerIds`).
pub const BLOCK_SIZE: i64 = 1000;
const STATE_FILE: &str = "producer_ids";

#[derive(Debug, thiserror::Error)]
#[error("producer id state {path}: {reason}")]
pub struct ProducerIdError {
    path: PathBuf,
    reason: String,
}

pub struct ProducerIdAllocator {
    path: PathBuf,
    next: i64,
    /// Ids below this are reserved on disk.
    reserved_end: i64,
}

impl ProducerIdAllocator {
    pub fn open(data_dir: &Path) -> Result<ProducerIdAllocator, ProducerIdError> {
        let path = data_dir.join(STATE_FILE);
        let error = |reason: String| ProducerIdError {
            path: path.clone(),
            reason,
        };
        let reserved_end = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|&end| end >= 0)
                .ok_or_else(|| error(format!("not a producer id: {:?}", text.trim())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(error(e.to_string())),
        };
        // Everything below the recorded end may have been handed out before a crash.
        Ok(ProducerIdAllocator {
            path,
            next: reserved_end,
            reserved_end,
        })
    }

    /// Ids below this may have been handed out from this data dir. A node joining a
    /// cluster asks for blocks at or above it, so its old ids are never given again.
    pub fn reserved_end(&self) -> i64 {
        self.reserved_end
    }

    pub async fn allocate(&mut self) -> Result<i64, ProducerIdError> {
        if self.next >= self.reserved_end {
            let end = self
                .next
                .checked_add(BLOCK_SIZE)
                .ok_or_else(|| ProducerIdError {
                    path: self.path.clone(),
                    reason: "producer ids exhausted".to_owned(),
                })?;
            self.persist(end).await?;
            self.reserved_end = end;
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }

    async fn persist(&self, end: i64) -> Result<(), ProducerIdError> {
        crate::io::dma_file::write_file_atomic(&self.path, end.to_string().as_bytes())
            .await
            .map_err(|e| ProducerIdError {
                path: self.path.clone(),
                reason: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_across_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::io::block_on_local(async {
            let mut first = ProducerIdAllocator::open(dir.path()).expect("open");
            let a = first.allocate().await.expect("id");
            let b = first.allocate().await.expect("id");
            assert_eq!((a, b), (0, 1));
            // A crash after handing out `b`: the reopened allocator starts past the block.
            let mut second = ProducerIdAllocator::open(dir.path()).expect("reopen");
            let c = second.allocate().await.expect("id");
            assert!(c > b, "{c} must be beyond {b}");
        });
    }

    /// The reservation goes through io's atomic-write helper: a write failure injected
    /// there refuses the id rather than handing out one that is not reserved on disk.
    #[test]
    fn reservation_writes_go_through_the_io_seam() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::io::block_on_local(async {
            let mut ids = ProducerIdAllocator::open(dir.path()).expect("open");
            crate::io::dma_file::faults::enable();
            crate::io::dma_file::faults::fail_writes_after(0, libc::EIO);
            let refused = ids.allocate().await;
            crate::io::dma_file::faults::disable();
            assert!(refused.is_err(), "an injected EIO must refuse the id");
        });
    }
}
