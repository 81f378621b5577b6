#!/usr/bin/env python3
"""Medians of perf/ab-latency runs per workload and build, and the B/A ratio of each median.

Usage: perf/ab-summary.py OUT_DIR  (reads OUT_DIR/json/<workload>-<A|B>-r<N>.json)
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


def main():
    runs = {}
    for path in sorted(pathlib.Path(sys.argv[1], "json").glob("*.json")):
        match = re.fullmatch(r"(.+)-([AB])-r(\d+)", path.stem)
        if match:
            runs.setdefault((match[1], match[2]), []).append(json.loads(path.read_text()))
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
