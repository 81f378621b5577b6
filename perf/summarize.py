#!/usr/bin/env python3
"""Summarizes a perf/compare run directory into Markdown tables.

    perf/summarize.py RUN_DIR                     # tables to stdout
    perf/summarize.py --median-rate JSON_DIR PFX  # median produce msgs/s of PFX*.json
    perf/summarize.py --median-mbps JSON_DIR PFX  # median produce MB/s of PFX*.json

Medians over runs with [min–max]; ratios are sluice / peer from the same run directory.
MB/s are 10^6 bytes of message values per second.
"""
import glob
import json
import os
import re
import statistics
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def runs(json_dir, prefix):
    out = []
    for path in sorted(glob.glob(os.path.join(json_dir, prefix + "*.json"))):
        report = load(path)
        if report and report.get("produce"):
            out.append(report)
    return out


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_rate(v):
    if v is None:
        return "–"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{v / 1e3:.0f}K"
    return f"{v:.0f}"


def fmt_ms(v):
    return "–" if v is None else (f"{v:.2f}" if v < 100 else f"{v:.0f}")


def cell_rate(reports, key="produce", field="msgs_per_s", f=fmt_rate):
    values = [r[key][field] for r in reports if r.get(key)]
    if not values:
        return "–", None
    m = med(values)
    if len(values) == 1:
        return f(m), m
    return f"{f(m)} [{f(min(values))}–{f(max(values))}]", m


def cell_lat(reports, key, field="p99_ms"):
    values = [r[key][field] for r in reports if r.get(key) and r[key].get("count")]
    return fmt_ms(med(values)), med(values)


def cpu_cell(json_dir, prefix):
    """Median cores used by broker / client over the runs (CPU seconds / wall seconds)."""
    b, c = [], []
    for path in sorted(glob.glob(os.path.join(json_dir, prefix + "*.json"))):
        r = load(path)
        if r and r.get("wall_s"):
            b.append(r["broker_cpu_s"] / r["wall_s"])
            c.append(r["client_cpu_s"] / r["wall_s"])
    if not b:
        return "–"
    return f"{med(b):.2f} / {med(c):.2f}"


def ratio(a, b):
    if a is None or not b:
        return "–"
    return f"{a / b:.2f}×"


def limits(json_dir):
    out = {}
    iperf = load(os.path.join(json_dir, "limit-iperf3.json"))
    if iperf:
        try:
            out["loopback_mb_s"] = iperf["end"]["sum_received"]["bits_per_second"] / 8 / 1e6
        except (KeyError, TypeError):
            pass
    for name, key in (("limit-fio-seqwrite.json", "fio_seq_mb_s"), ("limit-fio-syncwrite.json", "fio_sync_mb_s")):
        fio = load(os.path.join(json_dir, name))
        if fio:
            try:
                job = fio["jobs"][0]
                out[key] = job["write"]["bw_bytes"] / 1e6
                if key == "fio_sync_mb_s":
                    pct = job["sync"]["lat_ns"]["percentile"]
                    out["fsync_p50_ms"] = pct.get("50.000000", 0) / 1e6
                    out["fsync_p99_ms"] = pct.get("99.000000", 0) / 1e6
            except (KeyError, TypeError, IndexError):
                pass
    return out


