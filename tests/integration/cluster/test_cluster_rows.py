"""Hashes, sets and sorted sets in cluster mode: a 2-shard x RF 3
cluster of 6 machines (conftest.py), driven through redis-py on every machine.

What is checked: the row commands through leaders and followers; WRONGTYPE, TYPE, DEL, EXISTS,
EXPIRE and TTL on rows; per-field last-write-wins with concurrent writers on different
coordinators at every write level; per-field read repair; hinted handoff of field cells; no
acknowledged field write lost across kill -9 of a replica, compared replica by replica through
each machine's own stored cells (CAIRN.READ with the field's sub-key); hash tags for
multi-key commands and CROSSSHARD otherwise.
"""

import random
import threading
import time

import pytest
import redis

from cluster_support import decode_cell, encode_cell, hlc_now, info_cluster, session

SHARD = 2
CROSSSHARD = "CROSSSHARD keys in request don't hash to the same shard"
HASH, SET, ZSET = 2, 3, 4  # cell types (docs/formats.md "Cells")


def field_sub_key(field):
    field = field.encode() if isinstance(field, str) else field
    return b"\x01" + field


def stored_field(cluster, i, key, field):
    """(value or None for a tombstone, timestamp, writer, expire) of the field cell machine i
    stores itself, or None: its single-machine view (CAIRN.READ epoch key sub-key)."""
    ic = cluster.internal_client(i)
    try:
        data = ic.execute_command("CAIRN.READ", cluster.epoch(), key, field_sub_key(field))
    finally:
        ic.close()
    return None if data is None else decode_cell(data)


def stored_row(cluster, i, key):
    """{field: decoded cell} of every field cell (tombstones included) machine i stores for
    `key`'s row, read page by page with CAIRN.ROW: its own single-machine view."""
    ic = cluster.internal_client(i)
    fields, start = {}, b""
    try:
        while True:
            _header, _state, nxt, flat = ic.execute_command("CAIRN.ROW", cluster.epoch(), key,
                                                             start, 1000)
            for sub, cell in zip(flat[0::2], flat[1::2]):
                if sub[:1] == b"\x01":
                    fields[sub[1:].decode()] = decode_cell(cell)
            if nxt is None:
                return fields
            start = nxt
    finally:
        ic.close()


def apply_field_on(cluster, machines, key, field, cell):
    for i in machines:
        ic = cluster.internal_client(i)
        try:
            ic.execute_command("CAIRN.APPLY", cluster.epoch(), key, cell, field_sub_key(field))
        finally:
            ic.close()


def field_cell(value, timestamp, writer, cell_type=HASH):
    cell = bytearray(encode_cell(value, timestamp, writer))
    cell[2] = cell_type
    return bytes(cell)


