"""A `cairn dev` cluster for tests: started on free ports in a fresh data directory with short
failure-detection times, plus what the tests do to it (kill machines, add machines, restart the
orchestrator) and read from it (the orchestrator's HTTP API, `cairn admin`).

    with DevCluster() as d:              # 2 shards x RF 3 + 1 spare, down 1 s, dead 3 s
        d.client(0).set("k", "v")        # redis.Redis on dev machine 0
        d.machines()                     # GET /v1/machines
        d.kill(d.index_of(some_id))      # SIGKILL one machine
        d.add_machine()                  # one more `cairn server --orchestrator ...`

Machines are named by their index in the dev cluster (0..n-1, port base_port + i); machines a
test adds get the next indexes. The orchestrator assigns machine ids; index_of/id_of map them.
"""

import atexit
import json
import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import redis

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CAIRN_BIN = os.environ.get("CAIRN_BIN", os.path.join(REPO_ROOT, "build", "cairn"))

DOWN_AFTER_MS = 1000
DEAD_AFTER_MS = 3000
READY_TIMEOUT_S = 90.0  # the dev cluster's own bound is 30 s, plus process start on a busy host
STOP_TIMEOUT_S = 40.0   # `cairn dev` stops children within 2 x 10 s
API_STALL_S = 30.0     # how long get() keeps asking an orchestrator whose answers time out

_LIVE = set()  # every process started here, killed at exit if a test forgot close()


@atexit.register
def _kill_leftovers():
    for proc in list(_LIVE):
        try:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
        except Exception:  # best effort at exit
            pass


