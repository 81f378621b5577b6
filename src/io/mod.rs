//! The runtime seam. Everything that touches glommio lives below this module, so the
//! executor and its io_uring plumbing could be replaced without touching the layers above.
//!
//! - `runtime`: pinned executors (one per shard), local spawning, timers.
//! - `clock`: wall-clock milliseconds, which a unit test can pin on its thread.
//! - `net`: TCP listener and streams bound to the current executor.
//! - `dma_file`: O_DIRECT files driven by io_uring, with aligned buffers.

pub mod clock;
pub mod dma_file;
pub mod net;
pub mod runtime;

pub use runtime::{
    block_on_local, sleep, spawn, spawn_background, spawn_in, start_shards, yield_if_needed,
    ShardThreads, Task, TaskClass,
};