def on_every_machine(cluster, work):
    """Runs work(i) in one thread per machine at once; the exceptions they raised."""
    errors = []

    def run(i):
        try:
            work(i)
        except Exception as e:  # noqa: BLE001 - returned to the caller
            errors.append((i, repr(e)))
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(cluster.machines))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def retry_unavailable(fn, timeout=8.0):
    """Runs fn, retrying while a just-restarted machine makes it answer UNAVAILABLE/UNCERTAIN."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except redis.ResponseError as e:
            if not str(e).startswith(("UNAVAILABLE", "UNCERTAIN")) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# --- the commands through every machine -----------------------------------------------------


def test_hash_set_and_sorted_set_commands_through_every_machine(cluster):
    machines = range(len(cluster.machines))
    for i in machines:
        c = cluster.client(i)
        key = "h%d" % i
        assert c.hset(key, mapping={"a": "1", "b": "2"}) == 2
        assert c.hset(key, "a", "10") == 0
        assert c.hsetnx(key, "a", "x") == 0
        assert c.hincrby(key, "n", 5) == 5
        assert c.hdel(key, "b", "zz") == 1
        assert c.sadd("s%d" % i, "x", "y", "z") == 3
        assert c.srem("s%d" % i, "y") == 1
        assert c.zadd("z%d" % i, {"m1": 1.5, "m2": -2, "m3": 7}) == 3
        assert c.zincrby("z%d" % i, 10, "m2") == 8.0
        c.close()
    for i in machines:
        # Read through another machine than the writer, at QUORUM.
        c = cluster.client((i + 1) % len(cluster.machines))
        key = "h%d" % i
        assert c.hgetall(key) == {b"a": b"10", b"n": b"5"}
        assert c.hget(key, "a") == b"10"
        assert c.hmget(key, ["a", "b", "n"]) == [b"10", None, b"5"]
        assert c.hlen(key) == 2
        assert sorted(c.hkeys(key)) == [b"a", b"n"]
        assert c.hexists(key, "b") is False
        assert c.smembers("s%d" % i) == {b"x", b"z"}
        assert c.scard("s%d" % i) == 2
        assert c.sismember("s%d" % i, "x") is True
        assert c.zrange("z%d" % i, 0, -1, withscores=True) == [(b"m1", 1.5), (b"m3", 7.0),
                                                                (b"m2", 8.0)]
        assert c.zrangebyscore("z%d" % i, 2, 10) == [b"m3", b"m2"]
        assert c.zscore("z%d" % i, "m2") == 8.0
        assert c.zcard("z%d" % i) == 3
        assert c.zrank("z%d" % i, "m3") == 1
        assert c.type(key) == b"hash" and c.type("s%d" % i) == b"set"
        assert c.type("z%d" % i) == b"zset"
        c.close()
    c = cluster.client(2)
    assert c.zpopmin("z0") == [(b"m1", 1.5)]
    assert c.spop("s0") in (b"x", b"z")
    assert c.scard("s0") == 1
    c.close()


def test_types_and_key_commands_on_rows(cluster):
    c = cluster.client(4)
    assert c.hset("tk", "f", "v") == 1
    assert c.exists("tk") == 1
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        c.get("tk")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        c.sadd("tk", "m")
    assert c.set("str", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        c.hset("str", "f", "v")
    assert c.expire("tk", 100) is True
    assert 90 <= cluster.client(1).ttl("tk") <= 100
    assert c.persist("tk") is True
    assert c.ttl("tk") == -1
    assert set(c.keys("*")) == {b"tk", b"str"}
    assert c.dbsize() == 2
    # DEL hides every field with one cell; a new hash at the key starts empty.
    assert cluster.client(0).delete("tk") == 1
    assert c.exists("tk") == 0
    assert c.hgetall("tk") == {}
    assert c.type("tk") == b"none"
    assert c.hset("tk", "g", "w") == 1
    assert cluster.client(5).hgetall("tk") == {b"g": b"w"}
    # Emptying a hash deletes the key.
    assert c.hdel("tk", "g") == 1
    assert cluster.client(3).exists("tk") == 0
    # A short expiry hides the whole row everywhere.
    assert c.sadd("ex", "a", "b") == 2
    assert c.pexpire("ex", 200) is True
    time.sleep(0.4)
    assert cluster.client(1).smembers("ex") == set()
    assert cluster.client(2).exists("ex") == 0
    c.close()


def test_multi_key_commands_need_one_shard(cluster):
    c = cluster.client(1)
    a = "{tag}a"
    b = "{tag}b"
    c.sadd(a, "1", "2", "3")
    c.sadd(b, "2", "3", "4")
    assert c.sinterstore("{tag}dst", [a, b]) == 2
    assert c.smembers("{tag}dst") == {b"2", b"3"}
    assert c.smove(a, b, "1") is True
    assert c.sunion([a, b]) == {b"1", b"2", b"3", b"4"}
    keys = cluster.keys_on_shard(1, 1, prefix="x") + cluster.keys_on_shard(2, 1, prefix="y")
    c.sadd(keys[0], "m")
    with pytest.raises(redis.ResponseError, match=CROSSSHARD):
        c.smove(keys[0], keys[1], "m")
    with pytest.raises(redis.ResponseError, match=CROSSSHARD):
        c.sunionstore(keys[1], [keys[0]])
    # Read-only multi-key commands read each key wherever it is.
    assert c.sunion(keys) == {b"m"}
    c.close()


def test_sorted_set_algebra_bits_copy_and_field_expiry_in_a_cluster(cluster):
    """The commands that finish the rows surface: *STORE, BITOP and COPY go through the shard
    leader and need one shard; ZUNION, ZINTERCARD and LCS read each key wherever it lives;
    HEXPIRE is a field write through the leader whose field vanishes on every machine."""
    c = cluster.client(2)
    a, b = "{t}za", "{t}zb"
    c.zadd(a, {"x": 1, "y": 2})
    c.zadd(b, {"y": 10, "z": 3})
    c.sadd("{t}s", "x")
    assert c.zunionstore("{t}dst", [a, b, "{t}s"]) == 3
    assert c.zrange("{t}dst", 0, -1, withscores=True) == [(b"x", 2.0), (b"z", 3.0),
                                                          (b"y", 12.0)]
    assert c.zrangestore("{t}r", a, 0, 0) == 1
    assert c.zdiffstore("{t}d", [a, b]) == 1
    x, y = cluster.keys_on_shard(1, 1, prefix="zx") + cluster.keys_on_shard(2, 1, prefix="zy")
    c.zadd(x, {"m": 1})
    c.zadd(y, {"m": 2, "n": 3})
    for command in (lambda: c.zunionstore(x, [x, y]), lambda: c.zrangestore(x, y, 0, -1),
                    lambda: c.copy(x, y, replace=True),
                    lambda: c.bitop("AND", x + "s", y + "s")):
        with pytest.raises(redis.ResponseError, match=CROSSSHARD):
            command()
    # Reads of several keys need no shard in common.
    assert c.zunion([x, y], withscores=True) == [(b"m", 3.0), (b"n", 3.0)]
    assert c.zintercard(2, [x, y]) == 1
    c.set(x + "s", "ohmytext")
    c.set(y + "s", "mynewtext")
    assert c.lcs(x + "s", y + "s") == b"mytext"
    assert c.copy(a, "{t}copy") is True
    assert cluster.client(4).zrange("{t}copy", 0, -1) == [b"x", b"y"]
    assert c.execute_command("BITFIELD", "{t}bf", "OVERFLOW", "SAT", "INCRBY", "u8", 0,
                             300) == [255]
    assert c.bitop("NOT", "{t}bf2", "{t}bf") == 1 and c.get("{t}bf2") == b"\x00"
    assert c.command_getkeys("ZUNIONSTORE", "d", "2", "a", "b") == ["d", "a", "b"]
    # Per-field expiry, set through one machine, seen from every machine.
    c.hset("{t}h", mapping={"f": "1", "g": "2"})
    assert c.execute_command("HPEXPIRE", "{t}h", 300, "FIELDS", 1, "f") == [1]
    for i in range(len(cluster.machines)):
        ci = cluster.client(i)
        assert ci.execute_command("HTTL", "{t}h", "FIELDS", 2, "f", "g") == [1, -1]
        ci.close()
    time.sleep(0.5)
    for i in range(len(cluster.machines)):
        ci = cluster.client(i)
        assert ci.hgetall("{t}h") == {b"g": b"2"}
        assert ci.hlen("{t}h") == 1
        ci.close()
    assert c.execute_command("HEXPIRE", "{t}h", 0, "FIELDS", 1, "g") == [2]
    assert c.exists("{t}h") == 0
    c.close()


def test_redis_cluster_client_routes_the_new_commands(cluster):
    """redis-py's RedisCluster finds the keys of ZUNIONSTORE, ZINTERCARD, BITOP, COPY... from
    COMMAND (key positions, and COMMAND GETKEYS for keys after a count) and sends each command
    to a machine of the key's shard."""
    from redis.cluster import ClusterNode, RedisCluster
    rc = RedisCluster(startup_nodes=[ClusterNode(cluster.host(0), cluster.port(0))],
                      socket_timeout=10)
    try:
        rc.zadd("{rc}a", {"x": 1, "y": 2})
        rc.zadd("{rc}b", {"y": 3})
        assert rc.zunionstore("{rc}d", ["{rc}a", "{rc}b"]) == 2
        assert rc.zintercard(2, ["{rc}a", "{rc}b"]) == 1
        assert rc.zinter(["{rc}a", "{rc}b"], withscores=True) == [(b"y", 5.0)]
        assert rc.copy("{rc}d", "{rc}e") is True
        rc.set("{rc}s", "ab")
        assert rc.bitop("NOT", "{rc}n", "{rc}s") == 2
        assert rc.lcs("{rc}s", "{rc}s") == b"ab"
        rc.hset("{rc}h", "f", "v")
        assert rc.execute_command("HEXPIRE", "{rc}h", 100, "FIELDS", 1, "f") == [1]
        assert rc.execute_command("HTTL", "{rc}h", "FIELDS", 1, "f") == [100]
    finally:
        rc.close()


