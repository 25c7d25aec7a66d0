"""The fault-test driver: a cluster, client threads doing unique-value SETs and GETs at the
default QUORUM levels, a nemesis hurting one machine at a time, the final reads and the check.
With rows (`--rows`), every register is one field of a hash instead ("key|field": HSET and
HGET), so the checker judges each field on its own (per-field registers).

    /usr/bin/python3 tests/fault/workload.py --seconds 600 --shards 2   # what run_long.sh does
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))

import checker  # noqa: E402
import launcher  # noqa: E402
from history import FAIL, OK, READ, UNCERTAIN, WRITE, History  # noqa: E402
from nemesis import COMMENT, Nemesis  # noqa: E402

CLIENT_TIMEOUT_S = 3.0
FINAL_READ_DEADLINE_S = 30.0
RECOVERY_DEADLINE_S = 30.0
# After the faults, anti-entropy repair (a pass every REPAIR_INTERVAL_S) must make every replica
# of a shard hold the same cells of the preloaded keys within this long.
REPAIR_INTERVAL_S = 3
CONVERGE_DEADLINE_S = 60.0


def cluster_supported(binary=launcher.DEFAULT_BINARY):
    try:
        out = subprocess.run([binary, "server", "--help"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False, ""
    return "--cluster-secret" in out, out


def _as_text(v):
    return v.decode() if isinstance(v, bytes) else v


def write_register(conn, register, value):
    """SET, or HSET of one field when the register is "key|field"."""
    if "|" in register:
        key, field = register.split("|", 1)
        conn.hset(key, field, value)
    else:
        conn.set(register, value)


def read_register(conn, register):
    if "|" in register:
        key, field = register.split("|", 1)
        return _as_text(conn.hget(key, field))
    return _as_text(conn.get(register))


def write_outcome(message):
    """How a refused write counts: UNCERTAIN may have been applied; so may a hash write the
    shard leader received but whose answer never came back to the forwarding machine."""
    if message.startswith("UNCERTAIN") or message.startswith("UNAVAILABLE shard leader"):
        return UNCERTAIN
    return FAIL


class Client(threading.Thread):
    """One client thread: a random key, a random machine, SET (unique value) or GET."""

    def __init__(self, name, cluster, keys, history, stop, seed, write_ratio=0.5):
        super().__init__(name=name, daemon=True)
        self.cluster, self.keys, self.history, self.stop = cluster, keys, history, stop
        self.rng = random.Random(seed)
        self.write_ratio = write_ratio
        self.conns = [cluster.client(i, socket_timeout=CLIENT_TIMEOUT_S,
                                     socket_connect_timeout=CLIENT_TIMEOUT_S)
                      for i in range(len(cluster.machines))]
        self.count = 0
        self.crash = None

    def run(self):
        try:
            while not self.stop.is_set():
                self.one()
        except BaseException as e:  # a bug in the driver itself: surface it in the test
            self.crash = e

    def one(self):
        key = self.rng.choice(self.keys)
        conn = self.rng.choice(self.conns)
        if self.rng.random() < self.write_ratio:
            self.count += 1
            value = "%s-%d" % (self.name, self.count)
            op = self.history.invoke(self.name, WRITE, key, value)
            try:
                write_register(conn, key, value)
                self.history.complete(op, OK)
            except redis.ResponseError as e:
                msg = str(e)
                self.history.complete(op, write_outcome(msg), error=msg)
            except (redis.ConnectionError, redis.TimeoutError) as e:
                self.history.complete(op, UNCERTAIN, error=type(e).__name__)
                time.sleep(0.05)  # the machine is down or stuck: do not spin
        else:
            op = self.history.invoke(self.name, READ, key)
            try:
                value = read_register(conn, key)
                self.history.complete(op, OK, value=value)
            except redis.RedisError as e:
                self.history.complete(op, FAIL, error="%s: %s" % (type(e).__name__, e))
                if not isinstance(e, redis.ResponseError):
                    time.sleep(0.05)


def wait_all_up(cluster, deadline_s=RECOVERY_DEADLINE_S):
    end = time.monotonic() + deadline_s
    for i in range(len(cluster.machines)):
        while True:
            try:
                if cluster.client(i, socket_timeout=2).ping():
                    break
            except redis.RedisError:
                pass
            if time.monotonic() > end:
                raise RuntimeError("machine %d did not come back:\n%s"
                                   % (i, cluster.machines[i].log_tail()))
            time.sleep(0.2)


def final_reads(cluster, keys, history, rng):
    """One successful QUORUM read per key (retried through any machine until a deadline)."""
    for key in keys:
        end = time.monotonic() + FINAL_READ_DEADLINE_S
        while True:
            i = rng.randrange(len(cluster.machines))
            op = history.invoke("final", READ, key, final=True)
            try:
                value = read_register(cluster.client(i, socket_timeout=CLIENT_TIMEOUT_S), key)
                history.complete(op, OK, value=value)
                break
            except redis.RedisError as e:
                history.complete(op, FAIL, error="%s: %s" % (type(e).__name__, e))
                if time.monotonic() > end:
                    break  # the checker reports the key as unreadable
                time.sleep(0.2)


def finish_and_check(clients, cluster, keys, history, rng):
    """Joins stopped Client threads, reads every key back at the end, and returns the checker's
    violations (tests/fault/checker.py) over the whole history; a crash of the driver itself
    is raised."""
    for t in clients:
        t.join(10)
    for t in clients:
        if t.crash is not None:
            raise t.crash
    final_reads(cluster, keys, history, rng)
    return checker.check(history.ops())


def preload(cluster, count, rng):
    """Writes `count` keys once, before any fault, each acknowledged (at QUORUM); returns
    {key: value}. They are never written again: the end of the run reads them back one by one
    and compares them replica by replica."""
    data = {}
    c = cluster.client(0, socket_timeout=CLIENT_TIMEOUT_S)
    for n in range(count):
        key, value = "pre:%d" % n, "once-%d-%d" % (n, rng.randrange(1 << 30))
        end = time.monotonic() + FINAL_READ_DEADLINE_S
        while True:
            try:
                assert c.set(key, value)
                break
            except redis.RedisError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.2)
        data[key] = value.encode()
    return data


def preload_lost(cluster, data, rng):
    """Preloaded keys a QUORUM read (through a random machine) does not return as written."""
    lost = []
    for key, value in data.items():
        end = time.monotonic() + FINAL_READ_DEADLINE_S
        while True:
            i = rng.randrange(len(cluster.machines))
            try:
                got = cluster.client(i, socket_timeout=CLIENT_TIMEOUT_S).get(key)
                if got != value:
                    lost.append((key, value, got))
                break
            except redis.RedisError:
                if time.monotonic() > end:
                    lost.append((key, value, "unreadable"))
                    break
                time.sleep(0.2)
    return lost


def replica_divergence(cluster, keys, deadline_s=CONVERGE_DEADLINE_S):
    """Waits until every voting replica of each key's shard stores the same cell for every key
    (CAIRN.READ, as stored, timestamps included); returns the keys still differing after the
    deadline, with each replica's cell."""
    end = time.monotonic() + deadline_s
    while True:
        epoch = cluster.table()["epoch"]
        differing = []
        for key in keys:
            cells = []
            for i in cluster.replicas_of(key):
                ic = cluster.internal_client(i, socket_timeout=CLIENT_TIMEOUT_S)
                try:
                    cells.append(ic.execute_command("CAIRN.READ", epoch, key))
                finally:
                    ic.close()
            if len(set(cells)) != 1:
                differing.append((key, cells))
        if not differing or time.monotonic() > end:
            return differing
        time.sleep(1.0)


