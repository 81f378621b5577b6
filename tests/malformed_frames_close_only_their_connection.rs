//! Malformed input on one connection (garbage bytes, a huge or negative size prefix, a truncated
//! frame, an unknown API key, an unsupported version) gets an error response or a close of that
//! connection only. The broker stays up and an rdkafka client on another connection keeps working.

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::raw::{frame, read_reply, round_trip, Cursor, Reply};
use common::{
    assign, consume_count, consumer, produce_all, producer, topic_name, Broker, TestRecord,
    CLIENT_TIMEOUT,
};

const REPLY_TIMEOUT: Duration = Duration::from_secs(15);
const UNSUPPORTED_VERSION: i16 = 35;

/// Sends `bytes` on a fresh connection to every shard and returns what each shard did.
fn send_to_every_shard(broker: &Broker, bytes: &[u8], half_close: bool) -> Vec<(String, Reply)> {
    broker
        .ready_line()
        .brokers
        .iter()
        .map(|(_, address)| {
            let mut stream = TcpStream::connect(address).expect("connect to shard");
            // The broker may close before reading everything; a write error is then fine.
            let _ = stream.write_all(bytes);
            if half_close {
                let _ = stream.shutdown(Shutdown::Write);
            }
            (address.clone(), read_reply(&mut stream, REPLY_TIMEOUT))
        })
        .collect()
}

fn assert_error_or_close(case: &str, replies: &[(String, Reply)], correlation_id: Option<i32>) {
    for (address, reply) in replies {
        match reply {
            Reply::Closed => {}
            Reply::Frame(body) => {
                let mut cursor = Cursor::new(body);
                let got = cursor.i32();
                if let Some(expected) = correlation_id {
                    assert_eq!(
                        got, expected,
                        "{case} on {address}: response correlation id"
                    );
                } else {
                    panic!("{case} on {address}: a response to bytes that were not a request: {body:?}");
                }
            }
            Reply::Silent => {
                panic!("{case} on {address}: connection neither answered nor closed within {REPLY_TIMEOUT:?}")
            }
        }
    }
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let mut broker = Broker::start();
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

    // 1. Garbage: a plausible size followed by random-looking bytes (api key 0x7a7a, version
    //    0x7a7a, then a client-id length far past the frame end).
    let mut garbage = 64i32.to_be_bytes().to_vec();
    garbage.extend((0..64u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 0x7a));
    let replies = send_to_every_shard(&broker, &garbage, true);
    assert_error_or_close(
        "garbage frame",
        &replies,
        Some(i32::from_be_bytes([
            garbage[8],
            garbage[9],
            garbage[10],
            garbage[11],
        ])),
    );

    // 2. A huge size prefix (2 GiB - 1): must be refused before allocating, by closing.
    let mut huge = i32::MAX.to_be_bytes().to_vec();
    huge.extend_from_slice(&[0u8; 64]);
    let replies = send_to_every_shard(&broker, &huge, false);
    assert_error_or_close("2 GiB size prefix", &replies, None);
    broker.assert_alive();

    // 3. A negative size prefix.
    let replies = send_to_every_shard(&broker, &(-1i32).to_be_bytes(), false);
    assert_error_or_close("negative size prefix", &replies, None);

    // 4. A frame shorter than a request header.
    let replies = send_to_every_shard(&broker, &[0, 0, 0, 3, 0, 18, 0], true);
    assert_error_or_close("3-byte frame", &replies, None);

    // 5. A truncated frame: announces 1000 bytes, sends 20, then half-closes.
    let mut truncated = frame(18, 0, 5, &[]);
    truncated[..4].copy_from_slice(&1000i32.to_be_bytes());
    let replies = send_to_every_shard(&broker, &truncated, true);
    assert_error_or_close("truncated frame", &replies, None);

    // 6. An unknown API key with a well-formed header.
    let replies = send_to_every_shard(&broker, &frame(9_999, 0, 4242, &[]), false);
    assert_error_or_close("unknown api key 9999", &replies, Some(4242));

    // 7. ApiVersions at a version the broker cannot know: Kafka answers with a v0 body carrying
    //    UNSUPPORTED_VERSION (and its own supported range) so clients can fall back.
    for (_, address) in &broker.ready_line().brokers {
        let mut stream = TcpStream::connect(address).expect("connect");
        // Header tagged fields (empty), then a v3-shaped body: two empty compact strings, no tags.
        let reply = round_trip(&mut stream, 18, 127, 99, &[0, 1, 1, 0], REPLY_TIMEOUT);
        let Reply::Frame(body) = reply else {
            panic!("ApiVersions v127 on {address}: expected an UNSUPPORTED_VERSION response, got {reply:?}");
        };
        let mut cursor = Cursor::new(&body);
        assert_eq!(cursor.i32(), 99, "ApiVersions v127 correlation id");
        assert_eq!(
            cursor.i16(),
            UNSUPPORTED_VERSION,
            "ApiVersions v127 error code"
        );
        // The same connection still works for a version the broker does support.
        let reply = round_trip(&mut stream, 18, 0, 100, &[], REPLY_TIMEOUT);
        let Reply::Frame(body) = reply else {
            panic!("ApiVersions v0 after UNSUPPORTED_VERSION on {address}: {reply:?}");
        };
        let mut cursor = Cursor::new(&body);
        assert_eq!(cursor.i32(), 100);
        assert_eq!(cursor.i16(), 0, "ApiVersions v0 error code");
        let apis_count = cursor.i32();
        assert!(
            apis_count > 0 && cursor.remaining() == apis_count as usize * 6,
            "ApiVersions v0 body"
        );
    }

    // 8. Metadata v0 with a topics array length far past the frame: error or close.
    let mut body = Vec::new();
    body.extend_from_slice(&i32::MAX.to_be_bytes());
    let replies = send_to_every_shard(&broker, &frame(3, 0, 8, &body), false);
    assert_error_or_close("Metadata v0 with a 2^31 topics count", &replies, Some(8));

    // The broker is alive and the healthy client still produces and consumes.
    broker.assert_alive();
    let second: Vec<TestRecord> = (0..100)
        .map(|i| TestRecord::new(format!("k{i}"), "after"))
        .collect();
    produce_all(&producer, &topic, &second);
    let more = consume_count(&consumer, second.len(), CLIENT_TIMEOUT);
    assert_eq!(more.len(), second.len());
    assert!(more
        .iter()
        .all(|m| m.value.as_deref() == Some(&b"after"[..])));
    broker.assert_alive();
}
