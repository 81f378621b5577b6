//! The transaction coordinator's error codes on the wire, as Kafka 4.x answers them
//! (TransactionCoordinator, KafkaApis): request by request at chosen API versions.

use crate::common;
use crate::txn_support;

use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, EndTxnRequest, InitProducerIdRequest,
    ProducerId, TopicName, TransactionalId,
};
use sluice::client::Connection;
use txn_support::{connect, text};

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_COORDINATOR: i16 = 16;
const INVALID_REQUEST: i16 = 42;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const PRODUCER_FENCED: i16 = 90;

/// (error, producer id, epoch) of InitProducerId at `version`.
fn init(
    c: &mut Connection,
    version: i16,
    id: &str,
    timeout_ms: i32,
    expected: (i64, i16),
) -> (i16, i64, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(text(id))))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(expected.0))
        .with_producer_epoch(expected.1);
    let response = c
        .send_version(&request, version, Duration::ZERO)
        .expect("InitProducerId");
    (
        response.error_code,
        response.producer_id.0,
        response.producer_epoch,
    )
}

/// Per-partition codes of AddPartitionsToTxn v0-3, in request order.
fn add(
    c: &mut Connection,
    version: i16,
    id: &str,
    producer: (i64, i16),
    parts: &[(&str, i32)],
) -> Vec<i16> {
    let topics = parts
        .iter()
        .map(|(topic, p)| {
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(text(topic)))
                .with_partitions(vec![*p])
        })
        .collect();
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(text(id)))
        .with_v3_and_below_producer_id(ProducerId(producer.0))
        .with_v3_and_below_producer_epoch(producer.1)
        .with_v3_and_below_topics(topics);
    let response: AddPartitionsToTxnResponse = c
        .send_version(&request, version, Duration::ZERO)
        .expect("AddPartitionsToTxn");
    response
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect()
}

fn end(c: &mut Connection, version: i16, id: &str, producer: (i64, i16), commit: bool) -> i16 {
    let request = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(text(id)))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_committed(commit);
    c.send_version(&request, version, Duration::ZERO)
        .expect("EndTxn")
        .error_code
}

#[test]
fn transaction_apis_answer_kafkas_error_codes() {
    let broker = common::Broker::start();
    let topic = common::topic_name("txn-codes");
    common::create_topic(broker.bootstrap(), &topic, 1);
    let id = common::topic_name("codes");

    let (coordinator_node, coordinator) = txn_support::coordinator(&broker, &id);
    let brokers = &broker.ready_line().brokers;
    let other = &brokers
        .iter()
        .find(|(node, _)| *node != coordinator_node)
        .expect("a second shard")
        .1;
    let mut c = connect(&coordinator);

    assert_eq!(
        init(&mut connect(other), 4, &id, 60_000, (-1, -1)).0,
        NOT_COORDINATOR
    );
    assert_eq!(init(&mut c, 4, "", 60_000, (-1, -1)).0, INVALID_REQUEST);
    assert_eq!(
        init(&mut c, 4, &id, 0, (-1, -1)).0,
        INVALID_TRANSACTION_TIMEOUT
    );
    assert_eq!(
        init(&mut c, 4, &id, 900_001, (-1, -1)).0,
        INVALID_TRANSACTION_TIMEOUT
    );
    let (error, pid, epoch) = init(&mut c, 4, &id, 60_000, (-1, -1));
    assert_eq!((error, epoch), (NONE, 0));

    // An id the same shard coordinates, which no InitProducerId created.
    let shard_count = brokers.len();
    let unknown = (0..)
        .map(|i| format!("{id}-unknown-{i}"))
        .find(|u| sluice::txn::coordinator_shard(u, shard_count) as i32 == coordinator_node)
        .expect("an id on the coordinator's shard");
    assert_eq!(
        add(&mut c, 3, &unknown, (pid, 0), &[(&topic, 0)]),
        vec![INVALID_PRODUCER_ID_MAPPING]
    );
    assert_eq!(
        add(&mut c, 3, &id, (pid + 1, 0), &[(&topic, 0)]),
        vec![INVALID_PRODUCER_ID_MAPPING]
    );
    assert_eq!(
        add(&mut c, 3, &id, (pid, 1), &[(&topic, 0)]),
        vec![PRODUCER_FENCED]
    );
    assert_eq!(
        add(&mut c, 1, &id, (pid, 1), &[(&topic, 0)]),
        vec![INVALID_PRODUCER_EPOCH]
    );
    assert_eq!(
        add(
            &mut c,
            3,
            &id,
            (pid, 0),
            &[(&topic, 0), ("no-such-topic", 0)]
        ),
        vec![OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION]
    );
    assert_eq!(
        end(&mut c, 3, &id, (pid, 0), true),
        INVALID_TXN_STATE,
        "nothing to end"
    );

    assert_eq!(add(&mut c, 3, &id, (pid, 0), &[(&topic, 0)]), vec![NONE]);
    assert_eq!(end(&mut c, 3, &id, (pid, 1), true), PRODUCER_FENCED);
    assert_eq!(end(&mut c, 1, &id, (pid, 1), true), INVALID_PRODUCER_EPOCH);
    assert_eq!(end(&mut c, 3, &id, (pid, 0), true), NONE);
    assert_eq!(
        end(&mut c, 3, &id, (pid, 0), true),
        NONE,
        "a retried commit"
    );
    assert_eq!(end(&mut c, 3, &id, (pid, 0), false), INVALID_TXN_STATE);

    // KIP-360: re-initializing with the current epoch bumps it; a stale one is fenced
    // (INVALID_PRODUCER_EPOCH before InitProducerId v4).
    assert_eq!(init(&mut c, 4, &id, 60_000, (pid, 0)), (NONE, pid, 1));
    assert_eq!(
        init(&mut c, 4, &id, 60_000, (pid, 0)),
        (NONE, pid, 1),
        "a retry"
    );
    assert_eq!(
        init(&mut c, 4, &id, 60_000, (pid + 1, 1)).0,
        PRODUCER_FENCED
    );
    assert_eq!(
        init(&mut c, 3, &id, 60_000, (pid + 1, 1)).0,
        INVALID_PRODUCER_EPOCH
    );
}
