//! `sluice produce`: one message per input line, like kafka-console-producer.
//!
//! A reader thread feeds lines through a bounded channel; the sender takes whatever is ready
//! (up to a batch limit) and produces it, so piped files go out in large batches while an
//! interactive line is sent as soon as it is typed.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::mpsc;

use bytes::Bytes;
use clap::Args;

use crate::client::producer::{partition_for_key, ProducerConfig};
use crate::client::{Producer, ProducerRecord};

use super::args::{parse_key_value, AcksArg, BootstrapArgs, CompressionArg};
use super::CliError;

/// Most records sent in one batch.
const BATCH_RECORDS_MAX: usize = 10_000;
/// Most value+key bytes in one batch; under Kafka's default 1 MB message.max.bytes.
const BATCH_BYTES_MAX: usize = 900 * 1024;
/// Upper bound of a v2 record's framing (length, attributes, deltas, key/value lengths).
const RECORD_OVERHEAD_BYTES: usize = 32;
/// Lines buffered between the reader thread and the sender.
const LINE_QUEUE_DEPTH: usize = 20_000;

#[derive(Debug, Args)]
pub struct ProduceArgs {
    pub topic: String,
    /// Partition to write to [default: by key hash, round robin for unkeyed lines]
    #[arg(long)]
    pub partition: Option<i32>,
    /// Split each line into KEY<SEP>VALUE at the first SEP
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Header added to every message (repeatable)
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// Read lines from this file instead of stdin
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Acknowledgements to wait for: all (-1) after fsync, 1 after append, 0 none
    #[arg(long, value_enum, default_value = "all", allow_hyphen_values = true)]
    pub acks: AcksArg,
    /// Batch compression codec
    #[arg(long, value_enum, default_value = "none")]
    pub compression: CompressionArg,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
}

/// A line read from input, or the reason input stopped.
enum Line {
    Data { number: u64, bytes: Vec<u8> },
    Failed(std::io::Error),
}

pub fn run(args: ProduceArgs) -> Result<(), CliError> {
    if args.key_separator.as_deref() == Some("") {
        return Err(CliError::Usage(
            "--key-separator must not be empty".to_owned(),
        ));
    }
    let (input, input_name): (Box<dyn Read + Send>, String) = match &args.file {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|source| CliError::Input {
                path: path.display().to_string(),
                source,
            })?;
            (Box::new(file), path.display().to_string())
        }
        None => (Box::new(std::io::stdin()), "stdin".to_owned()),
    };
    let mut producer = Producer::new(
        args.bootstrap.connect()?,
        ProducerConfig {
            acks: args.acks.into(),
            compression: args.compression.into(),
            ..ProducerConfig::default()
        },
    );
    if let Some(partition) = args.partition {
        let count = producer.partition_count(&args.topic)?;
        if partition < 0 || partition as usize >= count {
            return Err(crate::client::ClientError::UnknownPartition {
                topic: args.topic.clone(),
                partition,
                partition_count: count,
            }
            .into());
        }
    }
    let headers: Vec<(String, Option<Bytes>)> = args
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Some(Bytes::from(v.clone()))))
        .collect();

    // Per-record bytes beyond the line itself: varint lengths, deltas and the headers, which
    // every record repeats. An overestimate keeps batches under message.max.bytes.
    let record_overhead_bytes = RECORD_OVERHEAD_BYTES
        + headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len) + 10)
            .sum::<usize>();
    let (tx, rx) = mpsc::sync_channel::<Line>(LINE_QUEUE_DEPTH);
    // The reader ends on EOF, on a read error, or when the sender hangs up after a failure.
    std::thread::spawn(move || read_lines(input, &tx));

    let mut pending: Vec<(u64, Vec<u8>)> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut bytes_total = 0usize;
        let mut next = Some(first);
        while let Some(line) = next.take() {
            match line {
                Line::Data { number, bytes } => {
                    bytes_total += bytes.len() + record_overhead_bytes;
                    pending.push((number, bytes));
                }
                Line::Failed(source) => {
                    return Err(CliError::Input {
                        path: input_name,
                        source,
                    })
                }
            }
            if pending.len() >= BATCH_RECORDS_MAX || bytes_total >= BATCH_BYTES_MAX {
                break;
            }
            next = rx.try_recv().ok();
        }
        let records = pending
            .drain(..)
            .map(|(number, line)| to_record(number, line, args.key_separator.as_deref(), &headers))
            .collect::<Result<Vec<_>, _>>()?;
        send_records(&mut producer, &args.topic, args.partition, records)?;
    }
    Ok(())
}

