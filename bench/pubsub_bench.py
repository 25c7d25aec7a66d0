#!/usr/bin/python3
"""PUBLISH fan-out throughput, Cairn vs redis-server in the same run (docs/pubsub.md).

Setup: SUBSCRIBERS raw-socket subscribers of one channel, spread evenly over a 3-machine Cairn
cluster (1 shard, RF 3, tests/cluster/launcher.py) and, for the reference, all on one
redis-server. PUBLISHERS redis-benchmark processes (one per machine for Cairn, all on the one
server for Redis) each send MESSAGES PUBLISH commands of a PAYLOAD-byte message with CLIENTS
connections and PIPELINE depth. The metric is delivered messages per second: every message
counted once per subscriber that received it, from the first byte received to the last (the
subscribers count bytes, so the reader is not the bottleneck). Also reports messages lost
(pub/sub is at-most-once) and the cairn/redis ratio of the median of ROUNDS.

Usage: bench/pubsub_bench.py [--rounds 3] [--subscribers 100] [--messages 20000] ...
"""

import argparse
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))

from launcher import Cluster  # noqa: E402

CHANNEL = "bench"


def frame_size(payload):
    def bulk(b):
        return len(b"$%d\r\n" % len(b)) + len(b) + 2
    return len(b"*3\r\n") + bulk(b"message") + bulk(CHANNEL.encode()) + bulk(payload)


def subscribe(host, port):
    s = socket.create_connection((host, port))
    s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(CHANNEL), CHANNEL.encode()))
    expected = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(CHANNEL), CHANNEL.encode())
    got = b""
    while len(got) < len(expected):
        got += s.recv(len(expected) - len(got))
    assert got == expected, got
    s.setblocking(False)
    return s


def run_round(endpoints, publisher_endpoints, args):
    """endpoints: (host, port) per subscriber; returns (delivered/s, lost fraction)."""
    payload = b"x" * args.payload
    size = frame_size(payload)
    subs = [subscribe(h, p) for h, p in endpoints]
    time.sleep(0.5)  # subscriptions visible everywhere (the cluster fan-out needs no setup)
    sel = selectors.DefaultSelector()
    for s in subs:
        sel.register(s, selectors.EVENT_READ)
    total_expected = len(subs) * args.messages * len(publisher_endpoints)
    received = 0
    procs = []
    for host, port in publisher_endpoints:
        procs.append(subprocess.Popen(
            ["redis-benchmark", "-h", host, "-p", str(port), "-c", str(args.clients),
             "-n", str(args.messages), "-P", str(args.pipeline), "-q",
             "PUBLISH", CHANNEL, payload.decode()],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    first = last = None
    deadline = time.monotonic() + args.timeout
    quiet_since = time.monotonic()
    while received < total_expected * size and time.monotonic() < deadline:
        events = sel.select(timeout=0.2)
        now = time.monotonic()
        if not events:
            if all(p.poll() is not None for p in procs) and now - quiet_since > 2.0:
                break  # publishers done and nothing more arrives: the rest was dropped
            continue
        quiet_since = now
        for key, _ in events:
            try:
                data = key.fileobj.recv(1 << 20)
            except BlockingIOError:
                continue
            if data:
                if first is None:
                    first = now
                last = now
                received += len(data)
    for p in procs:
        p.wait(timeout=60)
    for s in subs:
        s.close()
    delivered = received // size
    elapsed = (last - first) if first is not None and last > first else float("inf")
    return delivered / elapsed, 1 - delivered / total_expected


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument("--publishers", type=int, default=3)
    ap.add_argument("--messages", type=int, default=20000, help="per publisher")
    ap.add_argument("--clients", type=int, default=10, help="connections per publisher")
    ap.add_argument("--pipeline", type=int, default=1)
    ap.add_argument("--payload", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "cairn"))
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="cairn-pubsub-bench-")
    cluster = Cluster(machines=3, shards=1, rf=3, binary=args.binary, durability="none",
                      data_root=os.path.join(work, "cluster"))
    redis_port = cluster.base_port + 50
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "",
                              "--appendonly", "no", "--dir", work],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", redis_port)).close()
                break
            except OSError:
                time.sleep(0.05)
        cairn_subs = [(cluster.host(i % 3), cluster.port(i % 3))
                      for i in range(args.subscribers)]
        cairn_pubs = [(cluster.host(i % 3), cluster.port(i % 3)) for i in range(args.publishers)]
        redis_subs = [("127.0.0.1", redis_port)] * args.subscribers
        redis_pubs = [("127.0.0.1", redis_port)] * args.publishers
        results = {"cairn": [], "redis": []}
        for r in range(args.rounds):
            for name, subs, pubs in (("cairn", cairn_subs, cairn_pubs),
                                     ("redis", redis_subs, redis_pubs)):
                rate, lost = run_round(subs, pubs, args)
                results[name].append(rate)
                print("round %d %-5s %12.0f delivered msg/s  lost %.4f%%" %
                      (r + 1, name, rate, lost * 100), flush=True)
        c = statistics.median(results["cairn"])
        rd = statistics.median(results["redis"])
        print("median  cairn %.0f  redis %.0f  ratio %.2f" % (c, rd, c / rd))
    finally:
        redis.terminate()
        redis.wait(timeout=10)
        cluster.close()
        subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main()
