//! KIP-890 part 1: a transactional batch for a partition that was not added to the
//! producer's transaction is refused with INVALID_TXN_STATE and not stored, so it cannot
//! open a transaction in the partition that no marker would ever close. Once the partition
//! is added, the batches go in.

use crate::common;
use crate::txn_support;

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    EndTxnRequest, ProduceRequest, ProducerId, TopicName, TransactionalId,
};
use sluice::client::Connection;
use txn_support::{connect, text, transactional_batch};

const NONE: i16 = 0;
const INVALID_TXN_STATE: i16 = 48;

/// (error, base offset) of a Produce v7 of `batch` to partition 0.
fn produce(c: &mut Connection, id: &str, topic: &str, batch: Bytes) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(text(id))))
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(text(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    let response = c
        .send_version(&request, 7, Duration::ZERO)
        .expect("Produce");
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

#[test]
fn a_batch_outside_the_transaction_is_refused_and_not_stored() {
    let broker = common::Broker::start();
    let topic = common::topic_name("txn-verify");
    common::create_topic(broker.bootstrap(), &topic, 1);
    let id = common::topic_name("verify");
    let (_, coordinator_addr) = txn_support::coordinator(&broker, &id);
    let mut coordinator = connect(&coordinator_addr);
    let producer = txn_support::init_producer(&mut coordinator, &id);
    let mut leader = connect(&common::leader_address(&broker, &topic, 0));

    let refused = produce(&mut leader, &id, &topic, transactional_batch(producer, 0));
    assert_eq!(
        refused,
        (INVALID_TXN_STATE, -1),
        "not added to the transaction"
    );

    let added = txn_support::add_partitions(&mut coordinator, &id, producer, &topic, vec![0]);
    assert_eq!(added, vec![NONE]);
    // The refused batch left nothing behind: the first accepted one is at offset 0.
    assert_eq!(
        produce(&mut leader, &id, &topic, transactional_batch(producer, 0)),
        (NONE, 0)
    );
    assert_eq!(
        produce(&mut leader, &id, &topic, transactional_batch(producer, 1)),
        (NONE, 1)
    );

    let ended = coordinator
        .send_version(
            &EndTxnRequest::default()
                .with_transactional_id(TransactionalId(text(&id)))
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_committed(true),
            1,
            Duration::ZERO,
        )
        .expect("EndTxn");
    assert_eq!(ended.error_code, NONE);
    // The transaction is over: a straggler of it is refused again.
    let straggler = produce(&mut leader, &id, &topic, transactional_batch(producer, 2));
    assert_eq!(straggler, (INVALID_TXN_STATE, -1));
}