fn read_lines(input: Box<dyn Read + Send>, tx: &mpsc::SyncSender<Line>) {
    let mut reader = BufReader::with_capacity(256 * 1024, input);
    let mut number = 0u64;
    loop {
        let mut bytes = Vec::new();
        match reader.read_until(b'\n', &mut bytes) {
            Ok(0) => return,
            Ok(_) => {
                number += 1;
                if bytes.last() == Some(&b'\n') {
                    bytes.pop();
                }
                if tx.send(Line::Data { number, bytes }).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.send(Line::Failed(e));
                return;
            }
        }
    }
}

/// Turns an input line into a record, splitting off the key when a separator is given.
pub fn to_record(
    number: u64,
    line: Vec<u8>,
    key_separator: Option<&str>,
    headers: &[(String, Option<Bytes>)],
) -> Result<ProducerRecord, CliError> {
    let (key, value) = match key_separator {
        None => (None, Bytes::from(line)),
        Some(sep) => {
            let sep = sep.as_bytes();
            let at = line
                .windows(sep.len())
                .position(|w| w == sep)
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "line {number} has no key separator '{}'",
                        String::from_utf8_lossy(sep)
                    ))
                })?;
            let mut line = Bytes::from(line);
            let key = line.split_to(at);
            let value = line.split_off(sep.len());
            (Some(key), value)
        }
    };
    Ok(ProducerRecord {
        key,
        value: Some(value),
        headers: headers.to_vec(),
        timestamp_ms: None,
    })
}

/// Sends records, grouped by partition, each group as one batch.
fn send_records(
    producer: &mut Producer,
    topic: &str,
    partition: Option<i32>,
    records: Vec<ProducerRecord>,
) -> Result<(), CliError> {
    let mut by_partition: BTreeMap<i32, Vec<ProducerRecord>> = BTreeMap::new();
    let partition_count = match partition {
        Some(_) => 0,
        None => producer.partition_count(topic)?,
    };
    if partition.is_none() && partition_count == 0 {
        return Err(crate::client::ClientError::UnknownTopic {
            topic: topic.to_owned(),
        }
        .into());
    }
    // Unkeyed records of one batch share a partition (Kafka's sticky partitioning).
    let mut unkeyed_partition = None;
    for record in records {
        let p = match (partition, &record.key) {
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, partition_count),
            (None, None) => *unkeyed_partition
                .get_or_insert_with(|| producer.next_unkeyed_partition(partition_count)),
        };
        by_partition.entry(p).or_default().push(record);
    }
    for (p, records) in by_partition {
        producer.send(topic, p, &records)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn splits_key_at_first_separator() {
        let r = to_record(1, b"k1::v::1".to_vec(), Some("::"), &[]).expect("record");
        assert_eq!(r.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"v::1"[..]));
        let r = to_record(1, b"plain".to_vec(), None, &[]).expect("record");
        assert_eq!(r.key, None);
        assert_eq!(r.value.as_deref(), Some(&b"plain"[..]));
        assert!(to_record(7, b"nokey".to_vec(), Some(":"), &[]).is_err());
        let r = to_record(1, b":v".to_vec(), Some(":"), &[]).expect("record");
        assert_eq!(r.key.as_deref(), Some(&b""[..]));
    }

    #[test]
    fn parses_produce_flags() {
        let cli = Cli::try_parse_from([
            "sluice",
            "produce",
            "t",
            "--partition",
            "2",
            "--key-separator",
            ":",
            "--header",
            "a=1",
            "--header",
            "b=2",
            "--acks",
            "0",
            "--compression",
            "zstd",
        ])
        .expect("parse");
        let Command::Produce(args) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(args.partition, Some(2));
        assert_eq!(args.acks, AcksArg::None);
        assert_eq!(args.compression, CompressionArg::Zstd);
        assert_eq!(args.headers.len(), 2);
        assert!(Cli::try_parse_from(["sluice", "produce", "t", "--acks", "2"]).is_err());
        assert!(Cli::try_parse_from(["sluice", "produce", "t", "--acks", "-1"]).is_ok());
    }
}
