#!/usr/bin/env python3
"""CreateAcls, DescribeAcls and DeleteAcls through pip confluent-kafka's AdminClient, checked
against the answers a Kafka 4.x broker with StandardAuthorizer gives.

Run by tests/acl_admin_api_answers_as_kafka.rs:

    acl_admin_round_trip.py BOOTSTRAP_WITH_AUTHORIZER BOOTSTRAP_WITHOUT_AUTHORIZER
        BOOTSTRAP_CLOSED_CLUSTER

Exit status 0 means the assertions held.
"""
import sys

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, ResourcePatternType, ResourceType)

TIMEOUT_S = 30


def binding(name, pattern, principal, operation, permission=AclPermissionType.ALLOW,
            resource=ResourceType.TOPIC, host="*"):
    return AclBinding(resource, name, pattern, principal, host, operation, permission)


def error_of(future):
    try:
        future.result(TIMEOUT_S)
    except KafkaException as e:
        return e.args[0].code()
    return None


def key(b):
    return (b.restype.name, b.name, b.resource_pattern_type.name, b.principal, b.host,
            b.operation.name, b.permission_type.name)


def with_authorizer(admin):
    literal = binding("orders", ResourcePatternType.LITERAL, "User:alice", AclOperation.READ)
    prefixed = binding("ord", ResourcePatternType.PREFIXED, "User:bob", AclOperation.WRITE,
                       AclPermissionType.DENY)
    wildcard = binding("*", ResourcePatternType.LITERAL, "User:*", AclOperation.DESCRIBE)
    other = binding("payments", ResourcePatternType.LITERAL, "User:alice", AclOperation.READ)
    group = binding("g1", ResourcePatternType.LITERAL, "User:alice", AclOperation.READ,
                    resource=ResourceType.GROUP)
    no_colon = binding("orders", ResourcePatternType.LITERAL, "alice", AclOperation.READ)
    bad_cluster = binding("other", ResourcePatternType.LITERAL, "User:alice", AclOperation.ALTER,
                          resource=ResourceType.BROKER)

    good = [literal, prefixed, wildcard, other, group]
    results = admin.create_acls(good + [no_colon, bad_cluster], request_timeout=TIMEOUT_S)
    for b in good:
        assert error_of(results[b]) is None, f"create {b}"
    for b in (no_colon, bad_cluster):
        assert error_of(results[b]) == KafkaError.INVALID_REQUEST, f"create {b}"
    # Creating an existing ACL again succeeds and keeps one copy.
    assert error_of(admin.create_acls([literal])[literal]) is None
    print("create: ok", flush=True)

    every = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    described = admin.describe_acls(every, request_timeout=TIMEOUT_S).result(TIMEOUT_S)
    assert sorted(map(key, described)) == sorted(map(key, good)), described

    # MATCH: every ACL that applies to topic "orders": literal, wildcard and prefix.
    match = AclBindingFilter(ResourceType.TOPIC, "orders", ResourcePatternType.MATCH, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    described = admin.describe_acls(match).result(TIMEOUT_S)
    assert sorted(map(key, described)) == sorted(map(key, [literal, prefixed, wildcard])), \
        described
    by_principal = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, "User:alice",
                                    None, AclOperation.READ, AclPermissionType.ALLOW)
    described = admin.describe_acls(by_principal).result(TIMEOUT_S)
    assert sorted(map(key, described)) == sorted(map(key, [literal, other, group])), described
    print("describe: ok", flush=True)

    only_prefixed = AclBindingFilter(ResourceType.TOPIC, None, ResourcePatternType.PREFIXED, None,
                                     None, AclOperation.ANY, AclPermissionType.ANY)
    nothing = AclBindingFilter(ResourceType.TOPIC, "absent", ResourcePatternType.LITERAL, None,
                               None, AclOperation.ANY, AclPermissionType.ANY)
    deleted = admin.delete_acls([only_prefixed, nothing], request_timeout=TIMEOUT_S)
    assert list(map(key, deleted[only_prefixed].result(TIMEOUT_S))) == [key(prefixed)]
    assert deleted[nothing].result(TIMEOUT_S) == []
    described = admin.describe_acls(every).result(TIMEOUT_S)
    assert sorted(map(key, described)) == sorted(map(key, [literal, wildcard, other, group]))
    deleted = admin.delete_acls([every])[every].result(TIMEOUT_S)
    assert len(deleted) == 4, deleted
    assert admin.describe_acls(every).result(TIMEOUT_S) == []
    print("delete: ok", flush=True)


def refused(admin, code):
    b = binding("orders", ResourcePatternType.LITERAL, "User:alice", AclOperation.READ)
    got = error_of(admin.create_acls([b])[b])
    assert got == code, f"create: {got}"
    f = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                         AclOperation.ANY, AclPermissionType.ANY)
    # librdkafka 2.16 reads DescribeAcls' top-level error but does not pass it on: the
    # refusal shows as no ACLs (`sluice acl list` reports the code).
    described = admin.describe_acls(f)
    got = error_of(described)
    assert got in (code, None), f"describe: {got}"
    assert got is not None or described.result(TIMEOUT_S) == [], "describe: ACLs listed"
    got = error_of(admin.delete_acls([f])[f])
    assert got == code, f"delete: {got}"


def main():
    with_auth, without_auth, closed = sys.argv[1:4]
    with_authorizer(AdminClient({"bootstrap.servers": with_auth}))
    refused(AdminClient({"bootstrap.servers": without_auth}), KafkaError.SECURITY_DISABLED)
    print("no authorizer: SECURITY_DISABLED", flush=True)
    refused(AdminClient({"bootstrap.servers": closed}), KafkaError.CLUSTER_AUTHORIZATION_FAILED)
    print("no ALTER/DESCRIBE on the cluster: CLUSTER_AUTHORIZATION_FAILED", flush=True)


if __name__ == "__main__":
    main()
