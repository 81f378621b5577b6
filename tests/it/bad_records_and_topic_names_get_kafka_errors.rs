//! Requests that are well framed but carry bad content get the Kafka error a client expects,
//! on a connection that stays usable, while a well-behaved rdkafka producer on other
//! connections keeps being acknowledged without a failure or a stall:
//! - a RecordBatch with a wrong CRC32C: CORRUPT_MESSAGE;
//! - a batch over `--message-max-bytes`: MESSAGE_TOO_LARGE;
//! - a batch whose record count and offset range disagree, or whose lastOffsetDelta claims
//!   2^31-1 offsets (what would overflow relative offsets), or is negative: INVALID_RECORD, and
//!   the log end offset does not move;
//! - batch lengths that are negative or run past the record set, an old magic, an empty
//!   record set: CORRUPT_MESSAGE or INVALID_RECORD;
//! - invalid topic names in CreateTopics and Metadata: INVALID_TOPIC_EXCEPTION; in Produce:
//!   an error for that topic only.
//!
//! Every case runs and every failure is listed, so one run reports them all.

use crate::common;

use std::net::TcpStream;
use std::time::Duration;

use common::raw::{
    create_topics_v2_body, fetch_batch_headers, fix_crc, metadata_v1_body,
    parse_create_topics_v2_response, parse_metadata_v1_response, parse_produce_v3_response,
    produce_v3_body, record_batch, round_trip, Cursor, Reply,
};
use common::{create_topic, leader_address, topic_name, Broker, BrokerOptions, HealthyClient};

const TIMEOUT: Duration = Duration::from_secs(15);
const MESSAGE_MAX_BYTES: usize = 4096;

const NONE: i16 = 0;
const CORRUPT_MESSAGE: i16 = 2;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_RECORD: i16 = 87;

// Offsets of RecordBatch v2 header fields (see src/log/batch.rs).
const BATCH_LENGTH: usize = 8;
const MAGIC: usize = 16;
const LAST_OFFSET_DELTA: usize = 23;
const RECORDS_COUNT: usize = 57;

struct BatchCase {
    name: &'static str,
    records: Vec<u8>,
    allowed: &'static [i16],
}

fn edited(values: &[&[u8]], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut batch = record_batch(values, 1_700_000_000_000, false);
    edit(&mut batch);
    batch
}

