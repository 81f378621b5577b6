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
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    sluice::cli::main()
}
