#!/usr/bin/env bash
# Transactional vs plain produce throughput, alternating rounds in one sitting.
# Usage: SLUICE_BIN=path/to/release/sluice run.sh OUT_DIR [ROUNDS]
set -euo pipefail
bin=${SLUICE_BIN:?release binary}
out=${1:?output dir}
rounds=${2:-3}
mkdir -p "$out/json"
port=39600
common=(--partitions 16 --producers 2 --consumers 0 --threads 1 --acks all --max-in-flight 5
        --warmup-secs 2 --duration-secs 8 --quiet)
run() { # label size mode
    local label=$1 size=$2 mode=$3 data
    data=$(mktemp -d /tmp/sluice-txnbench-XXXX)
    "$bin" serve --data-dir "$data" --listen 127.0.0.1:$port --admin-listen 127.0.0.1:$((port + 90)) \
        --shards 2 >"$out/broker-$label.log" 2>&1 &
    local broker=$!
    for _ in $(seq 50); do grep -q "sluice ready" "$out/broker-$label.log" && break; sleep 0.2; done
    local extra=()
    [[ $mode == txn ]] && extra=(--transactions --transaction-records 1000)
    echo "$bin bench -b 127.0.0.1:$port --message-size $size ${common[*]} ${extra[*]} --label $label --json $out/json/$label.json" >>"$out/commands.txt"
    "$bin" bench -b 127.0.0.1:$port --message-size "$size" "${common[@]}" "${extra[@]}" \
        --label "$label" --json "$out/json/$label.json" >"$out/bench-$label.txt" 2>&1 || echo "run $label failed" >&2
    kill "$broker"; wait "$broker" || true
    rm -rf "$data"
}
for round in $(seq "$rounds"); do
    for size in 100 1024; do
        run "plain-$size-r$round" "$size" plain
        run "txn-$size-r$round" "$size" txn
    done
done
