"""Leaderless field writes (docs/cluster.md "Hashes, sets and sorted sets"): HSET, HMSET, HDEL,
SADD and SREM run on the machine the client talks to, at the connection's levels, as SET does,
without forwarding to the shard leader. A 2-shard x RF 3 cluster of 6 machines (conftest.py),
real processes and redis-py clients.

What is checked: two clients writing different fields of one hash and one set through two
machines at once keep every field, on every replica (each replica's own stored cells, CAIRN.ROW);
the commands work at CONSISTENCY WRITE ONE while the shard's leader is killed or paused, where a
command that still goes through the leader (HINCRBY) fails; these commands through a follower
are not forwarded (INFO cluster `redirects`); replies without concurrency (new fields, removed
fields, a field named twice); DEL then HSET hides the old fields; an emptied row is no key for
EXISTS, TYPE, KEYS, SCAN and DBSIZE, and a new row there has no TTL; WRONGTYPE.
"""

import threading

import pytest
import redis

from cluster_support import info_cluster, session
from test_cluster_rows import stored_row

SHARD = 2


def coordinators_for(cluster, shard):
    """Two machines of `shard` that do not lead it, and one that holds no replica of it."""
    leader = cluster.leader_of_shard(shard)
    followers = [i for i in cluster.replicas_of_shard(shard) if i != leader]
    outsider = [i for i in range(len(cluster.machines))
                if i not in cluster.replicas_of_shard(shard)][0]
    return leader, followers, outsider


