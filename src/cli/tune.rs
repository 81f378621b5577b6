//! `sluice tune`: checks (and with `--apply` sets) the host settings a thread-per-core
//! broker cares about, and `--probe-disk` measures the data disk for the log.
//!
//! Safety rules: dry-run is the default; a setting is only written if it was read first,
//! and it is read back after writing (a mismatch is reported as failed). Running it twice
//! changes nothing the second time. Settings that need an operator's judgement (disk write
//! cache, per-process limits, NIC queue counts) are reported as advice, never applied.
//! See tuning/README.md for each setting and how to make changes persistent.

pub(crate) mod disk_probe;
mod host_checks;
mod tune_setting;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use host_checks::HostPlan;
use tune_setting::{parse_cpu_list, Finding, Status};

#[derive(Debug, clap::Args)]
pub struct TuneArgs {
    /// Change what needs changing (default: only report)
    #[arg(long)]
    pub apply: bool,
    /// The broker's data dir: its disk is checked [default: ./data]
    #[arg(long, env = "SLUICE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// CPUs the shards run on, e.g. 1-3 (IRQs go to the others) [default: all online CPUs]
    #[arg(long)]
    pub cpus: Option<String>,
    /// Also set net.core.busy_poll and busy_read to this many microseconds
    #[arg(long)]
    pub busy_poll_us: Option<u64>,
    /// Print the findings as JSON
    #[arg(long)]
    pub json: bool,
    /// Measure this directory's disk (O_DIRECT writes) instead of checking the host, and
    /// write the best write size and queue depth to --probe-output
    #[arg(long, value_name = "DIR")]
    pub probe_disk: Option<PathBuf>,
    /// Where the probe writes its results [default: DIR/io-properties.toml]
    #[arg(long, value_name = "FILE")]
    pub probe_output: Option<PathBuf>,
    /// Scratch file size for the probe
    #[arg(long, default_value_t = 256 << 20)]
    pub probe_file_bytes: u64,
    /// Duration of each probe measurement, in milliseconds
    #[arg(long, default_value_t = 1000)]
    pub probe_ms: u64,
}

pub fn run(args: TuneArgs) -> ExitCode {
    if let Some(dir) = &args.probe_disk {
        return probe(&args, dir);
    }
    let online_cpus = host_checks::online_cpus();
    let broker_cpus = match &args.cpus {
        None => online_cpus.clone(),
        Some(text) => match parse_cpu_list(text) {
            Some(cpus) if !cpus.is_empty() && cpus.iter().all(|c| online_cpus.contains(c)) => cpus,
            _ => {
                eprintln!("error: --cpus {text:?} is not a list of online CPUs ({online_cpus:?})");
                return ExitCode::from(2);
            }
        },
    };
    let plan = HostPlan {
        data_dir: args
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("./data")),
        broker_cpus,
        online_cpus,
        busy_poll_us: args.busy_poll_us,
    };
    let mut findings = host_checks::check_all(&plan);
    if args.apply {
        for finding in &mut findings {
            finding.apply();
        }
    }
    if args.json {
        match serde_json::to_string_pretty(&findings) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", report(&findings, args.apply));
    }
    let failed = findings
        .iter()
        .any(|f| matches!(f.status, Status::Failed(_)));
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn report(findings: &[Finding], applied: bool) -> String {
    let mut out = String::new();
    if applied {
        out.push_str("sluice tune --apply: changed what was due; each change was read back.\n\n");
    } else {
        out.push_str(
            "sluice tune: dry run, nothing changed. `--apply` would make the changes marked 'change'.\n\n",
        );
    }
    let width = findings.iter().map(|f| f.name.len()).max().unwrap_or(0);
    for finding in findings {
        let label = match &finding.status {
            Status::Ok => "ok",
            Status::WouldChange => "change",
            Status::Changed => "changed",
            Status::Failed(_) => "FAILED",
            Status::Unavailable(_) => "n/a",
            Status::Advice(_) => "advice",
        };
        let mut value = finding.current.clone().unwrap_or_default();
        if let Some(wanted) = &finding.wanted {
            if finding.status == Status::WouldChange {
                value = format!("{value} -> {wanted}");
            }
        }
        out.push_str(&format!("{label:<8} {:<width$}  {value}\n", finding.name));
        let detail = match &finding.status {
            Status::Failed(d) | Status::Unavailable(d) | Status::Advice(d) => Some(d.as_str()),
            _ => None,
        };
        if let Some(detail) = detail {
            out.push_str(&format!("{:9}{detail}\n", ""));
        }
        if finding.status != Status::Ok {
            out.push_str(&format!("{:9}why: {}\n", "", finding.why));
        }
    }
    let count = |f: fn(&Status) -> bool| findings.iter().filter(|x| f(&x.status)).count();
    out.push_str(&format!(
        "\n{} ok, {} to change, {} changed, {} failed, {} advice, {} not available\n",
        count(|s| *s == Status::Ok),
        count(|s| *s == Status::WouldChange),
        count(|s| *s == Status::Changed),
        count(|s| matches!(s, Status::Failed(_))),
        count(|s| matches!(s, Status::Advice(_))),
        count(|s| matches!(s, Status::Unavailable(_))),
    ));
    out
}

fn probe(args: &TuneArgs, dir: &std::path::Path) -> ExitCode {
    let settings = disk_probe::ProbeSettings {
        file_bytes: args.probe_file_bytes,
        point_duration: Duration::from_millis(args.probe_ms),
    };
    eprintln!(
        "probing {} with O_DIRECT writes ({} sizes, {} queue depths, {} ms each)...",
        dir.display(),
        8,
        6,
        args.probe_ms
    );
    let properties = match disk_probe::probe(dir, settings) {
        Ok(properties) => properties,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let output = args
        .probe_output
        .clone()
        .unwrap_or_else(|| dir.join("io-properties.toml"));
    if let Err(e) = disk_probe::write_properties(&output, &properties) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    for (size, depth, rate) in &properties.measurements {
        println!(
            "write {:>8} B  depth {depth:>2}  {:>8.1} MiB/s",
            size,
            *rate as f64 / f64::from(1u32 << 20)
        );
    }
    println!(
        "best write size {} B, queue depth {}, {:.1} MiB/s, {} 4K IOPS; written to {}",
        properties.write_bytes,
        properties.write_queue_depth,
        properties.write_bandwidth_bytes_per_second as f64 / f64::from(1u32 << 20),
        properties.write_iops_4k,
        output.display()
    );
    ExitCode::SUCCESS
}
