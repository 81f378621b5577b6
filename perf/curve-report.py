#!/usr/bin/env python3
"""Tables and plot for perf/latency-curve: sluice's points, then each peer found in OUT_DIR
at the same offered loads with its ratio to sluice there.

    curve-report.py OUT_DIR SLUICE_PREFIX SLUICE_MAX PEER_KEY

Appends one section to OUT_DIR/curve.md, and adds this run's lines to OUT_DIR/curve.png
(ack p99 and e2e p99 against the achieved rate; the lines of earlier invocations into the
same OUT_DIR are kept in curve-series.json). Every point is the median of its runs.
"""
import glob
import json
import os
import statistics
import sys

LOADS = (10, 25, 50, 75, 100)
# Below this share of the offered rate the system did not keep up: its latency is its backlog.
SATURATED = 0.95


def median_of(reports, pick):
    return statistics.median(pick(r) for r in reports)


def bench_point(paths):
    """Medians over `sluice bench` / perf/peers JSON reports (one point), or None."""
    reports = [json.load(open(p)) for p in paths]
    if not reports:
        return None
    point = {"achieved": median_of(reports, lambda r: r["produce"]["msgs_per_s"])}
    for side, name in (("ack", "produce_ack_latency"), ("e2e", "end_to_end_latency")):
        for q in ("p50", "p99", "p999"):
            point[f"{side}_{q}"] = median_of(reports, lambda r: r[name][f"{q}_ms"])
    point["lag"] = max(r.get("schedule_lag_ms_max", 0.0) for r in reports)
    return point


def iggy_point(paths):
    """Medians over iggy-bench producer summaries: batch send-to-answer latency only."""
    sums = [next(g["summary"] for g in json.load(open(p))["group_metrics"]
                 if g["summary"]["kind"] == "producers") for p in paths]
    if not sums:
        return None
    med = lambda k: statistics.median(s[k] for s in sums)
    return {"achieved": med("total_throughput_messages_per_second"),
            "ack_p50": med("average_p50_latency_ms"), "ack_p99": med("average_p99_latency_ms"),
            "ack_p999": med("average_p999_latency_ms")}


def ratio(peer, sluice):
    return f"{peer / sluice:.2f}x" if sluice > 0 else "-"


def achieved_cell(point, offered):
    mark = " (saturated)" if point["achieved"] < SATURATED * offered else ""
    return f"{point['achieved']:.0f}{mark}"


