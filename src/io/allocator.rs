//! The process-wide allocator: jemalloc.
//!
//! Every O_DIRECT write allocates an aligned buffer of up to `write_bytes_max` (4 MiB), and
//! cold reads allocate buffers of up to a fetch's size. glibc's malloc serves blocks that
//! large with fresh mmaps and unmaps them on free, so each write page-faulted its whole
//! buffer in again: in a profile of `cargo bench --bench log_append`, page faults cost the
//! append thread about three times the copy itself. jemalloc keeps freed pages for reuse
//! (dirty pages decay over seconds), which made 1 MiB appends ~35 % faster in the same run
//! (perf/RESULTS.md, "Partition log against fio"). Declared in the library so the broker
//! binary, the benchmarks and the unit tests all run with the allocator the broker uses.

// Fuzzing builds keep the sanitizer's allocator.
#[cfg(not(fuzzing))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
