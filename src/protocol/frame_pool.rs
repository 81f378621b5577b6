//! Recycled buffers for large request frames.
//!
//! A produce request of a megabyte would otherwise get a fresh allocation per frame: for
//! that size glibc maps new pages, which the kernel faults in and which must be zeroed
//! before a read may fill them — a memset plus page faults for every byte produced. Here a
//! large frame borrows a buffer from a per-thread pool; the `Bytes` handed out own it, and
//! when the last of them is dropped (typically once the log has written the batches and
//! evicted them from its tail cache) the buffer goes back to the pool, already initialised.
//! Everything stays on the shard's thread, so the pool is a plain thread-local.

use std::cell::RefCell;

use crate::constants::POOL_BYTES_MAX;
use bytes::Bytes;

/// Frames below this are cheap to allocate and zero; they bypass the pool.
pub const POOLED_BYTES_MIN: usize = 64 * 1024;

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { buffers: Vec::new(), bytes: 0, takes_count: 0 })
    };
}

struct Pool {
    /// Fully initialised buffers (`len == capacity`), any size class.
    buffers: Vec<Vec<u8>>,
    bytes: usize,
    /// Large frames taken since the last [`release_idle`].
    takes_count: u64,
}

/// A buffer of at least `size` initialised bytes, of which the caller uses the first `size`.
pub fn take(size: usize) -> Vec<u8> {
    if size >= POOLED_BYTES_MIN {
        let class = size.next_power_of_two();
        let reused = POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            pool.takes_count += 1;
            let index = pool.buffers.iter().position(|b| b.len() == class)?;
            let buffer = pool.buffers.swap_remove(index);
            pool.bytes -= buffer.len();
            Some(buffer)
        });
        return reused.unwrap_or_else(|| vec![0; class]);
    }
    vec![0; size]
}

/// Frees this thread's pooled buffers if no large frame was taken since the previous call,
/// and returns how many bytes that was. A shard calls it periodically, so that once large
/// produces stop (a benchmark ends, its topics are deleted and their tail caches hand their
/// buffers back), the pool's up to [`POOL_BYTES_MAX`] go back to the allocator.
pub fn release_idle() -> usize {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.takes_count == 0;
        pool.takes_count = 0;
        if !idle {
            return 0;
        }
        pool.buffers = Vec::new();
        std::mem::take(&mut pool.bytes)
    })
}

/// Freezes the first `len` bytes of `buffer`; pooled buffers return to the pool when the
/// last `Bytes` referring to them is dropped.
pub fn freeze(buffer: Vec<u8>, len: usize) -> Bytes {
    if buffer.len() >= POOLED_BYTES_MIN {
        Bytes::from_owner(Pooled { buffer }).slice(..len)
    } else {
        let mut buffer = buffer;
        buffer.truncate(len);
        Bytes::from(buffer)
    }
}

struct Pooled {
    buffer: Vec<u8>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        // `try_with`: a buffer dropped while its thread is exiting is simply freed.
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.bytes + buffer.len() <= POOL_BYTES_MAX {
                pool.bytes += buffer.len();
                pool.buffers.push(buffer);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_are_reused_after_the_last_reference_drops() {
        let buffer = take(100_000);
        let address = buffer.as_ptr();
        let frame = freeze(buffer, 100_000);
        let slice = frame.slice(10..20);
        drop(frame);
        let other = take(100_000);
        assert!(other.as_ptr() != address, "still referenced by `slice`");
        drop(other);
        drop(slice);
        let again = take(70_000);
        assert_eq!(
            again.as_ptr(),
            address,
            "same size class, returned to the pool"
        );
        assert_eq!(again.len(), 131_072);
    }

    #[test]
    fn an_idle_pool_is_released() {
        drop(freeze(take(100_000), 100_000));
        assert_eq!(release_idle(), 0, "a frame was taken since the last check");
        assert_eq!(release_idle(), 131_072);
        assert_eq!(release_idle(), 0);
    }

    #[test]
    fn small_frames_are_exact() {
        let frame = freeze(take(100), 100);
        assert_eq!(frame.len(), 100);
    }
}
