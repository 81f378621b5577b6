//! The broker side of the idempotent producer, over the raw protocol: a producer id from
//! InitProducerId; a forged retry of an acknowledged batch is answered with its original
//! offset and not stored again (also after a kill -9 and restart, from the state rebuilt
//! from the log); a sequence gap gets OUT_OF_ORDER_SEQUENCE_NUMBER and an older epoch
//! INVALID_PRODUCER_EPOCH.

use crate::common;

use std::net::TcpStream;
use std::time::Duration;

use common::raw::{
    fix_crc, parse_produce_v3_response, produce_v3_body, record_batch, round_trip, Cursor, Reply,
};
use common::{create_topic, leader_address, topic_name, Broker, BrokerOptions};

const TIMEOUT: Duration = Duration::from_secs(30);
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;

/// InitProducerId v0 without a transactional id: (producer id, epoch).
fn init_producer_id(stream: &mut TcpStream) -> (i64, i16) {
    let mut body = (-1i16).to_be_bytes().to_vec(); // transactional id: null
    body.extend_from_slice(&60_000i32.to_be_bytes());
    let Reply::Frame(frame) = round_trip(stream, 22, 0, 7, &body, TIMEOUT) else {
        panic!("InitProducerId got no answer");
    };
    let mut cursor = Cursor::new(&frame);
    assert_eq!(cursor.i32(), 7, "correlation id");
    let _throttle = cursor.i32();
    assert_eq!(cursor.i16(), 0, "InitProducerId error code");
    (cursor.i64(), cursor.i16())
}

fn idempotent_batch(value: &str, producer_id: i64, epoch: i16, sequence: i32) -> Vec<u8> {
    let mut batch = record_batch(&[value.as_bytes()], 1_700_000_000_000, false);
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&epoch.to_be_bytes());
    batch[53..57].copy_from_slice(&sequence.to_be_bytes());
    fix_crc(&mut batch);
    batch
}

fn produce(stream: &mut TcpStream, topic: &str, batch: &[u8], correlation_id: i32) -> (i16, i64) {
    let body = produce_v3_body(topic, 0, -1, batch);
    match round_trip(stream, 0, 3, correlation_id, &body, TIMEOUT) {
        Reply::Frame(frame) => parse_produce_v3_response(&frame, correlation_id),
        other => panic!("Produce got {other:?}"),
    }
}

#[test]
fn idempotent_forged_duplicate_gets_original_offset() {
    let mut broker = Broker::start_with(BrokerOptions {
        fixed_ports: true,
        ..BrokerOptions::default()
    });
    let topic = topic_name("idempotent");
    create_topic(broker.bootstrap(), &topic, 1);
    let leader = leader_address(&broker, &topic, 0);
    let mut stream = TcpStream::connect(&leader).expect("connect");
    let (producer_id, epoch) = init_producer_id(&mut stream);
    assert!(producer_id >= 0);
    let (second_id, _) = init_producer_id(&mut stream);
    assert_ne!(
        producer_id, second_id,
        "producer ids are never handed out twice"
    );

    let first = idempotent_batch("first", producer_id, epoch, 0);
    let second = idempotent_batch("second", producer_id, epoch, 1);
    assert_eq!(produce(&mut stream, &topic, &first, 1), (0, 0));
    assert_eq!(produce(&mut stream, &topic, &second, 2), (0, 1));

    // The forged retry is acknowledged with the original offset, and nothing is appended.
    assert_eq!(
        produce(&mut stream, &topic, &first, 3),
        (0, 0),
        "duplicate of batch 0"
    );
    let third = idempotent_batch("third", producer_id, epoch, 2);
    assert_eq!(
        produce(&mut stream, &topic, &third, 4),
        (0, 2),
        "no offset was used by the duplicate"
    );

    // A gap in the sequence, and an epoch older than the producer's latest.
    let gap = idempotent_batch("gap", producer_id, epoch, 7);
    assert_eq!(
        produce(&mut stream, &topic, &gap, 5).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    let bumped = idempotent_batch("bumped", producer_id, epoch + 1, 0);
    assert_eq!(produce(&mut stream, &topic, &bumped, 6), (0, 3));
    let stale = idempotent_batch("stale", producer_id, epoch, 3);
    assert_eq!(
        produce(&mut stream, &topic, &stale, 7).0,
        INVALID_PRODUCER_EPOCH
    );

    // After a crash the producer state comes back from the log.
    drop(stream);
    broker.kill();
    broker.restart();
    let leader = leader_address(&broker, &topic, 0);
    let mut stream = TcpStream::connect(&leader).expect("reconnect");
    assert_eq!(
        produce(&mut stream, &topic, &bumped, 8),
        (0, 3),
        "duplicate after kill -9"
    );
    let next = idempotent_batch("next", producer_id, epoch + 1, 1);
    assert_eq!(produce(&mut stream, &topic, &next, 9), (0, 4));
    let (after_restart, _) = init_producer_id(&mut stream);
    assert!(
        after_restart > second_id,
        "ids allocated before the crash are not reused"
    );
}