# --- per-field last-write-wins ---------------------------------------------------------------


@pytest.mark.parametrize("level", ["ONE", "QUORUM", "ALL"])
def test_concurrent_writers_of_different_fields_all_survive(cluster, level):
    """Six writers, one per machine (leaders and followers), write disjoint fields of one hash,
    one set and one sorted set at the same time: every field of every writer is there."""
    key = "cw-%s" % level
    per_writer = 40

    def writer(i):
        c = session(cluster, i, write=level)
        try:
            for n in range(per_writer):
                c.hset("{%s}h" % key, "w%d-%d" % (i, n), "%d" % n)
                c.sadd("{%s}s" % key, "w%d-%d" % (i, n))
                c.zadd("{%s}z" % key, {"w%d-%d" % (i, n): i * 1000 + n})
        finally:
            c.close()

    assert on_every_machine(cluster, writer) == []
    expected = {"w%d-%d" % (i, n) for i in range(len(cluster.machines)) for n in range(per_writer)}
    r = session(cluster, 2, read="ALL")
    assert {f.decode() for f in r.hkeys("{%s}h" % key)} == expected
    assert r.hlen("{%s}h" % key) == len(expected)
    assert {m.decode() for m in r.smembers("{%s}s" % key)} == expected
    assert r.zcard("{%s}z" % key) == len(expected)
    scores = dict(r.zrange("{%s}z" % key, 0, -1, withscores=True))
    assert {m.decode(): int(s) for m, s in scores.items()} == {
        "w%d-%d" % (i, n): i * 1000 + n for i in range(len(cluster.machines))
        for n in range(per_writer)}
    r.close()


