#!/usr/bin/env python3
# Produce then consume N 1000-byte records over one listener with confluent-kafka; prints MB/s.
# Usage: perf/tls-vs-plaintext.py PLAINTEXT|SSL PORT N   (ssl.ca.location=c.pem in the cwd)
import sys, time
from confluent_kafka import Producer, Consumer, TopicPartition
proto, port, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), 1000
base = {"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": proto, "ssl.ca.location": "c.pem"}
topic = f"load-{proto}-{time.time_ns()}"
p = Producer(dict(base, **{"linger.ms": 5, "batch.size": 1000000, "queue.buffering.max.messages": 1000000}))
v = b"x" * size
t = time.time()
for i in range(n):
    while True:
        try:
            p.produce(topic, v, partition=i % 4); break
        except BufferError:
            p.poll(0.01)
assert p.flush(60) == 0
pt = time.time() - t
c = Consumer(dict(base, **{"group.id": "g", "enable.auto.commit": False, "fetch.max.bytes": 52428800}))
c.assign([TopicPartition(topic, i, 0) for i in range(4)])
got = 0; t = time.time()
while got < n:
    ms = c.consume(10000, 10)
    assert ms, f"consume stalled at {got}"
    got += len(ms)
ct = time.time() - t
print(f"{proto} produce {n*size/pt/1e6:.1f} MB/s consume {n*size/ct/1e6:.1f} MB/s")
