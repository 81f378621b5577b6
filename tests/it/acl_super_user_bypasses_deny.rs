//! A super user (`--super-users`) is allowed everything, even against a DENY for every
//! principal and with no ACL allowing anything (allow-everyone-if-no-acl-found off).

use crate::acl_support;
use crate::common;

use acl_support::{acl, produce_one};

#[test]
fn super_user_produces_and_consumes_through_a_deny_all() {
    let broker = common::Broker::start_with(common::BrokerOptions {
        extra_args: [
            "--authorizer",
            "acl",
            "--super-users",
            "User:admin;User:ANONYMOUS",
        ]
        .map(str::to_owned)
        .to_vec(),
        ..common::BrokerOptions::default()
    });
    let bootstrap = broker.bootstrap();
    let topic = common::topic_name("acl-super");
    common::create_topic(bootstrap, &topic, 1);
    acl(
        bootstrap,
        &[
            "add",
            "--deny-principal",
            "User:*",
            "--operation",
            "all",
            "--topic",
            "*",
        ],
    );
    acl(
        bootstrap,
        &[
            "add",
            "--deny-principal",
            "User:*",
            "--operation",
            "all",
            "--cluster",
        ],
    );

    assert_eq!(produce_one(bootstrap, &topic), None);
    let consumer = common::consumer(bootstrap, &[]);
    common::assign(&consumer, &topic, &[(0, 0)]);
    assert_eq!(
        common::consume_count(&consumer, 1, common::CLIENT_TIMEOUT).len(),
        1
    );
    let listed = acl(bootstrap, &["list", "--cluster"]);
    assert!(
        listed.contains("CLUSTER\tLITERAL\tkafka-cluster\tUser:*\t*\tALL\tDENY"),
        "{listed}"
    );
}
