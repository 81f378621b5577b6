//! `sluice consume`: print messages, like kafka-console-consumer.
//!
//! Output per message, tab-separated, in Kafka's order: `Partition:P`, `Offset:O`, headers
//! (`k:v,k2:v2` or `NO_HEADERS`), key, then the value; a null key or value prints `null`.
use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;

use crate::client::consumer::ConsumerConfig;
use crate::client::{Consumer, ConsumerRecord, OffsetSpec};

use super::args::{parse_from, BootstrapArgs, FromArg};
use super::CliError;

/// Longest a single fetch parks on the broker, so timeouts are checked often enough.
const FETCH_WAIT_MS_MAX: u64 = 500;
/// Pause between fetch attempts while the broker is unreachable.
const RETRY_BACKOFF: Duration = Duration::from_millis(500);

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    pub topic: String,
    /// Read only this partition [default: all partitions]
    #[arg(long)]
    pub partition: Option<i32>,
    /// Where to start: earliest, latest, an offset, or ts:MILLIS
    #[arg(long, value_name = "POSITION", default_value = "latest", value_parser = parse_from)]
    pub from: FromArg,
    /// Exit after this many messages
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Exit when no message arrives for this long [default: wait forever]
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Print the key before the value
    #[arg(long)]
    pub print_key: bool,
    /// Print headers before the key and value
    #[arg(long)]
    pub print_headers: bool,
    /// Print the offset before the headers, key and value
    #[arg(long)]
    pub print_offset: bool,
    /// Print the partition first
    #[arg(long)]
    pub print_partition: bool,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
}

/// What to print per message.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrintOptions {
    pub partition: bool,
    pub offset: bool,
    pub headers: bool,
    pub key: bool,
}

pub fn run(args: ConsumeArgs) -> Result<(), CliError> {
    let wait_ms = args
        .timeout_ms
        .map_or(FETCH_WAIT_MS_MAX, |t| t.clamp(1, FETCH_WAIT_MS_MAX));
    let mut consumer = Consumer::new(
        args.bootstrap.connect()?,
        &args.topic,
        ConsumerConfig {
            max_wait_ms: i32::try_from(wait_ms).unwrap_or(500),
            ..ConsumerConfig::default()
        },
    );
    let partitions = match args.partition {
        Some(p) => {
            let all = consumer.partitions()?;
            if !all.contains(&p) {
                return Err(crate::client::ClientError::UnknownPartition {
                    topic: args.topic.clone(),
                    partition: p,
                    partition_count: all.len(),
                }
                .into());
            }
            vec![p]
        }
        None => consumer.partitions()?,
    };
    let spec = match args.from {
        FromArg::Earliest => OffsetSpec::Earliest,
        FromArg::Latest => OffsetSpec::Latest,
        FromArg::Offset(o) => OffsetSpec::Offset(o),
        FromArg::Timestamp(ts) => OffsetSpec::Timestamp(ts),
    };
    for &p in &partitions {
        consumer.assign(p, spec)?;
    }
    let print = PrintOptions {
        partition: args.print_partition,
        offset: args.print_offset,
        headers: args.print_headers,
        key: args.print_key,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut printed = 0u64;
    let mut last_data = Instant::now();
    let timeout = args.timeout_ms.map(Duration::from_millis);
    let mut warned = false;
    loop {
        if args.max_messages.is_some_and(|max| printed >= max) {
            break;
        }
        if timeout.is_some_and(|t| last_data.elapsed() >= t) {
            break;
        }
        let records = match consumer.poll() {
            Ok(records) => records,
            // Broker restarting or leader moving: keep trying, like kafka-console-consumer.
            Err(e) if e.is_retriable() => {
                if !warned {
                    eprintln!("warning: {e}; retrying");
                    warned = true;
                }
                std::thread::sleep(RETRY_BACKOFF);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        warned = false;
        if !records.is_empty() {
            last_data = Instant::now();
        }
        for record in &records {
            if args.max_messages.is_some_and(|max| printed >= max) {
                break;
            }
            write_record(&mut out, record, print).map_err(CliError::Output)?;
            printed += 1;
        }
        out.flush().map_err(CliError::Output)?;
    }
    out.flush().map_err(CliError::Output)?;
    eprintln!("Processed a total of {printed} messages");
    Ok(())
}

/// Writes one message line.
pub fn write_record(
    out: &mut impl Write,
    record: &ConsumerRecord,
    print: PrintOptions,
) -> std::io::Result<()> {
    if print.partition {
        write!(out, "Partition:{}\t", record.partition)?;
    }
    if print.offset {
        write!(out, "Offset:{}\t", record.offset)?;
    }
    if print.headers {
        if record.headers.is_empty() {
            out.write_all(b"NO_HEADERS")?;
        }
        for (i, (k, v)) in record.headers.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            write!(out, "{k}:")?;
            out.write_all(v.as_deref().unwrap_or(b"null"))?;
        }
        out.write_all(b"\t")?;
    }
    if print.key {
        out.write_all(record.key.as_deref().unwrap_or(b"null"))?;
        out.write_all(b"\t")?;
    }
    out.write_all(record.value.as_deref().unwrap_or(b"null"))?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use bytes::Bytes;
    use clap::Parser;

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            partition: 1,
            offset: 7,
            timestamp_ms: 0,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![
                ("a".into(), Some(Bytes::from_static(b"1"))),
                ("b".into(), None),
            ],
        }
    }

    fn render(record: &ConsumerRecord, print: PrintOptions) -> String {
        let mut out = Vec::new();
        write_record(&mut out, record, print).expect("write");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn formats_like_console_consumer() {
        assert_eq!(render(&record(), PrintOptions::default()), "v\n");
        let all = PrintOptions {
            partition: true,
            offset: true,
            headers: true,
            key: true,
        };
        assert_eq!(
            render(&record(), all),
            "Partition:1\tOffset:7\ta:1,b:null\tk\tv\n"
        );
        let bare = ConsumerRecord {
            key: None,
            value: None,
            headers: vec![],
            ..record()
        };
        let kh = PrintOptions {
            headers: true,
            key: true,
            ..PrintOptions::default()
        };
        assert_eq!(render(&bare, kh), "NO_HEADERS\tnull\tnull\n");
    }

    #[test]
    fn parses_consume_flags() {
        let cli = Cli::try_parse_from([
            "sluice",
            "consume",
            "t",
            "--from",
            "ts:123",
            "--max-messages",
            "5",
            "--timeout-ms",
            "1000",
            "--print-key",
            "--print-offset",
            "--print-headers",
        ])
        .expect("parse");
        let Command::Consume(args) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(args.from, FromArg::Timestamp(123));
        assert_eq!(args.max_messages, Some(5));
        assert!(args.print_key && args.print_offset && args.print_headers);
        let cli = Cli::try_parse_from(["sluice", "consume", "t"]).expect("parse");
        let Command::Consume(args) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(args.from, FromArg::Latest);
        assert!(Cli::try_parse_from(["sluice", "consume", "t", "--from", "x"]).is_err());
    }
}
