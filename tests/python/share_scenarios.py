#!/usr/bin/env python3
"""Share-group scenarios against a running sluice broker, with confluent-kafka's ShareConsumer.

Run by the Rust integration tests tests/share_*.rs (one scenario each):

    share_scenarios.py SCENARIO BOOTSTRAP [STATE_FILE]

Exit status 0 means the scenario's assertions held; anything else fails the test.
"""
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid

from confluent_kafka import AcknowledgeType, Consumer, Producer, ShareConsumer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewTopic, ResourceType)

DLQ_HEADERS = ("dlq.topic", "dlq.partition", "dlq.offset", "dlq.group", "dlq.delivery.count",
               "dlq.reason")


def log(*args):
    print(*args, flush=True)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap, topic, partitions=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(30)


def set_group_configs(bootstrap, group, configs):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
               for k, v in configs.items()]
    resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=entries)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def produce(bootstrap, topic, values, headers=None):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for value in values:
        producer.produce(topic, value=value, headers=headers)
    assert producer.flush(30) == 0, "undelivered records"


def share_consumer(bootstrap, group, topic, explicit=True, extra=None):
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "share.acknowledgement.mode": "explicit" if explicit else "implicit",
        "max.poll.records": 10,
    }
    config.update(extra or {})
    consumer = ShareConsumer(config)
    consumer.subscribe([topic])
    return consumer


def records(messages):
    out = []
    for m in messages:
        if m.error():
            log("poll error:", m.error())
            continue
        out.append(m)
    return out


def read_topic(bootstrap, topic, count, timeout_s=30):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    out = []
    deadline = time.time() + timeout_s
    while len(out) < count and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is None or m.error():
            continue
        out.append(m)
    consumer.close()
    return out


def dlq_headers(message):
    return {k: (v.decode() if v is not None else None) for k, v in (message.headers() or [])}


def base_group(bootstrap, prefix, **configs):
    group = unique(prefix)
    settings = {"share.auto.offset.reset": "earliest"}
    settings.update(configs)
    set_group_configs(bootstrap, group, settings)
    return group


# ---- scenarios -------------------------------------------------------------------------

def split(bootstrap):
    """Three members on one partition split the records; each processed exactly once."""
    total = 300
    topic = unique("share-split")
    create_topic(bootstrap, topic)
    group = base_group(bootstrap, "split")
    seen = {i: [] for i in range(3)}
    stop = threading.Event()
    errors = []

    def member(index):
        try:
            consumer = share_consumer(bootstrap, group, topic)
            while not stop.is_set():
                for m in records(consumer.poll(0.5)):
                    seen[index].append(int(m.value()))
                    time.sleep(0.005)  # some work, so that the others get their turn
                    consumer.acknowledge(m, AcknowledgeType.ACCEPT)
                consumer.commit_sync()
            consumer.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=member, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    time.sleep(3)  # all three have joined
    for start in range(0, total, 20):
        produce(bootstrap, topic, [str(v).encode() for v in range(start, start + 20)])
        time.sleep(0.05)
    deadline = time.time() + 60
    while sum(len(v) for v in seen.values()) < total and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # anything delivered twice would show up now
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors
    everything = sorted(v for values in seen.values() for v in values)
    log("per member:", [len(v) for v in seen.values()])
    assert everything == list(range(total)), f"not exactly once: {len(everything)} deliveries"
    assert all(len(v) > 0 for v in seen.values()), "a member got nothing"


def _hold_and_die(bootstrap, group, topic, acquired_path):
    consumer = share_consumer(bootstrap, group, topic)
    deadline = time.time() + 30
    while time.time() < deadline:
        got = records(consumer.poll(0.5))
        if got:
            with open(acquired_path, "w") as f:
                json.dump([m.offset() for m in got], f)
            time.sleep(600)  # holds the records until killed
    sys.exit(3)


