"""Measurement of a `cairn dev` cluster (docs/operations.md "Metrics", "Load per range"):
/metrics of a machine and of the orchestrator read by a strict Prometheus text-format parser,
the load per shard the orchestrator derives from heartbeats (/v1/load, `cairn admin load`),
`cairn admin --json` on either side of the subcommand, and a fresh cluster holding no key."""

import math
import json
import re
import socket
import subprocess
import time
import urllib.request

import pytest

from dev_cluster import DevCluster, orchestrator_supported, wait_for

pytestmark = pytest.mark.requires(*orchestrator_supported())

METRICS_PORT_OFFSET = 1000  # cairn dev: machine i serves /metrics on its client port + 1000

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(r"^(" + _NAME + r")(\{(.*)\})? (\S+)( -?\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def _value(text):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    return float(text)  # raises on anything else


def _labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        m = _LABEL.match(text, pos)
        assert m, "malformed labels: {%s}" % text
        name, raw = m.group(1), m.group(2)
        assert name not in labels, "label %s twice in {%s}" % (name, text)
        labels[name] = re.sub(r"\\(.)", lambda e: {"n": "\n"}.get(e.group(1), e.group(1)), raw)
        pos = m.end()
    return labels


def parse_prometheus(text):
    """Parses the text exposition format strictly: every line is a HELP, a TYPE or a sample;
    every sample belongs to a family declared (HELP and TYPE) before it; a family's samples are
    contiguous; no series appears twice; histograms have increasing le bounds, cumulative
    counts, a +Inf bucket equal to _count, and a _sum. Returns {family: {"type", "help",
    "samples": [(name, labels, value)]}}."""
    families, order, seen = {}, [], set()
    assert text.endswith("\n"), "the body must end with a newline"
    for number, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d: %r" % (number, line)
        assert line, "empty " + where
        if line.startswith("#"):
            parts = line.split(" ", 3)
            assert len(parts) >= 3 and parts[1] in ("HELP", "TYPE"), "bad comment " + where
            name = parts[2]
            assert re.fullmatch(_NAME, name), where
            family = families.setdefault(name, {"type": None, "help": None, "samples": []})
            if parts[1] == "TYPE":
                assert family["type"] is None, "TYPE twice " + where
                assert len(parts) == 4 and parts[3] in _TYPES, "bad type " + where
                assert not family["samples"], "TYPE after samples " + where
                family["type"] = parts[3]
            else:
                assert family["help"] is None, "HELP twice " + where
                family["help"] = parts[3] if len(parts) == 4 else ""
            if not order or order[-1] != name:
                assert name not in order, "family %s declared in two places" % name
                order.append(name)
            continue
        m = _SAMPLE.match(line)
        assert m, "not a sample " + where
        name, labels, value = m.group(1), _labels(m.group(3) or ""), _value(m.group(4))
        family_name = name
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[: -len(suffix)]
            if name.endswith(suffix) and base in families and families[base]["type"] == "histogram":
                family_name = base
        assert family_name in families, "sample of an undeclared family " + where
        family = families[family_name]
        assert family["type"] and family["help"] is not None, "no HELP/TYPE before " + where
        assert order[-1] == family_name, "family %s is not contiguous" % family_name
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, "series twice " + where
        seen.add(key)
        if family["type"] == "counter":
            assert value >= 0, "negative counter " + where
        family["samples"].append((name, labels, value))
    for name, family in families.items():
        assert family["type"] and family["help"] is not None, "family %s lacks HELP or TYPE" % name
        if family["type"] == "histogram":
            _check_histogram(name, family["samples"])
    return families


def _check_histogram(name, samples):
    series = {}
    for sample_name, labels, value in samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if sample_name == name + "_bucket":
            s["buckets"].append((_value(labels["le"]), value))
        elif sample_name == name + "_sum":
            s["sum"] = value
        elif sample_name == name + "_count":
            s["count"] = value
    assert series, "histogram %s has no series" % name
    for rest, s in series.items():
        bounds = [le for le, _ in s["buckets"]]
        counts = [c for _, c in s["buckets"]]
        assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), (name, rest, bounds)
        assert bounds and bounds[-1] == math.inf, "%s%s lacks +Inf" % (name, rest)
        assert all(a <= b for a, b in zip(counts, counts[1:])), "%s%s not cumulative" % (name, rest)
        assert s["count"] == counts[-1], (name, rest, s["count"], counts[-1])
        assert s["sum"] is not None and s["sum"] >= 0, (name, rest)


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return parse_prometheus(response.read().decode())


