"""confluent-kafka over SASL_PLAINTEXT: SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN produce and
consume; a wrong password fails with Kafka's authentication error; the admin client sets a
user's SCRAM credential, which then logs in.

Usage: sasl_scenarios.py BOOTSTRAP USER PASSWORD
"""
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

BOOTSTRAP, USER, PASSWORD = sys.argv[1], sys.argv[2], sys.argv[3]
TIMEOUT_S = 60


def settings(mechanism, user, password):
    return {
        "bootstrap.servers": BOOTSTRAP,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }


def round_trip(mechanism, user, password):
    topic = f"sasl-py-{uuid.uuid4().hex[:8]}"
    producer = Producer({**settings(mechanism, user, password), "acks": "all"})
    failures = []
    for i in range(10):
        producer.produce(topic, f"{mechanism} {i}".encode(), partition=0,
                         on_delivery=lambda err, _msg: err and failures.append(err))
    assert producer.flush(TIMEOUT_S) == 0, f"{mechanism}: undelivered"
    assert not failures, f"{mechanism}: {failures}"
    consumer = Consumer({**settings(mechanism, user, password), "group.id": topic,
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values = []
    while len(values) < 10:
        message = consumer.poll(TIMEOUT_S)
        assert message is not None, f"{mechanism}: consumed only {values}"
        assert message.error() is None, f"{mechanism}: {message.error()}"
        values.append(message.value().decode())
    consumer.close()
    assert values == [f"{mechanism} {i}" for i in range(10)], values


def wrong_password(mechanism):
    errors = []
    producer = Producer({**settings(mechanism, USER, "wrong-password"),
                         "error_cb": errors.append})
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline and not any(
            e.code() == KafkaError._AUTHENTICATION for e in errors):
        producer.poll(0.2)
    text = " ".join(str(e) for e in errors)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), text
    expected = ("Authentication failed: Invalid username or password" if mechanism == "PLAIN"
                else f"invalid credentials with SASL mechanism {mechanism}")
    assert expected in text, text


for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]:
    round_trip(mechanism, USER, PASSWORD)
    wrong_password(mechanism)
    print(f"{mechanism}: ok")

admin = AdminClient(settings("SCRAM-SHA-512", USER, PASSWORD))
upsertion = UserScramCredentialUpsertion(
    "py-user", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"py-password")
for future in admin.alter_user_scram_credentials([upsertion]).values():
    future.result(TIMEOUT_S)
description = admin.describe_user_scram_credentials(["py-user"])["py-user"].result(TIMEOUT_S)
infos = [(i.mechanism, i.iterations) for i in description.scram_credential_infos]
assert infos == [(ScramMechanism.SCRAM_SHA_256, 4096)], infos
round_trip("SCRAM-SHA-256", "py-user", "py-password")
print("admin-created user: ok")
