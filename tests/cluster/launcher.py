#!/usr/bin/python3
"""Start a multi-machine Cairn cluster on loopback, for tests and by hand.

Until the orchestrator exists, a cluster is N `cairn server` processes with a routing table
pushed by hand. Machine i (0-based) binds its own loopback address 127.0.0.(i+2) and port
base_port + i, and connects to its peers from that address, so a fault test can cut the link
between two machines with iptables on their addresses (tests/fault/nemesis.py).

As a module:

    with Cluster(machines=6, shards=2, rf=3) as c:
        r = c.client(0)            # redis.Redis on machine 0
        c.shard_of("user:1")        # the shard id owning a key (pure Python token, xxh3.py)
        c.kill(3); c.restart(3)     # SIGKILL, then start again with the same data and args

From the shell (prints how to connect, stops everything on Ctrl-C):

    /usr/bin/python3 tests/cluster/launcher.py --machines 6 --shards 2 --rf 3 [--port 7000]

The orchestrator issue replaces the static table (push_table), not the launcher.
"""

import argparse
import atexit
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xxh3 import token_of  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_BINARY = os.environ.get("CAIRN_BIN", os.path.join(REPO_ROOT, "build", "cairn"))
DEFAULT_SECRET = "cairn-test-secret"
START_TIMEOUT_S = 15.0
STOP_GRACE_S = 5.0
RING = 1 << 64

# Every process any Cluster started, killed at interpreter exit if a test forgot close().
_LIVE = set()


@atexit.register
def _kill_leftovers():
    for proc in list(_LIVE):
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait(timeout=5)
        except Exception:  # best effort at exit
            pass


def machine_host(i):
    """The loopback address of machine i (0-based): 127.0.0.2, 127.0.0.3, ..."""
    if not 0 <= i < 250:
        raise ValueError("machine index %d out of 0..249" % i)
    return "127.0.0.%d" % (i + 2)


def format_token(token):
    return "0x%016x" % token


def parse_token(text):
    return int(text, 16) if isinstance(text, str) else int(text)


def build_table(addresses, shards, rf, ranges_per_shard=4, epoch=1):
    """A routing table dict in the JSON form of src/topology/routing_table.h.

    Same layout as RoutingTable::make_initial: shard k (id k+1) takes machines k*rf .. k*rf+rf-1
    (ids are index + 1) as voting replicas, its first replica leads with a lease that never
    expires (0); machines left over are spares. The ring is cut into shards * ranges_per_shard
    equal ranges dealt round-robin, so each shard owns several ranges interleaved around the ring.
    """
    if shards < 1 or rf < 1 or ranges_per_shard < 1:
        raise ValueError("shards, rf and ranges_per_shard must be >= 1")
    if len(addresses) < shards * rf:
        raise ValueError("%d shards x rf %d need %d machines, only %d given"
                         % (shards, rf, shards * rf, len(addresses)))
    members = shards * rf
    machines = [{"id": i + 1, "address": a, "internal_address": a,
                 "state": "up" if i < members else "spare"}
                for i, a in enumerate(addresses)]
    shard_list = []
    for k in range(shards):
        replicas = [k * rf + r + 1 for r in range(rf)]
        shard_list.append({"id": k + 1, "replicas": replicas, "extras": [], "joining": [],
                           "leader": replicas[0], "lease_expiry_ms": 0})
    count = shards * ranges_per_shard
    ranges = []
    for i in range(count):
        start = (i * RING) // count
        end = ((i + 1) * RING) // count % RING  # the last range ends at 0, meaning 2^64
        ranges.append({"start": format_token(start), "end": format_token(end),
                       "shard": i % shards + 1})
    return {"epoch": epoch, "replication_factor": rf, "machines": machines,
            "shards": shard_list, "ranges": ranges}


def shard_for_token(table, token):
    """The shard id owning `token` in a table dict."""
    for r in table["ranges"]:
        start, end = parse_token(r["start"]), parse_token(r["end"])
        if token >= start and (end == 0 or token < end):
            return r["shard"]
    raise ValueError("token %s is in no range (invalid table)" % format_token(token))


