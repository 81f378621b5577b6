#!/usr/bin/env python3
"""A recording TCP proxy for seeding the fuzz corpus from real Kafka clients.

Listens on LISTEN_HOST:PORT..PORT+N-1 and forwards each connection to UPSTREAM_HOST on the same
port. Run the broker with `--listen UPSTREAM_HOST:PORT --advertised-host LISTEN_HOST`, so the
Metadata it returns sends clients back through the proxy for every shard.

Client-to-broker bytes are written to OUT_DIR:
  request/<hash>              each request frame without its size prefix
  request_frame/<hash>        the first 32 KiB of each connection's byte stream
  record_batch_append/<hash>  each RecordBatch v2 found inside a Produce request

Usage: record_proxy.py LISTEN_HOST UPSTREAM_HOST PORT COUNT OUT_DIR  (stops on SIGTERM)
"""
import hashlib
import os
import socket
import struct
import sys
import threading

STREAM_PREFIX_MAX = 32 * 1024
FILE_BYTES_MAX = 64 * 1024


def save(out_dir, kind, data):
    if not data:
        return
    data = data[:FILE_BYTES_MAX]
    path = os.path.join(out_dir, kind)
    os.makedirs(path, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)


def record_batches(frame):
    """RecordBatch v2 inside a Produce frame: base offset 0, magic 2, a length that fits."""
    found = []
    p = 0
    while p + 61 <= len(frame):
        base, length = struct.unpack_from(">qi", frame, p)
        if base == 0 and frame[p + 16] == 2 and 49 <= length <= len(frame) - p - 12:
            found.append(frame[p:p + 12 + length])
            p += 12 + length
        else:
            p += 1
    return found


def pump_requests(src, dst, out_dir):
    stream = bytearray()
    pending = bytearray()
    try:
        while True:
            chunk = src.recv(65536)
            if not chunk:
                break
            dst.sendall(chunk)
            if len(stream) < STREAM_PREFIX_MAX:
                stream += chunk[:STREAM_PREFIX_MAX - len(stream)]
            pending += chunk
            while len(pending) >= 4:
                (size,) = struct.unpack_from(">i", pending, 0)
                if size < 0 or len(pending) < 4 + size:
                    break
                frame = bytes(pending[4:4 + size])
                del pending[:4 + size]
                save(out_dir, "request", frame)
                if len(frame) >= 2 and struct.unpack_from(">h", frame, 0)[0] == 0:
                    for batch in record_batches(frame):
                        save(out_dir, "record_batch_append", batch)
    except OSError:
        pass
    finally:
        save(out_dir, "request_frame", bytes(stream))
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def pump(src, dst):
    try:
        while True:
            chunk = src.recv(65536)
            if not chunk:
                break
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(listen_host, upstream_host, port, out_dir):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((listen_host, port))
    listener.listen(64)
    while True:
        client, _ = listener.accept()
        upstream = socket.create_connection((upstream_host, port))
        threading.Thread(target=pump_requests, args=(client, upstream, out_dir), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()


def main():
    listen_host, upstream_host, port, count, out_dir = sys.argv[1:6]
    for i in range(int(count)):
        threading.Thread(
            target=serve, args=(listen_host, upstream_host, int(port) + i, out_dir), daemon=True
        ).start()
    print("proxy ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
