/// The broker's allocator: jemalloc. Every O_DIRECT write allocates an aligned buffer of up
/// to `write_bytes_max` (4 MiB) and cold reads allocate fetch-sized buffers; glibc's malloc
/// serves blocks that large with fresh mmaps and unmaps them on free, so each write
/// page-faulted its whole buffer in again (in a profile of the log_append bench, page faults
/// cost ~3x the copy). jemalloc keeps freed pages for reuse: +35 % on 1 MiB appends in the
/// same sitting (perf/RESULTS.md, "Partition log against fio"). The benches declare the same
/// allocator so that they measure what the broker does.
///
/// Built with jemalloc's background threads on (the `background_threads` feature): jemalloc
/// returns freed pages to the kernel only as time passes (`dirty_decay_ms`, 10 s), and
/// without its own threads it only looks at the clock when the program allocates, so an
/// idle broker kept what a deleted benchmark's topics had used (~0.5 GB RSS) indefinitely.
///
/// Large blocks stay in jemalloc's ordinary arenas (`oversize_threshold:0`). By default
/// jemalloc gives blocks of 8 MiB and more an arena of their own that hands pages back to the
/// kernel the moment they are freed. A consumer catching up frees a cold read's buffer after
/// every fetch, so each fetch paid an madvise and then page faults for the next buffer's fresh
/// pages. With the ordinary arenas' decay the pages are reused: a 1 KiB catch-up read
/// 1.13x and 1.36x faster in two sittings, faster in 11 of 12 same-sitting pairs
/// (perf/RESULTS.md, "Catch-up and the allocator"). The cost is RSS: freed large buffers
/// are kept for up to `dirty_decay_ms` (10 s) like any other, ~8 % more at the end of a run.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads this C string at start-up (its `malloc_conf`, under the crate's `_rjem_`
/// prefix), before the `_RJEM_MALLOC_CONF` environment variable, which can still override it.
// SAFETY: jemalloc declares `_rjem_malloc_conf` as a weak `const char *` for the program to
// define, and nothing else in the binary defines it. A reference to a byte array is a thin
// pointer to its first byte, the string ends in a NUL, and it is immutable and lives forever.
#[allow(unsafe_code, non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8; 21] = b"oversize_threshold:0\0";

fn main() -> std::process::ExitCode {
    sluice::cli::main()
}