def orchestrator_supported(binary=CAIRN_BIN):
    """(True, "") when the binary has `cairn orchestrator` and `cairn dev`, else (False, why)."""
    try:
        out = subprocess.run([binary, "orchestrator", "--help"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, "cannot run %s: %s" % (binary, e)
    if out.returncode != 0 or "--dead-after-ms" not in out.stdout:
        return False, "%s has no `cairn orchestrator` yet" % binary
    return True, ""


def _port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


METRICS_PORT_OFFSET = 1000  # cairn dev: machine i's metrics port is its client port + 1000


def free_port_block(count):
    """A base port p with p..p+count-1 free a moment ago (random, so parallel runs rarely meet).
    Below Linux's ephemeral range (32768-60999): the tests' many client connections take
    ephemeral ports, and one could hold a port before a machine added or restarted later binds
    it (seen in bench/migration.sh). The machines' metrics ports (client port + 1000, as
    `cairn dev` gives them) must be free and below that range too."""
    for _ in range(200):
        base = random.randrange(10000, 32000 - METRICS_PORT_OFFSET - count)
        if all(_port_free(base + i) and _port_free(base + METRICS_PORT_OFFSET + i)
               for i in range(count)):
            return base
    raise RuntimeError("no block of %d free ports" % count)


def wait_for(predicate, timeout_s, interval_s=0.05, what="condition"):
    """Polls predicate() until it returns something true; returns it, or raises with `what`."""
    end = time.monotonic() + timeout_s
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # a transient API or connection error: retry until the deadline
            last_error = e
        if time.monotonic() > end:
            raise AssertionError("timed out after %.1f s waiting for %s (last error: %r)"
                                 % (timeout_s, what, last_error))
        time.sleep(interval_s)


def health(machine):
    """A machine's health (up/down/dead) from a /v1/machines entry."""
    return machine.get("health") or machine.get("state")


class DevCluster:
    def __init__(self, shards=2, rf=3, spares=1, down_after_ms=DOWN_AFTER_MS,
                 dead_after_ms=DEAD_AFTER_MS, binary=CAIRN_BIN, extra_args=()):
        self.shard_count, self.rf, self.spare_count = shards, rf, spares
        self.down_after_ms, self.dead_after_ms = down_after_ms, dead_after_ms
        self.binary = binary
        self.count = shards * rf + spares
        self.tmp = tempfile.mkdtemp(prefix="cairn-dev-test-")
        self.data_dir = os.path.join(self.tmp, "data")
        # Room for the dev machines, machines a test adds, and the orchestrator at the end.
        self.base_port = free_port_block(self.count + 12)
        self.orchestrator_port = self.base_port + self.count + 11
        self.pids = {}            # index -> pid of the running machine (dev child or ours)
        self.commands = {}        # index -> argv that starts the machine
        self.own = {}             # index -> Popen of machines this helper started
        self.orchestrator_pid = None
        self.orchestrator_pids = []
        self.orchestrator_command = None
        self.own_orchestrator = None
        self.output = []
        # `--orchestrators N` in extra_args: machines added here get every orchestrator's address.
        extra = list(extra_args)
        count = int(extra[extra.index("--orchestrators") + 1]) if "--orchestrators" in extra else 1
        self.orchestrator_addresses = ",".join(
            "127.0.0.1:%d" % (self.orchestrator_port + i) for i in range(count))
        self.args = [binary, "dev", "--shards", str(shards), "--rf", str(rf), "--spares",
                     str(spares), "--port", str(self.base_port), "--orchestrator-port",
                     str(self.orchestrator_port), "--data-dir", self.data_dir,
                     "--down-after-ms", str(down_after_ms), "--dead-after-ms",
                     str(dead_after_ms)] + list(extra_args)
        self.proc = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        _LIVE.add(self.proc)
        ready = threading.Event()
        reader = threading.Thread(target=self._read_output, args=(ready,), daemon=True)
        reader.start()
        if not ready.wait(READY_TIMEOUT_S) or self.proc.poll() is not None:
            self.close()
            raise RuntimeError("cairn dev did not become ready:\n" + self.output_text())
        self._parse_banner()
        return self

    def _read_output(self, ready):
        for line in self.proc.stdout:
            if len(self.output) < 10000:  # bounded: the banner and child events are what matter
                self.output.append(line.rstrip("\n"))
            if "Cairn dev cluster is ready" in line:
                ready.set()
        ready.set()  # EOF: start() sees the exit

    def _parse_banner(self):
        # The banner prints each line after "is ready"; wait until the last one has arrived.
        wait_for(lambda: any(l.startswith("Ctrl-C stops everything") for l in self.output), 10,
                 what="the whole banner")
        for line in self.output:
            m = re.match(r"\s+m(\d+)\s+127\.0\.0\.1:(\d+)\s+pid (\d+)", line)
            if m:
                index, port, pid = int(m.group(1)), int(m.group(2)), int(m.group(3))
                assert port == self.port(index), line
                self.pids[index] = pid
                self.commands[index] = _cmdline(pid)
            m = re.search(r"orchestrator(\d*) pid (\d+)", line)
            if m:
                # `cairn dev --orchestrators N` lists orchestrator0..N-1; the first is the one
                # the single-orchestrator helpers (kill_orchestrator...) act on.
                self.orchestrator_pids.append(int(m.group(2)))
                if self.orchestrator_pid is None:
                    self.orchestrator_pid = int(m.group(2))
                    self.orchestrator_command = _cmdline(self.orchestrator_pid)
        assert len(self.pids) == self.count, self.output_text()
        assert self.orchestrator_pid, self.output_text()

    def output_text(self):
        return "\n".join(self.output[-80:])

    def stop_dev(self, sig=signal.SIGTERM):
        """Stops `cairn dev` (it stops its children); returns its exit code."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=STOP_TIMEOUT_S)
        _LIVE.discard(self.proc)
        return code

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.stop_dev()
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for proc in list(self.own.values()) + [self.own_orchestrator]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            _LIVE.discard(proc)
        if os.environ.get("CAIRN_KEEP_TEST_DIR"):
            # Debugging aid: keep the data, the added machines' logs and `cairn dev`'s output.
            with open(os.path.join(self.tmp, "dev-output.log"), "w") as out:
                out.write("\n".join(self.output))
            print("kept %s" % self.tmp)
            return
        subprocess.run(["rm", "-rf", self.tmp], check=False)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ---- machines ----------------------------------------------------------------------------

    def port(self, index):
        return self.base_port + index

    def address(self, index):
        return "127.0.0.1:%d" % self.port(index)

    def client(self, index, **kwargs):
        kwargs.setdefault("socket_timeout", 5)
        kwargs.setdefault("socket_connect_timeout", 5)
        return redis.Redis(host="127.0.0.1", port=self.port(index), **kwargs)

    def kill(self, index, sig=signal.SIGKILL):
        """Sends sig to machine `index` and, for SIGKILL, waits until it is gone."""
        pid = self.pids.pop(index)
        os.kill(pid, sig)
        proc = self.own.pop(index, None)
        if proc is not None:
            proc.wait(timeout=10)
            _LIVE.discard(proc)
        else:
            wait_for(lambda: not _alive(pid), 10, what="pid %d to exit" % pid)

    def restart(self, index, extra_args=(), env=None):
        """Starts machine `index` again with its data and flags (after kill); `extra_args`
        (server flags, e.g. --rebuild-max-mb-per-s 1) are added from now on; `env` (added to
        this process's environment) only for this start."""
        assert index not in self.pids, "machine %d is running" % index
        self.commands[index] = self.commands[index] + list(extra_args)
        return self._start_machine(index, self.commands[index], env)

    def add_machine(self):
        """Starts one more machine (`cairn server --orchestrator ...`); returns its index."""
        index = max(self.commands) + 1
        with open(os.path.join(self.data_dir, "secret")) as f:
            secret = f.read().strip()
        argv = [self.binary, "server", "--cluster-secret", secret, "--orchestrator",
                self.orchestrator_addresses, "--port", str(self.port(index)),
                "--data-dir", os.path.join(self.data_dir, "extra%d" % index), "--bind",
                "127.0.0.1"]
        self.commands[index] = argv
        self._start_machine(index, argv)
        return index

    def _start_machine(self, index, argv, env=None):
        log = open(os.path.join(self.tmp, "m%d-%d.log" % (index, time.monotonic_ns())), "w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ, **env) if env else None)
        log.close()
        _LIVE.add(proc)
        self.own[index] = proc
        self.pids[index] = proc.pid
        wait_for(lambda: self.client(index, socket_timeout=1).ping(), 30,
                 what="machine %d to answer PING" % index)
        return index

    # ---- the orchestrator --------------------------------------------------------------------

    def kill_orchestrator(self, sig=signal.SIGKILL):
        pid = self.orchestrator_pid
        os.kill(pid, sig)
        if self.own_orchestrator is not None:
            self.own_orchestrator.wait(timeout=10)
            _LIVE.discard(self.own_orchestrator)
            self.own_orchestrator = None
        else:
            wait_for(lambda: not _alive(pid), 10, what="the orchestrator to exit")
        self.orchestrator_pid = None

    def restart_orchestrator(self):
        log = open(os.path.join(self.tmp, "orchestrator-%d.log" % time.monotonic_ns()), "w")
        proc = subprocess.Popen(self.orchestrator_command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        _LIVE.add(proc)
        self.own_orchestrator = proc
        self.orchestrator_pid = proc.pid
        wait_for(lambda: self.status(), 30, what="the restarted orchestrator to answer")

    # ---- the API and `cairn admin` -----------------------------------------------------------

    def api(self, path, method="GET", secret=None, timeout=3):
        """(HTTP status, parsed JSON body) of one API request. With several orchestrators
        (--orchestrators N), a GET that the first cannot answer (killed by a test, or just
        restarted: 503 until it has read etcd's state) goes to the next: any orchestrator
        answers reads (a follower from etcd, at most ~250 ms behind)."""
        ports = [self.orchestrator_port]
        if method == "GET":
            ports = [int(a.rsplit(":", 1)[1]) for a in self.orchestrator_addresses.split(",")]
        for n, port in enumerate(ports):
            last = n + 1 == len(ports)
            try:
                answer = self._api_on(port, path, method, secret, timeout)
            except OSError:  # unreachable (URLError, reset, timeout); HTTP errors are answers
                if last:
                    raise
                continue
            if answer[0] != 503 or last:
                return answer

    def _api_on(self, port, path, method, secret, timeout):
        request = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                         method=method, data=b"{}" if method == "POST" else None)
        if secret:
            request.add_header("Authorization", "Bearer " + secret)
        if method == "POST":
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return e.code, json.loads(body)
            except ValueError:
                return e.code, body

    def get(self, path):
        """The body of a GET that must answer 200. A read that times out is asked again for up
        to API_STALL_S: on an overloaded host the orchestrator's loop can stall for seconds (an
        fsync of its state, no CPU), and a test polling it must not fail for that alone."""
        deadline = time.monotonic() + API_STALL_S
        while True:
            try:
                code, body = self.api(path)
                break
            except (TimeoutError, urllib.error.URLError) as e:
                timed_out = isinstance(e, TimeoutError) or isinstance(
                    getattr(e, "reason", None), TimeoutError)
                if not timed_out or time.monotonic() > deadline:
                    raise
        assert code == 200, (path, code, body)
        return body

    def secret(self):
        with open(os.path.join(self.data_dir, "secret")) as f:
            return f.read().strip()

    def status(self):
        return self.get("/v1/status")

    def machines(self):
        return self.get("/v1/machines")

    def shards(self):
        return self.get("/v1/shards")

    def machine(self, machine_id):
        for m in self.machines():
            if m["id"] == machine_id:
                return m
        return None

    def id_of(self, index):
        for m in self.machines():
            if m["address"] == self.address(index):
                return m["id"]
        raise KeyError("no machine at %s" % self.address(index))

    def index_of(self, machine_id):
        address = self.machine(machine_id)["address"]
        return int(address.rsplit(":", 1)[1]) - self.base_port

    def shard_members(self, shard):
        """Every machine id holding a role in a /v1/shards entry."""
        return set(shard.get("replicas", [])) | set(shard.get("joining", [])) | set(
            shard.get("extras", []))

    def spares(self):
        """Ids of the machines that are up and hold no role."""
        members = set()
        for s in self.shards():
            members |= self.shard_members(s)
        return {m["id"] for m in self.machines() if health(m) == "up" and m["id"] not in members}

    def admin(self, *args, json_output=False):
        argv = [self.binary, "admin", "--orchestrator", "127.0.0.1:%d" % self.orchestrator_port]
        if json_output:
            argv.append("--json")
        out = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=20,
                             env=self._admin_env())
        assert out.returncode == 0, "cairn admin %s: %s%s" % (args, out.stdout, out.stderr)
        return json.loads(out.stdout) if json_output else out.stdout

    def _admin_env(self):
        """The environment of `cairn admin`: the cluster secret as an operator would export it."""
        return dict(os.environ, CAIRN_CLUSTER_SECRET=self.secret())

    def admin_fail(self, *args):
        """Runs `cairn admin` expecting a refusal; returns its output (stdout + stderr)."""
        argv = [self.binary, "admin", "--orchestrator", "127.0.0.1:%d" % self.orchestrator_port]
        out = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=20,
                             env=self._admin_env())
        assert out.returncode != 0, "cairn admin %s succeeded: %s" % (args, out.stdout)
        return out.stdout + out.stderr


def _cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


def _alive(pid):
    """Whether any thread of process `pid` still runs. The thread group leader of a killed
    multi-threaded process turns zombie before its other threads have exited, and those still
    hold its files (RocksDB's LOCK): a restart on the same data directory must wait for them."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().split(")")[-1].split()[0] not in ("Z", "X"):
                return True
        return len(os.listdir("/proc/%d/task" % pid)) > 1
    except OSError:
        return False


class MachinesView:
    """Some machines of a DevCluster as the fault workload (tests/fault/workload.py: Client,
    final_reads) sees a cluster: client(i) of its i-th machine."""

    def __init__(self, dev, indexes):
        self.dev, self.machines = dev, list(indexes)

    def client(self, i, **kwargs):
        return self.dev.client(self.machines[i], **kwargs)