def lock_timeout(bootstrap):
    """A member acquires records and dies: another gets them after the lock expires."""
    topic = unique("share-lock")
    create_topic(bootstrap, topic)
    lock_ms = 3000
    group = base_group(bootstrap, "lock", **{"share.record.lock.duration.ms": str(lock_ms)})
    produce(bootstrap, topic, [str(v).encode() for v in range(20)])
    acquired_path = f"/tmp/share-lock-{uuid.uuid4().hex}.json"
    holder = multiprocessing.Process(target=_hold_and_die,
                                     args=(bootstrap, group, topic, acquired_path))
    holder.start()
    deadline = time.time() + 30
    while not os.path.exists(acquired_path) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.2)
    with open(acquired_path) as f:
        held = json.load(f)
    os.remove(acquired_path)
    os.kill(holder.pid, signal.SIGKILL)  # no close: its locks stay until they expire
    holder.join()
    died_at = time.time()
    log("dead member held", held)
    assert held, "the holder acquired nothing"
    survivor = share_consumer(bootstrap, group, topic)
    got = {}
    deadline = time.time() + 30
    while len(got) < 20 and time.time() < deadline:
        for m in records(survivor.poll(0.5)):
            got[m.offset()] = (time.time(), m.delivery_count())
            survivor.acknowledge(m, AcknowledgeType.ACCEPT)
        survivor.commit_sync()
    survivor.close()
    assert sorted(got) == list(range(20)), f"survivor got {sorted(got)}"
    for offset in held:
        at, count = got[offset]
        assert count == 2, f"offset {offset} delivery count {count}"
        assert at - died_at >= lock_ms / 1000 - 1.0, f"offset {offset} redelivered before the lock expired"


def dlq_reject(bootstrap):
    """A rejected record lands in the dead-letter topic with the documented headers."""
    topic = unique("share-rej")
    dlq = unique("dlq-rej")
    create_topic(bootstrap, topic)
    create_topic(bootstrap, dlq)
    group = base_group(bootstrap, "rej", **{"errors.deadletterqueue.topic.name": dlq})
    values = [b"ok-0", b"ok-1", b"bad", b"ok-3"]
    produce(bootstrap, topic, values, headers=[("origin-header", b"kept")])
    consumer = share_consumer(bootstrap, group, topic)
    handled = []
    deadline = time.time() + 30
    while len(handled) < len(values) and time.time() < deadline:
        for m in records(consumer.poll(0.5)):
            kind = AcknowledgeType.REJECT if m.value() == b"bad" else AcknowledgeType.ACCEPT
            consumer.acknowledge(m, kind)
            handled.append(m.value())
        consumer.commit_sync()
    consumer.close()
    assert sorted(handled) == sorted(values), handled
    dead = read_topic(bootstrap, dlq, 1)
    assert len(dead) == 1, f"{len(dead)} dead letters"
    headers = dlq_headers(dead[0])
    log("dead letter headers:", headers)
    assert dead[0].value() == b"bad"
    assert headers["dlq.topic"] == topic
    assert headers["dlq.partition"] == "0"
    assert headers["dlq.offset"] == "2"
    assert headers["dlq.group"] == group
    assert headers["dlq.delivery.count"] == "1"
    assert headers["dlq.reason"] == "rejected"
    assert headers["origin-header"] == "kept"


def dlq_poison(bootstrap):
    """A record released on every delivery reaches the dead-letter topic at the limit."""
    topic = unique("share-poison")
    dlq = unique("dlq-poison")
    create_topic(bootstrap, topic)
    limit = 3
    group = base_group(bootstrap, "poison", **{"errors.deadletterqueue.topic.name": dlq,
                                                 "share.delivery.count.limit": str(limit)})
    produce(bootstrap, topic, [b"a", b"poison", b"b"])
    consumer = share_consumer(bootstrap, group, topic)
    poison_deliveries = []
    accepted = []
    deadline = time.time() + 30
    while time.time() < deadline and not (len(accepted) == 2 and len(poison_deliveries) >= limit):
        for m in records(consumer.poll(0.5)):
            if m.value() == b"poison":
                poison_deliveries.append(m.delivery_count())
                consumer.acknowledge(m, AcknowledgeType.RELEASE)
            else:
                accepted.append(m.value())
                consumer.acknowledge(m, AcknowledgeType.ACCEPT)
        consumer.commit_sync()
    # No further delivery once archived.
    end = time.time() + 2
    while time.time() < end:
        for m in records(consumer.poll(0.5)):
            poison_deliveries.append(m.delivery_count())
            consumer.acknowledge(m, AcknowledgeType.ACCEPT)
        consumer.commit_sync()
    consumer.close()
    log("poison deliveries:", poison_deliveries)
    assert poison_deliveries == list(range(1, limit + 1)), poison_deliveries
    assert sorted(accepted) == [b"a", b"b"], accepted
    dead = read_topic(bootstrap, dlq, 1)
    assert len(dead) == 1, f"{len(dead)} dead letters"
    headers = dlq_headers(dead[0])
    log("dead letter headers:", headers)
    assert dead[0].value() == b"poison"
    assert headers["dlq.reason"] == "delivery-limit"
    assert headers["dlq.delivery.count"] == str(limit)
    assert headers["dlq.offset"] == "1"


CRASH_TOTAL = 200


