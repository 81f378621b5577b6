#!/usr/bin/env python3
"""Medians of perf/ab-latency runs per workload and build, and the B/A ratio of each median.

Usage: perf/ab-summary.py OUT_DIR  (reads OUT_DIR/json/<workload>-<A|B>-r<N>.json and, where
saved, the broker's OUT_DIR/metrics/<label>.txt: quantiles of its own histograms since start,
warm-up included, shard 0 only; a build without a histogram shows 0)
"""
import json
import pathlib
import re
import statistics
import sys

FIELDS = [
    ("produce msgs/s", lambda d: d["produce"]["msgs_per_s"]),
    ("consume msgs/s", lambda d: d["consume"]["msgs_per_s"]),
    ("catch-up msgs/s", lambda d: (d.get("catch_up") or {}).get("msgs_per_s", 0.0)),
    ("ack p50 ms", lambda d: d["produce_ack_latency"]["p50_ms"]),
    ("ack p99 ms", lambda d: d["produce_ack_latency"]["p99_ms"]),
    ("e2e p50 ms", lambda d: d["end_to_end_latency"]["p50_ms"]),
    ("e2e p99 ms", lambda d: d["end_to_end_latency"]["p99_ms"]),
    ("e2e p99.9 ms", lambda d: d["end_to_end_latency"]["p999_ms"]),
]


def broker(family, quantile):
    """A quantile (ms) of the broker's histogram `family` since start, from its /metrics."""
    def get(d):
        value = d.get("_metrics", {}).get((f"sluice_{family}_seconds_overall", quantile))
        return value * 1e3 if value is not None else 0.0
    return get


def fsync_mean(d):
    m = d.get("_metrics", {})
    count = m.get(("sluice_fsync_latency_seconds_count", None))
    return m[("sluice_fsync_latency_seconds_sum", None)] / count * 1e3 if count else 0.0


for family in ("produce_acks_all_latency", "produce_durable_wait", "written_to_durable",
               "commit_round", "fsync_latency", "log_write"):
    for q in ("0.5", "0.99"):
        FIELDS.append((f"broker {family} p{float(q) * 100:g} ms", broker(family, q)))
FIELDS.append(("broker fsync mean ms", fsync_mean))


def read_metrics(path):
    """{(name, quantile or None): value} for shard 0's samples."""
    found = {}
    if not path.exists():
        return found
    for line in path.read_text().splitlines():
        match = re.fullmatch(r'(\w+)\{shard="0"(?:,quantile="([\d.]+)")?\} (\S+)', line)
        if match:
            found[(match[1], match[2])] = float(match[3])
    return found


def main():
    runs = {}
    for path in sorted(pathlib.Path(sys.argv[1], "json").glob("*.json")):
        match = re.fullmatch(r"(.+)-([AB])-r(\d+)", path.stem)
        if match:
            report = json.loads(path.read_text())
            report["_metrics"] = read_metrics(pathlib.Path(sys.argv[1], "metrics", path.stem + ".txt"))
            runs.setdefault((match[1], match[2]), []).append(report)
    for workload in sorted({w for w, _ in runs}):
        a, b = runs.get((workload, "A"), []), runs.get((workload, "B"), [])
        print(f"\n### {workload} ({len(a)} A runs, {len(b)} B runs)\n")
        print("| metric | A runs | B runs | A median | B median | B/A |")
        print("|---|---|---|---|---|---|")
        for name, get in FIELDS:
            va, vb = [get(d) for d in a], [get(d) for d in b]
            if not any(va + vb):
                continue
            ma, mb = statistics.median(va), statistics.median(vb)
            ratio = f"{mb / ma:.2f}" if ma else "-"
            fmt = lambda xs: ", ".join(f"{x:.4g}" for x in xs)
            print(f"| {name} | {fmt(va)} | {fmt(vb)} | {ma:.4g} | {mb:.4g} | {ratio} |")


main()
