#!/usr/bin/env bash
# Seeds fuzz/corpus/ from real clients: runs the broker behind record_proxy.py (the broker
# advertises 127.0.0.2, the proxy listens there and forwards to 127.0.0.1), drives it with kcat
# (librdkafka: produce in every compression, consume, metadata, a consumer group) and the
# sluice CLI, then stops the broker cleanly and turns its segment files into segment_recovery
# inputs. Usage: fuzz/capture/seed_corpus.sh [path/to/sluice]   (default: target/debug/sluice)
set -euo pipefail
cd "$(dirname "$0")/../.."
SLUICE=${1:-${CARGO_TARGET_DIR:-target}/debug/sluice}
PORT=${PORT:-29400}
WORK=$(mktemp -d /tmp/sluice-seed-XXXXXX)
CAPTURE=$WORK/capture
trap 'kill $BROKER $PROXY 2>/dev/null || true; rm -rf "$WORK"' EXIT

"$SLUICE" serve --data-dir "$WORK/data" --listen 127.0.0.1:$PORT --advertised-host 127.0.0.2 \
    --shards 2 --segment-bytes 65536 --admin-listen 127.0.0.1:0 > "$WORK/ready" 2> "$WORK/broker.log" &
BROKER=$!
python3 fuzz/capture/record_proxy.py 127.0.0.2 127.0.0.1 $PORT 2 "$CAPTURE" > "$WORK/proxy" &
PROXY=$!
for _ in $(seq 100); do grep -q ready "$WORK/ready" 2>/dev/null && grep -q ready "$WORK/proxy" && break; sleep 0.1; done
B=127.0.0.2:$PORT
K="kcat -b $B -X api.version.request=true"
seq 1 300 | sed 's/^/key-&:value-&-/' > "$WORK/lines"
for codec in none gzip snappy lz4 zstd; do
    env -u LD_LIBRARY_PATH $K -P -t "seed-$codec" -K: -z $codec -X acks=all < "$WORK/lines"
done
env -u LD_LIBRARY_PATH $K -P -t seed-headers -H h1=v1 -H h2=v2 -X acks=1 < "$WORK/lines"
env -u LD_LIBRARY_PATH $K -L > /dev/null
env -u LD_LIBRARY_PATH $K -C -t seed-none -o beginning -e -q > /dev/null
env -u LD_LIBRARY_PATH $K -C -t seed-zstd -o -5 -e -q > /dev/null
timeout 20 env -u LD_LIBRARY_PATH $K -G seed-group seed-gzip -o beginning -c 300 -q > /dev/null || true
env -u LD_LIBRARY_PATH $K -Q -t seed-none:0:0 > /dev/null || true
"$SLUICE" topic create seed-cli --partitions 3 --bootstrap $B > /dev/null || true
"$SLUICE" topic list --bootstrap $B > /dev/null || true
"$SLUICE" topic describe seed-cli --bootstrap $B > /dev/null || true
"$SLUICE" group list --bootstrap $B > /dev/null || true
"$SLUICE" group describe seed-group --bootstrap $B > /dev/null || true
kill -TERM $BROKER; wait $BROKER || true

for kind in request request_frame record_batch_append; do
    mkdir -p fuzz/corpus/$kind
    cp -n "$CAPTURE/$kind"/* fuzz/corpus/$kind/ 2>/dev/null || true
done
mkdir -p fuzz/corpus/segment_recovery
python3 - "$WORK/data" fuzz/corpus/segment_recovery <<'PY'
import hashlib, os, struct, sys
data, out = sys.argv[1], sys.argv[2]
for root, _, files in os.walk(data):
    for f in files:
        if not f.endswith(".log"):
            continue
        stem = os.path.join(root, f[:-4])
        log = open(stem + ".log", "rb").read()[:48 * 1024]
        ix = open(stem + ".index", "rb").read() if os.path.exists(stem + ".index") else None
        tx = open(stem + ".timeindex", "rb").read() if os.path.exists(stem + ".timeindex") else None
        for clean in (0, 1):
            flags = clean | (2 if ix is not None else 0) | (4 if tx is not None else 0)
            ixb, txb = (ix or b"")[:65535], (tx or b"")[:65535]
            blob = bytes([flags]) + struct.pack(">HH", len(ixb), len(txb)) + ixb + txb + log
            open(os.path.join(out, hashlib.sha1(blob).hexdigest()[:16]), "wb").write(blob)
PY
for kind in request request_frame record_batch_append segment_recovery; do
    echo "$kind: $(ls fuzz/corpus/$kind | wc -l) files"
done
