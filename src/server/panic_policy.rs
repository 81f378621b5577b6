//! Panic policy: a panic anywhere in `sluice serve` ends the process with a non-zero code.
//!
//! A panic unwinds its shard's executor, and with it that shard's partitions, the groups it
//! coordinates and its listener, while the other shards keep naming it in Metadata as the
//! leader of its partitions. Restarting only that shard would mean rebuilding its state while
//! the others hold channels into it and have cross-shard requests in flight, so the process
//! does what a supervisor can rely on instead: `/health` answers 503 from the moment of the
//! panic, the main thread shuts the surviving shards down in order (flushing their logs), and
//! the process exits with [`PANIC_EXIT_CODE`]; systemd's `Restart=on-failure` starts it again.
//! A watchdog exits the process after [`PANIC_EXIT_GRACE`] if that shutdown hangs (a
//! surviving shard may wait forever on the dead one). Nothing acknowledged is lost either
//! way: acks=all is answered only after fsync, as the kill -9 tests check.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::MetricsRegistry;

/// The exit code after a panic: the one a Rust program whose main thread panics exits with.
pub const PANIC_EXIT_CODE: u8 = 101;

/// How long the surviving shards get to shut down in order before the process just exits.
pub const PANIC_EXIT_GRACE: Duration = Duration::from_secs(10);

/// Whether some thread of the process has panicked since [`PanicWatch::install`], and which
/// shards did.
#[derive(Clone)]
pub struct PanicWatch {
    panicked: Arc<AtomicBool>,
    shards_panicked: Arc<[AtomicBool]>,
}

thread_local! {
    /// The shard whose executor runs on this thread, for the panic hook.
    static SHARD_ID: Cell<Option<usize>> = const { Cell::new(None) };
}

impl PanicWatch {
    /// Replaces the panic hook for the life of the process: a panic marks `/health` failed,
    /// is logged through `tracing` (so it is one more log line in the chosen format, with a
    /// backtrace when `RUST_BACKTRACE` asks for one), and starts the exit watchdog.
    pub fn install(metrics: Arc<MetricsRegistry>, shard_count: usize) -> PanicWatch {
        let watch = PanicWatch {
            panicked: Arc::new(AtomicBool::new(false)),
            shards_panicked: (0..shard_count).map(|_| AtomicBool::new(false)).collect(),
        };
        let hook_watch = watch.clone();
        std::panic::set_hook(Box::new(move |info| {
            // First, so that no probe sees the broker healthy after this point.
            metrics.set_panicked();
            // A shard thread that panics never comes back to answer its shutdown message: a
            // panic unwinds glommio's executor without dropping its tasks.
            let shard = SHARD_ID
                .with(Cell::get)
                .and_then(|shard_id| hook_watch.shards_panicked.get(shard_id));
            if let Some(flag) = shard {
                flag.store(true, Ordering::Release);
            }
            let first = !hook_watch.panicked.swap(true, Ordering::AcqRel);
            let thread = std::thread::current();
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            let location = info
                .location()
                .map_or_else(String::new, ToString::to_string);
            let backtrace = std::backtrace::Backtrace::capture();
            let backtrace = match backtrace.status() {
                std::backtrace::BacktraceStatus::Captured => format!("\n{backtrace}"),
                _ => String::new(),
            };
            // "panicked at", as Rust's own hook prints it, is what people and the test
            // harness search a log for.
            tracing::error!(
                "thread '{}' panicked at {location}: {message}; the broker exits{backtrace}",
                thread.name().unwrap_or("<unnamed>"),
            );
            if first {
                start_exit_watchdog();
            }
        }));
        watch
    }

    /// Marks the calling thread as shard `shard_id`'s, so that its panics name the shard.
    pub fn enter_shard(shard_id: usize) {
        SHARD_ID.with(|id| id.set(Some(shard_id)));
    }

    pub fn panicked(&self) -> bool {
        self.panicked.load(Ordering::Acquire)
    }

    pub fn shard_panicked(&self, shard_id: usize) -> bool {
        self.shards_panicked
            .get(shard_id)
            .is_some_and(|flag| flag.load(Ordering::Acquire))
    }
}

fn start_exit_watchdog() {
    let spawned = std::thread::Builder::new()
        .name("sluice-panic-exit".to_owned())
        .spawn(|| {
            std::thread::sleep(PANIC_EXIT_GRACE);
            tracing::error!(
                grace = ?PANIC_EXIT_GRACE,
                "orderly shutdown after a panic did not finish; exiting now"
            );
            std::process::exit(i32::from(PANIC_EXIT_CODE));
        });
    if spawned.is_err() {
        std::process::exit(i32::from(PANIC_EXIT_CODE));
    }
}

/// The environment variable of [`debug_panic_on_accept`].
pub const TEST_PANIC_SHARD_ENV: &str = "SLUICE_TEST_PANIC_SHARD";

/// Debug builds only (the function does not exist in release builds):
/// `SLUICE_TEST_PANIC_SHARD=N` makes shard `N` panic when it accepts a connection, so a
/// test can check this policy end to end against the real binary at a moment it chooses.
#[cfg(debug_assertions)]
pub fn debug_panic_on_accept(shard_id: usize) {
    let target = std::env::var(TEST_PANIC_SHARD_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    if target == Some(shard_id) {
        panic!("{TEST_PANIC_SHARD_ENV}={shard_id}: test panic on accept");
    }
}