def test_concurrent_writers_of_one_field_converge_on_every_replica(cluster):
    """Writers on every machine overwrite the same fields; afterwards a read at ALL (with its
    repair) leaves one value per field, the same cell on every replica."""
    key = cluster.keys_on_shard(SHARD, 1, prefix="one-field")[0]
    fields = ["f%d" % n for n in range(5)]

    def writer(i):
        c = cluster.client(i)
        try:
            for n in range(30):
                c.hset(key, random.choice(fields), "m%d-%d" % (i, n))
        finally:
            c.close()

    assert on_every_machine(cluster, writer) == []
    r = session(cluster, 0, read="ALL")
    merged = r.hgetall(key)
    assert set(merged) == {f.encode() for f in fields}
    r.close()
    for f in fields:
        cells = {i: stored_field(cluster, i, key, f) for i in cluster.replicas_of(key)}
        assert len(set(cells.values())) == 1, (f, cells)
        assert next(iter(cells.values()))[0] == merged[f.encode()]


def test_field_cells_stamped_by_two_coordinators_merge_per_field(cluster):
    """Per-field LWW whoever stamped the cells: two coordinators' field cells (writer ids 1 and
    4, interleaved timestamps) reach different replicas in different orders, as concurrent
    writes through two machines do. Every QUORUM read, through any machine, answers both
    writers' fields and the newer cell of the field both wrote; a read at ALL leaves every
    replica with the same cells."""
    reps = cluster.replicas_of_shard(SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="two-coord")[0]
    c = session(cluster, 0, write="ALL")
    assert c.hset(key, "base", "0") == 1  # the row exists everywhere
    c.close()
    t = hlc_now()
    a = field_cell("from-1", t + 1, writer=1)
    b = field_cell("from-4", t + 2, writer=4)
    shared_old = field_cell("old", t + 3, writer=4)
    shared_new = field_cell("new", t + 3, writer=5)  # same timestamp: the larger writer wins
    apply_field_on(cluster, reps[:2], key, "a", a)
    apply_field_on(cluster, reps[1:], key, "b", b)
    apply_field_on(cluster, [reps[0]], key, "shared", shared_new)
    apply_field_on(cluster, reps, key, "shared", shared_old)  # refused where the newer is
    apply_field_on(cluster, [reps[2]], key, "shared", shared_new)
    want = {b"base": b"0", b"a": b"from-1", b"b": b"from-4", b"shared": b"new"}
    for i in range(len(cluster.machines)):
        r = session(cluster, i, read="QUORUM")
        assert r.hgetall(key) == want, i
        assert r.hlen(key) == 4
        r.close()
    r = session(cluster, 3, read="ALL")
    assert r.hgetall(key) == want
    r.close()
    rows = {i: stored_row(cluster, i, key) for i in reps}
    assert rows[reps[0]] == rows[reps[1]] == rows[reps[2]], rows
    assert rows[reps[0]]["shared"][2] == 5


