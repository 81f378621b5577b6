//! Wall-clock time for the layers above the runtime seam, read in one place so that tests
//! can set it.
//!
//! Kafka timestamps, session and lock deadlines, retention and transaction timeouts are all
//! milliseconds since the Unix epoch. The state machines take `now_ms` as an argument; the
//! services that drive them read it from [`now_ms`]. A unit test pins the time of its own
//! thread with [`TestClock`] and moves it forward by hand, so a timeout is tested without
//! sleeping. Pinning is per thread because everything that reads the clock for one shard runs
//! on that shard's thread, and libtest runs each test on a thread of its own.

#[cfg(test)]
use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

#[cfg(test)]
thread_local! {
    /// The time a test pinned on this thread; `None` reads the system clock.
    static PINNED_MS: Cell<Option<i64>> = const { Cell::new(None) };
}

/// Milliseconds since the Unix epoch: 0 for a system clock set before 1970, `i64::MAX` past
/// the year 292 million.
pub fn now_ms() -> i64 {
    #[cfg(test)]
    if let Some(pinned_ms) = PINNED_MS.with(Cell::get) {
        return pinned_ms;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Pins [`now_ms`] on the current thread until dropped. Not `Send`: it belongs to the thread
/// whose clock it pins.
#[cfg(test)]
pub struct TestClock {
    _not_send: std::marker::PhantomData<*const ()>,
}

#[cfg(test)]
impl TestClock {
    pub fn pinned_at(now_ms: i64) -> TestClock {
        PINNED_MS.with(|pinned| pinned.set(Some(now_ms)));
        TestClock {
            _not_send: std::marker::PhantomData,
        }
    }

    pub fn advance_ms(&self, elapsed_ms: i64) {
        PINNED_MS.with(|pinned| pinned.set(Some(now_ms().saturating_add(elapsed_ms))));
    }
}

#[cfg(test)]
impl Drop for TestClock {
    fn drop(&mut self) {
        PINNED_MS.with(|pinned| pinned.set(None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_clock_moves_only_when_advanced_and_is_released_on_drop() {
        let clock = TestClock::pinned_at(1_000);
        assert_eq!(now_ms(), 1_000);
        clock.advance_ms(250);
        assert_eq!(now_ms(), 1_250);
        drop(clock);
        assert!(now_ms() > 1_700_000_000_000, "the system clock again");
    }
}
