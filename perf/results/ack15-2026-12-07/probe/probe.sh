#!/bin/bash
# probe.sh BIN LABEL RATE [extra bench flags]: one split-shape run, broker metrics saved.
bin=$1 label=$2 rate=$3; shift 3
O=/tmp/ack15/probe; mkdir -p $O
D=$(mktemp -d /tmp/sluice-ab-XXXX)
$bin serve --data-dir $D --listen 127.0.0.1:29700 --admin-listen 127.0.0.1:29790 --shards 1 --cpus 0 > $O/broker-$label.log 2>&1 &
b=$!
for _ in $(seq 50); do grep -q "sluice ready" $O/broker-$label.log && break; sleep 0.2; done
ratef=(); [ "$rate" != max ] && ratef=(--rate $rate)
echo "$(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg) $label" >> $O/commands.txt
$bin bench -b 127.0.0.1:29700 --partitions 16 --message-size 100 --threads ${THREADS:-1} --warmup-secs 2 --duration-secs 6 --cpus 1 --producers 2 --consumers 1 --acks all "${ratef[@]}" "$@" --json $O/$label.json --quiet > $O/bench-$label.txt 2>&1
sleep 1.2; curl -s http://127.0.0.1:29790/metrics > $O/m-$label.txt
kill $b; wait $b; rm -rf $D
python3 - $O $label <<'PY'
import json,re,sys
O,l=sys.argv[1:]
d=json.load(open(f"{O}/{l}.json"))
a,e=d["produce_ack_latency"],d["end_to_end_latency"]
print(f"{l}: {d['produce']['msgs_per_s']:.0f}/s ack p50 {a['p50_ms']:.2f} p99 {a['p99_ms']:.2f} e2e p50 {e['p50_ms']:.2f} p99 {e['p99_ms']:.2f} p99.9 {e['p999_ms']:.2f} lag {d['schedule_lag_ms_max']:.1f}")
m={}
for line in open(f"{O}/m-{l}.txt"):
    g=re.fullmatch(r'sluice_(\w+)_seconds_(overall|sum|count)\{shard="0"(?:,quantile="([\d.]+)")?\} (\S+)\n',line)
    if g: m[(g[1],g[2],g[3])]=float(g[4])
for f in ("produce_acks_all_latency","produce_durable_wait","log_write","written_to_durable","commit_round","fsync_latency"):
    c=m.get((f,"count",None),0)
    if not c: continue
    print(f"  {f:26s} n {c:8.0f} mean {m[(f,'sum',None)]/c*1e3:6.3f} p50 {m[(f,'overall','0.5')]*1e3:6.3f} p99 {m[(f,'overall','0.99')]*1e3:7.3f} p99.9 {m[(f,'overall','0.999')]*1e3:7.3f} ms")
PY
