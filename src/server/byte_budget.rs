//! A shard-wide bound on request bytes read but not yet answered. A connection acquires
//! its frame's size before reading the body and gives it back once the answer is written,
//! so a flood of producers or a consumer that never reads its socket stalls its own
//! connection instead of growing the shard's memory.

use std::cell::Cell;
use std::rc::Rc;

use event_listener::Event;

pub struct ByteBudget {
    capacity: usize,
    available: Cell<usize>,
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
            available: Cell::new(capacity),
            released: Event::new(),
        })
    }

    /// Waits until `bytes` are free. A request larger than the whole budget waits for the
    /// whole budget, so it can still pass once the shard is otherwise idle.
    pub async fn acquire(self: &Rc<Self>, bytes: usize) -> BytePermit {
        let bytes = bytes.min(self.capacity);
        loop {
            if self.available.get() >= bytes {
                self.available.set(self.available.get() - bytes);
                return BytePermit {
                    budget: Rc::clone(self),
                    bytes,
                };
            }
            let listener = self.released.listen();
            // Re-check after registering, so a release in between is not missed.
            if self.available.get() >= bytes {
                continue;
            }
            listener.await;
        }
    }

    pub fn available(&self) -> usize {
        self.available.get()
    }
}

impl Drop for BytePermit {
    fn drop(&mut self) {
        let budget = &self.budget;
        budget.available.set(budget.available.get() + self.bytes);
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
