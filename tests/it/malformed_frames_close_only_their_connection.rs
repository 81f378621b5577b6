//! Malformed input on one connection (garbage bytes, a huge or negative size prefix, a short or
//! truncated frame, an unknown API key, an unsupported version, an array count far past the
//! frame) gets an error response or a close of that connection only. After every case the broker
//! still answers ApiVersions on a new connection, and an rdkafka client connected before the
//! abuse keeps producing and consuming.
//!
//! Every case runs even if an earlier one kills the broker (it is restarted on the same ports),
//! so one run reports every failing case.

use crate::common;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::raw::{frame, read_reply, round_trip, Cursor, Reply};
use common::{
    assign, consume_count, consumer, produce_all, producer, topic_name, Broker, BrokerOptions,
    TestRecord, CLIENT_TIMEOUT,
};

const REPLY_TIMEOUT: Duration = Duration::from_secs(15);
const UNSUPPORTED_VERSION: i16 = 35;

/// What a case expects back: `Some(id)` allows an error response carrying correlation id `id`;
/// `None` means any response at all is wrong (the bytes were not a request).
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    half_close: bool,
    correlation_id: Option<i32>,
}

fn cases() -> Vec<Case> {
    // Garbage: a plausible size, then bytes that parse as api key 0x7a7a, version 0x7a7a and a
    // client-id length far past the frame end.
    let mut garbage = 64i32.to_be_bytes().to_vec();
    garbage.extend((0..64u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 0x7a));
    let garbage_correlation =
        i32::from_be_bytes([garbage[8], garbage[9], garbage[10], garbage[11]]);

    let mut huge = i32::MAX.to_be_bytes().to_vec();
    huge.extend_from_slice(&[0u8; 64]);

    let mut truncated = frame(18, 0, 5, &[]);
    truncated[..4].copy_from_slice(&1000i32.to_be_bytes());

    // Produce v3 whose topic_data count claims 2^31-1 entries in a 20-byte body.
    let mut produce_body = Vec::new();
    produce_body.extend_from_slice(&(-1i16).to_be_bytes()); // transactional_id: null
    produce_body.extend_from_slice(&(-1i16).to_be_bytes()); // acks
    produce_body.extend_from_slice(&1000i32.to_be_bytes()); // timeout_ms
    produce_body.extend_from_slice(&i32::MAX.to_be_bytes()); // topic_data count

    vec![
        Case {
            name: "garbage frame",
            bytes: garbage,
            half_close: true,
            correlation_id: Some(garbage_correlation),
        },
        Case {
            name: "2 GiB size prefix",
            bytes: huge,
            half_close: false,
            correlation_id: None,
        },
        Case {
            name: "negative size prefix",
            bytes: (-1i32).to_be_bytes().to_vec(),
            half_close: false,
            correlation_id: None,
        },
        Case {
            name: "3-byte frame",
            bytes: vec![0, 0, 0, 3, 0, 18, 0],
            half_close: true,
            correlation_id: None,
        },
        Case {
            name: "truncated frame (announces 1000 bytes, sends 20, half-closes)",
            bytes: truncated,
            half_close: true,
            correlation_id: None,
        },
        Case {
            name: "unknown api key 9999",
            bytes: frame(9_999, 0, 4242, &[]),
            half_close: false,
            correlation_id: Some(4242),
        },
        Case {
            name: "Metadata v0 whose topics count is 2^31-1",
            bytes: frame(3, 0, 8, &i32::MAX.to_be_bytes()),
            half_close: false,
            correlation_id: Some(8),
        },
        Case {
            name: "Produce v3 whose topic_data count is 2^31-1",
            bytes: frame(0, 3, 9, &produce_body),
            half_close: false,
            correlation_id: Some(9),
        },
    ]
}

/// Runs one case against every shard; returns a failure description, if any.
fn run_case(broker: &Broker, case: &Case) -> Option<String> {
    for (_, address) in &broker.ready_line().brokers {
        let Ok(mut stream) = TcpStream::connect(address) else {
            return Some(format!("cannot connect to {address}"));
        };
        // The broker may close before reading everything; a write error is then fine.
        let _ = stream.write_all(&case.bytes);
        if case.half_close {
            let _ = stream.shutdown(Shutdown::Write);
        }
        match read_reply(&mut stream, REPLY_TIMEOUT) {
            Reply::Closed => {}
            Reply::Frame(body) => {
                let got = Cursor::new(&body).i32();
                match case.correlation_id {
                    Some(expected) if got == expected => {}
                    Some(expected) => {
                        return Some(format!(
                            "{address}: response correlation id {got}, expected {expected}"
                        ))
                    }
                    None => {
                        return Some(format!(
                            "{address}: answered bytes that were not a request: {body:?}"
                        ))
                    }
                }
            }
            Reply::Silent => {
                return Some(format!(
                    "{address}: connection neither answered nor closed within {REPLY_TIMEOUT:?}"
                ))
            }
        }
    }
    None
}

