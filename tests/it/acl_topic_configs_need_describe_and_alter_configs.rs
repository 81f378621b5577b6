//! DescribeConfigs needs DESCRIBE_CONFIGS and IncrementalAlterConfigs ALTER_CONFIGS on the
//! topic (TOPIC_AUTHORIZATION_FAILED otherwise); ALTER_CONFIGS implies DESCRIBE_CONFIGS.
//!
//! The client is pip confluent-kafka's AdminClient: the rdkafka crate drops the
//! per-resource error codes of both APIs.

use crate::acl_support;
use crate::common;
use crate::share_support;

use acl_support::ANONYMOUS;

/// Describes, then alters, the topic's configs; the error names (or OK) of both.
const SCRIPT: &str = r#"
import sys
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigEntry, AlterConfigOpType
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
def outcome(future):
    try:
        future.result(30)
        return "OK"
    except Exception as e:
        return e.args[0].name()
topic = ConfigResource("TOPIC", sys.argv[2])
described = outcome(admin.describe_configs([topic])[topic])
entry = ConfigEntry("retention.ms", "60000", incremental_operation=AlterConfigOpType.SET)
change = ConfigResource("TOPIC", sys.argv[2], incremental_configs=[entry])
altered = outcome(admin.incremental_alter_configs([change])[change])
print(described, altered)
"#;

fn describe_then_alter(bootstrap: &str, topic: &str) -> String {
    acl_support::python(SCRIPT, &[bootstrap, topic])
}

#[test]
fn config_apis_follow_the_acls() {
    // confluent-kafka 2.16 is the same prerequisite as for the share-group scenarios.
    if !share_support::share_client_available() {
        return;
    }
    let broker = acl_support::start_broker(&[]);
    let bootstrap = broker.bootstrap();
    let topic = common::topic_name("acl-configs");
    common::create_topic(bootstrap, &topic, 1);
    let grant = |principal: &str, operation: &str| {
        acl_support::allow(bootstrap, principal, operation, &["--topic", &topic]);
    };
    grant("User:bob", "all");
    assert_eq!(
        describe_then_alter(bootstrap, &topic),
        "TOPIC_AUTHORIZATION_FAILED TOPIC_AUTHORIZATION_FAILED"
    );
    grant(ANONYMOUS, "alter-configs");
    assert_eq!(describe_then_alter(bootstrap, &topic), "OK OK");
}
