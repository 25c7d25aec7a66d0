"""Leaderless sorted-set writes (docs/cluster.md "Hashes, sets and sorted sets"): ZADD without
conditions and ZREM run on the machine the client talks to, at the connection's levels, like
HSET and SREM; each replica derives a member's score index entry from the member cell it keeps
(docs/formats.md "Sorted sets"). A 2-shard x RF 3 cluster of 6 machines (conftest.py), real
processes and redis-py clients.

What is checked: clients on different machines ZADD the same member with different scores and
different members at once, at every write level: afterwards every replica stores the same
members and scores, and its own score index (CAIRN.ROW on that machine) holds exactly one live
entry per live member, at that member's score; ZRANGE, ZRANGEBYSCORE, ZCOUNT, ZRANK, ZREVRANK,
ZSCORE, ZCARD and ZPOPMIN agree with them through every machine. Replicas made to disagree on a
member's score (cells applied to some of them only) never show the member twice or at the
losing score. ZADD and ZREM work at WRITE ONE with the shard's leader killed; through a machine
that does not lead the shard they are not forwarded (INFO cluster `redirects`), while ZADD NX
and ZINCRBY still are.
"""

import struct
import threading
import time

import pytest
import redis

from cluster_support import encode_cell, hlc_now, info_cluster, session
from test_cluster_rows import apply_field_on, decode_cell
from test_cluster_rows_leaderless import coordinators_for

SHARD = 2
ZSET = 4  # the cell type of a sorted set (docs/formats.md "Cells")
LEVELS = ["ONE", "QUORUM", "ALL"]


def member_score(value):
    """The score a member cell holds: IEEE 754 bits, big-endian (docs/formats.md)."""
    return struct.unpack(">d", value)[0]


def index_score(eight):
    """The score of an index sub-key's 8 order-preserving bytes (storage::encode_score)."""
    bits = struct.unpack(">Q", eight)[0]
    bits = bits & ~(1 << 63) if bits & (1 << 63) else ~bits & ((1 << 64) - 1)
    return struct.unpack(">d", struct.pack(">Q", bits))[0]


def stored_zset(cluster, i, key):
    """Machine i's own view of `key`: ({member: score} of its live member cells, [(score,
    member)] of its live index entries in stored order), read with CAIRN.ROW page by page."""
    ic = cluster.internal_client(i)
    members, index, start = {}, [], b""
    try:
        for _ in range(10000):
            _header, _state, nxt, flat = ic.execute_command("CAIRN.ROW", cluster.epoch(), key,
                                                             start, 1000)
            for sub, cell in zip(flat[0::2], flat[1::2]):
                value = decode_cell(cell)[0]
                if value is None:
                    continue  # a tombstone
                if sub[:1] == b"\x01":
                    members[sub[1:].decode()] = member_score(value)
                elif sub[:1] == b"\x02":
                    index.append((index_score(sub[1:9]), sub[9:].decode()))
            if nxt is None:
                return members, index
            start = nxt
    finally:
        ic.close()
    raise AssertionError("CAIRN.ROW did not finish")


def assert_index_follows_members(members, index, where):
    """One live index entry per live member, at its score, in (score, member) order."""
    assert sorted(index) == index, where
    assert sorted(index) == sorted((score, m) for m, score in members.items()), where