def test_two_clients_on_two_machines_keep_every_field_on_every_replica(cluster):
    """Two clients, on a follower of the shard and on a machine outside it, write disjoint
    fields of one hash and members of one set at the same time, one command per field and in
    batches: afterwards every replica stores every field with its value."""
    _leader, followers, outsider = coordinators_for(cluster, SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="lf-two")[0]
    skey = "{%s}s" % key
    assert cluster.shard_of(skey) == SHARD
    machines = [followers[0], outsider]
    per_client = 150
    start = threading.Barrier(len(machines))
    errors = []

    def writer(slot, i):
        c = session(cluster, i, write="ALL")
        try:
            start.wait()
            for n in range(per_client):
                field = "c%d-%d" % (slot, n)
                assert c.hset(key, field, "v%d" % n) == 1
                assert c.sadd(skey, field) == 1
            batch = {"c%d-batch-%d" % (slot, n): "b%d" % n for n in range(100)}
            assert c.hset(key, mapping=batch) == len(batch)
            assert c.sadd(skey, *batch) == len(batch)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((i, repr(e)))
        finally:
            c.close()

    threads = [threading.Thread(target=writer, args=(slot, i)) for slot, i in enumerate(machines)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    expected = {}
    for slot in range(len(machines)):
        expected.update({"c%d-%d" % (slot, n): b"v%d" % n for n in range(per_client)})
        expected.update({"c%d-batch-%d" % (slot, n): b"b%d" % n for n in range(100)})
    # WRITE ALL acknowledged each field on every replica: each one's own cells hold them all,
    # without any read repair.
    for i in cluster.replicas_of_shard(SHARD):
        row = stored_row(cluster, i, key)
        assert {f: cell[0] for f, cell in row.items()} == expected, i
        members = stored_row(cluster, i, skey)
        assert {m for m, cell in members.items() if cell[0] is not None} == set(expected), i
    r = session(cluster, 0, read="ALL")
    assert r.hlen(key) == len(expected)
    assert r.scard(skey) == len(expected)
    r.close()


@pytest.mark.parametrize("how", ["killed", "paused"])
def test_field_writes_need_no_leader(cluster, how):
    """With the shard's leader killed or paused, HSET, HMSET, HDEL, SADD and SREM at WRITE ONE
    succeed through a follower and through a machine outside the shard, with the right replies;
    HINCRBY, which still runs on the leader, fails there (as these commands did before)."""
    leader, followers, outsider = coordinators_for(cluster, SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="lf-nolead-%s" % how)[0]
    skey = "{%s}s" % key
    c0 = cluster.client(followers[0])
    assert c0.hset(key, "before", "1") == 1
    assert c0.sadd(skey, "before") == 1
    c0.close()
    if how == "killed":
        cluster.kill(leader)
    else:
        cluster.pause(leader)
    for i in (followers[0], outsider):
        c = session(cluster, i, write="ONE")
        try:
            f = "m%d" % i
            assert c.hset(key, f, "x", mapping={f + "b": "y"}) == 2
            assert c.hset(key, f, "x2") == 0
            assert c.execute_command("HMSET", key, f + "c", "z") in (True, b"OK")
            assert c.hdel(key, f + "b", "nothing") == 1
            assert c.sadd(skey, f, f, f + "b") == 2
            assert c.srem(skey, f + "b", "nothing") == 1
            assert c.hget(key, f) == b"x2"
            assert c.sismember(skey, f) is True
            with pytest.raises(redis.ResponseError, match="UNCERTAIN|UNAVAILABLE|NOLEADER"):
                c.hincrby(key, "counter", 1)
        finally:
            c.close()
    r = session(cluster, followers[1], read="QUORUM")
    assert r.hgetall(key) == {b"before": b"1",
                              b"m%d" % followers[0]: b"x2", b"m%dc" % followers[0]: b"z",
                              b"m%d" % outsider: b"x2", b"m%dc" % outsider: b"z"}
    assert r.smembers(skey) == {b"before", b"m%d" % followers[0], b"m%d" % outsider}
    r.close()


def test_field_writes_through_a_follower_are_not_forwarded(cluster):
    """HSET, HDEL, SADD and SREM through a machine that does not lead the shard run there: its
    `redirects` count does not move. HINCRBY still goes to the leader and moves it."""
    _leader, followers, outsider = coordinators_for(cluster, SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="lf-fwd")[0]
    for i in (followers[0], outsider):
        c = cluster.client(i)
        before = info_cluster(c)["redirects"]
        assert c.hset(key, "f%d" % i, "v") == 1
        assert c.hdel(key, "f%d" % i) == 1
        assert c.sadd("{%s}s" % key, "m") in (0, 1)
        assert c.srem("{%s}s" % key, "m") == 1
        assert info_cluster(c)["redirects"] == before
        assert c.hincrby(key, "n", 1) >= 1
        assert info_cluster(c)["redirects"] == before + 1
        c.close()


def test_replies_deletion_and_types_through_every_machine(cluster):
    """Without concurrent writers the replies are Redis's; DEL then HSET hides the old fields;
    an emptied row is no key anywhere and a new row at its key has no TTL; WRONGTYPE."""
    for i in range(len(cluster.machines)):
        c = cluster.client(i)
        other = cluster.client((i + 1) % len(cluster.machines))
        h, s, text = "h%d" % i, "s%d" % i, "str%d" % i
        assert c.hset(h, mapping={"a": "1", "b": "2"}) == 2
        assert c.execute_command("HSET", h, "a", "10", "c", "3", "c", "4") == 1
        assert other.hgetall(h) == {b"a": b"10", b"b": b"2", b"c": b"4"}
        assert c.hdel(h, "a", "a", "zz") == 1
        assert other.hlen(h) == 2
        assert c.sadd(s, "x", "y", "x") == 2
        assert c.sadd(s, "y", "z") == 1
        assert c.srem(s, "x", "x", "nope") == 1
        assert other.smembers(s) == {b"y", b"z"}
        # DEL, then HSET: the old fields stay hidden on every machine.
        assert other.delete(h) == 1
        assert c.hset(h, "new", "n") == 1
        assert other.hgetall(h) == {b"new": b"n"}
        assert c.hlen(h) == 1
        # Emptied by HDEL/SREM: no key for any command, on any machine; no TTL afterwards.
        assert c.expire(h, 100) is True
        assert c.hdel(h, "new") == 1
        assert c.srem(s, "y", "z") == 2
        for key in (h, s):
            assert other.exists(key) == 0
            assert other.type(key) == b"none"
            assert other.ttl(key) == -2
        assert not {h, s} & {k.decode() for k in other.keys("*")}
        assert c.hset(h, "again", "1") == 1
        assert other.ttl(h) == -1
        assert other.hgetall(h) == {b"again": b"1"}
        assert c.sadd(s, "k") == 1
        # WRONGTYPE, and nothing written.
        assert c.set(text, "v") is True
        for command in (("HSET", text, "f", "v"), ("HMSET", text, "f", "v"),
                        ("HDEL", text, "f"), ("SADD", text, "m"), ("SREM", text, "m"),
                        ("SADD", h, "m"), ("SREM", h, "m"), ("HSET", s, "f", "v")):
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                c.execute_command(*command)
        assert c.hdel("nokey%d" % i, "f") == 0
        assert c.srem("nokey%d" % i, "m") == 0
        assert other.get(text) == b"v"
        assert other.hgetall(h) == {b"again": b"1"}
        c.close()
        other.close()
    r = cluster.client(0)
    live = {"%s%d" % (prefix, i) for i in range(len(cluster.machines))
            for prefix in ("h", "s", "str")}
    assert {k.decode() for k in r.keys("*")} == live
    assert r.dbsize() == len(live)
    cursor, seen = 0, set()
    while True:
        cursor, page = r.scan(cursor, count=3)
        seen |= {k.decode() for k in page}
        if cursor == 0:
            break
    assert seen == live
    r.close()