def leftover_rules():
    out = subprocess.run(["iptables", "-S", "INPUT"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if COMMENT in line]


def run(seconds=60, machines=3, shards=1, rf=3, threads=4, keys_per_shard=6, seed=None,
        partitions=True, log=print, history_path=None, standalone=False, rows=False,
        preloaded=300):
    """Runs one fault test; returns a dict of results (violations, counts, events). In a
    cluster, `preloaded` keys are written once before the faults and checked at the end: read
    back key by key ("preload_lost") and compared replica by replica after repair
    ("replica_divergence")."""
    ok, help_text = cluster_supported()
    if not ok and not standalone:
        raise RuntimeError("build/cairn has no cluster mode (--cluster-secret)")
    extra = []
    if "--request-timeout-ms" in help_text and not standalone:
        extra += ["--request-timeout-ms", "1000"]
    if "--repair-interval-s" in help_text and not standalone:
        extra += ["--repair-interval-s", str(REPAIR_INTERVAL_S)]
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    log("fault test: seed %d, %d s, %d machines, %d shards, RF %d, %d clients"
        % (seed, seconds, machines, shards, rf, threads))
    history = History()
    started = time.monotonic()
    with launcher.Cluster(machines=machines, shards=shards, rf=rf, extra_args=extra,
                          standalone=standalone) as c:
        keys = []
        for s in range(1, shards + 1):
            keys += c.keys_on_shard(s, keys_per_shard, prefix="fk%d:" % s)
        if rows:
            # Two hashes per shard, each key's registers being fields of one of them.
            keys = ["%s|f%d" % (k, n) for k in keys[::3] for n in range(3)]
        data = {} if standalone else preload(c, preloaded, rng)
        stop = threading.Event()
        clients = [Client("c%d" % n, c, keys, history, stop, rng.randrange(1 << 30))
                   for n in range(threads)]
        nem = Nemesis(c, seed=rng.randrange(1 << 30), log=log, partitions=partitions)
        nem_error = []

        def nemesis_main():
            try:
                nem.run(stop)
            except BaseException as e:
                nem_error.append(e)

        nem_thread = threading.Thread(target=nemesis_main, daemon=True)
        try:
            for t in clients:
                t.start()
            nem_thread.start()
            stop.wait(seconds)
        finally:
            stop.set()
            nem_thread.join(60)
            for t in clients:
                t.join(CLIENT_TIMEOUT_S * 3)
            nem.heal()  # idempotent; covers a nemesis thread that died
        for t in clients:
            if t.crash is not None:
                raise t.crash
        if nem_error:
            raise nem_error[0]
        rules = leftover_rules() if nem.partitions_enabled else []
        wait_all_up(c)
        time.sleep(1.0)  # let hints replay; final reads repair anyway
        final_reads(c, keys, history, rng)
        lost = preload_lost(c, data, rng)
        divergent = replica_divergence(c, sorted(data))
        ops = history.ops()
        violations = checker.check(ops)
        if history_path is None and violations:
            history_path = os.path.join(tempfile.gettempdir(), "cairn-fault-%d.jsonl" % seed)
        if history_path:
            history.dump(history_path)
        result = {
            "seed": seed, "seconds": round(time.monotonic() - started, 1),
            "machines": machines, "shards": shards, "rf": rf, "clients": threads,
            "keys": len(keys), "ops": len(ops), "summary": history.summary(),
            "faults": [text for _, text in nem.events],
            "partitions": nem.partitions_enabled, "partition_skip": nem.partition_skip_reason,
            "violations": violations, "report": checker.report(violations),
            "leftover_rules": rules, "history_path": history_path,
            "preloaded": len(data), "preload_lost": lost, "replica_divergence": divergent,
        }
    counts = dict(sorted(nem.counts.items()))
    result["fault_counts"] = counts
    log("fault test: %d ops (%s); faults %s; %s" % (result["ops"], result["summary"], counts,
                                                    result["report"].splitlines()[0]))
    log("fault test: %d preloaded keys, %d lost, %d still differing between replicas"
        % (result["preloaded"], len(result["preload_lost"]), len(result["replica_divergence"])))
    if violations:
        log(checker.report(violations, limit=20))
        log("history written to %s" % history_path)
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description="Run the Cairn fault test once.")
    p.add_argument("--seconds", type=int, default=600)
    p.add_argument("--machines", type=int, default=None)
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--rf", type=int, default=3)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-partitions", action="store_true")
    p.add_argument("--rows", action="store_true", help="registers are fields of hashes")
    p.add_argument("--history", default=None, help="write the history (JSON lines) here")
    a = p.parse_args(argv)
    result = run(seconds=a.seconds, machines=a.machines or a.shards * a.rf, shards=a.shards,
                 rf=a.rf, threads=a.clients, seed=a.seed, partitions=not a.no_partitions,
                 history_path=a.history, rows=a.rows)
    print("RESULT %s seed=%d seconds=%s machines=%d shards=%d rf=%d ops=%d faults=%s "
          "violations=%d leftover_rules=%d"
          % ("PASS" if not result["violations"] and not result["leftover_rules"] else "FAIL",
             result["seed"], result["seconds"], result["machines"], result["shards"],
             result["rf"], result["ops"], result["fault_counts"], len(result["violations"]),
             len(result["leftover_rules"])))
    print("outcomes: " + result["summary"])
    return 1 if result["violations"] or result["leftover_rules"] else 0


if __name__ == "__main__":
    sys.exit(main())
