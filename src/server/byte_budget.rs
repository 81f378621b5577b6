//! A shard-wide bound on request bytes read but not yet answered. A connection acquires
//! its frame's size before reading the body and gives it back once the answer is written,
//! so a flood of producers or a consumer that never reads its socket stalls its own
//! connection instead of growing the shard's memory.

use std::cell::Cell;
use std::rc::Rc;

use event_listener::Event;

pub struct ByteBudget {
    capacity: usize,
    /// May go below zero through `acquire_overcommit`; waiters then wait for it to recover.
    available: Cell<isize>,
    released: Event,
}

/// Bytes held until dropped.
pub struct BytePermit {
    budget: Rc<ByteBudget>,
    bytes: usize,
}

impl ByteBudget {
    pub fn new(capacity: usize) -> Rc<ByteBudget> {
        Rc::new(ByteBudget {
            capacity,
            available: Cell::new(isize::try_from(capacity).unwrap_or(isize::MAX)),
            released: Event::new(),
        })
    }

    /// Waits until `bytes` are free. A request larger than the whole budget waits for the
    /// whole budget, so it can still pass once the shard is otherwise idle.
    pub async fn acquire(self: &Rc<Self>, bytes: usize) -> BytePermit {
        let bytes = bytes.min(self.capacity);
        let wanted = isize::try_from(bytes).unwrap_or(isize::MAX);
        loop {
            if self.available.get() >= wanted {
                return self.acquire_overcommit(bytes);
            }
            let listener = self.released.listen();
            // Re-check after registering, so a release in between is not missed.
            if self.available.get() >= wanted {
                continue;
            }
            listener.await;
        }
    }

    /// Takes `bytes` without waiting, even past the capacity. For the rest of a request
    /// whose start was admitted by `acquire`: finishing it must never wait on other
    /// connections' half-read requests, or they could all wait on each other.
    pub fn acquire_overcommit(self: &Rc<Self>, bytes: usize) -> BytePermit {
        let taken = isize::try_from(bytes).unwrap_or(isize::MAX);
        self.available
            .set(self.available.get().saturating_sub(taken));
        BytePermit {
            budget: Rc::clone(self),
            bytes,
        }
    }

    pub fn available(&self) -> isize {
        self.available.get()
    }
}

impl BytePermit {
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Merges `other` (from the same budget) into this permit.
    pub fn absorb(&mut self, mut other: BytePermit) {
        debug_assert!(Rc::ptr_eq(&self.budget, &other.budget));
        self.bytes += std::mem::take(&mut other.bytes);
    }
}

impl Drop for BytePermit {
    fn drop(&mut self) {
        let budget = &self.budget;
        let bytes = isize::try_from(self.bytes).unwrap_or(isize::MAX);
        budget
            .available
            .set(budget.available.get().saturating_add(bytes));
        budget.released.notify(usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_release_and_clamps_to_capacity() {
        crate::io::block_on_local(async {
            let budget = ByteBudget::new(100);
            let first = budget.acquire(80).await;
            assert_eq!(budget.available(), 20);
            let waiter = {
                let budget = Rc::clone(&budget);
                crate::io::spawn(async move { budget.acquire(1_000).await.bytes })
            };
            crate::io::sleep(std::time::Duration::from_millis(5)).await;
            assert_eq!(budget.available(), 20, "the big request must wait");
            drop(first);
            assert_eq!(waiter.await, 100);
            assert_eq!(budget.available(), 100);
        });
    }
}
