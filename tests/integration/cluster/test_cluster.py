"""The cluster data path end to end: a 2-shard x RF 3 cluster of 6 machines on
loopback (tests/cluster/launcher.py), driven through redis-py and raw sockets.

Shard 1 lives on machines 0, 1, 2 (leader 0), shard 2 on machines 3, 4, 5 (leader 3); machine
indexes are 0-based, machine ids are index + 1. Replicas are taken down with SIGKILL (an
unreachable replica fails fast) or SIGSTOP (it times out after --request-timeout-ms).

Error replies are checked byte for byte on raw connections, since redis-py strips "ERR ".
"""

import json
import re
import threading
import time

import pytest
import redis

from cluster_support import encode_cell, hlc_now, info_cluster, session
from launcher import DEFAULT_SECRET

SHARD = 2  # the shard the level tests take replicas of; machine 0 is not one of its replicas
LEVELS = [("ONE", 1), ("TWO", 2), ("THREE", 3), ("QUORUM", 2), ("ALL", 3), ("1", 1), ("2", 2),
          ("3", 3)]
CROSSSHARD = b"-CROSSSHARD keys in request don't hash to the same shard\r\n"


def uncertain(acks, needed):
    return (b"-UNCERTAIN %d of %d required replicas acknowledged; the write may have been "
            b"applied\r\n" % (acks, needed))


def unavailable(answers, needed):
    return b"-UNAVAILABLE %d of %d required replicas answered\r\n" % (answers, needed)


def bulk(value):
    value = value.encode() if isinstance(value, str) else value
    return b"$%d\r\n%s\r\n" % (len(value), value)