def main():
    out, prefix, top, key = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    offered = {pct: top * pct // 100 for pct in LOADS}
    sluice = {pct: bench_point(sorted(glob.glob(f"{out}/json/{prefix}-p{pct}-r*.json")))
              for pct in LOADS}
    sluice = {pct: p for pct, p in sluice.items() if p}
    md = [f"\n{prefix}: max {top} msgs/s (median of 3); each point the median of 2 runs (ms)\n",
          "| load | offered msgs/s | achieved msgs/s | ack p50 | ack p99 | ack p99.9 | e2e p50 "
          "| e2e p99 | e2e p99.9 | client lag max |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for pct, p in sluice.items():
        md.append(f"| {pct} % | {offered[pct]} | {achieved_cell(p, offered[pct])} | {p['ack_p50']:.2f} "
                  f"| {p['ack_p99']:.2f} | {p['ack_p999']:.2f} | {p['e2e_p50']:.2f} | {p['e2e_p99']:.2f} "
                  f"| {p['e2e_p999']:.2f} | {p['lag']:.1f} |")
    series = {f"sluice {prefix}": [(offered[pct], p) for pct, p in sluice.items()]}

    peers = {}
    sluice_at_half = {}
    for peer in ("redis", "nats"):
        maxes = sorted(glob.glob(f"{out}/json/{peer}-{key}-max-r*.json"))
        if not maxes:
            continue
        own = int(statistics.median(json.load(open(m))["produce"]["msgs_per_s"] for m in maxes))
        rows = []
        for name, rate in [(f"p{pct}", offered[pct]) for pct in LOADS] + [
                (f"own{pct}", own * pct // 100) for pct in LOADS]:
            p = bench_point(sorted(glob.glob(f"{out}/json/{peer}-{key}-{name}-r*.json")))
            if p:
                rows.append((name, rate, p))
        peers[peer] = rows
        md += [f"\n{peer} ({key}): its own max {own} msgs/s (median of 3); at sluice's offered "
               f"loads (1 run where that is over its own max, else 2) and at 10-100 % of its own max "
               f"(2 runs); medians (ms). "
               f"x = {peer} / sluice at the same offered load (sluice's loads, and 50 % of {peer}'s max, "
               "where sluice ran too; above 1: sluice's is lower)\n",
               "| load | offered msgs/s | achieved msgs/s | ack p50 | ack p99 | ack p99.9 | e2e p50 "
               "| e2e p99 | e2e p99.9 | client lag max | ack p99 x | e2e p99 x |",
               "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        # sluice at the peer's half rate, where both should keep up (perf/latency-curve runs it).
        half = bench_point(sorted(glob.glob(f"{out}/json/{prefix}-{peer}-own50-r*.json")))
        if half:
            sluice_at_half[peer] = (own * 50 // 100, half)
        for name, rate, p in rows:
            s = sluice.get(int(name[1:])) if name.startswith("p") else None
            if name == "own50":
                s = half
            load = f"{name[1:]} %" if name.startswith("p") else f"{name[3:]} % of own max"
            md.append(f"| {load} | {rate} | {achieved_cell(p, rate)} | {p['ack_p50']:.2f} "
                      f"| {p['ack_p99']:.2f} | {p['ack_p999']:.2f} | {p['e2e_p50']:.2f} "
                      f"| {p['e2e_p99']:.2f} | {p['e2e_p999']:.2f} | {p['lag']:.1f} "
                      f"| {ratio(p['ack_p99'], s['ack_p99']) if s else '-'} "
                      f"| {ratio(p['e2e_p99'], s['e2e_p99']) if s else '-'} |")
        series[f"{peer} {key}"] = [(rate, p) for _, rate, p in rows]

    series[f"sluice {prefix}"] += list(sluice_at_half.values())

    iggy = {}
    for pct in LOADS:
        p = iggy_point(sorted(glob.glob(f"{out}/iggy/iggy-{key}-p{pct}-r*/**/report.json",
                                        recursive=True)))
        if p:
            iggy[pct] = p
    if iggy:
        md += [f"\nIggy at the same offered loads ({key}): producers' batch send-to-answer latency "
               "(ms), median of 2 runs. Not sluice's measure (it leaves out the wait in the batch), "
               "so the ratio to sluice's ack p99 flatters Iggy\n",
               "| load | offered msgs/s | achieved msgs/s | batch p50 | batch p99 | batch p99.9 "
               "| batch p99 / sluice ack p99 |",
               "|---|---|---|---|---|---|---|"]
        for pct, p in iggy.items():
            s = sluice.get(pct)
            md.append(f"| {pct} % | {offered[pct]} | {achieved_cell(p, offered[pct])} "
                      f"| {p['ack_p50']:.2f} | {p['ack_p99']:.2f} | {p['ack_p999']:.2f} "
                      f"| {ratio(p['ack_p99'], s['ack_p99']) if s else '-'} |")
        series[f"iggy {key} (batch round trip)"] = [(offered[pct], p) for pct, p in iggy.items()]

    if peers or iggy:
        head = ["load", "offered msgs/s", "sluice"] + list(peers) + (["iggy batch p99 (not e2e)"] if iggy else [])
        md += [f"\nAt equal offered load ({key}): e2e p99 in ms (x sluice's); (s) = saturated "
               "(achieved under 95 % of offered: the latency is the backlog, so it grows with the "
               "run's length)\n",
               "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for pct, s in sluice.items():
            cells = [f"{pct} %", str(offered[pct]), f"{s['e2e_p99']:.2f}"]
            for rows in peers.values():
                p = next((p for name, _, p in rows if name == f"p{pct}"), None)
                sat = " (s)" if p and p["achieved"] < SATURATED * offered[pct] else ""
                cells.append(f"{p['e2e_p99']:.2f} ({ratio(p['e2e_p99'], s['e2e_p99'])}){sat}" if p else "-")
            if iggy:
                p = iggy.get(pct)
                sat = " (s)" if p and p["achieved"] < SATURATED * offered[pct] else ""
                cells.append(f"{p['ack_p99']:.2f}{sat}" if p else "-")
            md.append("| " + " | ".join(cells) + " |")
        for peer, (rate, s) in sluice_at_half.items():
            cells = [f"50 % of {peer}'s max", str(rate), f"{s['e2e_p99']:.2f}"]
            for other, rows in peers.items():
                p = next((p for name, _, p in rows if name == "own50"), None) if other == peer else None
                sat = " (s)" if p and p["achieved"] < SATURATED * rate else ""
                cells.append(f"{p['e2e_p99']:.2f} ({ratio(p['e2e_p99'], s['e2e_p99'])}){sat}" if p else "-")
            md.append("| " + " | ".join(cells + (["-"] if iggy else [])) + " |")

    with open(f"{out}/curve.md", "a") as f:
        f.write("\n".join(md) + "\n")
    plot(out, series)


def plot(out, series):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no matplotlib in this python3: curve.png not drawn", file=sys.stderr)
        return
    store = f"{out}/curve-series.json"
    lines = json.load(open(store)) if os.path.exists(store) else {}
    for name, points in series.items():
        points = sorted(points, key=lambda x: x[0])  # in order of offered load
        lines[name] = {"ack": [(p["achieved"], p["ack_p99"]) for _, p in points],
                       "e2e": [(p["achieved"], p["e2e_p99"]) for _, p in points if "e2e_p99" in p]}
    json.dump(lines, open(store, "w"), indent=1)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, side, title in ((axes[0], "ack", "produce ack p99"), (axes[1], "e2e", "end-to-end p99")):
        for i, (name, line) in enumerate(lines.items()):
            if line[side]:
                # Dashed: Iggy's batch round trip, not a latency from the intended send time.
                style = "s--" if "(batch" in name else "o-"
                ax.plot([x for x, _ in line[side]], [y for _, y in line[side]], style,
                        color=f"C{i % 10}", label=name)
        ax.set_title(title + " (from the intended send time)")
        ax.set_xlabel("achieved produce rate (msgs/s)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("latency (ms)")
    fig.savefig(f"{out}/curve.png", dpi=100, bbox_inches="tight")


if __name__ == "__main__":
    main()
