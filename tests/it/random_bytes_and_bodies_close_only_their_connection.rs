//! Seeded random input over TCP, to every shard, while a well-behaved rdkafka producer keeps
//! being acknowledged on other connections:
//! - raw random byte streams (random size prefix and all);
//! - a plausible size prefix around random bytes;
//! - a correct request header for every (API key, version) the broker advertises, at the lowest
//!   and highest version, followed by a random body, so every handler sees garbage that got
//!   past framing;
//! - requests cut at a random byte and half-closed.
//!
//! Each gets an error response carrying its correlation id, or a close of that connection only.
//! After each case a fresh connection must still get ApiVersions; a death is reported with the
//! case's seed and bytes, and the broker restarted so one run lists every failing case.

use crate::common;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::raw::{frame, read_reply, round_trip, Cursor, Reply, Rng};
use common::{Broker, BrokerOptions, HealthyClient};

const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
const SEEDS_PER_KIND: u64 = 32;
const SEEDS_PER_API_VERSION: u64 = 8;

struct Case {
    name: String,
    bytes: Vec<u8>,
    /// The correlation id an error response may carry; `None`: no response is acceptable.
    correlation_id: Option<i32>,
}

/// (api key, min version, max version) from ApiVersions v0.
fn advertised(address: &str) -> Vec<(i16, i16, i16)> {
    let mut stream = TcpStream::connect(address).expect("connect");
    let Reply::Frame(body) = round_trip(&mut stream, 18, 0, 1, &[], REPLY_TIMEOUT) else {
        panic!("no ApiVersions answer");
    };
    let mut cursor = Cursor::new(&body);
    assert_eq!(cursor.i32(), 1);
    assert_eq!(cursor.i16(), 0, "ApiVersions error code");
    let count = cursor.i32();
    (0..count)
        .map(|_| (cursor.i16(), cursor.i16(), cursor.i16()))
        .collect()
}

fn cases(apis: &[(i16, i16, i16)]) -> Vec<Case> {
    let mut out = Vec::new();
    for seed in 0..SEEDS_PER_KIND {
        let mut rng = Rng::new(seed);
        let len = 1 + rng.below(2048);
        let bytes = rng.bytes(len);
        out.push(Case {
            name: format!("raw random stream, seed {seed}, {len} bytes"),
            correlation_id: (len >= 12)
                .then(|| i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]])),
            bytes,
        });

        let len = 8 + rng.below(2048);
        let mut bytes = (len as i32).to_be_bytes().to_vec();
        bytes.extend(rng.bytes(len));
        out.push(Case {
            name: format!("plausible size prefix, random body, seed {seed}"),
            correlation_id: Some(i32::from_be_bytes([
                bytes[8], bytes[9], bytes[10], bytes[11],
            ])),
            bytes,
        });
    }
    for &(api_key, min, max) in apis {
        for version in [min, max] {
            for seed in 0..SEEDS_PER_API_VERSION {
                let mut rng = Rng::new(
                    u64::from(api_key as u16) << 32 | u64::from(version as u16) << 8 | seed,
                );
                let len = rng.below(300);
                let body = rng.bytes(len);
                let correlation_id = 1000 + i32::from(api_key) * 100 + i32::from(version);
                out.push(Case {
                    name: format!(
                        "api {api_key} v{version}, random body of {len} bytes, seed {seed}"
                    ),
                    bytes: frame(api_key, version, correlation_id, &body),
                    correlation_id: Some(correlation_id),
                });
            }
        }
    }
    // A real request cut at every few bytes (no response may come: the frame never completes).
    let whole = frame(3, 1, 55, &[0, 0, 0, 1, 0, 5, b't', b'o', b'p', b'i', b'c']);
    for cut in (1..whole.len()).step_by(3) {
        out.push(Case {
            name: format!("Metadata v1 cut after {cut} of {} bytes", whole.len()),
            bytes: whole[..cut].to_vec(),
            correlation_id: None,
        });
    }
    out
}

fn run_case(address: &str, case: &Case) -> Option<String> {
    let Ok(mut stream) = TcpStream::connect(address) else {
        return Some(format!("cannot connect to {address}"));
    };
    let _ = stream.write_all(&case.bytes);
    let _ = stream.shutdown(Shutdown::Write);
    // Read until close; every frame must be an answer to this case's correlation id.
    loop {
        match read_reply(&mut stream, REPLY_TIMEOUT) {
            Reply::Closed => return None,
            Reply::Frame(body) => {
                let got = Cursor::new(&body).i32();
                if case.correlation_id != Some(got) {
                    return Some(format!(
                        "{address}: answered with correlation id {got}, allowed {:?}",
                        case.correlation_id
                    ));
                }
            }
            Reply::Silent => {
                return Some(format!(
                    "{address}: neither answered nor closed within {REPLY_TIMEOUT:?} after the \
                     client half-closed"
                ))
            }
        }
    }
}

fn probe(broker: &Broker) -> Result<(), String> {
    for (_, address) in &broker.ready_line().brokers {
        let mut stream =
            TcpStream::connect(address).map_err(|e| format!("connect {address}: {e}"))?;
        match round_trip(&mut stream, 18, 0, 1, &[], REPLY_TIMEOUT) {
            Reply::Frame(body) if Cursor::new(&body).i32() == 1 => {}
            other => return Err(format!("ApiVersions v0 to {address}: {other:?}")),
        }
    }
    Ok(())
}

#[test]
fn random_bytes_and_bodies_close_only_their_connection() {
    let mut broker = Broker::start_with(BrokerOptions {
        fixed_ports: true,
        ..BrokerOptions::default()
    });
    let apis = advertised(broker.bootstrap());
    assert!(apis.len() >= 10, "advertised APIs: {apis:?}");
    let all = cases(&apis);
    let healthy = HealthyClient::start(&broker);
    let started = Instant::now();
    let mut failures = Vec::new();
    for case in &all {
        for (_, address) in broker.ready_line().brokers.clone() {
            if let Some(failure) = run_case(&address, case) {
                failures.push(format!("[{}] {failure}", case.name));
            }
        }
        if let Err(probe_error) = probe(&broker) {
            let deadline = Instant::now() + Duration::from_secs(10);
            let report = loop {
                if let Some(report) = broker.exited() {
                    break report;
                }
                if Instant::now() > deadline {
                    broker.kill();
                    break format!("stopped answering ({probe_error}) but did not exit");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            failures.push(format!(
                "[{}] BROKER DIED on bytes {:02x?}: {report}",
                case.name,
                &case.bytes[..case.bytes.len().min(128)]
            ));
            broker.restart();
        }
    }
    eprintln!(
        "{} random-input cases x {} shards in {:?}",
        all.len(),
        broker.ready_line().brokers.len(),
        started.elapsed()
    );
    if failures.iter().all(|f| !f.contains("BROKER DIED")) {
        healthy.finish(Duration::from_secs(10));
    }
    broker.assert_alive();
    assert!(
        failures.is_empty(),
        "{} random-input case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
