#!/usr/bin/python3
"""Field writes in a cluster (docs/cluster.md "Hashes, sets and sorted sets"): the latency of a
single-field HSET through a machine that does not lead the shard and through its leader, and
the time to fill a 10,000-field hash through one machine, with 10 HSETs of 1,000 fields and
with 10,000 single-field HSETs. 3 machines, 1 shard x RF 3 on loopback (tests/cluster/launcher.py),
redis-py, one command at a time, default levels (QUORUM/QUORUM).

    /usr/bin/python3 bench/cluster_fields_bench.py [--binary build/cairn] [--hsets 2000] [--skip-fill]

Prints one line per measurement; bench/RESULTS.md records the numbers.
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "cluster"))

from launcher import DEFAULT_BINARY, Cluster  # noqa: E402


def single_field_latencies(client, key, count):
    client.hset(key, "warm", "x")
    samples = []
    for n in range(count):
        t0 = time.perf_counter()
        client.hset(key, "f%d" % (n % 100), "v%d" % n)
        samples.append((time.perf_counter() - t0) * 1000.0)
    return samples


def describe(samples):
    samples = sorted(samples)
    return "mean %.2f ms, p50 %.2f ms, p99 %.2f ms" % (
        statistics.fmean(samples), samples[len(samples) // 2],
        samples[min(len(samples) - 1, int(len(samples) * 0.99))])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", default=DEFAULT_BINARY)
    p.add_argument("--hsets", type=int, default=2000, help="single-field HSETs per machine")
    p.add_argument("--skip-fill", action="store_true", help="latencies only")
    args = p.parse_args()
    with Cluster(machines=3, shards=1, rf=3, binary=args.binary,
                 extra_args=["--repair-cells-per-s", "0"]) as cluster:
        leader = cluster.leader_of_shard(cluster.table()["shards"][0]["id"])
        follower = [i for i in range(3) if i != leader][0]
        for name, i in (("follower", follower), ("leader", leader)):
            c = cluster.client(i)
            print("single-field HSET through the %s: %s (%d HSETs)"
                  % (name, describe(single_field_latencies(c, "lat-%s" % name, args.hsets)),
                     args.hsets))
            c.close()
        if args.skip_fill:
            return
        c = cluster.client(follower)
        t0 = time.perf_counter()
        for b in range(10):
            c.hset("fill-batches", mapping={"f%d-%d" % (b, n): "v" for n in range(1000)})
        elapsed = time.perf_counter() - t0
        assert c.hlen("fill-batches") == 10000
        print("10,000-field hash, 10 HSETs of 1,000 fields through the follower: %.2f s "
              "(%.3f ms per field)" % (elapsed, elapsed * 1000.0 / 10000))
        t0 = time.perf_counter()
        for n in range(10000):
            c.hset("fill-single", "f%d" % n, "v")
        elapsed = time.perf_counter() - t0
        assert c.hlen("fill-single") == 10000
        print("10,000-field hash, 10,000 single-field HSETs through the follower: %.2f s "
              "(%.3f ms per field)" % (elapsed, elapsed * 1000.0 / 10000))
        c.close()


if __name__ == "__main__":
    main()