def throughput_table(json_dir, size, partitions, acks_list, lim):
    lines = [
        f"### {size} B messages — maximum rate (2 producers, 1 consumer)",
        "",
        "| partitions | acks | sluice msgs/s | sluice MB/s | ack p99 ms | consume msgs/s | CPU broker/client "
        "| rdkafka→sluice msgs/s | Redis msgs/s (AOF) | NATS JS msgs/s | sluice/Redis | sluice/NATS | sluice/rdkafka |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for parts in partitions:
        for acks in acks_list:
            s = runs(json_dir, f"sluice-s{size}-p{parts}-a{acks}-r")
            k = runs(json_dir, f"rdkafka-s{size}-p{parts}-a{acks}-r")
            fsync = "everysec" if acks == "1" else "always"
            r = runs(json_dir, f"redis-{fsync}-s{size}-p{parts}-r")
            n = runs(json_dir, f"nats-s{size}-p{parts}-r")
            s_cell, s_med = cell_rate(s)
            s_mb, _ = cell_rate(s, field="mb_per_s", f=lambda v: "–" if v is None else f"{v:.0f}")
            s_lat, _ = cell_lat(s, "produce_ack_latency")
            s_cons, _ = cell_rate(s, key="consume")
            k_cell, k_med = cell_rate(k)
            r_cell, r_med = cell_rate(r)
            n_cell, n_med = cell_rate(n)
            cpu = cpu_cell(json_dir, f"cpu-sluice-s{size}-p{parts}-a{acks}-r")
            lines.append(
                f"| {parts} | {acks} | {s_cell} | {s_mb} | {s_lat} | {s_cons} | {cpu} | {k_cell} "
                f"| {r_cell} ({fsync}) | {n_cell} | {ratio(s_med, r_med)} | {ratio(s_med, n_med)} | {ratio(s_med, k_med)} |"
            )
    if size >= 1000 and lim.get("loopback_mb_s"):
        s = runs(json_dir, f"sluice-s{size}-p16-a1-r")
        _, mb = cell_rate(s, field="mb_per_s")
        if mb:
            lines += ["", f"1 KiB, 16 partitions, acks=1: {mb:.0f} MB/s = **{mb / lim['loopback_mb_s']:.2f} × loopback** "
                          f"({lim['loopback_mb_s']:.0f} MB/s, iperf3, same run)."]
    return lines


def latency_table(json_dir, sizes, acks_list):
    lines = ["### Latency at half the maximum rate (open loop, 16 partitions)", "",
             "| size | acks | rate msgs/s | ack p50 | ack p99 | ack p99.9 | e2e p50 | e2e p99 | e2e p99.9 | e2e max |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    found = False
    cases = [(size, acks, "") for size in sizes for acks in acks_list] + [(100, "1", "-flushnever")]
    for size, acks, suffix in cases:
        r = load(os.path.join(json_dir, f"halfrate-s{size}-p16-a{acks}{suffix}.json"))
        if not r:
            continue
        found = True
        a, e = r["produce_ack_latency"], r["end_to_end_latency"]
        note = " (broker --flush-policy never)" if suffix else ""
        lines.append(f"| {size} B | {acks}{note} | {fmt_rate(r['workload'].get('rate'))} | {fmt_ms(a['p50_ms'])} | "
                     f"{fmt_ms(a['p99_ms'])} | {fmt_ms(a['p999_ms'])} | {fmt_ms(e['p50_ms'])} | "
                     f"{fmt_ms(e['p99_ms'])} | {fmt_ms(e['p999_ms'])} | {fmt_ms(e['max_ms'])} |")
    return lines if found else []


def iggy_runs(run_dir, prefix):
    """iggy-bench reports (report.json under iggy/NAME/) as {kind: summary} per run."""
    out = []
    for path in sorted(glob.glob(os.path.join(run_dir, "iggy", prefix + "*", "*", "report.json"))):
        report = load(path)
        if report:
            out.append({g["summary"]["kind"]: g["summary"] for g in report.get("group_metrics", [])})
    return out


def iggy_cell(reports, kind, field, f):
    values = [r[kind][field] for r in reports if r.get(kind)]
    m = med(values)
    if not values:
        return "–", None
    if len(values) == 1:
        return f(m), m
    return f"{f(m)} [{f(min(values))}–{f(max(values))}]", m


def iggy_table(run_dir, json_dir, sizes, partitions, acks_list):
    """Apache Iggy in the shape of the sluice runs (2 producers, 1 consumer group member)."""
    if not glob.glob(os.path.join(run_dir, "iggy", "*")):
        return []
    lines = ["### Apache Iggy, same shapes (iggy-bench balanced producer + consumer group)", "",
             "acks=1 is compared with Iggy's default (no fsync per write), acks=all with `--enforce-fsync`. "
             "Iggy's latency is the send latency of a batch of 1000 messages.", "",
             "| size | partitions | acks | Iggy produce msgs/s | Iggy consume msgs/s | Iggy send p99 ms "
             "| sluice produce msgs/s | sluice consume msgs/s | sluice/Iggy produce | sluice/Iggy consume |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for size in sizes:
        for parts in partitions:
            for acks in acks_list:
                i = iggy_runs(run_dir, f"iggy-s{size}-p{parts}-a{acks}-r")
                if not i:
                    continue
                s = runs(json_dir, f"sluice-s{size}-p{parts}-a{acks}-r")
                ip, ip_med = iggy_cell(i, "producers", "total_throughput_messages_per_second", fmt_rate)
                ic, ic_med = iggy_cell(i, "consumers", "total_throughput_messages_per_second", fmt_rate)
                il, _ = iggy_cell(i, "producers", "average_p99_latency_ms", fmt_ms)
                sp, sp_med = cell_rate(s)
                sc, sc_med = cell_rate(s, key="consume")
                lines.append(f"| {size} B | {parts} | {acks} | {ip} | {ic} | {il} | {sp} | {sc} "
                             f"| {ratio(sp_med, ip_med)} | {ratio(sc_med, ic_med)} |")
    return lines


def extras(json_dir):
    lines = []
    c = load(os.path.join(json_dir, "catchup-s100-p16-a1.json"))
    if c and c.get("catch_up"):
        p = c["produce"]["msgs_per_s"]
        q = c["catch_up"]["msgs_per_s"]
        lines += ["", f"Consumer catch-up (100 B, 16 partitions): producers {fmt_rate(p)} msgs/s, consumer read the "
                      f"{c['catch_up']['msgs']} message backlog at {fmt_rate(q)} msgs/s = **{ratio(q, p)} the producer rate**."]
    s = load(os.path.join(json_dir, "sustained-s1024-p16-a1.json"))
    if s:
        # The measured window only: the last interval after the stop is a partial second.
        series = [p for p in s["series"] if p["phase"] == "measure" and p["produce_mb_per_s"] > 0]
        total, marks = 0.0, []
        for p in series:
            total += p["produce_mb_per_s"]
            marks.append((total, p))
        if total >= 2000:
            first = [p["produce_mb_per_s"] for t, p in marks if t <= 1000] or [series[0]["produce_mb_per_s"]]
            last = [p["produce_mb_per_s"] for t, p in marks if t > total - 1000]
            f, l = statistics.mean(first), statistics.mean(last)
            mb = statistics.mean(p["produce_mb_per_s"] for p in series)
            lines += ["", f"Sustained 1 KiB produce (no consumer): {total / 1000:.1f} GB in {len(series)} s at {mb:.0f} MB/s; "
                          f"first GB {f:.0f} MB/s, last GB {l:.0f} MB/s = **{l / f:.2f} of the first**."]
    return lines


def main(argv):
    if len(argv) == 4 and argv[1] in ("--median-rate", "--median-mbps"):
        field = "msgs_per_s" if argv[1] == "--median-rate" else "mb_per_s"
        values = [r["produce"][field] for r in runs(argv[2], argv[3])]
        if not values:
            return 1
        print(f"{statistics.median(values):.0f}")
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    run_dir = argv[1]
    json_dir = os.path.join(run_dir, "json")
    names = [os.path.basename(p) for p in glob.glob(os.path.join(json_dir, "sluice-*.json"))]
    sizes = sorted({int(m.group(1)) for n in names if (m := re.match(r"sluice-s(\d+)-", n))})
    partitions = sorted({int(m.group(1)) for n in names if (m := re.search(r"-p(\d+)-", n))})
    acks = sorted({m.group(1) for n in names if (m := re.search(r"-a(\w+)-r", n))}, key=lambda a: a != "1")
    out = [f"## Run {os.path.basename(os.path.abspath(run_dir))}", ""]
    env = os.path.join(run_dir, "env.txt")
    if os.path.exists(env):
        out += ["```", open(env).read().rstrip(), "```", ""]
    lim = limits(json_dir)
    if lim:
        out += ["### Machine limits (same run)", "", "| loopback TCP (iperf3) | fio seq write O_DIRECT | fio write + fdatasync per 256 KiB | fdatasync p50 / p99 |",
                "|---|---|---|---|",
                f"| {lim.get('loopback_mb_s', 0):.0f} MB/s | {lim.get('fio_seq_mb_s', 0):.0f} MB/s | {lim.get('fio_sync_mb_s', 0):.0f} MB/s | "
                f"{lim.get('fsync_p50_ms', 0):.2f} / {lim.get('fsync_p99_ms', 0):.2f} ms |", ""]
    for size in sizes:
        out += throughput_table(json_dir, size, partitions, acks, lim) + [""]
    out += latency_table(json_dir, sizes, acks)
    iggy = iggy_table(run_dir, json_dir, sizes, partitions, acks)
    if iggy:
        out += [""] + iggy
    out += extras(json_dir)
    errors = []
    for path in sorted(glob.glob(os.path.join(json_dir, "*.json"))):
        r = load(path)
        if r and r.get("errors"):
            errors.append(f"- {os.path.basename(path)}: {r['errors']} errors (last: {r.get('last_error')})")
    if errors:
        out += ["", "Runs with errors:", ""] + errors
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