def _port_free(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def find_base_port(count, lo=10000, hi=32000):
    """A base port such that base..base+count-1 are free on every machine's address. Below
    Linux's ephemeral range (32768-60999), so client connections cannot take a port between
    this check and a machine's (re)start."""
    import random
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(lo, hi - count)
        if all(_port_free(machine_host(i), base + i) for i in range(count)):
            return base
    raise RuntimeError("no free port range found")


class Machine:
    """One `cairn server` process of a cluster; index i is 0-based, machine id is i + 1."""

    def __init__(self, index, port, data_dir, args, binary, log_path):
        self.index = index
        self.id = index + 1
        self.host = machine_host(index)
        self.port = port
        self.data_dir = data_dir
        self.args = args
        self.binary = binary
        self.log_path = log_path
        self.proc = None
        self.paused = False

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    def command(self):
        return [self.binary, "server", "--bind", self.host, "--port", str(self.port),
                "--data-dir", self.data_dir] + list(self.args)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def spawn(self):
        assert not self.running(), "machine %d already running" % self.index
        os.makedirs(self.data_dir, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            log.write(b"\n=== start %s\n" % " ".join(self.command()).encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        finally:
            log.close()
        self.paused = False
        _LIVE.add(self.proc)

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-lines:]).decode(errors="replace")
        except OSError:
            return "(no log)"

    def wait_ready(self, timeout=START_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError("machine %d (%s) exited with %s during start:\n%s"
                                   % (self.index, self.address, self.proc.returncode,
                                      self.log_tail()))
            try:
                c = redis.Redis(host=self.host, port=self.port, socket_timeout=1,
                                socket_connect_timeout=1)
                try:
                    if c.ping():
                        return
                finally:
                    c.close()
            except redis.RedisError as e:
                last = e
            time.sleep(0.05)
        raise RuntimeError("machine %d (%s) did not answer PING within %.0fs (%s):\n%s"
                           % (self.index, self.address, timeout, last, self.log_tail()))

    def signal(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def wait_stopped(self, timeout):
        """Waits until every thread of the process is in state T (stopped); raises if not."""
        deadline = time.monotonic() + timeout
        task_dir = "/proc/%d/task" % self.proc.pid
        while True:
            states = []
            try:
                for tid in os.listdir(task_dir):
                    with open(os.path.join(task_dir, tid, "stat")) as f:
                        states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                states = ["?"]  # a thread came or went while listing: look again
            if states and all(s in ("T", "t") for s in states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("machine %d did not stop within %.1f s (thread states %s)"
                                   % (self.index, timeout, "".join(states)))
            time.sleep(0.005)

    def wait_exit(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def reap(self):
        if self.proc is not None:
            _LIVE.discard(self.proc)


class Cluster:
    """N cairn machines on 127.0.0.2.. with a hand-pushed routing table. See the module doc."""

    def __init__(self, machines=6, shards=2, rf=3, base_port=None, secret=DEFAULT_SECRET,
                 binary=DEFAULT_BINARY, data_root=None, extra_args=(), ranges_per_shard=4,
                 durability="always", start=True, standalone=False):
        """standalone=True starts the machines as independent single-machine servers (no
        cluster flags, no table): only for testing the fault framework itself, which must then
        report violations since nothing is replicated."""
        if machines < shards * rf:
            raise ValueError("need at least shards * rf machines")
        self.secret = secret
        self.binary = binary
        self.shards = shards
        self.rf = rf
        self.standalone = standalone
        self._own_root = data_root is None
        self.data_root = data_root or tempfile.mkdtemp(prefix="cairn-cluster-")
        os.makedirs(self.data_root, exist_ok=True)
        self.base_port = base_port if base_port is not None else find_base_port(machines)
        self.machines = []
        for i in range(machines):
            cluster_args = [] if standalone else ["--cluster-secret", secret,
                                                  "--machine-id", str(i + 1)]
            args = cluster_args + ["--durability", durability] + list(extra_args)
            self.machines.append(Machine(i, self.base_port + i,
                                         os.path.join(self.data_root, "m%d" % i), args, binary,
                                         os.path.join(self.data_root, "m%d.log" % i)))
        self._table = build_table([m.address for m in self.machines], shards, rf,
                                  ranges_per_shard)
        self._closed = False
        if start:
            try:
                self.start()
            except BaseException:
                self.close()
                raise

    # --- lifecycle -------------------------------------------------------------------------

    def start(self):
        for m in self.machines:
            if not m.running():
                m.spawn()
        for m in self.machines:
            m.wait_ready()
        self.push_table()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self, keep_data=False):
        """Stops every machine (SIGCONT first, so paused ones can exit) and removes the data."""
        if self._closed:
            return
        self._closed = True
        for m in self.machines:
            if m.running():
                m.signal(signal.SIGCONT)
                m.signal(signal.SIGTERM)
        for m in self.machines:
            if m.proc is not None and not m.wait_exit(STOP_GRACE_S):
                m.proc.kill()
                m.wait_exit(STOP_GRACE_S)
            m.reap()
        if self._own_root and not keep_data:
            shutil.rmtree(self.data_root, ignore_errors=True)

    def kill(self, i):
        """SIGKILL machine i and wait for it to be gone."""
        m = self.machines[i]
        if m.running():
            m.proc.kill()
            m.wait_exit(STOP_GRACE_S)
        m.paused = False

    def stop(self, i):
        """SIGTERM machine i (graceful), SIGKILL if it does not exit within the grace period."""
        m = self.machines[i]
        if m.running():
            m.signal(signal.SIGCONT)
            m.signal(signal.SIGTERM)
            if not m.wait_exit(STOP_GRACE_S):
                m.proc.kill()
                m.wait_exit(STOP_GRACE_S)
        m.paused = False

    def pause(self, i):
        """SIGSTOP machine i; returns once every thread of it has stopped. kill() only queues
        the stop: until one thread takes it, the others (the event loop) may still answer."""
        m = self.machines[i]
        m.signal(signal.SIGSTOP)
        m.paused = True
        if m.running():
            m.wait_stopped(STOP_GRACE_S)

    def resume(self, i):
        self.machines[i].signal(signal.SIGCONT)
        self.machines[i].paused = False

    def restart(self, i, push_table=True):
        """Starts machine i again with the same data directory and arguments; waits for PING and
        pushes the current table to it (a no-op if it kept the table)."""
        m = self.machines[i]
        if m.running():
            self.kill(i)
        m.reap()
        m.spawn()
        m.wait_ready()
        if push_table and not self.standalone:
            self._push_to(i, json.dumps(self._table))

    def running(self, i):
        return self.machines[i].running()

    # --- clients ---------------------------------------------------------------------------

    def host(self, i):
        return self.machines[i].host

    def port(self, i):
        return self.machines[i].port

    def address(self, i):
        return self.machines[i].address

    def client(self, i, **kw):
        """A redis.Redis on machine i (default socket timeout 10 s)."""
        kw.setdefault("socket_timeout", 10)
        kw.setdefault("socket_connect_timeout", 5)
        return redis.Redis(host=self.host(i), port=self.port(i), **kw)

    def internal_client(self, i, **kw):
        """A client on machine i authenticated for CAIRN.* commands."""
        c = self.client(i, single_connection_client=True, **kw)
        c.execute_command("CAIRN.AUTH", self.secret)
        return c

    # --- routing table ---------------------------------------------------------------------

    def table(self):
        """A copy of the routing table last pushed (a dict in the JSON form)."""
        return copy.deepcopy(self._table)

    def table_of(self, i):
        """The table machine i holds (CAIRN.TABLE GET), parsed, or None."""
        c = self.internal_client(i)
        try:
            text = c.execute_command("CAIRN.TABLE", "GET")
        finally:
            c.close()
        return None if text is None else json.loads(text)

    def _push_to(self, i, text):
        c = self.internal_client(i)
        try:
            reply = c.execute_command("CAIRN.TABLE", "SET", text)
        finally:
            c.close()
        if reply not in (True, b"OK", "OK"):
            raise RuntimeError("CAIRN.TABLE SET on machine %d answered %r" % (i, reply))

    def push_table(self, table=None, skip_down=True):
        """Installs `table` (default: the current one) on every running machine."""
        if table is not None:
            self._table = copy.deepcopy(table)
        if self.standalone:
            return
        text = json.dumps(self._table)
        for m in self.machines:
            if skip_down and (not m.running() or m.paused):
                continue
            self._push_to(m.index, text)

    def shard_of(self, key):
        """The shard id owning `key` (token computed in Python, same as src/topology)."""
        return shard_for_token(self._table, token_of(key))

    def replicas_of_shard(self, shard):
        """Machine indexes (0-based) of the voting replicas of `shard`, leader first."""
        for s in self._table["shards"]:
            if s["id"] == shard:
                return [mid - 1 for mid in s["replicas"]]
        raise KeyError(shard)

    def replicas_of(self, key):
        return self.replicas_of_shard(self.shard_of(key))

    def leader_of_shard(self, shard):
        for s in self._table["shards"]:
            if s["id"] == shard:
                return s["leader"] - 1
        raise KeyError(shard)

    def keys_on_shard(self, shard, count, prefix="k"):
        """`count` distinct keys "<prefix><n>" owned by `shard`."""
        keys, n = [], 0
        while len(keys) < count:
            key = "%s%d" % (prefix, n)
            if self.shard_of(key) == shard:
                keys.append(key)
            n += 1
            if n > 1000 * count + 10000:
                raise RuntimeError("shard %d owns too few keys" % shard)
        return keys


def main(argv=None):
    p = argparse.ArgumentParser(description="Start a Cairn cluster on loopback 127.0.0.2...")
    p.add_argument("--machines", type=int, default=6)
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--rf", type=int, default=3)
    p.add_argument("--port", type=int, default=None, help="base port (machine i: port + i)")
    p.add_argument("--secret", default=DEFAULT_SECRET)
    p.add_argument("--binary", default=DEFAULT_BINARY)
    p.add_argument("--data-root", default=None, help="default: a temporary directory, removed")
    p.add_argument("--ranges-per-shard", type=int, default=4)
    p.add_argument("--durability", default="always")
    p.add_argument("extra", nargs="*", help="extra arguments for every `cairn server` (after --)")
    a = p.parse_args(argv)
    c = Cluster(machines=a.machines, shards=a.shards, rf=a.rf, base_port=a.port,
                secret=a.secret, binary=a.binary, data_root=a.data_root, extra_args=a.extra,
                ranges_per_shard=a.ranges_per_shard, durability=a.durability)
    try:
        print("Cairn cluster: %d machines, %d shards, RF %d, data in %s"
              % (a.machines, a.shards, a.rf, c.data_root))
        for m in c.machines:
            role = [s["id"] for s in c.table()["shards"] if m.id in s["replicas"]]
            print("  machine %d  %s  pid %d  shard %s  log %s"
                  % (m.id, m.address, m.proc.pid, role[0] if role else "spare", m.log_path))
        print("Connect with:  redis-cli -h %s -p %d" % (c.host(0), c.port(0)))
        print("Ctrl-C stops every machine.")
        sys.stdout.flush()
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        reported = set()
        while not stop:
            for m in c.machines:
                if not m.running() and m.proc not in reported:
                    reported.add(m.proc)
                    print("machine %d exited (%s); log tail:\n%s"
                          % (m.id, m.proc.returncode, m.log_tail()))
                    sys.stdout.flush()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping...")
        c.close(keep_data=a.data_root is not None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
