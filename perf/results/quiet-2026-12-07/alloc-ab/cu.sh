#!/usr/bin/env bash
# cu.sh OUTDIR LABEL "ENV" bench-flags...   broker --shards 2 (as perf/half-rate), client floating
set -u
out=$1 label=$2 envs=$3; shift 3
bin=${BIN:-/tmp/sluice-base}
mkdir -p $out/json $out/log $out/metrics; data=$(mktemp -d /tmp/sl-XXXX)
env X=1 $envs $bin serve --data-dir $data --listen 127.0.0.1:29700 --admin-listen 127.0.0.1:29790 --shards 2 > $out/log/broker-$label.log 2>&1 &
b=$!
for _ in $(seq 100); do grep -q "sluice ready" $out/log/broker-$label.log && break; sleep 0.1; done
echo "$(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg) env $envs serve --shards 2; $bin bench -b 127.0.0.1:29700 --partitions 16 --threads 1 --warmup-secs 2 --duration-secs 6 --quiet --producers 2 $* --label $label" >> $out/commands.txt
${CLIENT:-$bin} bench -b 127.0.0.1:29700 --partitions 16 --threads 1 --warmup-secs 2 --duration-secs 6 --quiet --producers 2 "$@" --label $label --json $out/json/$label.json > $out/log/bench-$label.txt 2>&1
curl -s 127.0.0.1:29790/metrics > $out/metrics/$label.txt
kill $b; wait $b; rm -rf $data