def wait_replicas_agree(cluster, key, timeout_s=15):
    """The replicas' views of `key` once they all hold the same members (writes at ONE reach
    the others shortly after the reply); fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        views = {i: stored_zset(cluster, i, key) for i in cluster.replicas_of_shard(SHARD)}
        members = [v[0] for v in views.values()]
        if all(m == members[0] for m in members) or time.monotonic() > deadline:
            return views
        time.sleep(0.2)


def assert_reads_agree(cluster, key, members):
    """Every machine answers the range, rank and count commands from `members` (at READ ALL,
    which merges every replica)."""
    ordered = sorted((score, m) for m, score in members.items())
    for i in range(len(cluster.machines)):
        r = session(cluster, i, read="ALL")
        try:
            got = r.zrange(key, 0, -1, withscores=True)
            assert [(m.decode(), s) for m, s in got] == [(m, s) for s, m in ordered], i
            assert r.zcard(key) == len(members)
            low, high = ordered[0][0], ordered[-1][0]
            assert r.zcount(key, low, high) == len(members)
            middle = ordered[len(ordered) // 2][0]
            assert [m.decode() for m in r.zrangebyscore(key, "-inf", middle)] == \
                [m for s, m in ordered if s <= middle], i
            for rank, (score, m) in enumerate(ordered):
                assert r.zrank(key, m) == rank, (i, m)
                assert r.zrevrank(key, m) == len(ordered) - 1 - rank, (i, m)
                assert r.zscore(key, m) == score, (i, m)
        finally:
            r.close()


@pytest.mark.parametrize("level", LEVELS)
def test_concurrent_zadds_leave_one_index_entry_per_member_on_every_replica(cluster, level):
    """Three clients, on the leader, a follower and a machine outside the shard, ZADD the same
    members with different scores and each its own members, at once and at `level`. Every
    replica ends with the same members and scores, its index holds exactly the entries of those
    scores, and every machine's ranges, ranks and counts agree; ZREM and ZPOPMIN then remove
    entries everywhere."""
    leader, followers, outsider = coordinators_for(cluster, SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="zl-%s" % level)[0]
    machines = [leader, followers[0], outsider]
    rounds = 60
    start = threading.Barrier(len(machines))
    errors = []

    def writer(slot, i):
        c = session(cluster, i, write=level)
        try:
            start.wait()
            for n in range(rounds):
                # Shared members, each client its own scores; its own members too.
                c.zadd(key, {"hot": slot * 1000 + n, "warm%d" % (n % 5): slot - n})
                c.zadd(key, {"own%d-%d" % (slot, n): n + slot / 10}, ch=True)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((i, repr(e)))
        finally:
            c.close()

    threads = [threading.Thread(target=writer, args=(slot, i)) for slot, i in enumerate(machines)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    views = wait_replicas_agree(cluster, key)
    first = next(iter(views.values()))[0]
    for i, (members, index) in views.items():
        assert members == first, i
        assert_index_follows_members(members, index, i)
    expected_members = {"hot"} | {"warm%d" % n for n in range(5)} | {
        "own%d-%d" % (slot, n) for slot in range(len(machines)) for n in range(rounds)}
    assert set(first) == expected_members
    # The shared members hold one of the scores some client wrote for them.
    assert first["hot"] in {slot * 1000 + n for slot in range(3) for n in range(rounds)}
    assert_reads_agree(cluster, key, first)

    # Removal and pops through another machine move every replica's index too.
    c = session(cluster, followers[1], write=level)
    assert c.zrem(key, "hot", "own0-0", "nothing") == 2
    lowest = min(first.items(), key=lambda item: (item[1], item[0]))
    remaining = {m: s for m, s in first.items() if m not in ("hot", "own0-0")}
    popped = c.zpopmin(key)
    want_pop = min(remaining.items(), key=lambda item: (item[1], item[0]))
    assert popped == [(want_pop[0].encode(), want_pop[1])], lowest
    del remaining[want_pop[0]]
    c.close()
    views = wait_replicas_agree(cluster, key)
    for i, (members, index) in views.items():
        assert members == remaining, i
        assert_index_follows_members(members, index, i)
    assert_reads_agree(cluster, key, remaining)


def test_replicas_that_disagree_on_a_score_never_show_the_member_twice(cluster):
    """A member's cell with a newer score reaches two replicas of three (applied there
    directly, as a QUORUM write whose third message is still in flight): their indexes move to
    the new score, the third keeps the old one. Reads at QUORUM and ALL through every machine
    list the member once, at the newer score; the read repairs the member cell, and then every
    replica's index holds the new entry only."""
    reps = cluster.replicas_of_shard(SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="zl-split")[0]
    c = session(cluster, 0, write="ALL")
    assert c.zadd(key, {"a": 1, "b": 2, "m": 3, "z": 4}) == 4
    c.close()
    t = hlc_now(50)
    moved = bytearray(encode_cell(struct.pack(">d", 10.0), t, writer=7))
    moved[2] = ZSET
    apply_field_on(cluster, reps[:2], key, "m", bytes(moved))
    # A stale index entry sent by another machine is not taken: each replica derives its own.
    stale = bytearray(encode_cell(b"", t + 1, writer=7))
    stale[2] = ZSET
    ic = cluster.internal_client(reps[2])
    try:
        ic.execute_command("CAIRN.APPLY", cluster.epoch(), key, bytes(stale),
                           b"\x02" + b"\xc0\x24\x00\x00\x00\x00\x00\x00" + b"x")
    finally:
        ic.close()
    views = {i: stored_zset(cluster, i, key) for i in reps}
    assert views[reps[0]][0]["m"] == views[reps[1]][0]["m"] == 10.0
    assert views[reps[2]][0] == {"a": 1, "b": 2, "m": 3, "z": 4}
    for i, (members, index) in views.items():
        assert_index_follows_members(members, index, i)
    want = [(b"a", 1.0), (b"b", 2.0), (b"z", 4.0), (b"m", 10.0)]
    for level in ("QUORUM", "ALL"):
        for i in range(len(cluster.machines)):
            r = session(cluster, i, read=level)
            try:
                assert r.zrange(key, 0, -1, withscores=True) == want, (level, i)
                assert r.zrangebyscore(key, 2, 100) == [b"b", b"z", b"m"], (level, i)
                assert r.zcount(key, 3, 3) == 0, (level, i)
                assert r.zrank(key, "m") == 3, (level, i)
                assert r.zrevrange(key, 0, 0) == [b"m"], (level, i)
            finally:
                r.close()
    views = {i: stored_zset(cluster, i, key) for i in reps}
    for i, (members, index) in views.items():
        assert members == {"a": 1, "b": 2, "m": 10, "z": 4}, i
        assert_index_follows_members(members, index, i)


