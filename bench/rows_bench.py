#!/usr/bin/python3
"""Big rows against redis-server in the same run: latency of range reads on a 1 M-member sorted
set, O(1) sizes of 1 M-member hashes, sets and sorted sets, and the time DEL takes on a 1 M-field
hash. It prints p50/p99 per operation for cairn and redis and their ratio (cairn/redis).

Pairings (--pairing): durable = cairn --durability always vs redis --appendonly yes
--appendfsync always; memory = cairn --durability none vs redis without persistence.

  /usr/bin/python3 bench/rows_bench.py [--members 1000000] [--samples 2000] [--pairing memory]

Every read picks a random position or score, so the reads spread over the whole row as real
traffic does, not one hot spot. The targets are measured alternately (round by round).
"""
import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, log, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server on port {port} exited during start-up:\n{open(log).read()}")
        try:
            if redis.Redis(port=port, socket_timeout=1).ping():
                return
        except redis.exceptions.ConnectionError:
            pass
        time.sleep(0.05)
    sys.exit(f"server on port {port} did not answer PING in {seconds} s:\n{open(log).read()}")


def start(kind, pairing, binary, work):
    port = free_port()
    data = os.path.join(work, f"{kind}-{port}")
    os.makedirs(data)
    log = data + ".log"
    if kind == "cairn":
        cmd = [binary, "server", "--port", str(port), "--bind", "127.0.0.1", "--data-dir", data,
               "--durability", "always" if pairing == "durable" else "none"]
    else:
        persist = (["--appendonly", "yes", "--appendfsync", "always"] if pairing == "durable"
                   else ["--appendonly", "no"])
        cmd = ["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--dir", data, "--daemonize", "no", *persist]
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    wait_ready(port, proc, log)
    return proc, redis.Redis(port=port, socket_timeout=120)


def load(client, members, batch=1000, depth=8):
    """A zset, a hash and a set of `members` entries each, plus a second hash for DEL."""
    pipe = client.pipeline(transaction=False)
    queued = 0
    for start in range(0, members, batch):
        ids = range(start, min(start + batch, members))
        pipe.zadd("bench:z", {f"m:{i:08d}": i for i in ids})
        pipe.hset("bench:h", mapping={f"f:{i:08d}": "v" * 16 for i in ids})
        pipe.hset("bench:del", mapping={f"f:{i:08d}": "v" * 16 for i in ids})
        pipe.sadd("bench:s", *(f"m:{i:08d}" for i in ids))
        queued += 1
        if queued == depth:
            pipe.execute()
            queued = 0
    pipe.execute()


def operations(members):
    """name -> function(client, rng) issuing one command and returning its reply."""
    def zrangebyscore(c, r):
        low = r.randrange(members)
        return c.execute_command("ZRANGEBYSCORE", "bench:z", low, "+inf", "LIMIT", 0, 10)

    def zrange100(c, r):
        first = r.randrange(members - 100)
        return c.execute_command("ZRANGE", "bench:z", first, first + 99)

    def zrevrange_top(c, r):
        return c.execute_command("ZREVRANGE", "bench:z", 0, 99)

    def zrank(c, r):
        return c.execute_command("ZRANK", "bench:z", f"m:{r.randrange(members):08d}")

    def zscore(c, r):
        return c.execute_command("ZSCORE", "bench:z", f"m:{r.randrange(members):08d}")

    def hget(c, r):
        return c.execute_command("HGET", "bench:h", f"f:{r.randrange(members):08d}")

    return {
        "ZRANGEBYSCORE .. LIMIT 0 10": zrangebyscore,
        "ZREVRANGE 0 99 (top 100)": zrevrange_top,
        "ZRANGE i i+99 (random i)": zrange100,
        "ZRANK (random member)": zrank,
        "ZSCORE": zscore,
        "HGET": hget,
        "ZCARD": lambda c, r: c.execute_command("ZCARD", "bench:z"),
        "HLEN": lambda c, r: c.execute_command("HLEN", "bench:h"),
        "SCARD": lambda c, r: c.execute_command("SCARD", "bench:s"),
    }


def measure(client, fn, samples, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(samples):
        t0 = time.perf_counter_ns()
        fn(client, rng)
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--samples", type=int, default=2000, help="commands per operation and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--pairing", choices=["durable", "memory"], default="memory")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "cairn"))
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="cairn-rows-bench.")
    procs = []
    try:
        targets = {}
        for kind in ("cairn", "redis"):
            proc, client = start(kind, args.pairing, args.binary, work)
            procs.append(proc)
            t0 = time.time()
            load(client, args.members)
            loaded = time.time() - t0
            sizes = (client.zcard("bench:z"), client.hlen("bench:h"), client.scard("bench:s"))
            if sizes != (args.members,) * 3:
                sys.exit(f"{kind}: loaded sizes {sizes}, wanted {args.members} each")
            targets[kind] = client
            print(f"{kind}: loaded 3 x {args.members:,} members + a {args.members:,}-field hash "
                  f"in {loaded:.1f} s")

        ops = operations(args.members)
        results = {(k, name): [] for k in targets for name in ops}
        for rnd in range(args.rounds):
            order = ["cairn", "redis"] if rnd % 2 == 0 else ["redis", "cairn"]
            for name, fn in ops.items():
                for kind in order:
                    results[(kind, name)] += measure(targets[kind], fn, args.samples, rnd)
        # Same arguments on both: the replies must be equal, else the comparison is void.
        for name, fn in ops.items():
            a = fn(targets["cairn"], random.Random(99))
            b = fn(targets["redis"], random.Random(99))
            if a != b:
                sys.exit(f"{name}: cairn and redis disagree: {a!r} vs {b!r}")

        print(f"\npairing {args.pairing}, {args.members:,} members, "
              f"{args.samples * args.rounds} samples per operation, load "
              f"{open('/proc/loadavg').read().split()[0]}")
        print("%-28s | %9s %9s | %9s %9s | %7s %7s" % (
            "operation", "cairn p50", "p99 ms", "redis p50", "p99 ms", "p50 x", "p99 x"))
        print("-" * 88)
        for name in ops:
            c = results[("cairn", name)]
            r = results[("redis", name)]
            cv = (statistics.median(c), pct(c, 0.99))
            rv = (statistics.median(r), pct(r, 0.99))
            print("%-28s | %9.3f %9.3f | %9.3f %9.3f | %7.2f %7.2f" % (
                name, *cv, *rv, cv[0] / rv[0], cv[1] / rv[1]))

        for kind, client in targets.items():
            t0 = time.perf_counter_ns()
            removed = client.delete("bench:del")
            took = (time.perf_counter_ns() - t0) / 1e6
            if removed != 1 or client.exists("bench:del") or client.hlen("bench:del") != 0:
                sys.exit(f"{kind}: DEL of the big hash did not remove it")
            print(f"{kind}: DEL of a {args.members:,}-field hash took {took:.2f} ms")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
