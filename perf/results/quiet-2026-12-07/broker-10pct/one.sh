#!/usr/bin/env bash
# one.sh LABEL RATE SIZE [extra bench flags]  -> /tmp/one/LABEL.{json,metrics,txt}
set -u
label=$1 rate=$2 size=$3; shift 3
bin=${BIN:-/work/main/target/release/sluice}
mkdir -p /tmp/one; data=$(mktemp -d /tmp/sl-XXXX)
env ${SERVE_ENV:-X=1} taskset -c 0 $bin serve --data-dir $data --listen 127.0.0.1:29800 --admin-listen 127.0.0.1:29890 --shards 1 --cpus 0 ${SERVE_FLAGS:-} > /tmp/one/$label.broker.log 2>&1 &
b=$!
for _ in $(seq 100); do grep -q "sluice ready" /tmp/one/$label.broker.log && break; sleep 0.1; done
taskset -c 1 $bin bench -b 127.0.0.1:29800 --cpus 1 --threads 1 --producers 2 --consumers 1 --partitions ${PARTS:-16} --message-size $size --acks all --rate $rate --warmup-secs 2 --duration-secs 6 --quiet --json /tmp/one/$label.json "$@" > /tmp/one/$label.txt 2>&1
curl -s 127.0.0.1:29890/metrics > /tmp/one/$label.metrics
kill $b; wait $b; rm -rf $data
python3 - /tmp/one/$label.json <<'PY'
import json,sys
j=json.load(open(sys.argv[1]))
def q(h):
    return {k:h.get(k) for k in ('p50_ms','p99_ms','p999_ms')} if h else None
p=j['produce']; c=j.get('consume',{})
print(sys.argv[1].split('/')[-1], 'prod', int(p['msgs_per_s']), 'cons', int(c.get('msgs_per_s',0)))
for k in j: 
    if 'lat' in k or k in ('ack','e2e'): print(' ',k, j[k] if not isinstance(j[k],dict) else {kk:v for kk,v in j[k].items() if 'p' in kk and 'ms' in kk})
PY