def wait_stored_everywhere(cluster, machines, key, value, timeout=5.0):
    value = value.encode() if isinstance(value, str) else value
    deadline = time.monotonic() + timeout
    while True:
        got = {i: cluster.stored_value(i, key) for i in machines}
        if all(v == value for v in got.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError("%r not on every replica: %r" % (value, got))
        time.sleep(0.02)


def full_scan(r, **kw):
    seen, cursor = set(), 0
    for _ in range(10000):
        cursor, batch = r.scan(cursor, **kw)
        seen.update(batch)
        if cursor == 0:
            return sorted(seen)
    raise AssertionError("SCAN did not come back to cursor 0")


# --- CONSISTENCY --------------------------------------------------------------------------------


def test_consistency_shows_and_sets_levels(cluster):
    conn = cluster.raw(1)
    try:
        assert conn.cmd("CONSISTENCY") == [b"read", b"QUORUM", b"write", b"QUORUM"]
        assert conn.cmd_raw("CONSISTENCY", "READ", "one", "WRITE", "All") == b"+OK\r\n"
        assert conn.cmd("CONSISTENCY") == [b"read", b"ONE", b"write", b"ALL"]
        assert conn.cmd_raw("CONSISTENCY", "WRITE", "2") == b"+OK\r\n"
        assert conn.cmd("CONSISTENCY") == [b"read", b"ONE", b"write", b"2"]
        # RESP3: a map.
        assert isinstance(conn.cmd("HELLO", "3"), dict)
        assert conn.cmd("CONSISTENCY") == {b"read": b"ONE", b"write": b"2"}
    finally:
        conn.close()
    # Levels belong to the connection: a new one starts at QUORUM/QUORUM.
    other = cluster.raw(1)
    try:
        assert other.cmd("CONSISTENCY") == [b"read", b"QUORUM", b"write", b"QUORUM"]
    finally:
        other.close()


def test_consistency_rejects_bad_levels_without_changing_anything(cluster):
    conn = cluster.raw(0)
    try:
        syntax = b"-ERR syntax error\r\n"
        assert conn.cmd_raw("CONSISTENCY", "READ") == syntax
        assert conn.cmd_raw("CONSISTENCY", "SPEED", "ONE") == syntax
        assert conn.cmd_raw("CONSISTENCY", "READ", "ONE", "READ", "ALL") == syntax
        assert conn.cmd_raw("CONSISTENCY", "READ", "ONE", "WRITE") == syntax
        for bad in ["lots", "0", "16", "-1", "", "1.5", "QUORUMS"]:
            reply = conn.cmd_raw("CONSISTENCY", "READ", "ONE", "WRITE", bad)
            assert reply.startswith(b"-ERR "), (bad, reply)
        assert conn.cmd_raw("CONSISTENCY", "READ", "lots").startswith(
            b"-ERR unknown consistency level 'lots'")
        assert conn.cmd("CONSISTENCY") == [b"read", b"QUORUM", b"write", b"QUORUM"]
        # A number above the shard's replicas is accepted per connection (shards could differ),
        # and refused per request against the shard of the key.
        key = cluster.keys_on_shard(SHARD, 1, prefix="lvl")[0]
        assert conn.cmd_raw("CONSISTENCY", "WRITE", "4", "READ", "15") == b"+OK\r\n"
        assert conn.cmd_raw("SET", key, "v") == \
            b"-ERR cannot satisfy consistency 4 with 3 voting replicas\r\n"
        assert conn.cmd_raw("GET", key) == \
            b"-ERR cannot satisfy consistency 15 with 3 voting replicas\r\n"
    finally:
        conn.close()


@pytest.mark.parametrize("via", ["outsider", "replica"])
def test_levels_with_zero_one_two_replicas_down(cluster, via):
    """Every level for writes and reads with 0, 1, 2 replicas of a shard killed: OK / a value
    when enough replicas are up, else UNCERTAIN / UNAVAILABLE with exact counts."""
    reps = cluster.replicas_of_shard(SHARD)
    coordinator = 0 if via == "outsider" else reps[0]
    key, other = cluster.keys_on_shard(SHARD, 2, prefix="lv")
    conn = cluster.raw(coordinator)
    written = set()
    try:
        for down in range(3):
            if down:
                cluster.kill(reps[-down])  # followers first; reps[0] (leader) stays up
            up = 3 - down
            for name, needed in LEVELS:
                assert conn.cmd_raw("CONSISTENCY", "READ", name, "WRITE", name) == b"+OK\r\n"
                value = "v-%d-%s" % (down, name)
                written.add(value.encode())
                reply = conn.cmd_raw("SET", key, value)
                ctx = (down, name, reply)
                if up >= needed:
                    assert reply == b"+OK\r\n", ctx
                else:
                    assert reply == uncertain(up, needed), ctx
                reply = conn.cmd_raw("GET", key)
                ctx = (down, name, reply)
                if needed > up:
                    assert reply == unavailable(up, needed), ctx
                elif needed == up:
                    # Reads every replica that is up; all of them took the last write.
                    assert reply == bulk(value), ctx
                else:
                    assert conn.cmd("GET", key) in written, ctx
                reply = conn.cmd_raw("MGET", key, other)
                if needed > up:
                    assert reply == unavailable(up, needed), (down, name, reply)
                else:
                    assert reply.startswith(b"*2\r\n$"), (down, name, reply)
                reply = conn.cmd_raw("DEL", other)
                if needed > up:
                    # DEL reads (to count) at the read level, then writes at the write level.
                    assert reply in (unavailable(up, needed), uncertain(up, needed)), \
                        (down, name, reply)
                else:
                    assert reply == b":0\r\n", (down, name, reply)
    finally:
        conn.close()


def test_paused_replica_times_out_into_uncertain(cluster):
    """A replica that does not answer (SIGSTOP) counts as missing once the deadline passes."""
    reps = cluster.replicas_of_shard(SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="pz")[0]
    cluster.pause(reps[2])
    conn = cluster.raw(0)
    try:
        assert conn.cmd_raw("SET", key, "q") == b"+OK\r\n"  # QUORUM: 2 of 3 still answer
        assert conn.cmd_raw("CONSISTENCY", "WRITE", "ALL", "READ", "ALL") == b"+OK\r\n"
        started = time.monotonic()
        assert conn.cmd_raw("SET", key, "a") == uncertain(2, 3)
        assert conn.cmd_raw("GET", key) == unavailable(2, 3)
        assert time.monotonic() - started < 8.0  # bounded by the request timeout
    finally:
        conn.close()


# --- R-of-N reads --------------------------------------------------------------------------------


def reads_served(cluster, machines):
    """CAIRN.READ requests each machine served so far (INFO commandstats)."""
    out = {}
    for i in machines:
        stats = cluster.client(i).info("commandstats")
        out[i] = stats.get("cmdstat_cairn.read", {}).get("calls", 0)
    return out


def test_a_read_asks_r_replicas_and_the_others_only_when_one_does_not_answer(cluster):
    reps = cluster.replicas_of_shard(SHARD)
    keys = cluster.keys_on_shard(SHARD, 60, prefix="rn")
    c = session(cluster, 0)  # not a replica of SHARD: QUORUM asks 2 of its 3 replicas
    for k in keys:
        assert c.set(k, k)
    before = reads_served(cluster, reps)
    for k in keys:
        assert c.get(k) == k.encode()
    after = reads_served(cluster, reps)
    asked = sum(after[i] - before[i] for i in reps)
    assert asked == 2 * len(keys), (before, after)
    assert all(after[i] > before[i] for i in reps), "reads should spread over the replicas"

    # Through a replica of the shard: its own copy and one other.
    mine = session(cluster, reps[1])
    before = reads_served(cluster, reps)
    for k in keys:
        assert mine.get(k) == k.encode()
    after = reads_served(cluster, reps)
    remote = sum(after[i] - before[i] for i in reps if i != reps[1])
    assert remote == len(keys), (before, after)
    mine.close()

    # One replica paused: a read that asked it asks the third after read_speculate_ms (50 ms),
    # far below the request timeout, and still returns the value.
    cluster.pause(reps[2])
    try:
        worst = 0.0
        for k in keys[:20]:
            started = time.monotonic()
            assert c.get(k) == k.encode()
            worst = max(worst, time.monotonic() - started)
        assert worst < 0.6, worst  # not the 1 s request timeout
    finally:
        cluster.resume(reps[2])
    # One replica dead: the failure makes the read ask the third at once.
    cluster.kill(reps[2])
    for k in keys[:20]:
        assert c.get(k) == k.encode()
    c.close()


# --- read repair and hinted handoff --------------------------------------------------------------


def apply_on(cluster, machines, key, cell):
    for i in machines:
        ic = cluster.internal_client(i)
        try:
            assert ic.execute_command("CAIRN.APPLY", cluster.epoch(), key, cell) == 1
        finally:
            ic.close()


def test_read_repair_at_all_fixes_the_stale_replica(cluster):
    reps = cluster.replicas_of_shard(SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="rr")[0]
    assert cluster.client(0).set(key, "old")
    wait_stored_everywhere(cluster, reps, key, "old")
    # Diverge the replicas without a coordinator (so no hint can fix it): two get a newer cell.
    apply_on(cluster, reps[:2], key, encode_cell("new", hlc_now(), writer=1))
    assert cluster.stored_value(reps[2], key) == b"old"
    before = info_cluster(cluster.client(0))["read_repairs"]
    c = session(cluster, 0, read="ALL")
    assert c.get(key) == b"new"
    # Blocking read repair: the stale replica was fixed before the reply was sent.
    assert cluster.stored_value(reps[2], key) == b"new"
    assert info_cluster(cluster.client(0))["read_repairs"] > before
    c.close()


def test_read_repair_through_the_stale_replica_itself(cluster):
    """A replica coordinating a QUORUM read always includes its own answer, so it repairs
    itself when the other answer is newer."""
    reps = cluster.replicas_of_shard(SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="rs")[0]
    assert cluster.client(0).set(key, "old")
    wait_stored_everywhere(cluster, reps, key, "old")
    apply_on(cluster, reps[:2], key, encode_cell("new", hlc_now(), writer=1))
    c = session(cluster, reps[2], read="QUORUM")
    assert c.get(key) == b"new"
    assert cluster.stored_value(reps[2], key) == b"new"
    c.close()


def test_replica_back_from_the_dead_serves_the_new_value(cluster):
    """Down replica, write at QUORUM, replica back, read at ALL: that replica alone (stored cell,
    and a ONE read it coordinates) has the new value (by read repair or hint replay)."""
    reps = cluster.replicas_of_shard(SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="rb")[0]
    assert cluster.client(0).set(key, "old")
    wait_stored_everywhere(cluster, reps, key, "old")
    cluster.kill(reps[2])
    assert cluster.client(0).set(key, "new")
    cluster.restart(reps[2])
    c = session(cluster, 0, read="ALL")
    # Right after the restart the coordinator may still be backing off from the dead peer
    # (UNAVAILABLE); it must reconnect within a few seconds.
    deadline = time.monotonic() + 5
    while True:
        try:
            assert c.get(key) == b"new"
            break
        except redis.ResponseError as e:
            assert str(e).startswith("UNAVAILABLE "), e
            assert time.monotonic() < deadline, e
            time.sleep(0.05)
    c.close()
    assert cluster.stored_value(reps[2], key) == b"new"
    alone = session(cluster, reps[2], read="ONE")
    assert alone.get(key) == b"new"
    alone.close()


@pytest.mark.parametrize("how", ["kill", "pause"])
def test_hinted_handoff_replays_every_missed_write(cluster, how):
    reps = cluster.replicas_of_shard(SHARD)
    keys = cluster.keys_on_shard(SHARD, 20, prefix="hh-%s-" % how)
    info0 = info_cluster(cluster.client(0))
    if how == "kill":
        cluster.kill(reps[2])
    else:
        cluster.pause(reps[2])
    c = session(cluster, 0)  # QUORUM
    for n, k in enumerate(keys):
        assert c.set(k, "v%d" % n)
    assert c.delete(keys[0]) == 1  # a tombstone is handed off too
    if how == "pause":
        time.sleep(1.5)  # the unanswered writes time out (1 s) and become hints
    info1 = info_cluster(cluster.client(0))
    assert info1["hints_stored"] - info0["hints_stored"] >= 1
    assert info1["hints_pending"] >= 1
    if how == "kill":
        assert info1["hints_stored"] - info0["hints_stored"] == len(keys) + 1
        cluster.restart(reps[2])
    else:
        cluster.resume(reps[2])
    cluster.wait_hints_drained([0])
    assert info_cluster(cluster.client(0))["hints_replayed"] > info0["hints_replayed"]
    stored = {k: cluster.stored(reps[2], k) for k in keys}
    assert stored[keys[0]] is not None and stored[keys[0]][0] is None, stored[keys[0]]
    for n, k in enumerate(keys[1:], start=1):
        assert stored[k] is not None and stored[k][0] == b"v%d" % n, (k, stored[k])
    alone = session(cluster, reps[2], read="ONE")
    assert alone.mget(keys) == [None] + [b"v%d" % n for n in range(1, len(keys))]
    alone.close()
    c.close()


# --- epoch fencing -----------------------------------------------------------------------------


def test_replica_refuses_old_epoch(cluster):
    reps = cluster.replicas_of_shard(SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="fe")[0]
    foreign = cluster.keys_on_shard(1, 1, prefix="fe")[0]
    old = cluster.epoch()
    table = cluster.table()
    table["epoch"] = old + 1
    cluster.push_table(table)
    new = old + 1
    cell = encode_cell("fenced", hlc_now(), writer=1)
    conn = cluster.raw(reps[1])
    try:
        assert conn.cmd_raw("CAIRN.APPLY", new, key, cell) == \
            b"-NOPERM this command is for cluster machines\r\n"
        assert conn.cmd_raw("CAIRN.AUTH", "wrong") == b"-NOPERM invalid cluster secret\r\n"
        assert conn.cmd_raw("CAIRN.APPLY", new, key, cell) == \
            b"-NOPERM this command is for cluster machines\r\n"
        assert conn.cmd_raw("CAIRN.AUTH", DEFAULT_SECRET) == b"+OK\r\n"
        assert conn.cmd_raw("CAIRN.ID") == b":%d\r\n" % (reps[1] + 1)
        assert conn.cmd_raw("CAIRN.APPLY", old, key, cell) == b"-STALEEPOCH %d\r\n" % new
        assert conn.cmd_raw("CAIRN.READ", old, key) == b"-STALEEPOCH %d\r\n" % new
        assert conn.cmd_raw("CAIRN.APPLY", new + 1, key, cell) == b"-TABLEBEHIND %d\r\n" % new
        assert conn.cmd_raw("CAIRN.READ", new, key) == b"$-1\r\n"  # nothing was stored
        assert conn.cmd_raw("CAIRN.APPLY", new, foreign, cell) == b"-NOTOWNER %d\r\n" % new
        assert conn.cmd_raw("CAIRN.APPLY", new, key, cell) == b":1\r\n"
        assert conn.cmd_raw("CAIRN.APPLY", new, key, cell) == b":0\r\n"  # equal: not stored
        assert conn.cmd_raw("CAIRN.READ", new, key) == bulk(cell)
    finally:
        conn.close()


def test_coordinator_with_older_table_refreshes_and_succeeds(cluster):
    reps = cluster.replicas_of_shard(SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="fs")[0]
    old = cluster.epoch()
    table = cluster.table()
    table["epoch"] = old + 1
    text = json.dumps(table)
    for i in reps:
        cluster._push_to(i, text)
    assert cluster.table_of(0)["epoch"] == old
    before = info_cluster(cluster.client(0))["table_refreshes"]
    c = session(cluster, 0, write="ALL", read="ALL")
    assert c.set(key, "after-refresh")  # STALEEPOCH from the replicas, refresh, retry
    assert cluster.table_of(0)["epoch"] == old + 1
    assert info_cluster(cluster.client(0))["table_refreshes"] > before
    assert c.get(key) == b"after-refresh"
    c.close()
    cluster.push_table(table)


def test_coordinator_with_newer_table_pushes_it_to_replicas(cluster):
    reps = cluster.replicas_of_shard(SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="fn")[0]
    old = cluster.epoch()
    table = cluster.table()
    table["epoch"] = old + 1
    cluster._push_to(0, json.dumps(table))
    c = session(cluster, 0, write="ALL", read="ALL")
    assert c.set(key, "pushed")  # TABLEBEHIND from the replicas, push, retry
    assert c.get(key) == b"pushed"
    c.close()
    for i in reps:
        assert cluster.table_of(i)["epoch"] == old + 1
    cluster.push_table(table)


# --- hash tags, leader-only read-modify-write ----------------------------------------------------


def test_hash_tags_keep_keys_on_one_shard(cluster):
    a, b, c_ = "{user1}.a", "{user1}.b", "{user1}.c"
    shard = cluster.shard_of(a)
    assert cluster.shard_of(b) == shard == cluster.shard_of(c_)
    # Through a machine that does not lead that shard (the RMW parts are forwarded).
    via = next(i for i in range(6) if i != cluster.leader_of_shard(shard))
    r = cluster.client(via)
    assert r.mset({a: "1", b: "2"})
    assert r.mget(a, b) == [b"1", b"2"]
    assert r.rename(a, c_)
    assert r.mget(a, c_) == [None, b"1"]
    assert r.msetnx({"{user1}.x": "x", "{user1}.y": "y"})
    assert not r.msetnx({"{user1}.x": "x2", "{user1}.z": "z"})
    assert r.get("{user1}.z") is None
    assert r.renamenx(b, "{user1}.x") is False
    assert r.delete(b, c_, "{user1}.x") == 3
    # Every key of a tag sits on the replicas of its shard.
    for i in cluster.replicas_of_shard(shard):
        assert cluster.stored_value(i, "{user1}.y") == b"y"


def test_read_modify_write_across_shards_is_refused(cluster):
    x = cluster.keys_on_shard(1, 1, prefix="xs")[0]
    y = cluster.keys_on_shard(2, 1, prefix="xs")[0]
    r = cluster.client(1)
    assert r.set(x, "1") and r.set(y, "2")
    conn = cluster.raw(1)
    try:
        assert conn.cmd_raw("RENAME", x, y) == CROSSSHARD
        assert conn.cmd_raw("RENAMENX", x, y) == CROSSSHARD
        assert conn.cmd_raw("MSETNX", x, "a", y, "b") == CROSSSHARD
    finally:
        conn.close()
    assert r.mget(x, y) == [b"1", b"2"]


def test_mset_and_del_split_across_shards(cluster):
    """MSET and DEL are per-key writes: they work across shards (split by shard)."""
    keys = cluster.keys_on_shard(1, 3, prefix="sp") + cluster.keys_on_shard(2, 3, prefix="sp")
    for via in (0, 4):
        r = cluster.client(via)
        assert r.mset({k: "v-%s-%d" % (k, via) for k in keys})
        assert r.mget(keys) == [b"v-%s-%d" % (k.encode(), via) for k in keys]
        assert r.exists(*keys) == len(keys)
        assert r.delete(*(keys + ["missing"])) == len(keys)
        assert r.mget(keys) == [None] * len(keys)


def test_incr_from_every_machine_is_atomic(cluster):
    key = "{counter}"
    shard = cluster.shard_of(key)
    leader = cluster.leader_of_shard(shard)
    per_client = 25
    results, errors = [], []

    def worker(i):
        try:
            r = cluster.client(i)
            got = [r.incr(key) for _ in range(per_client)]
            results.extend(got)
            r.close()
        except Exception as e:  # reported below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(results) == list(range(1, 6 * per_client + 1))
    assert int(cluster.client(0).get(key)) == 6 * per_client
    forwarded = sum(info_cluster(cluster.client(i))["forwarded_to_leader"]
                    for i in range(6) if i != leader)
    assert forwarded >= 5 * per_client
    assert info_cluster(cluster.client(leader))["forwards_served"] >= 5 * per_client


def test_a_forwarded_write_the_leader_never_answers_is_uncertain(cluster):
    """A read-modify-write forwarded to a leader that stops answering (SIGSTOP) may still be
    applied when the leader resumes: the coordinator must answer UNCERTAIN, never a plain
    failure (and a forwarded read is merely UNAVAILABLE)."""
    leader = cluster.leader_of_shard(SHARD)
    reps = cluster.replicas_of_shard(SHARD)
    via = next(i for i in range(6) if i not in reps)
    key = cluster.keys_on_shard(SHARD, 1, prefix="fw")[0]
    cluster.pause(leader)
    conn = cluster.raw(via)
    try:
        reply = conn.cmd_raw("INCR", key)
        assert re.match(rb"-UNCERTAIN shard leader \d+ did not answer", reply), reply
        assert b"may have been applied" in reply, reply
    finally:
        cluster.resume(leader)
        conn.close()
    # Resumed, the leader runs the request it had received: the INCR was applied after all.
    deadline = time.monotonic() + 10
    while cluster.client(via).get(key) != b"1" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cluster.client(via).get(key) == b"1"


def test_set_nx_race_has_one_winner(cluster):
    key = "race-nx"
    wins, errors = [], []
    barrier = threading.Barrier(6)

    def worker(i):
        try:
            r = cluster.client(i)
            r.ping()
            barrier.wait(10)
            if r.set(key, "m%d" % i, nx=True):
                wins.append(i)
            r.close()
        except Exception as e:
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert len(wins) == 1, wins
    assert cluster.client(3).get(key) == b"m%d" % wins[0]


# --- commands through any machine, whole-cluster key commands ------------------------------------


def test_commands_work_through_every_machine(cluster):
    for i in range(6):
        r = cluster.client(i)
        nxt = cluster.client((i + 1) % 6)
        k = "any%d" % i
        n = "num%d" % i
        assert r.set(k, "hello")
        assert nxt.get(k) == b"hello"
        assert r.append(k, " world") == 11
        assert nxt.strlen(k) == 11
        assert r.getrange(k, 0, 4) == b"hello"
        assert r.setrange(k, 6, "WORLD") == 11
        assert nxt.get(k) == b"hello WORLD"
        assert r.incrby(n, 5) == 5 and r.decr(n) == 4
        assert float(r.incrbyfloat(n, 0.5)) == 4.5
        assert r.expire(k, 100)
        assert 98 <= nxt.ttl(k) <= 100
        assert r.persist(k) and nxt.ttl(k) == -1
        assert r.getset(k, "x") == b"hello WORLD"
        assert r.getex(k, px=50000) == b"x" and 0 < nxt.pttl(k) <= 50000
        assert r.type(k) == b"string"
        assert r.setnx(k, "y") is False
        assert r.set(k, "z", xx=True, get=True) == b"x"
        assert r.getdel(k) == b"z"
        assert nxt.exists(k, n) == 1
        assert r.unlink(n) == 1 and nxt.get(n) is None
        r.close()
        nxt.close()


def test_key_commands_cover_the_whole_cluster(cluster):
    keys = ["w%d" % n for n in range(200)]
    shards = {cluster.shard_of(k) for k in keys}
    assert shards == {1, 2}
    c0 = cluster.client(0)
    assert c0.mset({k: k for k in keys[:100]})
    for k in keys[100:]:
        assert cluster.client(int(k[1:]) % 6).set(k, k)
    for i in range(6):
        r = cluster.client(i)
        assert r.dbsize() == 200
        assert sorted(r.keys("*")) == sorted(k.encode() for k in keys)
        assert sorted(r.keys("w1?")) == sorted(("w1%d" % n).encode() for n in range(10))
        assert full_scan(r, count=7) == sorted(k.encode() for k in keys)
        assert full_scan(r, match="w1?", count=3) == sorted(
            ("w1%d" % n).encode() for n in range(10))
        assert r.randomkey() in {k.encode() for k in keys}
        r.close()
    assert cluster.client(4).flushall()
    for i in range(6):
        r = cluster.client(i)
        assert r.dbsize() == 0
        assert r.keys("*") == []
        assert full_scan(r) == []  # (pages may be empty before the cursor comes back to 0)
        assert r.randomkey() is None
    # Nothing is left on any replica either.
    for k in keys[:10]:
        for i in cluster.replicas_of(k):
            cell = cluster.stored(i, k)
            assert cell is None or cell[0] is None, (i, k, cell)