# --- read repair and hinted handoff per field ------------------------------------------------


def test_read_repair_fixes_only_the_divergent_field(cluster):
    reps = cluster.replicas_of_shard(SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="rr-row")[0]
    c = session(cluster, 0, write="ALL")
    assert c.hset(key, mapping={"a": "old", "b": "keep"}) == 2
    c.close()
    # One replica gets a newer cell of field a behind the coordinators' back.
    apply_field_on(cluster, reps[:1], key, "a", field_cell("new", hlc_now(), writer=1))
    assert stored_field(cluster, reps[1], key, "a")[0] == b"old"
    before = info_cluster(cluster.client(0))["read_repairs"]
    r = session(cluster, 0, read="ALL")
    assert r.hgetall(key) == {b"a": b"new", b"b": b"keep"}
    r.close()
    # Blocking read repair: every replica holds the newest cell of a before the reply.
    for i in reps:
        assert stored_field(cluster, i, key, "a")[0] == b"new"
        assert stored_field(cluster, i, key, "b")[0] == b"keep"
    after = info_cluster(cluster.client(0))["read_repairs"]
    assert after - before == 2  # field a on the two stale replicas, nothing else


def test_hinted_handoff_carries_field_cells(cluster):
    reps = cluster.replicas_of_shard(SHARD)
    leader = cluster.leader_of_shard(SHARD)
    victim = [i for i in reps if i != leader][0]
    key = cluster.keys_on_shard(SHARD, 1, prefix="hh-row")[0]
    c = cluster.client(0)
    assert c.hset(key, "before", "1") == 1
    cluster.kill(victim)
    assert c.hset(key, mapping={"x": "1", "y": "2"}) == 2
    assert c.hdel(key, "before") == 1
    assert c.sadd("{%s}s" % key, "m") == 1
    # HSET, HDEL and SADD need no leader: machine 0 coordinated them and keeps the hints.
    assert victim != 0
    assert info_cluster(c)["hints_pending"] >= 3
    cluster.restart(victim)
    cluster.wait_hints_drained(range(len(cluster.machines)))
    assert stored_field(cluster, victim, key, "x")[0] == b"1"
    assert stored_field(cluster, victim, key, "y")[0] == b"2"
    assert stored_field(cluster, victim, key, "before")[0] is None  # the tombstone arrived
    alone = session(cluster, victim, read="ONE")
    assert alone.hgetall(key) == {b"x": b"1", b"y": b"2"}
    c.close()
    alone.close()