def sample(families, name, **labels):
    """The value of the sample `name` (a family, or a histogram's _count/_sum) with `labels`."""
    for family in families.values():
        for sample_name, sample_labels, value in family["samples"]:
            if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items()):
                return value
    raise KeyError("%s%s" % (name, labels))


@pytest.fixture(scope="module")
def dev():
    cluster = DevCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()


def test_parser_refuses_what_prometheus_would():
    good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n"
    assert parse_prometheus(good)["a_total"]["samples"] == [("a_total", {"x": "1"}, 3.0)]
    for bad in ["a_total 3\n",                                       # no HELP/TYPE
                "# HELP a A.\n# TYPE a gauge\na{x=1} 3\n",            # unquoted label
                "# HELP a A.\n# TYPE a gauge\na three\n",             # not a number
                "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
                "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"]:  # not cumulative
        with pytest.raises((AssertionError, ValueError)):
            parse_prometheus(bad)


def test_a_fresh_dev_cluster_holds_no_key(dev):
    # Readiness is checked with reads only: nothing appears in the user's keyspace.
    client = dev.client(0)
    assert client.dbsize() == 0
    assert client.keys("*") == []


def test_machine_and_orchestrator_metrics_parse_and_count(dev):
    port = dev.port(0) + METRICS_PORT_OFFSET
    before = scrape(port)
    for family in ["cairn_commands_total", "cairn_command_duration_seconds",
                   "cairn_net_input_bytes_total", "cairn_net_output_bytes_total", "cairn_keys",
                   "cairn_stored_bytes", "cairn_hints_pending", "cairn_hints_replayed_total",
                   "cairn_read_repairs_total", "cairn_lease_valid", "cairn_clock_offset_seconds",
                   "cairn_migrations_active", "cairn_range_writes_total"]:
        assert family in before, family
    assert before["cairn_command_duration_seconds"]["type"] == "histogram"
    client = dev.client(0)
    for i in range(200):
        client.set("metrics:%d" % i, "v")
    assert client.get("metrics:1") == b"v"
    after = scrape(port)
    def set_ok(f):
        try:
            return sample(f, "cairn_commands_total", command="set", outcome="ok")
        except KeyError:
            return 0
    assert set_ok(after) >= set_ok(before) + 200
    assert sample(after, "cairn_net_input_bytes_total") > sample(before, "cairn_net_input_bytes_total")
    assert sample(after, "cairn_command_duration_seconds_count", command="set") >= 200
    assert sample(after, "cairn_lease_valid") in (0, 1)

    orchestrator = scrape(dev.orchestrator_port)
    total = sum(v for _, _, v in orchestrator["cairn_machines"]["samples"])
    assert total == dev.count
    assert sample(orchestrator, "cairn_machines", state="up") == 6
    assert sample(orchestrator, "cairn_machines", state="spare") == 1
    assert sample(orchestrator, "cairn_shards") == 2
    assert sample(orchestrator, "cairn_migrations_in_flight") == 0


def shard_of_slot(dev, client, slot):
    """The shard whose machines serve `slot`, from CLUSTER SLOTS and /v1/machines."""
    ports = None
    for start, end, *nodes in client.execute_command("CLUSTER SLOTS"):
        if start <= slot <= end:
            ports = {int(node[1]) for node in nodes}
    by_address = {m["address"]: m for m in dev.machines()}
    shards = {by_address["127.0.0.1:%d" % p]["shard"] for p in ports}
    assert len(shards) == 1, shards
    return shards.pop()


def test_load_per_shard_shows_writes_latency_and_the_hot_key(dev):
    client = dev.client(0)
    hot = "{load-hot}:the-hot-key"
    pipe = client.pipeline(transaction=False)
    for i in range(1000):
        pipe.set("{load-hot}:%d" % i, "x" * 20)
        pipe.set(hot, i)
    pipe.execute()
    shard = shard_of_slot(dev, client, client.execute_command("CLUSTER KEYSLOT", hot))

    def loaded():
        for s in dev.get("/v1/load")["shards"]:
            if s["shard"] == shard and s["writes_per_sec"] > 0 and s["p99_us"] > 0 \
                    and s["top_keys"] and s["top_keys"][0]["key"] == hot \
                    and any(r["writes_total"] >= 2000 for r in s["ranges"]):
                return s
        return None
    s = wait_for(loaded, 15, what="the hot shard in /v1/load")
    assert s["top_keys"][0]["count"] >= 1000
    assert s["writes_total"] >= 2000
    assert s["machines_reporting"] >= 1
    # One hash tag: one token, so one range took the 2,000 writes (the other ranges only hold
    # the few keys the previous test spread over the ring).
    busy = [r for r in s["ranges"] if r["writes_total"] >= 2000]
    assert len(busy) == 1, sorted((r["writes_total"], r["start"]) for r in s["ranges"])[-3:]
    assert busy[0]["top_keys"][0]["key"] == hot
    assert all(r["writes_total"] < 300 for r in s["ranges"] if r is not busy[0]), s["ranges"]
    others = [o for o in dev.get("/v1/load")["shards"] if o["shard"] != shard]
    assert all(o["writes_total"] < 300 for o in others), others
    # The machine-wide load of the heartbeat is measured now too (ops/s and p99 were 0).
    machines = [m for m in dev.machines() if m["shard"] == shard]
    assert any(m["load"]["ops_per_sec"] > 0 for m in machines), machines
    assert any(m["load"]["p99_us"] > 0 for m in machines), machines

    with_history = wait_for(
        lambda: [x for x in dev.get("/v1/load?history=1")["shards"]
                 if x["shard"] == shard and x["history"]["seconds"]], 10, what="history")
    assert with_history[0]["history"]["seconds"][-1]["time_ms"] > 0

    text = dev.admin("load")
    assert "READS/S" in text and "WRITES/S" in text and hot in text
    assert "[0x" in dev.admin("load", "--ranges")