def crash_before(bootstrap, state_path, topic=None):
    """Phase 1: acknowledge some records, hold others acquired; the broker (or, on a
    replicated `topic` made by the test, its leader) is then killed."""
    if topic is None:
        topic = unique("share-crash")
        create_topic(bootstrap, topic)
    # A long lock: records held at the crash must come back because of the restart.
    group = base_group(bootstrap, "crash", **{"share.record.lock.duration.ms": "120000"})
    produce(bootstrap, topic, [str(v).encode() for v in range(CRASH_TOTAL)])
    consumer = share_consumer(bootstrap, group, topic)
    acked, held = [], []
    deadline = time.time() + 30
    while len(acked) < CRASH_TOTAL // 2 and time.time() < deadline:
        for m in records(consumer.poll(0.5)):
            consumer.acknowledge(m, AcknowledgeType.ACCEPT)
            acked.append(int(m.value()))
        consumer.commit_sync()
    while not held and time.time() < deadline:
        held = [int(m.value()) for m in records(consumer.poll(0.5))]
    assert acked and held, (acked, held)
    with open(state_path, "w") as f:
        json.dump({"topic": topic, "group": group, "acked": acked, "held": held}, f)
    log(f"acknowledged {len(acked)}, holding {len(held)}")
    os._exit(0)  # no close: the broker is killed with these records acquired


def crash_after(bootstrap, state_path, cluster=None):
    """Phase 2, after kill -9 and restart: nothing acknowledged comes back, nothing is lost.
    With `cluster`, a record may come twice: a leadership change among the survivors under
    load releases the locks of the records in flight (at-least-once), as in Kafka."""
    with open(state_path) as f:
        state = json.load(f)
    acked = set(state["acked"])
    consumer = share_consumer(bootstrap, state["group"], state["topic"])
    again = []
    deadline = time.time() + 60
    while len(acked | set(again)) < CRASH_TOTAL and time.time() < deadline:
        for m in records(consumer.poll(0.5)):
            again.append(int(m.value()))
            consumer.acknowledge(m, AcknowledgeType.ACCEPT)
        consumer.commit_sync()
    consumer.close()
    redelivered = sorted(acked.intersection(again))
    assert not redelivered, f"acknowledged records delivered again: {redelivered}"
    assert set(state["held"]) <= set(again), "records held at the crash were not redelivered"
    everything = sorted(acked.union(again))
    assert everything == list(range(CRASH_TOTAL)), f"lost: {sorted(set(range(CRASH_TOTAL)) - set(everything))}"
    if cluster is None:
        assert len(again) == len(set(again)), "a record was delivered twice after the restart"


RETURN_TOTAL = 20


def crash_return(bootstrap, state_path):
    """Phase 3, after crash-after and the killed leader leading again: records produced now
    are delivered, and none of those acknowledged before (on either leader) comes back."""
    with open(state_path) as f:
        state = json.load(f)
    fresh = list(range(CRASH_TOTAL, CRASH_TOTAL + RETURN_TOTAL))
    consumer = share_consumer(bootstrap, state["group"], state["topic"])
    produce(bootstrap, state["topic"], [str(v).encode() for v in fresh])
    seen = []
    deadline = time.time() + 60
    while not set(fresh) <= set(seen) and time.time() < deadline:
        for m in records(consumer.poll(0.5)):
            seen.append(int(m.value()))
            consumer.acknowledge(m, AcknowledgeType.ACCEPT)
        consumer.commit_sync()
    consumer.close()
    old = sorted(v for v in seen if v < CRASH_TOTAL)
    assert not old, f"records acknowledged before delivered again: {old}"
    # A record may come twice (see crash_after), but each must come.
    assert sorted(set(seen)) == fresh, f"delivered {sorted(seen)}, expected {fresh}"


# ---- administration (share_group_cli_describes_resets_and_deletes.rs) ------------------

def admin_consume(bootstrap, topic, group, count, result_path):
    """Accepts records until `count` distinct ones arrived, then leaves the group. Writes every
    delivery as [partition, offset]; the Rust test checks them."""
    set_group_configs(bootstrap, group, {"share.auto.offset.reset": "earliest"})
    consumer = share_consumer(bootstrap, group, topic)
    deliveries = []
    deadline = time.time() + 60
    while len(set(deliveries)) < int(count) and time.time() < deadline:
        for m in records(consumer.poll(0.5)):
            deliveries.append((m.partition(), m.offset()))
            consumer.acknowledge(m, AcknowledgeType.ACCEPT)
        consumer.commit_sync()
    consumer.close()
    with open(result_path, "w") as f:
        json.dump(sorted(deliveries), f)
    log(f"accepted {len(deliveries)} deliveries")


