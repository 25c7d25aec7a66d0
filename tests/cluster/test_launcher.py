"""The table builder (pure) and, when the binary supports cluster mode, a real cluster."""

import subprocess

import pytest
import redis

import launcher
from launcher import build_table, parse_token, shard_for_token
from xxh3 import token_of


def _addresses(n):
    return ["127.0.0.%d:%d" % (i + 2, 7000 + i) for i in range(n)]


def test_table_layout_matches_make_initial():
    t = build_table(_addresses(7), shards=2, rf=3, ranges_per_shard=4)
    assert t["epoch"] == 1 and t["replication_factor"] == 3
    assert [m["id"] for m in t["machines"]] == list(range(1, 8))
    assert [m["state"] for m in t["machines"]] == ["up"] * 6 + ["spare"]
    assert t["machines"][0]["internal_address"] == t["machines"][0]["address"]
    assert [s["replicas"] for s in t["shards"]] == [[1, 2, 3], [4, 5, 6]]
    assert [s["leader"] for s in t["shards"]] == [1, 4]
    assert all(s["lease_expiry_ms"] == 0 for s in t["shards"])
    r = t["ranges"]
    assert len(r) == 8
    assert r[0]["start"] == "0x0000000000000000" and r[-1]["end"] == "0x0000000000000000"
    for a, b in zip(r, r[1:]):
        assert a["end"] == b["start"]
    assert [x["shard"] for x in r] == [1, 2] * 4  # interleaved around the ring
    assert r[1]["start"] == "0x2000000000000000"
    assert all(len(x["start"]) == 18 for x in r)


def test_table_rejects_too_few_machines():
    with pytest.raises(ValueError):
        build_table(_addresses(5), shards=2, rf=3)


def test_shard_for_token_covers_the_ring():
    t = build_table(_addresses(6), shards=2, rf=3, ranges_per_shard=3)
    assert shard_for_token(t, 0) == 1
    assert shard_for_token(t, (1 << 64) - 1) == 2
    for r in t["ranges"]:
        assert shard_for_token(t, parse_token(r["start"])) == r["shard"]
    counts = {1: 0, 2: 0}
    for n in range(2000):
        counts[shard_for_token(t, token_of("key:%d" % n))] += 1
    assert min(counts.values()) > 800  # slots (CRC16) and xxh3 spread keys evenly


def _cluster_supported():
    try:
        out = subprocess.run([launcher.DEFAULT_BINARY, "server", "--help"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--cluster-secret" in out


needs_cluster = pytest.mark.requires(_cluster_supported(), "build/cairn has no --cluster-secret")


@needs_cluster
def test_real_cluster_installs_table_and_agrees_on_tokens():
    with launcher.Cluster(machines=6, shards=2, rf=3) as c:
        for i in range(6):
            got = c.table_of(i)
            assert got["epoch"] == 1
            assert [s["replicas"] for s in got["shards"]] == [[1, 2, 3], [4, 5, 6]]
        # The server's own routing agrees with the Python token: a machine answers CAIRN.READ for
        # a key of its shard and fences (NOTOWNER) a key of the other shard.
        m0 = c.internal_client(0)
        try:
            for key in c.keys_on_shard(1, 5, "a") + c.keys_on_shard(2, 5, "b"):
                try:
                    m0.execute_command("CAIRN.READ", 1, key)
                    owned = True
                except redis.ResponseError as e:
                    assert str(e).startswith("NOTOWNER"), str(e)
                    owned = False
                assert owned == (c.shard_of(key) == 1), key
        finally:
            m0.close()
        # Plain client traffic through any machine.
        c.client(0).set("hello", "world")
        assert c.client(4).get("hello") == b"world"
        # kill / restart keeps the data dir; pause / resume.
        c.kill(5)
        assert not c.running(5)
        c.restart(5)
        assert c.client(5).ping()
        c.pause(2)
        c.resume(2)
        assert c.client(2).ping()
