//! Shared by the cluster scenarios (issue 17): three `sluice serve --node-id N --peers ...`
//! processes on loopback, each with its own data dir and ports, and the waits a cluster
//! needs (registration, a metadata leader) before admin requests succeed.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::common::{
    consumer, free_port_range, produce_all, producer, wait_until, Broker, BrokerOptions, Consumed,
    TestRecord,
};

/// Generous: an election and a commit take about a second; a loaded CI host far longer.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(60);
pub const SHARDS_PER_NODE: usize = 2;
pub const NODES: usize = 3;

/// Starts the three nodes one after another (each waits for its ready line, which does not
/// need a leader), each with `extra_args` besides its cluster flags.
pub fn start_cluster(extra_args: &[&str]) -> Vec<Broker> {
    let base = free_port_range(NODES);
    let peers = (0..NODES)
        .map(|i| format!("{}@127.0.0.1:{}", i + 1, usize::from(base) + i))
        .collect::<Vec<_>>()
        .join(",");
    (0..NODES)
        .map(|i| {
            let mut args: Vec<String> = vec![
                "--node-id".into(),
                (i + 1).to_string(),
                "--peers".into(),
                peers.clone(),
            ];
            args.extend(extra_args.iter().map(|a| (*a).to_owned()));
            Broker::start_with(BrokerOptions {
                shards_count: SHARDS_PER_NODE,
                fixed_ports: true,
                extra_args: args,
                ..BrokerOptions::default()
            })
        })
        .collect()
}

/// A metadata-only client that knows one node alone (its shard 0).
pub fn metadata_client(node: &Broker) -> BaseConsumer {
    consumer(
        node.bootstrap(),
        &[("topic.metadata.refresh.interval.ms", "-1")],
    )
}

pub fn broker_ids(client: &BaseConsumer) -> BTreeSet<i32> {
    client
        .fetch_metadata(None, Duration::from_secs(5))
        .map(|m| m.brokers().iter().map(|b| b.id()).collect())
        .unwrap_or_default()
}

/// Every node's broker ids (`node * 1000 + shard`).
pub fn all_broker_ids() -> BTreeSet<i32> {
    (1..=NODES as i32)
        .flat_map(|n| (0..SHARDS_PER_NODE as i32).map(move |s| n * 1000 + s))
        .collect()
}

/// A metadata client of each node, once every node's Metadata lists every node's brokers:
/// all have registered.
pub fn registered_clients(nodes: &[Broker]) -> Vec<BaseConsumer> {
    let clients: Vec<BaseConsumer> = nodes.iter().map(metadata_client).collect();
    let expected = all_broker_ids();
    wait_until(
        "every node to list every node's brokers",
        CLUSTER_TIMEOUT,
        || clients.iter().all(|c| broker_ids(c) == expected),
    );
    clients
}

/// An admin client of `node`.
pub fn admin_client(node: &Broker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", node.bootstrap())
        .create()
        .expect("create admin client")
}

/// CreateTopics of `new_topic` through `node`, retried while the cluster has no metadata
/// leader yet (NOT_CONTROLLER), or while the request gets no answer: rdkafka sends it to the
/// controller named in Metadata, which may be a leader that was just killed. Any other
/// outcome is returned.
pub fn try_create_topic_via(node: &Broker, new_topic: &NewTopic) -> Result<(), RDKafkaErrorCode> {
    let options = AdminOptions::new()
        .operation_timeout(Some(CLUSTER_TIMEOUT))
        .request_timeout(Some(Duration::from_secs(10)));
    let deadline = Instant::now() + CLUSTER_TIMEOUT;
    let mut timed_out = false;
    loop {
        // A fresh client each time, so it reads Metadata (the controller) again.
        let admin = admin_client(node);
        let results =
            match futures_lite::future::block_on(admin.create_topics([new_topic], &options)) {
                Ok(results) => results,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("CreateTopics {}: {e}; retrying", new_topic.name);
                    timed_out = true;
                    continue;
                }
                Err(e) => panic!("CreateTopics request: {e:?}"),
            };
        match &results[..] {
            [Ok(_)] => return Ok(()),
            // The unanswered attempt did reach the leader after all.
            [Err((_, RDKafkaErrorCode::TopicAlreadyExists))] if timed_out => return Ok(()),
            [Err((_, RDKafkaErrorCode::NotController))] if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            [Err((_, code))] => return Err(*code),
            other => panic!("CreateTopics {}: {other:?}", new_topic.name),
        }
    }
}

