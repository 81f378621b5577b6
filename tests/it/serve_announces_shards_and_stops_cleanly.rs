//! `sluice serve` prints exactly one ready line naming every shard as its own broker on PORT+i,
//! Metadata advertises the same brokers, and SIGTERM and SIGINT each end it with exit code 0.
//! A second start on the same data dir and ports works.

use crate::common;

use common::{consumer, Broker, BrokerOptions, ReadyLine, CLIENT_TIMEOUT};
use rdkafka::consumer::Consumer;

#[test]
fn ready_line_parses() {
    let line = "sluice ready bootstrap=127.0.0.1:9092 brokers=0@127.0.0.1:9092,1@127.0.0.1:9093";
    assert_eq!(
        ReadyLine::parse(line),
        Some(ReadyLine {
            bootstrap: "127.0.0.1:9092".to_string(),
            brokers: vec![
                (0, "127.0.0.1:9092".to_string()),
                (1, "127.0.0.1:9093".to_string())
            ],
        })
    );
    assert_eq!(ReadyLine::parse("sluice starting"), None);
    assert_eq!(
        ReadyLine::parse("sluice ready bootstrap=a:1 brokers=x@a:1"),
        None
    );
}

#[test]
fn serve_announces_shards_and_stops_cleanly() {
    let mut broker = Broker::start_with(BrokerOptions {
        fixed_ports: true,
        ..BrokerOptions::default()
    });
    let ready = broker.ready_line().clone();
    assert_eq!(
        Some(&ready.bootstrap),
        ready.brokers.first().map(|(_, address)| address),
        "bootstrap is shard 0"
    );
    let ids: Vec<i32> = ready.brokers.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![0, 1], "one broker id per shard");

    // Metadata advertises exactly the announced brokers.
    let client = consumer(broker.bootstrap(), &[]);
    let metadata = client
        .fetch_metadata(None, CLIENT_TIMEOUT)
        .expect("Metadata");
    let mut advertised: Vec<(i32, String)> = metadata
        .brokers()
        .iter()
        .map(|b| (b.id(), format!("{}:{}", b.host(), b.port())))
        .collect();
    advertised.sort();
    assert_eq!(advertised, ready.brokers, "Metadata brokers vs ready line");
    drop(client);

    broker.stop_graceful();
    broker.restart();
    assert_eq!(broker.ready_line(), &ready, "same ports after a restart");

    broker.stop_with_signal("INT");

    // A single-shard broker works too, and also stops on SIGINT.
    let mut single = Broker::start_with(BrokerOptions {
        shards_count: 1,
        ..BrokerOptions::default()
    });
    single.stop_with_signal("INT");
}
