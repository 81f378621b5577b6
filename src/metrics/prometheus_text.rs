//! Renders shard snapshots in the Prometheus text exposition format (version 0.0.4).
//!
//! Every family gets `# HELP` and `# TYPE` once; per-shard series carry `shard="N"`,
//! per-partition series also `topic` and `partition`. Consumer-group lag is a join done
//! here, off the data path: committed offsets come from the group's coordinator shard,
//! high watermarks from the partition's owner shard.

use std::collections::HashMap;
use std::fmt::Write as _;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::ResponseError;

use super::shard_metrics::HISTOGRAMS;
use super::snapshot::{HistogramSnapshot, ShardSnapshot};

/// Process-wide values read by the admin thread at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessGauges {
    pub resident_bytes: Option<u64>,
    /// The cgroup's memory limit, when there is one.
    pub memory_limit_bytes: Option<u64>,
    pub uptime_seconds: f64,
    pub ready: bool,
}

/// (name, type, help, value) of a family with one series per shard.
type ShardFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ShardSnapshot) -> u64,
);
pub fn render(snapshots: &[ShardSnapshot], process: &ProcessGauges) -> String {
    let mut out = Text(String::with_capacity(16 * 1024));
    out.family(
        "sluice_build_info",
        "gauge",
        "Version of the running broker.",
    );
    out.sample(
        "sluice_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    out.family(
        "sluice_ready",
        "gauge",
        "1 once every shard listens, 0 while starting or stopping.",
    );
    out.sample("sluice_ready", &[], u64::from(process.ready));
    out.family(
        "sluice_uptime_seconds",
        "gauge",
        "Seconds since the process started.",
    );
    out.sample_f64("sluice_uptime_seconds", &[], process.uptime_seconds);
    if let Some(bytes) = process.resident_bytes {
        out.family(
            "sluice_process_resident_memory_bytes",
            "gauge",
            "Resident set size of the broker process.",
        );
        out.sample("sluice_process_resident_memory_bytes", &[], bytes);
    }
    if let Some(bytes) = process.memory_limit_bytes {
        out.family(
            "sluice_process_memory_limit_bytes",
            "gauge",
            "Memory limit of the broker's cgroup.",
        );
        out.sample("sluice_process_memory_limit_bytes", &[], bytes);
    }

    let per_shard: [ShardFamily; 6] = [
        (
            "sluice_network_received_bytes_total",
            "counter",
            "Request bytes read from clients, size prefixes included.",
            |s| s.network_bytes_in,
        ),
        (
            "sluice_network_sent_bytes_total",
            "counter",
            "Response bytes written to clients.",
            |s| s.network_bytes_out,
        ),
        (
            "sluice_connections_active",
            "gauge",
            "Open client connections.",
            |s| s.connections_active,
        ),
        (
            "sluice_connections_accepted_total",
            "counter",
            "Client connections accepted.",
            |s| s.connections_accepted,
        ),
        (
            "sluice_connections_refused_total",
            "counter",
            "Client connections refused at the shard's connection limit.",
            |s| s.connections_refused,
        ),
        (
            "sluice_shard_partitions",
            "gauge",
            "Partitions whose log this shard owns.",
            |s| s.partitions.len() as u64,
        ),
    ];
    for (name, kind, help, value) in per_shard {
        out.family(name, kind, help);
        for s in snapshots {
            out.sample(name, &[("shard", &s.shard_id.to_string())], value(s));
        }
    }

    out.family(
        "sluice_inflight_request_bytes",
        "gauge",
        "Request bytes read but not yet answered (memory held for requests).",
    );
    for s in snapshots {
        if let Some((in_use, _)) = s.inflight_bytes {
            out.sample(
                "sluice_inflight_request_bytes",
                &[("shard", &s.shard_id.to_string())],
                in_use,
            );
        }
    }
    out.family(
        "sluice_inflight_request_bytes_max",
        "gauge",
        "Bound on sluice_inflight_request_bytes; readers wait when it is reached.",
    );
    for s in snapshots {
        if let Some((_, bound)) = s.inflight_bytes {
            out.sample(
                "sluice_inflight_request_bytes_max",
                &[("shard", &s.shard_id.to_string())],
                bound,
            );
        }
    }

    out.family(
        "sluice_requests_total",
        "counter",
        "Requests received, by Kafka API.",
    );
    for s in snapshots {
        let shard = s.shard_id.to_string();
        for (api_key, count) in &s.requests {
            out.sample(
                "sluice_requests_total",
                &[("shard", &shard), ("api", api_label(*api_key))],
                *count,
            );
        }
    }
    out.family(
        "sluice_request_errors_total",
        "counter",
        "Non-zero Kafka error codes answered, by API and code (per partition for Produce and Fetch).",
    );
    for s in snapshots {
        let shard = s.shard_id.to_string();
        for ((api_key, code), count) in &s.errors {
            out.sample(
                "sluice_request_errors_total",
                &[
                    ("shard", &shard),
                    ("api", api_label(*api_key)),
                    ("code", &code.to_string()),
                    ("error", &error_label(*code)),
                ],
                *count,
            );
        }
    }

    for (i, spec) in HISTOGRAMS.iter().enumerate() {
        out.family(spec.name, "histogram", spec.help);
        for s in snapshots {
            if let Some(h) = s.histograms.get(i) {
                out.histogram(spec.name, &s.shard_id.to_string(), h, spec.divisor);
            }
        }
    }
    for (i, spec) in HISTOGRAMS.iter().enumerate() {
        let overall = format!("{}_overall", spec.name);
        out.family(
            &overall,
            "gauge",
            "Quantiles of the histogram of the same name since the shard started, at 1 % precision (max is quantile 1).",
        );
        for s in snapshots {
            let Some(h) = s.histograms.get(i) else {
                continue;
            };
            let shard = s.shard_id.to_string();
            for (quantile, value) in &h.overall {
                out.sample_f64(
                    &overall,
                    &[("shard", &shard), ("quantile", &quantile.to_string())],
                    *value as f64 / spec.divisor,
                );
            }
        }
    }
    for (i, spec) in HISTOGRAMS.iter().enumerate() {
        let (name, divisor) = (spec.name, spec.divisor);
        let recent = format!("{name}_recent");
        out.family(
            &recent,
            "gauge",
            "Quantiles of the histogram of the same name over the last second (max is quantile 1).",
        );
        for s in snapshots {
            let Some(h) = s.histograms.get(i) else {
                continue;
            };
            let shard = s.shard_id.to_string();
            for (quantile, value) in &h.recent {
                out.sample_f64(
                    &recent,
                    &[("shard", &shard), ("quantile", &quantile.to_string())],
                    *value as f64 / divisor,
                );
            }
        }
    }

    type PartitionValue = fn(&super::snapshot::PartitionSnapshot) -> u64;
    let per_partition: [(&str, &str, &str, PartitionValue); 9] = [
        (
            "sluice_partition_received_bytes_total",
            "counter",
            "Record-batch bytes appended by Produce.",
            |p| p.bytes_in,
        ),
        (
            "sluice_partition_received_messages_total",
            "counter",
            "Records appended by Produce.",
            |p| p.messages_in,
        ),
        (
            "sluice_partition_sent_bytes_total",
            "counter",
            "Record-batch bytes returned by Fetch.",
            |p| p.bytes_out,
        ),
        (
            "sluice_partition_sent_messages_total",
            "counter",
            "Records returned by Fetch (whole batches, as sent).",
            |p| p.messages_out,
        ),
        (
            "sluice_partition_log_size_bytes",
            "gauge",
            "Bytes of the partition's segments.",
            |p| p.log.size_bytes,
        ),
        (
            "sluice_partition_segments",
            "gauge",
            "Segments of the partition's log.",
            |p| p.log.segment_count as u64,
        ),
        (
            "sluice_partition_log_start_offset",
            "gauge",
            "First offset still in the log.",
            |p| u64::try_from(p.log.log_start_offset).unwrap_or(0),
        ),
        (
            "sluice_partition_high_watermark",
            "gauge",
            "Offset below which records are visible to consumers.",
            |p| u64::try_from(p.log.high_watermark).unwrap_or(0),
        ),
        (
            "sluice_partition_log_end_offset",
            "gauge",
            "Offset the next appended record will get.",
            |p| u64::try_from(p.log.log_end_offset).unwrap_or(0),
        ),
    ];
    for (name, kind, help, value) in per_partition {
        out.family(name, kind, help);
        for s in snapshots {
            let shard = s.shard_id.to_string();
            for p in &s.partitions {
                out.sample(
                    name,
                    &[
                        ("shard", &shard),
                        ("topic", &p.topic),
                        ("partition", &p.partition.to_string()),
                    ],
                    value(p),
                );
            }
        }
    }

    let high_watermarks: HashMap<(&str, i32), i64> = snapshots
        .iter()
        .flat_map(|s| s.partitions.iter())
        .map(|p| ((p.topic.as_str(), p.partition), p.log.high_watermark))
        .collect();
    out.family(
        "sluice_consumer_group_committed_offset",
        "gauge",
        "Offset committed by a consumer group.",
    );
    for s in snapshots {
        for g in &s.group_offsets {
            out.sample(
                "sluice_consumer_group_committed_offset",
                &[
                    ("group", &g.group),
                    ("topic", &g.topic),
                    ("partition", &g.partition.to_string()),
                ],
                u64::try_from(g.committed_offset).unwrap_or(0),
            );
        }
    }
    out.family(
        "sluice_consumer_group_lag",
        "gauge",
        "High watermark minus the group's committed offset.",
    );
    for s in snapshots {
        for g in &s.group_offsets {
            if let Some(hw) = high_watermarks.get(&(g.topic.as_str(), g.partition)) {
                let lag = hw.saturating_sub(g.committed_offset).max(0);
                out.sample(
                    "sluice_consumer_group_lag",
                    &[
                        ("group", &g.group),
                        ("topic", &g.topic),
                        ("partition", &g.partition.to_string()),
                    ],
                    u64::try_from(lag).unwrap_or(0),
                );
            }
        }
    }
    out.0
}