/// CreateTopics through `node`, which must succeed.
pub fn create_topic_via(node: &Broker, topic: &str, partitions: i32) {
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    if let Err(code) = try_create_topic_via(node, &new_topic) {
        panic!("CreateTopics {topic}: {code:?}");
    }
}

/// Commits `offset` for every partition of `topic` through `member`'s group coordinator.
pub fn commit_each(member: &BaseConsumer, topic: &str, partitions: i32, offset: i64) {
    let mut ends = TopicPartitionList::new();
    for p in 0..partitions {
        ends.add_partition_offset(topic, p, Offset::Offset(offset))
            .expect("add partition offset");
    }
    member
        .commit(&ends, CommitMode::Sync)
        .expect("commit through the group coordinator");
}

/// The committed offset of every partition of `topic` in `client`'s group (OffsetFetch).
pub fn committed_each(client: &BaseConsumer, topic: &str, partitions: i32) -> Vec<Offset> {
    let mut wanted = TopicPartitionList::new();
    for p in 0..partitions {
        wanted.add_partition(topic, p);
    }
    let committed = client
        .committed_offsets(wanted, CLUSTER_TIMEOUT)
        .expect("OffsetFetch");
    committed.elements().iter().map(|e| e.offset()).collect()
}

/// Each node's cluster address (its `--peers` entry), in node order.
pub fn cluster_addrs(nodes: &[Broker]) -> Vec<String> {
    let args = &nodes[0].options().extra_args;
    let peers = args
        .iter()
        .position(|a| a == "--peers")
        .and_then(|i| args.get(i + 1))
        .expect("cluster nodes are started with --peers");
    peers
        .split(',')
        .map(|entry| entry.split_once('@').expect("id@addr").1.to_owned())
        .collect()
}

/// `sluice cluster ARGS --node NODE`, run to completion.
pub fn cluster_cli(args: &[&str], node: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("cluster")
        .args(args)
        .args(["--node", node])
        .output()
        .expect("run sluice cluster")
}

