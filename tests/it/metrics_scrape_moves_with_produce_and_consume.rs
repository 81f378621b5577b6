//! `/metrics` on the admin port, scraped while an rdkafka client produces and consumes:
//! every documented series exists, and the per-partition counters, log gauges, request
//! counters, histograms, error codes and consumer-group lag move by exactly what the
//! clients did. `/ready` and `/health` answer 200 once the broker is up.

use crate::common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{
    assign, consume_count, consumer, create_topic, free_port_range, produce_all, producer,
    topic_name, Broker, BrokerOptions, TestRecord, CLIENT_TIMEOUT,
};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// Shards publish once per second; allow a few rounds.
const SCRAPE_SETTLE_TIMEOUT: Duration = Duration::from_secs(15);
const RECORDS_PARTITION_0: usize = 200;
const RECORDS_PARTITION_1: usize = 100;
const COMMITTED_OFFSET: i64 = 150;

/// One scrape: series (name plus labels, as printed) → value.
struct Scrape(HashMap<String, f64>);

impl Scrape {
    fn new(text: &str) -> Scrape {
        let series = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_string(), value.parse().ok()?))
            })
            .collect();
        Scrape(series)
    }

    /// Sum over the series named `name` whose labels include every `labels` pair.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|(_, v)| v).sum()
    }

    fn count(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        self.matching(name, labels).count()
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = (&'a String, f64)> + 'a {
        self.0
            .iter()
            .filter(move |(series, _)| {
                let (series_name, series_labels) =
                    series.split_once('{').unwrap_or((series.as_str(), ""));
                series_name == name
                    && labels
                        .iter()
                        .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(s, v)| (s, *v))
    }
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to admin port");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("send request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read answer");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn scrape(port: u16) -> Scrape {
    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, 200, "GET /metrics");
    Scrape::new(&body)
}

/// Scrapes until `check` holds (shards publish once per second), or panics with the last
/// scrape's values of `what`.
fn scrape_until(port: u16, what: &str, check: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + SCRAPE_SETTLE_TIMEOUT;
    loop {
        let scrape = scrape(port);
        if check(&scrape) {
            return scrape;
        }
        if Instant::now() > deadline {
            let relevant: Vec<_> = scrape.0.iter().filter(|(k, _)| k.contains(what)).collect();
            panic!("metrics never satisfied: {what}; last scrape: {relevant:#?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn metrics_scrape_moves_with_produce_and_consume() {
    let admin_port = free_port_range(1);
    let broker = Broker::start_with(BrokerOptions {
        extra_args: vec![
            "--admin-listen".to_string(),
            format!("127.0.0.1:{admin_port}"),
        ],
        ..BrokerOptions::default()
    });
    assert_eq!(http_get(admin_port, "/ready"), (200, "ready\n".to_string()));
    assert_eq!(http_get(admin_port, "/health").0, 200);
    assert_eq!(http_get(admin_port, "/nope").0, 404);

    let topic = topic_name("metrics");
    create_topic(broker.bootstrap(), &topic, 2);
    let partition_labels = |p: &'static str| [("topic", topic.as_str()), ("partition", p)];
    let before = scrape_until(admin_port, "sluice_partition_log_end_offset", |s| {
        s.count("sluice_partition_log_end_offset", &[("topic", &topic)]) == 2
    });
    for name in [
        "sluice_build_info",
        "sluice_ready",
        "sluice_process_resident_memory_bytes",
        "sluice_network_received_bytes_total",
        "sluice_network_sent_bytes_total",
        "sluice_connections_active",
        "sluice_connections_accepted_total",
        "sluice_inflight_request_bytes",
        "sluice_inflight_request_bytes_max",
        "sluice_requests_total",
        "sluice_produce_latency_seconds_count",
        "sluice_fetch_latency_seconds_count",
        "sluice_fsync_latency_seconds_count",
        "sluice_group_commit_records_count",
    ] {
        assert!(before.count(name, &[]) > 0, "series {name} exists");
    }
    assert_eq!(before.sum("sluice_ready", &[]), 1.0);
    // One series per shard for per-shard families.
    assert_eq!(before.count("sluice_connections_active", &[]), 2);
    for p in ["0", "1"] {
        for name in [
            "sluice_partition_received_messages_total",
            "sluice_partition_sent_messages_total",
            "sluice_partition_log_size_bytes",
            "sluice_partition_high_watermark",
        ] {
            assert_eq!(before.sum(name, &partition_labels(p)), 0.0, "{name} {p}");
        }
        assert_eq!(
            before.sum("sluice_partition_segments", &partition_labels(p)),
            1.0
        );
    }
    let produce_requests_before = before.sum("sluice_requests_total", &[("api", "Produce")]);
    let produce_latency_before = before.sum("sluice_produce_latency_seconds_count", &[]);
    let fsyncs_before = before.sum("sluice_fsync_latency_seconds_count", &[]);
    let group_commit_records_before = before.sum("sluice_group_commit_records_sum", &[]);
    let network_in_before = before.sum("sluice_network_received_bytes_total", &[]);

    // Produce with acks=all: 200 records to partition 0, 100 to partition 1.
    let records: Vec<TestRecord> = (0..RECORDS_PARTITION_0 + RECORDS_PARTITION_1)
        .map(|i| {
            TestRecord::new(format!("k{i}"), vec![b'v'; 100])
                .partition(i32::from(i >= RECORDS_PARTITION_0))
        })
        .collect();
    let producer = producer(broker.bootstrap(), &[]);
    produce_all(&producer, &topic, &records);
    let total = (RECORDS_PARTITION_0 + RECORDS_PARTITION_1) as f64;
    let after_produce = scrape_until(admin_port, "sluice_partition_received", |s| {
        s.sum(
            "sluice_partition_received_messages_total",
            &partition_labels("0"),
        ) == RECORDS_PARTITION_0 as f64
            && s.sum(
                "sluice_partition_received_messages_total",
                &partition_labels("1"),
            ) == RECORDS_PARTITION_1 as f64
            && s.sum("sluice_group_commit_records_sum", &[]) - group_commit_records_before == total
    });
    for (p, count) in [("0", RECORDS_PARTITION_0), ("1", RECORDS_PARTITION_1)] {
        let labels = partition_labels(p);
        let count = count as f64;
        assert_eq!(
            after_produce.sum("sluice_partition_high_watermark", &labels),
            count
        );
        assert_eq!(
            after_produce.sum("sluice_partition_log_end_offset", &labels),
            count
        );
        let bytes_in = after_produce.sum("sluice_partition_received_bytes_total", &labels);
        assert!(bytes_in > count * 100.0, "batch bytes exceed the values");
        assert_eq!(
            after_produce.sum("sluice_partition_log_size_bytes", &labels),
            bytes_in,
            "the log holds the produced batches byte for byte"
        );
    }
    let produce_requests =
        after_produce.sum("sluice_requests_total", &[("api", "Produce")]) - produce_requests_before;
    assert!(produce_requests >= 1.0, "Produce requests counted");
    assert_eq!(
        after_produce.sum("sluice_produce_latency_seconds_count", &[]) - produce_latency_before,
        produce_requests,
        "one produce latency sample per Produce request"
    );
    assert!(after_produce.sum("sluice_fsync_latency_seconds_count", &[]) > fsyncs_before);
    assert!(
        after_produce.sum("sluice_network_received_bytes_total", &[]) - network_in_before
            > total * 100.0
    );
    let bytes_in = |p| {
        after_produce.sum(
            "sluice_partition_received_bytes_total",
            &partition_labels(p),
        )
    };

    // Consume everything from offset 0.
    let reader = consumer(broker.bootstrap(), &[]);
    assign(&reader, &topic, &[(0, 0), (1, 0)]);
    let consumed = consume_count(&reader, records.len(), CLIENT_TIMEOUT);
    assert_eq!(consumed.len(), records.len());
    let after_consume = scrape_until(admin_port, "sluice_partition_sent", |s| {
        s.sum(
            "sluice_partition_sent_messages_total",
            &partition_labels("0"),
        ) == RECORDS_PARTITION_0 as f64
            && s.sum(
                "sluice_partition_sent_messages_total",
                &partition_labels("1"),
            ) == RECORDS_PARTITION_1 as f64
    });
    for p in ["0", "1"] {
        assert_eq!(
            after_consume.sum("sluice_partition_sent_bytes_total", &partition_labels(p)),
            bytes_in(p),
            "every batch fetched exactly once"
        );
    }
    assert!(after_consume.sum("sluice_requests_total", &[("api", "Fetch")]) >= 1.0);
    assert!(after_consume.sum("sluice_fetch_latency_seconds_count", &[]) >= 1.0);
    assert!(after_consume.sum("sluice_connections_active", &[]) >= 1.0);
    assert!(
        after_consume.sum("sluice_network_sent_bytes_total", &[]) > bytes_in("0") + bytes_in("1")
    );

    // A fetch past the end answers OffsetOutOfRange (code 1), counted by API and code.
    let out_of_range = consumer(broker.bootstrap(), &[]);
    assign(&out_of_range, &topic, &[(0, 10_000)]);
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(Err(_)) = out_of_range.poll(Duration::from_millis(200)) {
            break;
        }
    }
    scrape_until(admin_port, "sluice_request_errors_total", |s| {
        s.sum(
            "sluice_request_errors_total",
            &[
                ("api", "Fetch"),
                ("code", "1"),
                ("error", "OffsetOutOfRange"),
            ],
        ) >= 1.0
    });

    // A committed offset shows up as the group's lag behind the high watermark.
    let group = topic_name("metrics-group");
    let committer = consumer(broker.bootstrap(), &[("group.id", group.as_str())]);
    let mut commit = TopicPartitionList::new();
    commit
        .add_partition_offset(&topic, 0, Offset::Offset(COMMITTED_OFFSET))
        .expect("add partition");
    committer
        .commit(&commit, CommitMode::Sync)
        .expect("commit offset");
    let group_labels = [
        ("group", group.as_str()),
        ("topic", topic.as_str()),
        ("partition", "0"),
    ];
    let lagging = scrape_until(admin_port, "sluice_consumer_group", |s| {
        s.count("sluice_consumer_group_lag", &group_labels) == 1
    });
    assert_eq!(
        lagging.sum("sluice_consumer_group_committed_offset", &group_labels),
        COMMITTED_OFFSET as f64
    );
    assert_eq!(
        lagging.sum("sluice_consumer_group_lag", &group_labels),
        RECORDS_PARTITION_0 as f64 - COMMITTED_OFFSET as f64
    );
}