def test_admin_json_before_or_after_the_subcommand(dev):
    after = subprocess.run([dev.binary, "admin", "--orchestrator",
                            "127.0.0.1:%d" % dev.orchestrator_port, "machines", "--json"],
                           capture_output=True, text=True, timeout=20)
    assert after.returncode == 0, after.stderr
    before = dev.admin("machines", json_output=True)
    assert {m["id"] for m in json.loads(after.stdout)} == {m["id"] for m in before}
    assert isinstance(dev.admin("load", json_output=True)["shards"], list)
    status = subprocess.run([dev.binary, "admin", "status", "--json", "--orchestrator",
                             "127.0.0.1:%d" % dev.orchestrator_port],
                            capture_output=True, text=True, timeout=20)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["shards"] == 2


def raw_info(port, section):
    """INFO's text as sent (redis-py parses it into a dict)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"INFO %s\r\n" % section.encode())
        data = b""
        while b"\r\n" not in data:
            data += conn.recv(65536)
        header, _, rest = data.partition(b"\r\n")
        assert header.startswith(b"$"), header
        length = int(header[1:])
        while len(rest) < length + 2:
            rest += conn.recv(65536)
        return rest[:length].decode()


def test_info_sections_and_slowlog(dev):
    client = dev.client(0)
    sections = raw_info(dev.port(0), "everything")
    for header in ["# Server", "# Clients", "# Memory", "# Persistence", "# Stats",
                   "# Replication", "# CPU", "# Commandstats", "# Latencystats", "# Cluster",
                   "# Keyspace"]:
        assert header in sections, header
    stats = client.info("stats")
    assert stats["total_net_input_bytes"] > 0
    replication = client.info("replication")
    assert replication["role"] == "master" and replication["connected_slaves"] >= 2
    assert "cmdstat_set" in client.info("commandstats")
    client.config_set("slowlog-log-slower-than", 0)
    try:
        client.slowlog_reset()
        client.set("slow:1", "v")
        entries = client.slowlog_get(10)
        assert any(e["command"] == b"SET slow:1 v" for e in entries), entries
        assert client.slowlog_len() >= 1
    finally:
        client.config_set("slowlog-log-slower-than", 10000)
    assert client.execute_command("LATENCY", "LATEST") == []


def test_bench_hot_range_shows_in_the_load(dev):
    started = time.monotonic()
    run = subprocess.run([dev.binary, "bench", "--port", str(dev.port(1)), "--duration", "3s",
                          "--connections", "2", "--pipeline", "8", "--keys", "1000",
                          "--distribution", "hot-range", "--read-ratio", "0.5", "--json"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started < 15  # bounded: it stops by itself
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["operations"] > 0 and result["errors"] == 0, result
    assert result["ops_per_sec"] > 0 and result["p99_ms"] >= result["p50_ms"] > 0, result
    assert "ops/s" in run.stderr  # the progress lines (on stderr with --json)

    def hot_shard():
        for s in dev.get("/v1/load")["shards"]:
            if s["top_keys"] and s["top_keys"][0]["key"].startswith("bench-hot:"):
                return s
        return None
    wait_for(hot_shard, 15, what="the bench's hot range in /v1/load")
    for bad in (["--duration", "soon"], ["--distribution", "pareto"]):
        out = subprocess.run([dev.binary, "bench", "--port", str(dev.port(0))] + bad,
                             capture_output=True, text=True, timeout=10)
        assert out.returncode == 2, (bad, out.stdout, out.stderr)
