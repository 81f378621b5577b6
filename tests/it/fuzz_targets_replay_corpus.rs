//! The cargo-fuzz targets (`fuzz/`, nightly + libFuzzer) run on stable: every corpus file
//! (seeded from captures of real kcat and rdkafka traffic) and every regression input (crashes
//! found by fuzzing), then deterministic mutations of them (seeded xorshift: bit flips,
//! interesting integers at random offsets, inserts, deletes, truncations, splices) for a
//! bounded time per target.
//!
//! `SLUICE_FUZZ_SECONDS=N` runs the mutation loop N seconds per target (default 5, so CI
//! stays short); `SLUICE_FUZZ_SEED` changes the mutation seed. A failing input is written to
//! the temp dir and its path printed, ready to add to `fuzz/regressions/<target>/`.

#[path = "../../fuzz/src/targets.rs"]
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
const INTERESTING_I64: [i64; 7] = [0, -1, -2, 1 << 31, 1 << 32, i64::MAX, i64::MIN];

/// A string in a Kafka request: a length prefix (INT16, or a compact length-plus-one in one
/// varint byte) followed by that many printable bytes.
struct StringSpot {
    at: usize,
    prefix_bytes: usize,
    len: usize,
    compact: bool,
}

fn printable(bytes: &[u8], len: usize) -> bool {
    len <= bytes.len() && bytes[..len].iter().all(|b| (0x20..0x7f).contains(b))
}

fn string_spots(input: &[u8]) -> Vec<StringSpot> {
    let mut spots = Vec::new();
    for at in 0..input.len() {
        if at + 2 <= input.len() {
            let len = usize::from(u16::from_be_bytes([input[at], input[at + 1]]));
            if (1..=512).contains(&len) && printable(&input[at + 2..], len) {
                spots.push(StringSpot {
                    at,
                    prefix_bytes: 2,
                    len,
                    compact: false,
                });
            }
        }
        if (2..0x80).contains(&input[at]) {
            let len = usize::from(input[at]) - 1;
            if printable(&input[at + 1..], len) {
                spots.push(StringSpot {
                    at,
                    prefix_bytes: 1,
                    len,
                    compact: true,
                });
            }
        }
    }
    spots
}

/// Lengths a resized string takes: around Kafka's 249-character topic names, INT16's
/// 32767, and past 65535 (only compact strings get there).
const STRING_LENGTHS: [usize; 8] = [0, 1, 249, 250, 256, 0x7fff, 0x1_0000, 70_000];

/// Gives one string of the request a new length (its own text repeated, or one odd
/// character), prefix rewritten to match: names and ids at and past handlers' limits.
fn resize_string(rng: &mut Rng, input: &mut Vec<u8>) {
    let spots = string_spots(input);
    if spots.is_empty() {
        return;
    }
    let spot = &spots[rng.below(spots.len())];
    let len = match rng.below(STRING_LENGTHS.len() + 1) {
        i if i < STRING_LENGTHS.len() => STRING_LENGTHS[i],
        _ => rng.below(300),
    };
    let odd = (rng.below(3) == 0).then(|| [b'.', b'/', b' ', 0xc3, 0][rng.below(5)]);
    *input = with_string_len(input, spot, len, odd);
}

/// `input` with the string at `spot` made `len` bytes long: its own text repeated, or
/// `odd` repeated; an INT16-prefixed string stops at 32767.
fn with_string_len(input: &[u8], spot: &StringSpot, len: usize, odd: Option<u8>) -> Vec<u8> {
    let len = if spot.compact { len } else { len.min(0x7fff) };
    let old = &input[spot.at + spot.prefix_bytes..spot.at + spot.prefix_bytes + spot.len];
    let text: Vec<u8> = match odd {
        Some(byte) => vec![byte; len],
        None => old.iter().copied().cycle().take(len).collect(),
    };
    let mut replacement = Vec::with_capacity(len + 5);
    if spot.compact {
        let mut n = len + 1;
        while n >= 0x80 {
            replacement.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        replacement.push(n as u8);
    } else {
        replacement.extend_from_slice(&(len as u16).to_be_bytes());
    }
    replacement.extend_from_slice(&text);
    let mut out = input.to_vec();
    out.splice(spot.at..spot.at + spot.prefix_bytes + spot.len, replacement);
    out
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(10) {
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
            8 => resize_string(rng, input),
            9 if len >= 8 => {
                let at = rng.below(len - 7);
                let value = INTERESTING_I64[rng.below(INTERESTING_I64.len())];
                input[at..at + 8].copy_from_slice(&value.to_be_bytes());
            }
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
    replay_seeded(name, name, target, |_| Vec::new());
}

/// Replays `fuzz/corpus/<corpus>/` plus the seeds `more_seeds` makes from it, then mutates.
fn replay_seeded(
    name: &str,
    corpus: &str,
    target: fn(&[u8]),
    more_seeds: fn(&[Vec<u8>]) -> Vec<Vec<u8>>,
) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut seeds = inputs_in(&root.join("corpus").join(corpus));
    let generated = more_seeds(&seeds);
    seeds.extend(generated);
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
    assert!(!seeds.is_empty(), "fuzz/corpus/{corpus}/ is empty");
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

/// Handlers on a real shard: first, deterministically, each hand-built stateful request,
/// then the same with each of its strings at each length of STRING_LENGTHS; then the
/// `request` corpus (real clients' requests), those requests re-encoded at every served
/// version, and their mutations.
#[test]
fn dispatch() {
    let mut sweeps_count = 0;
    for seed in targets::dispatch_stateful_seeds() {
        run_one("dispatch", targets::dispatch, &seed);
        for spot in string_spots(&seed) {
            for len in STRING_LENGTHS {
                let resized = with_string_len(&seed, &spot, len, None);
                run_one("dispatch", targets::dispatch, &resized);
                sweeps_count += 1;
            }
        }
    }
    eprintln!("dispatch: {sweeps_count} string-length sweeps of the stateful seeds");
    replay_seeded(
        "dispatch",
        "request",
        targets::dispatch,
        targets::dispatch_seeds,
    );
}

#[test]
fn sasl_exchange() {
    replay("sasl_exchange", targets::sasl_exchange);
}

#[test]
fn segment_recovery() {
    replay("segment_recovery", targets::segment_recovery);
}
