"""Streams in cluster mode: a 2-shard x RF 3 cluster of 6 machines (conftest.py).

What is checked: XADD through every machine builds one stream with increasing IDs (the leader
assigns them); consumer-group reads and acknowledgements through different machines share one
group state; a client blocked in XREAD / XREADGROUP on any machine wakes when an XADD through
another machine is applied; and with the key's leader killed -9 while producers add and a
group reads, every acknowledged XADD is in the stream afterwards and IDs strictly increase.
"""

import threading
import time

import redis

from harness import RawConn, encode_command
from cluster_support import session

SHARD = 2


def id_key(entry_id):
    ms, seq = entry_id.split(b"-")
    return int(ms), int(seq)


def retry_unavailable(fn, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except (redis.ResponseError, redis.ConnectionError) as e:
            if time.monotonic() > deadline or not (
                    isinstance(e, redis.ConnectionError) or
                    str(e).startswith(("UNAVAILABLE", "UNCERTAIN", "NOLEADER"))):
                raise
            time.sleep(0.1)


def test_xadd_and_groups_through_every_machine(cluster):
    clients = [cluster.client(i) for i in range(6)]
    ids = [clients[n % 6].xadd("st", {"n": str(n)}) for n in range(30)]
    assert ids == sorted(ids, key=id_key) and len(set(ids)) == 30
    for c in clients:
        assert c.xlen("st") == 30
        assert [e[0] for e in c.xrange("st")] == ids
        assert c.type("st") == b"stream"
    assert clients[1].xgroup_create("st", "g", id="0") is True
    got = clients[2].xreadgroup("g", "alice", {"st": ">"}, count=10)
    assert [e[0] for e in got[0][1]] == ids[:10]
    got = clients[3].xreadgroup("g", "bob", {"st": ">"}, count=5)
    assert [e[0] for e in got[0][1]] == ids[10:15]
    assert clients[4].xack("st", "g", *ids[:4]) == 4
    summary = clients[5].xpending("st", "g")
    assert summary["pending"] == 11
    assert summary["min"] == ids[4] and summary["max"] == ids[14]
    claimed = clients[0].xclaim("st", "g", "carol", 0, [ids[5]], justid=True)
    assert claimed == [ids[5]]
    assert clients[1].xpending_range("st", "g", "-", "+", 10, "carol")[0]["message_id"] == ids[5]
    info = clients[2].xinfo_groups("st")[0]
    assert info["pending"] == 11 and info["consumers"] == 3
    assert info["last-delivered-id"] == ids[14]
    assert clients[3].xdel("st", ids[0]) == 1
    assert clients[4].xlen("st") == 29
    assert clients[5].xtrim("st", maxlen=10, approximate=False) == 19
    assert [e[0] for e in clients[0].xrange("st")] == ids[20:]
    for c in clients:
        c.close()


def test_blocked_reads_on_any_machine_wake(cluster):
    key = "bs"
    replicas = cluster.replicas_of(key)
    outsider = next(i for i in range(6) if i not in replicas)
    setup = cluster.client(replicas[0])
    setup.xgroup_create(key, "g", id="$", mkstream=True)
    waiters = []
    for i in (replicas[1], outsider):
        conn = RawConn(cluster.port(i), host=cluster.host(i))
        conn.send(encode_command("XREAD", "BLOCK", "0", "STREAMS", key, "$"))
        waiters.append(conn)
    group_waiter = RawConn(cluster.port(outsider), host=cluster.host(outsider))
    group_waiter.send(encode_command("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0",
                                     "STREAMS", key, ">"))
    time.sleep(0.5)
    adder = cluster.client(replicas[2])
    started = time.monotonic()
    new_id = adder.xadd(key, {"f": "v"})
    for w in waiters + [group_waiter]:
        reply = w.read_frame()[1]
        assert reply == [[key.encode(), [[new_id, [b"f", b"v"]]]]]
    assert time.monotonic() - started < 3.0
    assert adder.xpending(key, "g")["pending"] == 1
    # A timeout answers null on a cluster machine too.
    assert cluster.client(outsider).xread({key: "$"}, block=200) == []
    for w in waiters + [group_waiter]:
        w.close()
    setup.close()
    adder.close()


def test_no_acknowledged_xadd_is_lost_when_the_leader_dies(cluster):
    """Producers XADD through every surviving machine while a consumer group reads and acks;
    the key's shard leader is killed -9 mid-way and restarted. Every acknowledged XADD is in the
    stream afterwards, IDs strictly increase, and no entry was delivered to the group twice
    as new (">")."""
    key = cluster.keys_on_shard(SHARD, 1, prefix="stream-k9")[0]
    leader = cluster.leader_of_shard(SHARD)
    coordinators = [i for i in range(len(cluster.machines)) if i != leader]
    acked = {}  # id -> payload, acknowledged XADDs only
    delivered = []
    lock = threading.Lock()
    stop = threading.Event()
    errors = []
    setup = cluster.client(coordinators[0])
    setup.xgroup_create(key, "g", id="$", mkstream=True)
    setup.close()

    def expected_error(e):
        return isinstance(e, redis.ConnectionError) or str(e).startswith(
            ("UNCERTAIN", "NOLEADER", "UNAVAILABLE"))

    def producer(i):
        c = session(cluster, i, write="QUORUM")
        n = 0
        try:
            while not stop.is_set():
                payload = "p%d-%d" % (i, n)
                n += 1
                try:
                    entry_id = c.xadd(key, {"p": payload})
                    with lock:
                        acked[entry_id] = payload
                except redis.RedisError as e:
                    if not expected_error(e):
                        errors.append(repr(e))
                    time.sleep(0.02)
        finally:
            c.close()

    def consumer():
        c = session(cluster, coordinators[-1])
        try:
            while not stop.is_set():
                try:
                    got = c.xreadgroup("g", "worker", {key: ">"}, count=20, block=100)
                    for _, entries in got or []:
                        ids = [e[0] for e in entries]
                        with lock:
                            delivered.extend(ids)
                        if ids:
                            c.xack(key, "g", *ids)
                except redis.RedisError as e:
                    if not expected_error(e):
                        errors.append(repr(e))
                    time.sleep(0.02)
        finally:
            c.close()

    threads = [threading.Thread(target=producer, args=(i,)) for i in coordinators[:4]]
    threads.append(threading.Thread(target=consumer))
    for t in threads:
        t.start()
    time.sleep(1.0)
    cluster.kill(leader)
    time.sleep(2.0)
    cluster.restart(leader)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(acked) > 20
    r = session(cluster, coordinators[0], read="QUORUM")
    entries = retry_unavailable(lambda: r.xrange(key))
    ids = [e[0] for e in entries]
    assert ids == sorted(ids, key=id_key)
    assert len(ids) == len(set(ids))
    stored = {e[0]: e[1][b"p"].decode() for e in entries}
    missing = {i: p for i, p in acked.items() if stored.get(i) != p}
    assert missing == {}
    # A new ID after the leader change is above every ID before it.
    last = retry_unavailable(lambda: r.xadd(key, {"p": "after"}))
    assert id_key(last) > id_key(ids[-1])
    # Delivered as new at most once each (a reply lost with its connection may skip some).
    assert len(delivered) == len(set(delivered))
    r.close()


def test_multi_key_reads_across_shards(cluster):
    """XREAD reads each key where it lives; XREADGROUP writes all its keys at one leader, so keys
    of different shards are refused (docs/protocol.md "Streams")."""
    ids = [s["id"] for s in cluster._table["shards"]]
    a = cluster.keys_on_shard(ids[0], 1, prefix="xa")[0]
    b = cluster.keys_on_shard(ids[1], 1, prefix="xb")[0]
    c = cluster.client(0)
    c.xadd(a, {"f": "1"}, id="1-1")
    c.xadd(b, {"f": "2"}, id="2-1")
    got = c.xread({a: "0", b: "0"})
    assert got == [[a.encode(), [(b"1-1", {b"f": b"1"})]],
                   [b.encode(), [(b"2-1", {b"f": b"2"})]]] or got == [
        [a.encode(), [[b"1-1", [b"f", b"1"]]]], [b.encode(), [[b"2-1", [b"f", b"2"]]]]]
    c.xgroup_create(a, "g", id="0")
    c.xgroup_create(b, "g", id="0")
    try:
        c.xreadgroup("g", "w", {a: ">", b: ">"})
        raise AssertionError("keys of two shards were accepted")
    except redis.ResponseError as e:
        assert str(e).startswith("CROSSSHARD")
    c.close()


def test_redis_cluster_client_routes_stream_commands(cluster):
    """redis-py's RedisCluster finds the keys of XREAD / XREADGROUP after STREAMS (COMMAND
    GETKEYS) and of the other stream commands from COMMAND, and sends each to the key's shard."""
    from redis.cluster import ClusterNode, RedisCluster
    rc = RedisCluster(startup_nodes=[ClusterNode(cluster.host(0), cluster.port(0))],
                      socket_timeout=10)
    try:
        for n in range(10):
            key = "rcs%d" % n
            assert rc.xadd(key, {"n": str(n)}, id="1-%d" % (n + 1)) == b"1-%d" % (n + 1)
            assert rc.xread({key: "0"}) == [[key.encode(), [(b"1-%d" % (n + 1),
                                                             {b"n": str(n).encode()})]]]
            assert rc.xgroup_create(key, "g", id="0") is True
            got = rc.xreadgroup("g", "c", {key: ">"})
            assert got[0][1][0][0] == b"1-%d" % (n + 1)
            assert rc.xack(key, "g", b"1-%d" % (n + 1)) == 1
            assert rc.xinfo_stream(key)["length"] == 1
    finally:
        rc.close()
