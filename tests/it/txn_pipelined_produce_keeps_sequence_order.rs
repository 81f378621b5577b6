//! A transactional producer pipelines its requests: while the first batch of a transaction
//! on one partition waits for the coordinator's KIP-890 check, the requests behind it must
//! still append in the order they arrived, on every partition they touch. A request queued
//! behind the waiting one also holds back later requests to its *other* partitions; before
//! that, such a later request appended at once, ahead of it, and an idempotent producer's
//! batch was refused as OUT_OF_ORDER_SEQUENCE_NUMBER (seen under load in `sluice bench
//! --transactions`).

use crate::common;
use crate::txn_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::raw;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName, TransactionalId};
use kafka_protocol::protocol::{Decodable, Encodable};
use txn_support::{connect, text, transactional_batch};

const NONE: i16 = 0;
const PRODUCE: i16 = 0;
const PRODUCE_VERSION: i16 = 7;

fn produce_request(id: &str, topic: &str, batches: &[(i32, Bytes)]) -> ProduceRequest {
    ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(text(id))))
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(text(topic)))
            .with_partition_data(
                batches
                    .iter()
                    .map(|(partition, batch)| {
                        PartitionProduceData::default()
                            .with_index(*partition)
                            .with_records(Some(batch.clone()))
                    })
                    .collect(),
            )])
}

/// (partition, error, base offset, error message) of each partition in an answer.
fn answers(response: &ProduceResponse) -> Vec<(i32, i16, i64, Option<String>)> {
    response.responses[0]
        .partition_responses
        .iter()
        .map(|p| {
            (
                p.index,
                p.error_code,
                p.base_offset,
                p.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect()
}

#[test]
fn pipelined_transactional_produce_appends_in_arrival_order() {
    let broker = common::Broker::start();
    let topic = common::topic_name("txn-pipeline");
    common::create_topic(broker.bootstrap(), &topic, 8);
    // Three partitions led by one shard: the requests below go down one connection.
    let probe = common::consumer(broker.bootstrap(), &[]);
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (partition, leader) in common::topic_leaders(&probe, &topic).expect("leaders") {
        by_leader.entry(leader).or_default().push(partition);
    }
    let (&leader, partitions) = by_leader
        .iter()
        .find(|(_, partitions)| partitions.len() >= 3)
        .expect("a shard leading three of eight partitions");
    let (p, q, s) = (partitions[0], partitions[1], partitions[2]);
    // A coordinator on the other shard: the check of P's first batch is a message between
    // shards, so that request waits while the ones behind it arrive.
    let id = (0..64)
        .map(|i| format!("{}-{i}", common::topic_name("pipeline")))
        .find(|id| txn_support::coordinator_id(&broker, id, 1) != leader)
        .expect("a transactional id coordinated by the other shard");
    let (_, coordinator_addr) = txn_support::coordinator(&broker, &id);
    let mut coordinator = connect(&coordinator_addr);
    let producer = txn_support::init_producer(&mut coordinator, &id);
    let added = txn_support::add_partitions(&mut coordinator, &id, producer, &topic, vec![p, q, s]);
    assert_eq!(added, vec![NONE; 3], "AddPartitionsToTxn");

    let leader_addr = common::leader_address(&broker, &topic, p);
    let mut leader_conn = connect(&leader_addr);
    // Q and S have the transaction open; P does not yet.
    for partition in [q, s] {
        let request = produce_request(
            &id,
            &topic,
            &[(partition, transactional_batch(producer, 0))],
        );
        let response = leader_conn
            .send_version(&request, PRODUCE_VERSION, Duration::ZERO)
            .expect("Produce");
        assert_eq!(answers(&response), vec![(partition, NONE, 0, None)]);
    }

    // One write, three requests: the first waits for the coordinator (P's first batch), the
    // second queues behind it on Q, the third touches only S, where the second also writes.
    let requests = [
        produce_request(
            &id,
            &topic,
            &[
                (p, transactional_batch(producer, 0)),
                (q, transactional_batch(producer, 1)),
            ],
        ),
        produce_request(
            &id,
            &topic,
            &[
                (q, transactional_batch(producer, 2)),
                (s, transactional_batch(producer, 1)),
            ],
        ),
        produce_request(&id, &topic, &[(s, transactional_batch(producer, 2))]),
    ];
    let mut pipelined = Vec::new();
    for (correlation_id, request) in (1..).zip(&requests) {
        let mut body = BytesMut::new();
        request
            .encode(&mut body, PRODUCE_VERSION)
            .expect("encode Produce");
        pipelined.extend(raw::frame(PRODUCE, PRODUCE_VERSION, correlation_id, &body));
    }
    let mut stream = TcpStream::connect(&leader_addr).expect("connect to the leader");
    stream.write_all(&pipelined).expect("write the requests");
    let mut got = Vec::new();
    for correlation_id in 1..=3 {
        let raw::Reply::Frame(frame) = raw::read_reply(&mut stream, Duration::from_secs(30)) else {
            panic!("no answer to request {correlation_id}");
        };
        let mut frame = Bytes::from(frame);
        assert_eq!(
            i32::from_be_bytes(frame[..4].try_into().expect("4 bytes")),
            correlation_id
        );
        let mut body = frame.split_off(4);
        let response =
            ProduceResponse::decode(&mut body, PRODUCE_VERSION).expect("decode Produce answer");
        got.push(answers(&response));
    }
    assert_eq!(
        got,
        vec![
            vec![(p, NONE, 0, None), (q, NONE, 1, None)],
            vec![(q, NONE, 2, None), (s, NONE, 1, None)],
            vec![(s, NONE, 2, None)],
        ],
        "every batch appended in the order its request arrived"
    );
}
