#!/usr/bin/env python3
"""DescribeTopics and DescribeCluster report every operation when asked, as Kafka without an
authorizer does, and none when not asked.

Run by tests/it/describe_reports_every_operation_without_an_authorizer.rs:

    describe_authorized_operations.py BOOTSTRAP TOPIC

Exit status 0 means the assertions held.
"""
import sys

from confluent_kafka import TopicCollection
from confluent_kafka.admin import AdminClient

TOPIC_OPERATIONS = {"READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS",
                    "ALTER_CONFIGS"}
CLUSTER_OPERATIONS = {"CREATE", "ALTER", "DESCRIBE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS",
                      "ALTER_CONFIGS", "IDEMPOTENT_WRITE"}


def names(operations):
    return {op.name for op in operations or []}


def main():
    bootstrap, topic = sys.argv[1:3]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for asked, expected_topic, expected_cluster in ((True, TOPIC_OPERATIONS, CLUSTER_OPERATIONS),
                                                    (False, set(), set())):
        futures = admin.describe_topics(TopicCollection([topic]),
                                        include_authorized_operations=asked)
        described = futures[topic].result(30)
        got = names(described.authorized_operations)
        print(f"topic, asked={asked}: {sorted(got)}", flush=True)
        assert got == expected_topic, f"topic operations {sorted(got)}"

        cluster = admin.describe_cluster(include_authorized_operations=asked).result(30)
        got = names(cluster.authorized_operations)
        print(f"cluster, asked={asked}: {sorted(got)}", flush=True)
        assert got == expected_cluster, f"cluster operations {sorted(got)}"


if __name__ == "__main__":
    main()
