"""Several orchestrators on a real etcd, with real machines (docs/orchestrator-ha.md).

    with HaCluster(orchestrators=3, etcd_members=1) as h:
        h.wait_bootstrapped()
        leader = h.leader()                 # index of the orchestrator that leads
        h.kill_orchestrator(leader)         # SIGKILL
        h.restart_orchestrator(leader)

Every process listens on loopback (127.0.0.1). With `etcd_links=True`, etcd also listens on one
address of its own per orchestrator (127.A.B.1+i for orchestrator i, A.B drawn at random so that
concurrent runs share no address) and orchestrator i reaches etcd through that one only:
`partition_from_etcd(i)` (iptables rules on that address, both directions, through the fault
tests' nemesis) cuts orchestrator i off from etcd while clients, machines and the other
orchestrators still reach everything. etcd runs with a 50 ms heartbeat and a 500 ms election
timeout, the tuning under which it grants 1 s leases (docs/orchestrator-ha.md).
"""

import base64
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import redis

from dev_cluster import CAIRN_BIN, REPO_ROOT, _LIVE, free_port_block, wait_for

# The fault tests' nemesis owns iptables rules (added and removed by their full specification,
# removed at exit as a last resort): one implementation for every test that cuts a link.
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "fault"))
import nemesis  # noqa: E402

ETCD_BIN = shutil.which("etcd") or "/usr/bin/etcd"
SECRET = "ha-test-secret"


def etcd_available():
    return os.path.exists(ETCD_BIN)


def http_json(url, method="GET", body=None, secret=None, timeout=2):
    """(status, parsed JSON or None) of one request; never follows redirects."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if secret:
        req.add_header("Authorization", "Bearer " + secret)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=timeout) as resp:
            text = resp.read().decode()
            status = resp.status
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        status = e.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, None


class Etcd:
    """1 or 3 etcd members on loopback, data under `root`."""

    def __init__(self, root, members=1, link_hosts=()):
        self.root = root
        self.link_hosts = list(link_hosts)  # extra addresses every member's clients may use
        base = free_port_block(2 * members)
        self.client_ports = [base + 2 * i for i in range(members)]
        self.peer_ports = [base + 2 * i + 1 for i in range(members)]
        self.names = ["e%d" % i for i in range(members)]
        self.procs = [None] * members
        self.initial = ",".join("%s=http://127.0.0.1:%d" % (n, p)
                                for n, p in zip(self.names, self.peer_ports))

    def urls(self, host="127.0.0.1"):
        return ",".join("http://%s:%d" % (host, p) for p in self.client_ports)

    def start_member(self, i):
        data = os.path.join(self.root, "etcd-" + self.names[i])
        argv = [ETCD_BIN, "--name", self.names[i], "--data-dir", data,
                "--listen-client-urls", ",".join(
                    "http://%s:%d" % (host, self.client_ports[i])
                    for host in ["127.0.0.1"] + self.link_hosts),
                "--advertise-client-urls", "http://127.0.0.1:%d" % self.client_ports[i],
                "--listen-peer-urls", "http://127.0.0.1:%d" % self.peer_ports[i],
                "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % self.peer_ports[i],
                "--initial-cluster", self.initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", os.path.basename(self.root),
                "--heartbeat-interval", "50", "--election-timeout", "500",
                "--auto-compaction-mode", "revision", "--auto-compaction-retention", "1000",
                "--logger", "zap", "--log-level", "warn"]
        log = open(os.path.join(self.root, "etcd-%s.log" % self.names[i]), "a")
        self.procs[i] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        _LIVE.add(self.procs[i])

    def start(self):
        for i in range(len(self.names)):
            self.start_member(i)
        wait_for(lambda: self.healthy(0), 30, what="etcd to serve")

    def healthy(self, i):
        status, body = http_json("http://127.0.0.1:%d/v3/maintenance/status" %
                                 self.client_ports[i], method="POST", body={}, timeout=1)
        return status == 200 and body is not None and int(body.get("leader", "0")) != 0

    def kill_member(self, i, sig=signal.SIGKILL):
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            if sig == signal.SIGKILL:
                proc.wait(timeout=10)

    def get(self, key):
        """A key's value (str) read straight from etcd, or None."""
        for port in self.client_ports:
            try:
                status, body = http_json("http://127.0.0.1:%d/v3/kv/range" % port, "POST",
                                         {"key": base64.b64encode(key.encode()).decode()})
            except OSError:
                continue
            if status == 200:
                kvs = body.get("kvs") or []
                return base64.b64decode(kvs[0]["value"]).decode() if kvs else None
        return None

    def close(self):
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            _LIVE.discard(proc)


