#!/usr/bin/env python3
"""Transactions with confluent-kafka (librdkafka 2.16) against a running sluice broker.

Run by tests/it/txn_confluent_kafka_commits_and_aborts_interleaved.rs:

    txn_interleaved.py BOOTSTRAP

A transactional producer commits and aborts transactions in turn on two partitions. A
read_committed consumer must see exactly the committed records, in order; a
read_uncommitted consumer every record, and never a control record. Exit status 0 means
the assertions held.
"""
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 2
ROUNDS = 8
PER_PARTITION = 4
DEADLINE_S = 60


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def read_to_end_markers(bootstrap, topic, isolation):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique("txn-reader"),
        "enable.auto.commit": False,
        "isolation.level": isolation,
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    seen = {p: [] for p in range(PARTITIONS)}
    ended = set()
    deadline = time.monotonic() + DEADLINE_S
    while len(ended) < PARTITIONS:
        assert time.monotonic() < deadline, f"{isolation}: end markers of {ended} only"
        message = consumer.poll(0.2)
        if message is None or message.error():
            continue
        value = message.value().decode()
        if value == f"end-{message.partition()}":
            ended.add(message.partition())
        else:
            seen[message.partition()].append(value)
    consumer.close()
    return seen


def main(bootstrap):
    topic = unique("txn-py")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        future.result(30)
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": unique("txn-py"),
    })
    producer.init_transactions(30)
    committed = {p: [] for p in range(PARTITIONS)}
    everything = {p: [] for p in range(PARTITIONS)}
    for round_ in range(ROUNDS):
        producer.begin_transaction()
        for p in range(PARTITIONS):
            for i in range(PER_PARTITION):
                value = f"r{round_}-p{p}-{i}"
                producer.produce(topic, value=value, partition=p)
                everything[p].append(value)
                if round_ % 2 == 0:
                    committed[p].append(value)
        # Every record reaches the broker before the abort, so read_uncommitted sees them.
        producer.flush(30)
        if round_ % 2 == 0:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)
    producer.begin_transaction()
    for p in range(PARTITIONS):
        producer.produce(topic, value=f"end-{p}", partition=p)
    producer.commit_transaction(30)

    got = read_to_end_markers(bootstrap, topic, "read_committed")
    assert got == committed, f"read_committed saw {got}, expected {committed}"
    got = read_to_end_markers(bootstrap, topic, "read_uncommitted")
    assert got == everything, f"read_uncommitted saw {got}, expected {everything}"
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1])