def admin_hold(bootstrap, topic, group, ready_path, stop_path):
    """Joins the group and holds the records it acquires, unacknowledged, until `stop_path`
    exists; then closes, which releases them."""
    consumer = share_consumer(bootstrap, group, topic)
    held = []
    deadline = time.time() + 60
    while not held and time.time() < deadline:
        held = [(m.partition(), m.offset()) for m in records(consumer.poll(0.5))]
    assert held, "acquired nothing"
    with open(ready_path + ".tmp", "w") as f:
        json.dump(held, f)
    os.rename(ready_path + ".tmp", ready_path)
    log("holding", held)
    deadline = time.time() + 120
    while not os.path.exists(stop_path) and time.time() < deadline:
        time.sleep(0.1)
    consumer.close()


def admin_list(bootstrap, group):
    """ListGroups through AdminClient. list_groups() lists the (empty) share group;
    list_consumer_groups() leaves it out, as librdkafka keeps only groups of the consumer
    protocol type there (Kafka's Admin.listConsumerGroups does the same), which also shows
    that ListGroups gave a protocol type other than "consumer" or empty."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = {g.id: g for g in admin.list_groups(timeout=30)}
    assert group in listed, f"{group} not in {sorted(listed)}"
    log("list_groups:", group, listed[group].state, listed[group].error)
    consumer_groups = admin.list_consumer_groups(request_timeout=30).result(30)
    assert not consumer_groups.errors, consumer_groups.errors
    assert group not in [g.group_id for g in consumer_groups.valid], "listed as a consumer group"


# ---- a topic deleted and created again (share_recreated_topic_starts_fresh.rs) --------

def delete_topic(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics([topic]).values():
        future.result(30)


def poll_values(consumers, want, timeout_s=60):
    """Polls `consumers` in turn, accepting every record, until `want` distinct values arrived
    (or the time is up); returns every value delivered."""
    got = []
    deadline = time.time() + timeout_s
    while len(set(got)) < want and time.time() < deadline:
        for consumer in consumers:
            for m in records(consumer.poll(0.5)):
                got.append(m.value().decode())
                consumer.acknowledge(m, AcknowledgeType.ACCEPT)
            consumer.commit_sync()
    return got


def recreate_before(bootstrap, state_path):
    """A share consumer reads topic T; T is deleted and created again while the consumer
    stays subscribed; it gets exactly the new topic's records, none of the old ones."""
    topic = unique("share-recreate")
    create_topic(bootstrap, topic)
    group = base_group(bootstrap, "recreate")
    produce(bootstrap, topic, [f"old-{i}".encode() for i in range(10)])
    survivor = share_consumer(bootstrap, group, topic)
    old = poll_values([survivor], 10)
    assert sorted(old) == sorted(f"old-{i}" for i in range(10)), old
    delete_topic(bootstrap, topic)
    create_topic(bootstrap, topic)
    # Five records, at offsets 0..4: below where the deleted topic's share state started.
    produce(bootstrap, topic, [f"new-{i}".encode() for i in range(5)])
    # The member that stayed subscribed, and one that opens its share sessions now.
    newcomer = share_consumer(bootstrap, group, topic)
    consumers = [survivor, newcomer]
    new = poll_values(consumers, 5)
    time.sleep(2)  # anything delivered twice, or an old record, would show up now
    new += poll_values(consumers, 1, timeout_s=1)
    for consumer in consumers:
        consumer.close()
    log("after the topic was created again:", new)
    assert sorted(new) == [f"new-{i}" for i in range(5)], new
    with open(state_path, "w") as f:
        json.dump({"topic": topic, "group": group}, f)


def recreate_after(bootstrap, state_path):
    """After a broker kill -9 and restart: the new topic's acknowledged records stay
    acknowledged, and the next ones are delivered once."""
    with open(state_path) as f:
        state = json.load(f)
    produce(bootstrap, state["topic"], [f"new-{i}".encode() for i in range(5, 10)])
    consumer = share_consumer(bootstrap, state["group"], state["topic"])
    got = poll_values([consumer], 5)
    time.sleep(2)
    got += poll_values([consumer], 1, timeout_s=1)
    consumer.close()
    log("after the restart:", got)
    assert sorted(got) == [f"new-{i}" for i in range(5, 10)], got


SCENARIOS = {
    "split": split,
    "lock-timeout": lock_timeout,
    "dlq-reject": dlq_reject,
    "dlq-poison": dlq_poison,
    "crash-before": crash_before,
    "crash-after": crash_after,
    "crash-return": crash_return,
    "admin-consume": admin_consume,
    "admin-hold": admin_hold,
    "admin-list": admin_list,
    "recreate-before": recreate_before,
    "recreate-after": recreate_after,
}

if __name__ == "__main__":
    name, bootstrap, *rest = sys.argv[1:]
    SCENARIOS[name](bootstrap, *rest)
    log(f"scenario {name}: ok")