class HaCluster:
    """etcd + `orchestrators` x `cairn orchestrator --etcd` + shards x rf + spares machines."""

    def __init__(self, orchestrators=3, etcd_members=1, shards=1, rf=3, spares=1,
                 down_after_ms=1000, dead_after_ms=3000, prefix="/cairn/test", binary=CAIRN_BIN,
                 orchestrator_args=(), etcd_links=False):
        self.tmp = tempfile.mkdtemp(prefix="cairn-ha-test-")
        self.binary = binary
        self.prefix = prefix
        # The address orchestrator i reaches etcd on (etcd_links: one of its own).
        self.etcd_hosts = ["127.0.0.1"] * orchestrators
        if etcd_links:
            net = "127.%d.%d." % (random.randint(100, 250), random.randint(1, 250))
            self.etcd_hosts = [net + str(1 + i) for i in range(orchestrators)]
        self.partitioned = []  # (src, dst) rules installed by partition_from_etcd
        self.etcd = Etcd(self.tmp, etcd_members,
                         link_hosts=self.etcd_hosts if etcd_links else ())
        self.machine_count = shards * rf + spares
        base = free_port_block(orchestrators + self.machine_count + 8)
        self.orchestrator_ports = [base + i for i in range(orchestrators)]
        self.machine_ports = [base + orchestrators + i for i in range(self.machine_count + 8)]
        self.orchestrator_args = ["--rf", str(rf), "--initial-shards", str(shards),
                                  "--min-spares", str(spares), "--down-after-ms",
                                  str(down_after_ms), "--dead-after-ms", str(dead_after_ms)]
        self.orchestrator_args += list(orchestrator_args)
        self.orchestrators = [None] * orchestrators
        self.machines = {}

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self, machines=True):
        self.etcd.start()
        for i in range(len(self.orchestrators)):
            self.start_orchestrator(i)
        if machines:
            for i in range(self.machine_count):
                self.start_machine(i)
        return self

    def orchestrator_list(self):
        return ",".join("127.0.0.1:%d" % p for p in self.orchestrator_ports)

    def start_orchestrator(self, i, extra=()):
        argv = [self.binary, "orchestrator", "--etcd", self.etcd.urls(self.etcd_hosts[i]),
                "--etcd-prefix",
                self.prefix, "--port", str(self.orchestrator_ports[i]), "--bind", "127.0.0.1",
                "--cluster-secret", SECRET] + self.orchestrator_args + list(extra)
        log = open(os.path.join(self.tmp, "orchestrator-%d.log" % i), "a")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        _LIVE.add(proc)
        self.orchestrators[i] = proc
        wait_for(lambda: self.status(i) is not None, 30, what="orchestrator %d to answer" % i)

    def start_machine(self, i):
        argv = [self.binary, "server", "--cluster-secret", SECRET, "--orchestrator",
                self.orchestrator_list(), "--port", str(self.machine_ports[i]), "--data-dir",
                os.path.join(self.tmp, "m%d" % i), "--bind", "127.0.0.1"]
        log = open(os.path.join(self.tmp, "m%d.log" % i), "a")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        _LIVE.add(proc)
        self.machines[i] = proc
        wait_for(lambda: self.client(i).ping(), 30, what="machine %d to answer PING" % i)

    def kill_orchestrator(self, i, sig=signal.SIGKILL):
        proc = self.orchestrators[i]
        proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            proc.wait(timeout=15)
            _LIVE.discard(proc)
            self.orchestrators[i] = None

    def wait_orchestrator_stopped(self, i, timeout_s=10):
        """After SIGSTOP: waits until every thread of orchestrator i is stopped (kill() only
        queues the stop; until each thread takes it, the process may still act)."""
        tasks = "/proc/%d/task" % self.orchestrators[i].pid

        def state(tid):
            with open(os.path.join(tasks, tid, "stat")) as f:
                return f.read().rsplit(")", 1)[1].split()[0]

        def stopped():
            try:
                return all(state(tid) in ("T", "t") for tid in os.listdir(tasks))
            except OSError:  # a thread came or went while listing
                return False
        wait_for(stopped, timeout_s, interval_s=0.005, what="orchestrator %d to stop" % i)

    def restart_orchestrator(self, i):
        self.start_orchestrator(i)

    def kill_machine(self, i):
        proc = self.machines.pop(i)
        proc.kill()
        proc.wait(timeout=10)
        _LIVE.discard(proc)

    def partition_from_etcd(self, i):
        """Drops every packet to and from orchestrator i's etcd address (REQUIRES
        etcd_links=True and a usable iptables, nemesis.iptables_status())."""
        link = self.etcd_hosts[i]
        assert link != "127.0.0.1", "partitions need HaCluster(etcd_links=True)"
        for src, dst in (("127.0.0.1", link), (link, "127.0.0.1")):
            nemesis._add_rule(src, dst)
            self.partitioned.append((src, dst))

    def heal(self):
        """Deletes exactly the rules partition_from_etcd added."""
        failed = [(src, dst) for src, dst in self.partitioned
                  if not nemesis._delete_rule(src, dst)]
        self.partitioned = []
        assert not failed, "iptables rules left behind: %r" % failed

    def close(self):
        if self.partitioned:
            self.heal()
        for proc in list(self.orchestrators) + list(self.machines.values()):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            _LIVE.discard(proc)
        self.etcd.close()
        if os.environ.get("CAIRN_KEEP_TEST_DIR"):
            print("kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ---- reading -----------------------------------------------------------------------------

    def url(self, i, path):
        return "http://127.0.0.1:%d%s" % (self.orchestrator_ports[i], path)

    def api(self, i, path, method="GET", body=None, secret=None, timeout=2):
        return http_json(self.url(i, path), method, body, secret, timeout)

    def status(self, i):
        try:
            code, body = self.api(i, "/v1/status", timeout=1)
        except OSError:
            return None
        return body if code == 200 else None

    def leader(self):
        """The index of the orchestrator that says it leads, or None."""
        for i, proc in enumerate(self.orchestrators):
            if proc is None:
                continue
            status = self.status(i)
            if status and status.get("orchestrators", {}).get("role") == "leader":
                return i
        return None

    def leader_excluding(self, excluded):
        """The index of an orchestrator other than `excluded` that says it leads, or None."""
        for i, proc in enumerate(self.orchestrators):
            if proc is None or i == excluded:
                continue
            status = self.status(i)
            if status and status.get("orchestrators", {}).get("role") == "leader":
                return i
        return None

    def wait_leader(self, timeout_s=15):
        def found():
            leader = self.leader()
            return (leader,) if leader is not None else None
        return wait_for(found, timeout_s, interval_s=0.02, what="an orchestrator to lead")[0]

    def wait_bootstrapped(self, timeout_s=60):
        def done():
            leader = self.leader()
            if leader is None:
                return False
            status = self.status(leader)
            return status and status.get("bootstrapped") and \
                status["machines"]["up"] == self.machine_count
        wait_for(done, timeout_s, interval_s=0.1, what="the cluster to bootstrap")
        # Every machine serves once it has installed a table (until then: NOTABLE), which it
        # fetches after a heartbeat answer names a newer epoch.
        for i in sorted(self.machines):
            wait_for(lambda: self.client(i).get("ha-ready") is None, timeout_s, interval_s=0.1,
                     what="machine %d to install a routing table" % i)

    def client(self, i, **kwargs):
        kwargs.setdefault("socket_timeout", 2)
        return redis.Redis(host="127.0.0.1", port=self.machine_ports[i], **kwargs)

    def stored_state(self):
        text = self.etcd.get(self.prefix + "/state")
        return json.loads(text) if text else None