# --- kill -9 of a replica under field writes -------------------------------------------------


@pytest.mark.parametrize("victim_role", ["follower", "leader"])
def test_no_acknowledged_field_write_is_lost_across_kill9(cluster, victim_role):
    """Fields written at QUORUM through every machine; one replica of the shard is killed -9
    mid-way, writes go on, it restarts; every acknowledged field reads back at QUORUM, and after
    hints drain every replica stores every acknowledged field itself."""
    reps = cluster.replicas_of_shard(SHARD)
    leader = cluster.leader_of_shard(SHARD)
    victim = leader if victim_role == "leader" else [i for i in reps if i != leader][0]
    key = cluster.keys_on_shard(SHARD, 1, prefix="k9-%s" % victim_role)[0]
    coordinators = [i for i in range(len(cluster.machines)) if i != victim]
    acked = {}  # field -> value, only for acknowledged writes
    lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def writer(i):
        c = session(cluster, i, write="QUORUM")
        n = 0
        try:
            while not stop.is_set():
                field, value = "w%d-%d" % (i, n), "v%d" % n
                n += 1
                try:
                    if c.hset(key, field, value) == 1:
                        with lock:
                            acked[field] = value
                except redis.ResponseError as e:
                    # While the victim is down or restarting a read or a write may be
                    # refused or uncertain: neither is acknowledged.
                    if not str(e).startswith(("UNCERTAIN", "NOLEADER", "UNAVAILABLE")):
                        errors.append(repr(e))
                    time.sleep(0.01)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in coordinators]
    for t in threads:
        t.start()
    time.sleep(1.0)
    cluster.kill(victim)
    time.sleep(1.5)
    cluster.restart(victim)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert len(acked) > 20
    r = session(cluster, coordinators[0], read="QUORUM")
    got = retry_unavailable(lambda: r.hgetall(key))
    r.close()
    missing = {f: v for f, v in acked.items() if got.get(f.encode()) != v.encode()}
    assert missing == {}
    cluster.wait_hints_drained(range(len(cluster.machines)))
    for i in reps:
        row = stored_row(cluster, i, key)
        lost = [f for f, v in acked.items() if (row.get(f) or (None,))[0] != v.encode()]
        assert lost == [], (i, len(lost), lost[:5])


def test_field_writes_honour_a_write_level_above_quorum(cluster):
    """HSET runs at the connection's write level (without the leader, as SET): with one replica
    down, WRITE ALL is uncertain and WRITE ONE succeeds."""
    reps = cluster.replicas_of_shard(SHARD)
    leader = cluster.leader_of_shard(SHARD)
    key = cluster.keys_on_shard(SHARD, 1, prefix="lvl-row")[0]
    assert cluster.client(0).hset(key, "a", "1") == 1
    cluster.kill([i for i in reps if i != leader][0])
    strong = session(cluster, 0, write="ALL")
    with pytest.raises(redis.ResponseError, match="UNCERTAIN 2 of 3 required replicas"):
        strong.hset(key, "b", "2")
    strong.close()
    weak = session(cluster, 0, write="ONE")
    assert weak.hset(key, "c", "3") == 1
    weak.close()
    assert cluster.client(1).hgetall(key) == {b"a": b"1", b"b": b"2", b"c": b"3"}
