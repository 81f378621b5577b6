//! kcat (librdkafka 2.0.x, as Debian/Ubuntu ship it) produces 100k keyed messages with headers,
//! once per compression codec, and consumes them back byte for byte. The broker must store and
//! serve the batches as sent: a raw Fetch shows every stored batch carries the codec kcat used.

use crate::common;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::time::Duration;

use common::raw::fetch_batch_headers;
use common::{consumer, run_kcat, topic_leaders, topic_name, write_lines, Broker, BrokerOptions};

const MESSAGES_COUNT: usize = 100_000;
const PARTITIONS_COUNT: usize = 2;
const KCAT_TIMEOUT: Duration = Duration::from_secs(120);
const CODECS: [(&str, i16); 5] = [
    ("none", 0),
    ("gzip", 1),
    ("snappy", 2),
    ("lz4", 3),
    ("zstd", 4),
];

fn value(i: usize) -> String {
    // Compressible, variable length, and free of the '|' and newline used by the output format.
    format!("value-{i}-{}", "abcdefgh".repeat(i % 16))
}

/// Produces and consumes one topic with `codec`; returns a description of what went wrong.
fn round_trip(broker: &Broker, codec: &str, codec_id: i16) -> Result<(), String> {
    let topic = topic_name(&format!("kcat-{codec}"));
    let input = write_lines((0..MESSAGES_COUNT).map(|i| format!("key-{i}:{}", value(i))));
    let produced = run_kcat(
        &[
            "-b",
            broker.bootstrap(),
            "-P",
            "-t",
            &topic,
            "-K:",
            "-H",
            "source=kcat",
            "-H",
            &format!("codec={codec}"),
            "-z",
            codec,
            "-X",
            "acks=all",
            "-X",
            "linger.ms=20",
        ],
        Some(input.path()),
        KCAT_TIMEOUT,
    );
    if !produced.status.success() || produced.stderr.contains("ERROR") {
        return Err(format!(
            "kcat -P exited {}; stderr:\n{}",
            produced.status, produced.stderr
        ));
    }

    let consumed = run_kcat(
        &[
            "-b",
            broker.bootstrap(),
            "-C",
            "-t",
            &topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p|%o|%k|%s|%h\n",
        ],
        None,
        KCAT_TIMEOUT,
    );
    if !consumed.status.success() {
        return Err(format!(
            "kcat -C exited {}; stderr:\n{}",
            consumed.status, consumed.stderr
        ));
    }
    let text = String::from_utf8(consumed.stdout).map_err(|e| format!("kcat -C output: {e}"))?;
    let expected_headers = format!("source=kcat,codec={codec}");
    let mut seen = vec![false; MESSAGES_COUNT];
    let mut last_offset: BTreeMap<i32, (i64, usize)> = BTreeMap::new();
    let mut lines_count = 0usize;
    for line in text.lines() {
        lines_count += 1;
        let fields: Vec<&str> = line.split('|').collect();
        let [partition, offset, key, value_got, headers] = fields[..] else {
            return Err(format!("unexpected kcat line: {line:?}"));
        };
        let partition: i32 = partition
            .parse()
            .map_err(|_| format!("bad partition in {line:?}"))?;
        let offset: i64 = offset
            .parse()
            .map_err(|_| format!("bad offset in {line:?}"))?;
        let index: usize = key
            .strip_prefix("key-")
            .and_then(|n| n.parse().ok())
            .filter(|n| *n < MESSAGES_COUNT)
            .ok_or_else(|| format!("unexpected key in {line:?}"))?;
        if value_got != value(index) {
            return Err(format!(
                "key-{index}: value {value_got:?}, expected {:?}",
                value(index)
            ));
        }
        if headers != expected_headers {
            return Err(format!(
                "key-{index}: headers {headers:?}, expected {expected_headers:?}"
            ));
        }
        if std::mem::replace(&mut seen[index], true) {
            return Err(format!("key-{index} consumed twice"));
        }
        // One producer, no retries: per partition, offsets are dense and follow send order.
        let (next_offset, previous_index) = last_offset.get(&partition).copied().unwrap_or((0, 0));
        if offset != next_offset || (offset > 0 && index <= previous_index) {
            return Err(format!(
                "partition {partition}: key-{index} at offset {offset}, expected offset {next_offset} after key-{previous_index}"
            ));
        }
        last_offset.insert(partition, (offset + 1, index));
    }
    if lines_count != MESSAGES_COUNT {
        let missing = seen.iter().filter(|s| !**s).count();
        return Err(format!(
            "consumed {lines_count} of {MESSAGES_COUNT} messages ({missing} keys missing); kcat stderr:\n{}",
            consumed.stderr
        ));
    }

    // The stored batches are the ones kcat sent: compressed with `codec`, never recompressed.
    let metadata_consumer = consumer(broker.bootstrap(), &[]);
    let leaders = topic_leaders(&metadata_consumer, &topic)?;
    for (partition, leader) in leaders {
        let address = broker
            .ready_line()
            .brokers
            .iter()
            .find(|(id, _)| *id == leader)
            .map(|(_, address)| address.clone())
            .ok_or_else(|| format!("leader {leader} of partition {partition} not announced"))?;
        let mut stream =
            TcpStream::connect(&address).map_err(|e| format!("connect {address}: {e}"))?;
        let (error_code, _, batches) =
            fetch_batch_headers(&mut stream, &topic, partition, 0, 1024 * 1024);
        if error_code != 0 {
            return Err(format!(
                "Fetch v4 {topic}/{partition}: error code {error_code}"
            ));
        }
        if batches.is_empty() {
            return Err(format!("Fetch v4 {topic}/{partition}: no batches"));
        }
        // librdkafka sends a batch uncompressed when compressing would not make it smaller
        // (a lone small record, say), so uncompressed batches are allowed; most records must
        // arrive in `codec` batches, and nothing may come back in a codec kcat did not use.
        if let Some(batch) = batches
            .iter()
            .find(|b| b.magic != 2 || (b.compression != codec_id && b.compression != 0))
        {
            return Err(format!(
                "{topic}/{partition}: stored batch {batch:?} is neither {codec} (codec id {codec_id}) nor uncompressed"
            ));
        }
        let records_count: i64 = batches.iter().map(|b| i64::from(b.records_count)).sum();
        let in_codec: i64 = batches
            .iter()
            .filter(|b| b.compression == codec_id)
            .map(|b| i64::from(b.records_count))
            .sum();
        if in_codec * 2 < records_count {
            let hint = if codec == "lz4" {
                " (librdkafka enables lz4 only if ApiVersions advertises FindCoordinator)"
            } else {
                ""
            };
            return Err(format!(
                "{topic}/{partition}: only {in_codec} of the first {records_count} records are in {codec} batches \
                 (codec id {codec_id}); the client fell back to no compression{hint}. First batches: {:?}",
                &batches[..batches.len().min(3)]
            ));
        }
    }
    Ok(())
}

#[test]
fn kcat_round_trip_in_every_compression() {
    let broker = Broker::start_with(BrokerOptions {
        num_partitions: PARTITIONS_COUNT as u32,
        ..BrokerOptions::default()
    });
    let mut failures = Vec::new();
    for (codec, codec_id) in CODECS {
        if let Err(failure) = round_trip(&broker, codec, codec_id) {
            failures.push(format!("[{codec}] {failure}"));
        }
    }
    assert!(
        failures.is_empty(),
        "kcat round trips failed:\n{}",
        failures.join("\n\n")
    );
}