/// `sluice cluster status` of the node whose cluster port is `addr`, or None if unreachable.
pub fn cluster_status(addr: &str) -> Option<serde_json::Value> {
    let output = cluster_cli(&["status"], addr);
    if !output.status.success() {
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}

/// The metadata leader's node id, once a leader's own status says it leads.
pub fn metadata_leader(addrs: &[String]) -> Option<u64> {
    addrs
        .iter()
        .filter_map(|addr| cluster_status(addr))
        .find(|s| s["role"] == "Leader")
        .and_then(|s| s["node_id"].as_u64())
}

/// The topic names `client`'s node lists in Metadata.
pub fn topic_names(client: &BaseConsumer) -> BTreeSet<String> {
    client
        .fetch_metadata(None, Duration::from_secs(5))
        .map(|m| m.topics().iter().map(|t| t.name().to_owned()).collect())
        .unwrap_or_default()
}

/// The voters the node at cluster address `addr` knows, by id (empty if it does not answer).
pub fn cluster_voters(addr: &str) -> BTreeSet<u64> {
    cluster_status(addr)
        .and_then(|s| {
            let nodes = s["nodes"].as_object()?.clone();
            Some(nodes.keys().filter_map(|k| k.parse().ok()).collect())
        })
        .unwrap_or_default()
}

/// The broker id FindCoordinator (v1) names for `key` of `key_type` (0 group, 1 txn),
/// asked of the broker at `addr`.
/// Retried while the answer is COORDINATOR_NOT_AVAILABLE (15), as clients do: a group's
/// first lookup in a cluster creates the offsets topic, and its partitions elect leaders.
pub fn find_coordinator(addr: &str, key: &str, key_type: i8) -> i32 {
    const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    let request = kafka_protocol::messages::FindCoordinatorRequest::default()
        .with_key(kafka_protocol::protocol::StrBytes::from_string(
            key.to_owned(),
        ))
        .with_key_type(key_type);
    let deadline = std::time::Instant::now() + CLUSTER_TIMEOUT;
    loop {
        let found = sluice::client::Connection::connect(addr, &Default::default())
            .expect("connect")
            .send_version(&request, 1, Duration::ZERO)
            .expect("FindCoordinator");
        if found.error_code != COORDINATOR_NOT_AVAILABLE || std::time::Instant::now() > deadline {
            assert_eq!(found.error_code, 0, "FindCoordinator {key} through {addr}");
            return found.node_id.0;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Creates the internal topic of FindCoordinator key type `key_type` (0:
/// `__consumer_offsets`, 1: `__transaction_state`; the first lookup does) and waits until
/// every node's Metadata shows each of its partitions led by its preferred replica: from
/// then on the leaders, and with them the coordinators, stay put while no node fails (no
/// hand-back to a preferred replica is pending), so a test can pin a coordinator.
pub fn settle_internal_topic(nodes: &[Broker], clients: &[BaseConsumer], key_type: i8) {
    find_coordinator(nodes[0].bootstrap(), "settle-the-internal-topic", key_type);
    let topic = if key_type == 1 {
        "__transaction_state"
    } else {
        "__consumer_offsets"
    };
    let partitions = 32;
    wait_until(
        &format!("every partition of {topic} led by its preferred replica"),
        CLUSTER_TIMEOUT,
        || {
            clients.iter().all(|c| {
                describe(c, topic, partitions).is_some_and(|parts| {
                    parts.iter().all(|p| p.replicas.first() == Some(&p.leader))
                })
            })
        },
    );
}

/// One partition as a node's Metadata describes it: leader, replicas, in-sync replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// Each partition of `topic` (which has `partitions`) as `client`'s node describes it, in
/// partition order; None until the node knows the topic and all its partitions.
pub fn describe(client: &BaseConsumer, topic: &str, partitions: i32) -> Option<Vec<Described>> {
    let metadata = client
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()?;
    let topic = metadata.topics().first()?;
    if topic.error().is_some() || topic.partitions().len() != usize::try_from(partitions).ok()? {
        return None;
    }
    let mut described: Vec<_> = topic.partitions().iter().collect();
    described.sort_by_key(|p| p.id());
    Some(
        described
            .iter()
            .map(|p| Described {
                leader: p.leader(),
                replicas: p.replicas().to_vec(),
                isr: p.isr().to_vec(),
            })
            .collect(),
    )
}

/// The leader broker of each partition of `topic`, once every one of `clients`' nodes names
/// the same ones.
pub fn agreed_leaders(clients: &[BaseConsumer], topic: &str, partitions: i32) -> Option<Vec<i32>> {
    let views: Vec<Vec<i32>> = clients
        .iter()
        .map(|c| describe(c, topic, partitions).map(|p| p.iter().map(|d| d.leader).collect()))
        .collect::<Option<_>>()?;
    views
        .windows(2)
        .all(|w| w[0] == w[1])
        .then(|| views.first().cloned())
        .flatten()
}

/// [`agreed_leaders`], waited for.
pub fn wait_for_agreed_leaders(clients: &[BaseConsumer], topic: &str, partitions: i32) -> Vec<i32> {
    let mut leaders = None;
    wait_until(
        "every node to agree on the leaders",
        CLUSTER_TIMEOUT,
        || {
            leaders = agreed_leaders(clients, topic, partitions);
            leaders.is_some()
        },
    );
    leaders.expect("agreed leaders")
}

/// The address of broker `id` in `client`'s Metadata.
pub fn broker_address(client: &BaseConsumer, id: i32) -> Option<String> {
    let metadata = client.fetch_metadata(None, Duration::from_secs(5)).ok()?;
    let broker = metadata.brokers().iter().find(|b| b.id() == id)?;
    Some(format!("{}:{}", broker.host(), broker.port()))
}

/// Whether `needle` occurs in one of the files of `dir` (a partition's segments: records are
/// stored as produced, uncompressed).
pub fn dir_contains(dir: &Path, needle: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        std::fs::read(entry.path())
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
    })
}

/// `per_partition` keyed records for each of `partitions`, their values naming `round`, the
/// partition and the record's place, so that every value of a test is unique.
pub fn records_by_partition(round: &str, partitions: i32, per_partition: usize) -> Vec<TestRecord> {
    (0..partitions)
        .flat_map(|p| {
            (0..per_partition).map(move |i| {
                TestRecord::new(format!("k{p}-{i}"), format!("value-{round}-p{p}-{i:04}"))
                    .partition(p)
            })
        })
        .collect()
}

/// Produces `records` with an idempotent producer (acks=all) bootstrapped on `bootstrap`:
/// rdkafka keeps retrying a record (a leader that was killed or stopped, an election under
/// way) until it is acknowledged, within `message.timeout.ms`; every record must be. Nothing
/// is sent twice by the test, so a duplicate in the log would be the broker's.
pub fn produce_until_acknowledged(bootstrap: &str, topic: &str, records: &[TestRecord]) {
    let writer = producer(
        bootstrap,
        &[
            ("enable.idempotence", "true"),
            ("compression.type", "none"),
            ("message.timeout.ms", "55000"),
            // A stopped node keeps its connections open and answers nothing: a request to it
            // would wait out the default 60 s before the retry that finds the new leader.
            ("socket.timeout.ms", "10000"),
        ],
    );
    produce_all(&writer, topic, records);
}

/// Values by partition, in the order given.
fn values_by_partition<'a>(
    records: impl IntoIterator<Item = (i32, &'a Option<Vec<u8>>)>,
) -> BTreeMap<i32, Vec<Vec<u8>>> {
    let mut values: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
    for (partition, value) in records {
        values
            .entry(partition)
            .or_default()
            .push(value.clone().unwrap_or_default());
    }
    values
}

/// The values of `written` by partition, in order, for comparing with what a consumer read.
pub fn written_by_partition<'a>(
    written: impl IntoIterator<Item = &'a TestRecord>,
) -> BTreeMap<i32, Vec<Vec<u8>>> {
    values_by_partition(
        written
            .into_iter()
            .map(|r| (r.partition.expect("records name their partition"), &r.value)),
    )
}

/// The values `consumed` holds, by partition, in the order read.
pub fn consumed_by_partition(consumed: &[Consumed]) -> BTreeMap<i32, Vec<Vec<u8>>> {
    values_by_partition(consumed.iter().map(|c| (c.partition, &c.value)))
}

/// The entry of `status` (a node's `sluice cluster status`) for `partition` of `topic`.
pub fn partition_status<'a>(
    status: &'a serde_json::Value,
    topic: &str,
    partition: i32,
) -> Option<&'a serde_json::Value> {
    status["partitions"]
        .as_array()?
        .iter()
        .find(|p| p["topic"] == topic && p["partition"] == partition)
}

/// Whether `status` is that of `leader`'s node leading `partition` of `topic` with every
/// follower caught up (no lag, each has acknowledged the whole log).
pub fn leads_with_followers_caught_up(
    status: &serde_json::Value,
    topic: &str,
    partition: i32,
    leader: u64,
    followers: usize,
) -> bool {
    partition_status(status, topic, partition).is_some_and(|p| {
        p["leader"].as_u64() == Some(leader)
            && p["term"].as_u64().is_some_and(|t| t > 0)
            && p["followers"].as_object().is_some_and(|f| {
                f.len() == followers
                    && f.values()
                        .all(|s| s["lag"] == 0 && s["matched"] == p["last_index"])
            })
    })
}

/// Deletes everything in `node`'s data dir (the process must be stopped).
pub fn wipe(node: &Broker) {
    for entry in std::fs::read_dir(node.data_dir()).expect("read data dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("remove dir");
        } else {
            std::fs::remove_file(&path).expect("remove file");
        }
    }
}