fn api_label(api_key: i16) -> &'static str {
    ApiKey::try_from(api_key).map_or("unknown", |key| match key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::SaslHandshake => "SaslHandshake",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::ConsumerGroupHeartbeat => "ConsumerGroupHeartbeat",
        ApiKey::ConsumerGroupDescribe => "ConsumerGroupDescribe",
        _ => "other",
    })
}

fn error_label(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(error) => format!("{error:?}"),
        None => "Unknown".to_owned(),
    }
}

struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn labels(&mut self, labels: &[(&str, &str)]) {
        if labels.is_empty() {
            return;
        }
        self.0.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            self.0.push_str(key);
            self.0.push_str("=\"");
            for c in value.chars() {
                match c {
                    '\\' => self.0.push_str("\\\\"),
                    '"' => self.0.push_str("\\\""),
                    '\n' => self.0.push_str("\\n"),
                    c => self.0.push(c),
                }
            }
            self.0.push('"');
        }
        self.0.push('}');
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.0.push_str(name);
        self.labels(labels);
        let _ = writeln!(self.0, " {value}");
    }

    fn sample_f64(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        self.labels(labels);
        let _ = writeln!(self.0, " {value}");
    }

    fn histogram(&mut self, name: &str, shard: &str, h: &HistogramSnapshot, divisor: f64) {
        let bucket = format!("{name}_bucket");
        for (bound, count) in &h.buckets {
            let le = (*bound as f64 / divisor).to_string();
            self.sample(&bucket, &[("shard", shard), ("le", &le)], *count);
        }
        self.sample(&bucket, &[("shard", shard), ("le", "+Inf")], h.count);
        self.sample_f64(
            &format!("{name}_sum"),
            &[("shard", shard)],
            h.sum as f64 / divisor,
        );
        self.sample(&format!("{name}_count"), &[("shard", shard)], h.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values() {
        let mut text = Text(String::new());
        text.sample("m", &[("group", "a\"b\\c\nd")], 1);
        assert_eq!(text.0, "m{group=\"a\\\"b\\\\c\\nd\"} 1\n");
    }

    #[test]
    fn renders_an_empty_broker() {
        let text = render(&[], &ProcessGauges::default());
        assert!(text.contains("# TYPE sluice_requests_total counter"));
        assert!(text.contains("sluice_ready 0"));
    }
}
