//! CreateTopics needs CREATE (on the cluster or the topic) and DeleteTopics DELETE on the
//! topic: without them `sluice topic create|delete` get TOPIC_AUTHORIZATION_FAILED, and a
//! topic the client may not describe is left out of the topic list.

use crate::acl_support;
use crate::common;

use acl_support::ANONYMOUS;
use common::cli;

#[test]
fn topic_create_and_delete_follow_the_acls() {
    let broker = acl_support::start_broker(&[]);
    let bootstrap = broker.bootstrap();
    let topic = common::topic_name("acl-admin");
    // ANONYMOUS keeps managing ACLs; topics named acl-* belong to bob.
    acl_support::allow(bootstrap, ANONYMOUS, "alter", &["--cluster"]);
    let prefixed = ["--topic", "acl-", "--resource-pattern-type", "prefixed"];
    let grant = |principal: &str, operation: &str| {
        acl_support::allow(bootstrap, principal, operation, &prefixed);
    };
    grant("User:bob", "all");

    let refused = cli::refused(&["topic", "create", &topic, "--partitions", "1"], bootstrap);
    assert!(refused.contains("TOPIC_AUTHORIZATION_FAILED"), "{refused}");

    grant(ANONYMOUS, "create");
    cli::stdout(&cli::sluice(
        &["topic", "create", &topic, "--partitions", "1"],
        bootstrap,
    ));
    // CREATE does not imply DESCRIBE: the topic exists but is not listed to ANONYMOUS.
    let listed = cli::stdout(&cli::sluice(&["topic", "list"], bootstrap));
    assert!(!listed.contains(&topic), "{listed}");

    let refused = cli::refused(&["topic", "delete", &topic], bootstrap);
    assert!(refused.contains("TOPIC_AUTHORIZATION_FAILED"), "{refused}");
    grant(ANONYMOUS, "delete");
    let listed = cli::stdout(&cli::sluice(&["topic", "list"], bootstrap));
    assert!(listed.contains(&topic), "DELETE implies DESCRIBE: {listed}");
    cli::stdout(&cli::sluice(&["topic", "delete", &topic], bootstrap));
    let listed = cli::stdout(&cli::sluice(&["topic", "list"], bootstrap));
    assert!(!listed.contains(&topic), "{listed}");
}
