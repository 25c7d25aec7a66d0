#!/usr/bin/python3
"""What anti-entropy repair costs on an idle, in-sync cluster, and how fast it heals a lost range.

Starts two identical 3-machine shards (RF 3, tests/cluster/launcher.py), one with repair at its
defaults (--repair-cells-per-s 20000, --repair-interval-s 60 unless given) and one with repair
off, loads the same --keys keys into each (written at ALL, so the replicas are in sync), waits
for the first pass to end, then measures the CPU time of the machine processes over --seconds
with no client traffic. It prints CPU per machine, as a percentage of one core, for both, and
their difference: the cost of repair. Then it drops one range on one machine of the repairing
cluster (CAIRN.REPAIR DROP) and times how long until every replica holds the same cells again.

  /usr/bin/python3 bench/repair_bench.py [--keys 200000] [--seconds 120] [--interval-s 60]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "cluster"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration", "cluster"))

from launcher import Cluster  # noqa: E402
from cluster_support import ClusterHelper, session  # noqa: E402
from test_cluster_repair import dump  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def load(cluster, keys):
    c = session(cluster, 0, write="ALL")
    pipe = c.pipeline(transaction=False)
    for i in range(keys):
        pipe.set("user:%08d" % i, "x" * 100)
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    c.close()


def measure(clusters, seconds):
    start = {name: [cpu_seconds(m.proc.pid) for m in c.machines] for name, c in clusters.items()}
    time.sleep(seconds)
    return {name: [100 * (cpu_seconds(m.proc.pid) - s) / seconds
                   for m, s in zip(c.machines, start[name])]
            for name, c in clusters.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--keys", type=int, default=200_000)
    p.add_argument("--seconds", type=int, default=120)
    p.add_argument("--interval-s", type=int, default=60)
    p.add_argument("--rate", type=int, default=20_000)
    a = p.parse_args()
    on = Cluster(machines=3, shards=1, rf=3, durability="none", extra_args=[
        "--repair-cells-per-s", str(a.rate), "--repair-interval-s", str(a.interval_s)])
    off = Cluster(machines=3, shards=1, rf=3, durability="none",
                  extra_args=["--repair-cells-per-s", "0"])
    try:
        for c in (on, off):
            load(ClusterHelper(c), a.keys)
        # Let the load's compactions and the first passes settle.
        time.sleep(min(a.interval_s, 30))
        cpu = measure({"repair on": on, "repair off": off}, a.seconds)
        for name, values in cpu.items():
            print("%-10s CPU per machine: %s  (mean %.2f %% of a core)"
                  % (name, "  ".join("%.2f %%" % v for v in values), sum(values) / len(values)))
        cost = sum(cpu["repair on"]) / 3 - sum(cpu["repair off"]) / 3
        print("repair cost on an idle in-sync shard of %d keys: %.2f %% of a core per machine "
              "(interval %d s, rate %d cells/s)" % (a.keys, cost, a.interval_s, a.rate))
        helper = ClusterHelper(on)
        lost = helper.table()["ranges"][0]
        ic = helper.internal_client(1)
        ic.execute_command("CAIRN.REPAIR", "DROP", lost["start"], lost["end"])
        ic.close()
        started = time.monotonic()
        while True:
            dumps = [dump(helper, i) for i in range(3)]
            if dumps[0] == dumps[1] == dumps[2]:
                break
            time.sleep(1)
        print("a dropped range (%s..%s) was whole again on every replica after %.1f s"
              % (lost["start"], lost["end"], time.monotonic() - started))
    finally:
        on.close()
        off.close()


if __name__ == "__main__":
    main()
