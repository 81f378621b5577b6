//! Produce over the raw protocol (v3, hand-encoded RecordBatch v2): acks=1 and acks=-1 are
//! answered with the assigned base offset; acks=0 gets no response at all (the next response on
//! the connection belongs to the next request); a batch with a wrong CRC32C is refused with
//! CORRUPT_MESSAGE and never stored. A Fetch then shows exactly the accepted batches.
//! (The topic is created through CreateTopics so its leader is known before connecting.)

use crate::common;

use std::net::TcpStream;
use std::time::Duration;

use common::raw::{
    fetch_batch_headers, frame, parse_produce_v3_response, produce_v3_body, read_reply,
    record_batch, round_trip, Cursor, Reply,
};
use common::{consumer, create_topic, topic_leaders, topic_name, Broker};

const CORRUPT_MESSAGE: i16 = 2;
const TIMEOUT: Duration = Duration::from_secs(30);

fn produce(
    stream: &mut TcpStream,
    topic: &str,
    acks: i16,
    batch: &[u8],
    correlation_id: i32,
) -> (i16, i64) {
    let body = produce_v3_body(topic, 0, acks, batch);
    match round_trip(stream, 0, 3, correlation_id, &body, TIMEOUT) {
        Reply::Frame(frame) => parse_produce_v3_response(&frame, correlation_id),
        other => panic!("Produce v3 acks={acks}: {other:?}"),
    }
}

#[test]
fn produce_acks_levels_and_corrupt_batches() {
    let broker = Broker::start();
    let topic = topic_name("raw-produce");
    create_topic(broker.bootstrap(), &topic, 1);
    let leaders = topic_leaders(&consumer(broker.bootstrap(), &[]), &topic).expect("metadata");
    let leader = leaders[0].1;
    let address = broker
        .ready_line()
        .brokers
        .iter()
        .find(|(id, _)| *id == leader)
        .map(|(_, address)| address.clone())
        .expect("leader is an announced broker");
    let mut stream = TcpStream::connect(&address).expect("connect to the leader");
    let now_ms = 1_750_000_000_000;

    // acks=1: appended at offset 0.
    let batch = record_batch(&[b"a0", b"a1", b"a2"], now_ms, false);
    assert_eq!(
        produce(&mut stream, &topic, 1, &batch, 1),
        (0, 0),
        "acks=1 (error, base offset)"
    );

    // acks=-1: after the group-commit fsync, at offset 3.
    let batch = record_batch(&[b"b0", b"b1"], now_ms, false);
    assert_eq!(
        produce(&mut stream, &topic, -1, &batch, 2),
        (0, 3),
        "acks=-1 (error, base offset)"
    );

    // acks=0: no response. The next frame on the connection must answer the ApiVersions after it.
    let batch = record_batch(&[b"c0", b"c1", b"c2", b"c3"], now_ms, false);
    let mut bytes = frame(0, 3, 3, &produce_v3_body(&topic, 0, 0, &batch));
    bytes.extend_from_slice(&frame(18, 0, 4, &[]));
    std::io::Write::write_all(&mut stream, &bytes).expect("write");
    match read_reply(&mut stream, TIMEOUT) {
        Reply::Frame(body) => assert_eq!(
            Cursor::new(&body).i32(),
            4,
            "the first response after an acks=0 Produce must be the next request's"
        ),
        other => panic!("ApiVersions after acks=0 Produce: {other:?}"),
    }

    // A corrupt CRC is refused with CORRUPT_MESSAGE, with acks=1 and acks=-1 alike.
    let bad = record_batch(&[b"bad"], now_ms, true);
    assert_eq!(
        produce(&mut stream, &topic, 1, &bad, 5).0,
        CORRUPT_MESSAGE,
        "bad CRC, acks=1"
    );
    assert_eq!(
        produce(&mut stream, &topic, -1, &bad, 6).0,
        CORRUPT_MESSAGE,
        "bad CRC, acks=-1"
    );

    // The log holds exactly the accepted batches (acks=0 included), nothing corrupt. The last
    // append uses acks=-1: under group commit the high watermark moves only after the fsync,
    // so an acks=1 answer alone would not guarantee the Fetch below sees it.
    let batch = record_batch(&[b"d0"], now_ms, false);
    assert_eq!(
        produce(&mut stream, &topic, -1, &batch, 7),
        (0, 9),
        "append after refusals"
    );
    let (error_code, high_watermark, batches) =
        fetch_batch_headers(&mut stream, &topic, 0, 0, 1 << 20);
    assert_eq!(error_code, 0, "Fetch error code");
    assert_eq!(high_watermark, 10, "high watermark");
    let layout: Vec<(i64, i32)> = batches
        .iter()
        .map(|b| (b.base_offset, b.records_count))
        .collect();
    assert_eq!(
        layout,
        vec![(0, 3), (3, 2), (5, 4), (9, 1)],
        "stored batches (base offset, records)"
    );
}
