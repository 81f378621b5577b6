#!/usr/bin/python3
"""Plots `sluice bench` / `sluice-peers` JSON reports (needs python3-matplotlib).

    perf/plot.py OUT_PREFIX report.json [report.json ...]

writes OUT_PREFIX-latency.png (HDR-style percentile curve: x = 1/(1-p) on a log axis, so
the tail gets room) and OUT_PREFIX-throughput.png (produce and consume MB/s per second).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def label_of(report, path):
    return report.get("label") or f"{report.get('target', '?')} ({path})"


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    prefix, paths = argv[1], argv[2:]
    reports = []
    for path in paths:
        with open(path) as f:
            reports.append((path, json.load(f)))

    fig, ax = plt.subplots(figsize=(10, 6))
    ticks = [0.0, 90.0, 99.0, 99.9, 99.99, 99.999, 99.9999]
    for path, report in reports:
        name = label_of(report, path)
        for key, style, what in (("produce_ack_latency", "-", "ack"), ("end_to_end_latency", "--", "e2e")):
            curve = [(p, v) for p, v in (report.get(key) or {}).get("curve", []) if p < 100.0 and v > 0]
            if not curve:
                continue
            xs = [1.0 / (1.0 - p / 100.0) for p, _ in curve]
            ax.plot(xs, [v for _, v in curve], style, label=f"{name} {what}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([1.0 / (1.0 - p / 100.0) for p in ticks])
    ax.set_xticklabels([f"{p:g}%" for p in ticks])
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.set_title("latency by percentile (ack: solid, end-to-end: dashed)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(f"{prefix}-latency.png", dpi=110)

    fig, ax = plt.subplots(figsize=(10, 5))
    for path, report in reports:
        name = label_of(report, path)
        series = report.get("series", [])
        ts = [p["t_s"] for p in series]
        ax.plot(ts, [p["produce_mb_per_s"] for p in series], "-", label=f"{name} produce")
        ax.plot(ts, [p["consume_mb_per_s"] for p in series], ":", label=f"{name} consume")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MB/s (10^6 bytes of message values)")
    ax.set_title("throughput over time")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(f"{prefix}-throughput.png", dpi=110)
    print(f"wrote {prefix}-latency.png {prefix}-throughput.png")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