/// ApiVersions v0 on a new connection to every shard; `Err` if any shard does not answer.
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

/// After a failed probe: wait for the process to finish dying, describe it, and restart.
fn crash_report_and_restart(broker: &mut Broker, probe_error: String) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = loop {
        if let Some(report) = broker.exited() {
            break report;
        }
        if Instant::now() > deadline {
            broker.kill();
            break format!("broker stopped answering ({probe_error}) but did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    broker.restart();
    report
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let mut broker = Broker::start_with(BrokerOptions {
        fixed_ports: true,
        ..BrokerOptions::default()
    });
    let topic = topic_name("survivor");

    // A healthy client connected before the abuse, and used again after it.
    let producer = producer(broker.bootstrap(), &[]);
    let consumer = consumer(broker.bootstrap(), &[]);
    let first: Vec<TestRecord> = (0..100)
        .map(|i| TestRecord::new(format!("k{i}"), "before"))
        .collect();
    produce_all(&producer, &topic, &first);
    assign(&consumer, &topic, &[(0, 0)]);
    assert_eq!(
        consume_count(&consumer, first.len(), CLIENT_TIMEOUT).len(),
        first.len()
    );

    let mut failures = Vec::new();
    let mut restarts_count = 0;
    for case in cases() {
        if let Some(failure) = run_case(&broker, &case) {
            failures.push(format!("[{}] {failure}", case.name));
        }
        if let Err(probe_error) = probe(&broker) {
            let report = crash_report_and_restart(&mut broker, probe_error);
            restarts_count += 1;
            failures.push(format!("[{}] broker died: {report}", case.name));
        }
    }

    // ApiVersions at a version the broker cannot know: Kafka answers with a v0 body carrying
    // UNSUPPORTED_VERSION so clients can fall back, and the connection stays usable.
    for (_, address) in &broker.ready_line().brokers.clone() {
        let mut stream = TcpStream::connect(address).expect("connect");
        // Header tagged fields (empty), then a v3-shaped body: two empty compact strings, no tags.
        let reply = round_trip(&mut stream, 18, 127, 99, &[0, 1, 1, 0], REPLY_TIMEOUT);
        let Reply::Frame(body) = reply else {
            failures.push(format!(
                "[ApiVersions v127] {address}: expected an UNSUPPORTED_VERSION response, got {reply:?}"
            ));
            continue;
        };
        let mut cursor = Cursor::new(&body);
        let correlation_id = cursor.i32();
        let error_code = cursor.i16();
        if (correlation_id, error_code) != (99, UNSUPPORTED_VERSION) {
            failures.push(format!(
                "[ApiVersions v127] {address}: correlation id {correlation_id}, error code {error_code}; expected 99, {UNSUPPORTED_VERSION}"
            ));
            continue;
        }
        let reply = round_trip(&mut stream, 18, 0, 100, &[], REPLY_TIMEOUT);
        let Reply::Frame(body) = reply else {
            failures.push(format!(
                "[ApiVersions v127] {address}: v0 on the same connection afterwards got {reply:?}"
            ));
            continue;
        };
        let mut cursor = Cursor::new(&body);
        let correlation_id = cursor.i32();
        let error_code = cursor.i16();
        let apis_count = cursor.i32();
        if correlation_id != 100 || error_code != 0 || cursor.remaining() != apis_count as usize * 6
        {
            failures.push(format!(
                "[ApiVersions v0 after v127] {address}: malformed answer {body:?}"
            ));
        }
    }

    // The healthy client still produces and consumes, through any restarts above.
    let second: Vec<TestRecord> = (0..100)
        .map(|i| TestRecord::new(format!("k{i}"), "after"))
        .collect();
    produce_all(&producer, &topic, &second);
    let more = consume_count(&consumer, second.len(), CLIENT_TIMEOUT);
    assert_eq!(
        more.len(),
        second.len(),
        "messages after the malformed frames"
    );
    assert!(more
        .iter()
        .all(|m| m.value.as_deref() == Some(&b"after"[..])));
    broker.assert_alive();

    assert!(
        failures.is_empty(),
        "{} malformed-input case(s) failed ({restarts_count} broker restart(s)):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
