//! The cargo-fuzz targets (`fuzz/`, nightly + libFuzzer) run on stable: every corpus file
//! (seeded from captures of real kcat and rdkafka traffic) and every regression input (crashes
//! found by fuzzing), then deterministic mutations of them (seeded xorshift: bit flips,
//! interesting integers at random offsets, inserts, deletes, truncations, splices) for a
//! bounded time per target.
//!
//! `SLUICE_FUZZ_SECONDS=N` runs the mutation loop N seconds per target (default 5, so CI
//! stays short); `SLUICE_FUZZ_SEED` changes the mutation seed. A failing input is written to
//! the temp dir and its path printed, ready to add to `fuzz/regressions/<target>/`.

#[path = "../fuzz/src/targets.rs"]
#[allow(dead_code)]
mod targets;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const INPUT_BYTES_MAX: usize = 1 << 20;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

fn inputs_in(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

const INTERESTING_I32: [i32; 10] = [0, 1, -1, 12, 61, 127, 4096, 0x7fff, i32::MAX, i32::MIN];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                input[at] = [0u8, 0xff, 0x7f, 0x80, 1, 2][rng.below(6)];
            }
            2 if len >= 4 => {
                let at = rng.below(len - 3);
                let value = INTERESTING_I32[rng.below(INTERESTING_I32.len())];
                input[at..at + 4].copy_from_slice(&value.to_be_bytes());
            }
            3 => {
                let at = rng.below(len + 1);
                let count = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..count).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let count = 1 + rng.below(16.min(len - at));
                input.drain(at..at + count);
            }
            5 if len > 0 => input.truncate(rng.below(len)),
            6 if !seeds.is_empty() => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let at = rng.below(len + 1);
                    let take = 1 + rng.below((other.len() - from).min(256));
                    input.splice(at..at, other[from..from + take].iter().copied());
                }
            }
            _ if len > 0 => {
                // Varint-ish: a byte with the continuation bit, as compact lengths use.
                let at = rng.below(len);
                input[at] |= 0x80;
            }
            _ => input.push(rng.next() as u8),
        }
    }
    input.truncate(INPUT_BYTES_MAX);
}

fn run_one(name: &str, target: fn(&[u8]), input: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
        let path = std::env::temp_dir().join(format!(
            "sluice-fuzz-crash-{name}-{:016x}",
            crc32c::crc32c(input)
        ));
        let _ = std::fs::write(&path, input);
        panic!(
            "fuzz target {name} failed on an input of {} bytes, saved to {path:?} (add it to \
             fuzz/regressions/{name}/); first bytes: {:02x?}",
            input.len(),
            &input[..input.len().min(64)]
        );
    }
}

fn replay(name: &str, target: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = inputs_in(&root.join("corpus").join(name));
    let regressions = inputs_in(&root.join("regressions").join(name));
    let seconds: u64 = std::env::var("SLUICE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let seed: u64 = std::env::var("SLUICE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    let started = Instant::now();
    for input in seeds.iter().chain(&regressions) {
        run_one(name, target, input);
    }
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut pool: Vec<Vec<u8>> = seeds.iter().chain(&regressions).cloned().collect();
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    let mut execs = 0u64;
    let deadline = started + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        let mut input = pool[rng.below(pool.len())].clone();
        mutate(&mut rng, &mut input, &pool);
        run_one(name, target, &input);
        execs += 1;
    }
    targets::cleanup();
    eprintln!(
        "{name}: {} corpus + {} regression inputs, {execs} mutated executions in {:?}",
        seeds.len(),
        regressions.len(),
        started.elapsed()
    );
    assert!(!seeds.is_empty(), "fuzz/corpus/{name}/ is empty");
}

#[test]
fn request_frame() {
    replay("request_frame", targets::request_frame);
}

#[test]
fn request() {
    replay("request", targets::request);
}

#[test]
fn record_batch_append() {
    replay("record_batch_append", targets::record_batch_append);
}

#[test]
fn segment_recovery() {
    replay("segment_recovery", targets::segment_recovery);
}