fn set_i32(batch: &mut [u8], at: usize, value: i32) {
    batch[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

fn batch_cases() -> Vec<BatchCase> {
    let one: &[&[u8]] = &[b"only"];
    let three: &[&[u8]] = &[b"a", b"b", b"c"];
    let big_value = vec![b'x'; MESSAGE_MAX_BYTES + 100];
    vec![
        BatchCase {
            name: "wrong CRC",
            records: record_batch(three, 1, true),
            allowed: &[CORRUPT_MESSAGE],
        },
        BatchCase {
            name: "batch over --message-max-bytes",
            records: record_batch(&[big_value.as_slice()], 1, false),
            allowed: &[MESSAGE_TOO_LARGE],
        },
        BatchCase {
            name: "recordsCount 2^31-1 with one record",
            records: edited(one, |b| {
                set_i32(b, RECORDS_COUNT, i32::MAX);
                fix_crc(b);
            }),
            allowed: &[INVALID_RECORD, CORRUPT_MESSAGE],
        },
        BatchCase {
            name: "lastOffsetDelta 2^31-1 with one record (offset range overflow)",
            records: edited(one, |b| {
                set_i32(b, LAST_OFFSET_DELTA, i32::MAX);
                fix_crc(b);
            }),
            allowed: &[INVALID_RECORD, CORRUPT_MESSAGE],
        },
        BatchCase {
            name: "lastOffsetDelta and recordsCount both 2^31-1 with one record",
            records: edited(one, |b| {
                set_i32(b, LAST_OFFSET_DELTA, i32::MAX - 1);
                set_i32(b, RECORDS_COUNT, i32::MAX);
                fix_crc(b);
            }),
            allowed: &[INVALID_RECORD, CORRUPT_MESSAGE],
        },
        BatchCase {
            name: "three records claiming one offset",
            records: edited(three, |b| {
                set_i32(b, LAST_OFFSET_DELTA, 0);
                fix_crc(b);
            }),
            allowed: &[INVALID_RECORD, CORRUPT_MESSAGE],
        },
        BatchCase {
            name: "negative lastOffsetDelta",
            records: edited(one, |b| {
                set_i32(b, LAST_OFFSET_DELTA, -5);
                fix_crc(b);
            }),
            allowed: &[INVALID_RECORD, CORRUPT_MESSAGE],
        },
        BatchCase {
            name: "negative recordsCount",
            records: edited(one, |b| {
                set_i32(b, RECORDS_COUNT, -1);
                fix_crc(b);
            }),
            allowed: &[INVALID_RECORD, CORRUPT_MESSAGE],
        },
        BatchCase {
            name: "negative batchLength",
            records: edited(three, |b| set_i32(b, BATCH_LENGTH, -100)),
            allowed: &[INVALID_RECORD, CORRUPT_MESSAGE],
        },
        BatchCase {
            name: "batchLength past the record set",
            records: edited(three, |b| {
                let len = b.len() as i32;
                set_i32(b, BATCH_LENGTH, len + 1000);
            }),
            allowed: &[INVALID_RECORD, CORRUPT_MESSAGE],
        },
        BatchCase {
            name: "a valid batch followed by 30 stray bytes",
            records: edited(three, |b| b.extend_from_slice(&[0x55; 30])),
            allowed: &[INVALID_RECORD, CORRUPT_MESSAGE],
        },
        BatchCase {
            name: "magic 1 (legacy message set)",
            records: edited(one, |b| b[MAGIC] = 1),
            allowed: &[
                INVALID_RECORD,
                CORRUPT_MESSAGE,
                35, /* UNSUPPORTED_VERSION */
            ],
        },
        BatchCase {
            name: "empty record set",
            records: Vec::new(),
            allowed: &[INVALID_RECORD, CORRUPT_MESSAGE],
        },
        BatchCase {
            name: "a record set of 11 bytes (shorter than the batch overhead)",
            records: vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 61],
            allowed: &[INVALID_RECORD, CORRUPT_MESSAGE],
        },
    ]
}

/// The connection must still answer after an error response: ApiVersions v0.
fn still_usable(stream: &mut TcpStream) -> Result<(), String> {
    match round_trip(stream, 18, 0, 4711, &[], TIMEOUT) {
        Reply::Frame(body) if Cursor::new(&body).i32() == 4711 => Ok(()),
        other => Err(format!("ApiVersions after the error got {other:?}")),
    }
}

fn log_end_offset(address: &str, topic: &str) -> i64 {
    let mut stream = TcpStream::connect(address).expect("connect for fetch");
    let (error_code, high_watermark, _) = fetch_batch_headers(&mut stream, topic, 0, 0, 1 << 20);
    assert_eq!(error_code, NONE, "Fetch of {topic}");
    high_watermark
}

#[test]
fn bad_records_and_topic_names_get_kafka_errors() {
    let broker = Broker::start_with(BrokerOptions {
        extra_args: vec!["--message-max-bytes".into(), MESSAGE_MAX_BYTES.to_string()],
        ..BrokerOptions::default()
    });
    let healthy = HealthyClient::start(&broker);
    let topic = topic_name("bad-records");
    create_topic(broker.bootstrap(), &topic, 1);
    let leader = leader_address(&broker, &topic, 0);
    let mut failures = Vec::new();

    // A good batch first, so "the log did not move" has something to compare with.
    let mut stream = TcpStream::connect(&leader).expect("connect to leader");
    let good = record_batch(&[b"good"], 1, false);
    let reply = round_trip(
        &mut stream,
        0,
        3,
        1,
        &produce_v3_body(&topic, 0, -1, &good),
        TIMEOUT,
    );
    let Reply::Frame(frame) = reply else {
        panic!("good produce got {reply:?}");
    };
    assert_eq!(parse_produce_v3_response(&frame, 1), (NONE, 0));
    let end_before = log_end_offset(&leader, &topic);
    assert_eq!(end_before, 1);

    for (i, case) in batch_cases().into_iter().enumerate() {
        let correlation_id = 100 + i as i32;
        for acks in [1i16, -1] {
            let mut stream = TcpStream::connect(&leader).expect("connect to leader");
            let body = produce_v3_body(&topic, 0, acks, &case.records);
            match round_trip(&mut stream, 0, 3, correlation_id, &body, TIMEOUT) {
                Reply::Frame(frame) => {
                    let (error_code, base_offset) =
                        parse_produce_v3_response(&frame, correlation_id);
                    if !case.allowed.contains(&error_code) {
                        failures.push(format!(
                            "[{}, acks={acks}] error code {error_code} (base offset \
                             {base_offset}), expected one of {:?}",
                            case.name, case.allowed
                        ));
                    }
                    if let Err(e) = still_usable(&mut stream) {
                        failures.push(format!("[{}, acks={acks}] {e}", case.name));
                    }
                }
                other => failures.push(format!(
                    "[{}, acks={acks}] expected an error response, got {other:?}",
                    case.name
                )),
            }
        }
    }
    let end_after = log_end_offset(&leader, &topic);
    if end_after != end_before {
        failures.push(format!(
            "refused batches moved the log end offset from {end_before} to {end_after}"
        ));
    }

    // Invalid topic names: CreateTopics and Metadata answer INVALID_TOPIC_EXCEPTION per topic
    // (a valid name in the same request still succeeds); Produce refuses that topic only.
    let long_name = "n".repeat(250);
    let valid = topic_name("valid-beside-invalid");
    let invalid: Vec<&str> = vec![
        "",
        ".",
        "..",
        "has space",
        "slash/in/name",
        "colon:name",
        "ünïcödé",
        "nul\0byte",
        long_name.as_str(),
    ];
    let mut names = invalid.clone();
    names.push(valid.as_str());
    let bootstrap = broker.bootstrap().to_string();
    let mut stream = TcpStream::connect(&bootstrap).expect("connect");
    match round_trip(
        &mut stream,
        19,
        2,
        7,
        &create_topics_v2_body(&names, 1),
        TIMEOUT,
    ) {
        Reply::Frame(frame) => {
            let results = parse_create_topics_v2_response(&frame, 7);
            for name in &names {
                let expected = if *name == valid {
                    NONE
                } else {
                    INVALID_TOPIC_EXCEPTION
                };
                match results.iter().find(|(n, _)| n == name) {
                    Some((_, code)) if *code == expected => {}
                    Some((_, code)) => failures.push(format!(
                        "[CreateTopics {name:?}] error code {code}, expected {expected}"
                    )),
                    None => {
                        failures.push(format!("[CreateTopics {name:?}] missing from {results:?}"))
                    }
                }
            }
        }
        other => failures.push(format!("[CreateTopics] got {other:?}")),
    }
    if let Err(e) = still_usable(&mut stream) {
        failures.push(format!("[CreateTopics] {e}"));
    }
    // Metadata v1 with auto-creation on: invalid names are refused, never created.
    match round_trip(&mut stream, 3, 1, 8, &metadata_v1_body(&invalid), TIMEOUT) {
        Reply::Frame(frame) => {
            let results = parse_metadata_v1_response(&frame, 8);
            for name in &invalid {
                match results.iter().find(|(n, _, _)| n == name) {
                    Some((_, INVALID_TOPIC_EXCEPTION, 0)) => {}
                    Some((_, code, partitions)) => failures.push(format!(
                        "[Metadata {name:?}] error code {code} with {partitions} partitions, \
                         expected {INVALID_TOPIC_EXCEPTION} and none"
                    )),
                    None => failures.push(format!("[Metadata {name:?}] missing from {results:?}")),
                }
            }
        }
        other => failures.push(format!("[Metadata] got {other:?}")),
    }
    if let Err(e) = still_usable(&mut stream) {
        failures.push(format!("[Metadata] {e}"));
    }
    // Produce to an invalid name: an error for that topic, never a stored batch.
    for (i, name) in invalid.iter().enumerate() {
        let correlation_id = 300 + i as i32;
        let body = produce_v3_body(name, 0, -1, &good);
        match round_trip(&mut stream, 0, 3, correlation_id, &body, TIMEOUT) {
            Reply::Frame(frame) => {
                let (code, _) = parse_produce_v3_response(&frame, correlation_id);
                if ![UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC_EXCEPTION].contains(&code) {
                    failures.push(format!("[Produce to {name:?}] error code {code}"));
                }
            }
            other => failures.push(format!("[Produce to {name:?}] got {other:?}")),
        }
    }
    if let Err(e) = still_usable(&mut stream) {
        failures.push(format!("[Produce to invalid names] {e}"));
    }

    healthy.finish(Duration::from_secs(10));
    assert!(
        failures.is_empty(),
        "{} bad-content case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