def test_zadd_and_zrem_need_no_leader(cluster):
    """With the shard's leader killed, ZADD (with CH too) and ZREM at WRITE ONE succeed through
    a follower and through a machine outside the shard, with Redis's replies; ZINCRBY, which
    still runs on the leader, fails there."""
    leader, followers, outsider = coordinators_for(cluster, SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="zl-nolead")[0]
    c0 = cluster.client(followers[0])
    assert c0.zadd(key, {"before": 0}) == 1
    c0.close()
    cluster.kill(leader)
    for i in (followers[0], outsider):
        c = session(cluster, i, write="ONE")
        try:
            m = "m%d" % i
            assert c.zadd(key, {m: 1, m + "b": 2}) == 2
            assert c.zadd(key, {m: 5}) == 0
            assert c.zadd(key, {m: 6, m + "c": 7}, ch=True) == 2
            assert c.execute_command("ZADD", key, 8, m + "d", 9, m + "d") == 1
            assert c.zrem(key, m + "b", "nothing", m + "b") == 1
            assert c.zscore(key, m) == 6
            assert c.zscore(key, m + "d") == 9
            with pytest.raises(redis.ResponseError, match="UNCERTAIN|UNAVAILABLE|NOLEADER"):
                c.zincrby(key, 1, m)
        finally:
            c.close()
    r = session(cluster, followers[1], read="QUORUM")
    want = [(b"before", 0.0)] + [(b"m%d%s" % (i, suffix), score)
                                 for i in (followers[0], outsider)
                                 for suffix, score in ((b"", 6.0), (b"c", 7.0), (b"d", 9.0))]
    assert r.zrange(key, 0, -1, withscores=True) == sorted(want, key=lambda e: (e[1], e[0]))
    r.close()


def test_zadd_and_zrem_through_a_follower_are_not_forwarded(cluster):
    """ZADD, ZADD CH and ZREM through a machine that does not lead the shard run there: its
    `redirects` count does not move. ZADD NX and ZINCRBY still go to the leader."""
    _leader, followers, outsider = coordinators_for(cluster, SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="zl-fwd")[0]
    for i in (followers[0], outsider):
        c = cluster.client(i)
        before = info_cluster(c)["redirects"]
        assert c.zadd(key, {"f%d" % i: 1}) == 1
        assert c.zadd(key, {"f%d" % i: 2}, ch=True) == 1
        assert c.zrem(key, "f%d" % i) == 1
        assert info_cluster(c)["redirects"] == before
        assert c.zadd(key, {"n%d" % i: 1}, nx=True) == 1
        assert c.zincrby(key, 1, "n%d" % i) == 2
        assert info_cluster(c)["redirects"] == before + 2
        c.close()
