"""MULTI / EXEC / DISCARD / WATCH / UNWATCH on a single machine (docs/transactions.md).

Scripted scenarios run on redis-server and on Cairn, with the same second connection making
the concurrent changes, and every reply is compared byte for byte. Then a concurrency check:
clients incrementing one counter with WATCH + MULTI/EXEC retry loops never lose an increment.
"""

import threading
import time

import pytest
import redis

from harness import RawConn, encode_command


def cmd(conn, *args):
    conn.send(encode_command(*args))
    return conn.read_raw()


# Each scenario: a list of (connection index, command...) steps, or ("sleep", seconds).
SCENARIOS = {
    "exec_runs_in_order": [
        (0, "MULTI"), (0, "SET", "a", "1"), (0, "INCR", "a"), (0, "GET", "a"),
        (0, "HSET", "h", "f", "v", "g", "w"), (0, "HGETALL", "h"), (0, "SADD", "s", "x"),
        (0, "ZADD", "z", "1", "m"), (0, "ZRANGE", "z", "0", "-1", "WITHSCORES"), (0, "EXEC"),
    ],
    "queuing_errors_abort": [
        (0, "MULTI"), (0, "SET", "a", "1"), (0, "NOSUCHCOMMAND"), (0, "GET"), (0, "EXEC"),
        (0, "GET", "a"),
    ],
    "runtime_errors_do_not_stop_the_others": [
        (0, "SET", "a", "x"), (0, "MULTI"), (0, "INCR", "a"), (0, "SET", "b", "2"),
        (0, "HSET", "a", "f", "v"),
        (0, "GET", "b"), (0, "EXEC"),
    ],
    "misuse": [
        (0, "EXEC"), (0, "DISCARD"), (0, "MULTI"), (0, "MULTI"), (0, "WATCH", "a"),
        (0, "DISCARD"), (0, "WATCH"),
    ],
    "discard_drops_the_queue": [
        (0, "SET", "a", "1"), (0, "MULTI"), (0, "SET", "a", "2"), (0, "DISCARD"),
        (0, "GET", "a"),
    ],
    "watched_key_changed_by_another_client": [
        (0, "SET", "k", "1"), (0, "WATCH", "k"), (1, "SET", "k", "2"), (0, "MULTI"),
        (0, "SET", "k", "3"), (0, "EXEC"), (0, "GET", "k"),
        # EXEC unwatched everything: the next transaction runs.
        (1, "SET", "k", "4"), (0, "MULTI"), (0, "SET", "k", "5"), (0, "EXEC"), (0, "GET", "k"),
    ],
    "watched_key_unchanged": [
        (0, "SET", "k", "1"), (0, "WATCH", "k", "missing"), (1, "GET", "k"), (0, "MULTI"),
        (0, "INCR", "k"), (0, "EXEC"),
    ],
    "watched_key_deleted_or_created": [
        (0, "SET", "k", "1"), (0, "WATCH", "k"), (1, "DEL", "k"), (0, "MULTI"),
        (0, "SET", "x", "1"), (0, "EXEC"), (0, "WATCH", "new"), (1, "SET", "new", "1"),
        (0, "MULTI"), (0, "SET", "x", "2"), (0, "EXEC"), (0, "GET", "x"),
    ],
    "watched_missing_key_created_and_deleted_again": [
        (0, "WATCH", "gone"), (1, "SET", "gone", "1"), (1, "DEL", "gone"), (0, "MULTI"),
        (0, "SET", "x", "1"), (0, "EXEC"), (0, "SET", "was", "1"), (0, "DEL", "was"),
        (0, "WATCH", "was"), (1, "SET", "was", "2"), (1, "DEL", "was"), (0, "MULTI"),
        (0, "SET", "x", "2"), (0, "EXEC"), (0, "GET", "x"),
        # Staying deleted is no change.
        (0, "WATCH", "was"), (1, "DEL", "was"), (0, "MULTI"), (0, "SET", "x", "3"), (0, "EXEC"),
    ],
    "watched_hash_field_changed": [
        (0, "HSET", "h", "a", "1", "b", "2"), (0, "WATCH", "h"), (1, "HSET", "h", "b", "3"),
        (0, "MULTI"), (0, "HSET", "h", "c", "4"), (0, "EXEC"), (0, "WATCH", "h"),
        (1, "HDEL", "h", "a"), (0, "MULTI"), (0, "HLEN", "h"), (0, "EXEC"),
        (0, "SADD", "s", "m"), (0, "WATCH", "s"), (1, "SREM", "s", "m"), (0, "MULTI"),
        (0, "SCARD", "s"), (0, "EXEC"),
    ],
    "watched_key_expires": [
        (0, "SET", "e", "1", "PX", "30"), (0, "WATCH", "e"), ("sleep", 0.1), (0, "MULTI"),
        (0, "SET", "x", "1"), (0, "EXEC"),
    ],
    "watched_key_expired_before_watch": [
        (0, "SET", "e", "1", "PX", "10"), ("sleep", 0.05), (0, "WATCH", "e"), (0, "MULTI"),
        (0, "SET", "x", "1"), (0, "EXEC"),
    ],
    "expire_changes_a_watched_key": [
        (0, "SET", "k", "1"), (0, "WATCH", "k"), (1, "EXPIRE", "k", "100"), (0, "MULTI"),
        (0, "GET", "k"), (0, "EXEC"),
    ],
    "unwatch_and_discard_forget_watches": [
        (0, "SET", "k", "1"), (0, "WATCH", "k"), (0, "UNWATCH"), (1, "SET", "k", "2"),
        (0, "MULTI"), (0, "GET", "k"), (0, "EXEC"), (0, "WATCH", "k"), (0, "MULTI"),
        (0, "DISCARD"), (1, "SET", "k", "3"), (0, "MULTI"), (0, "GET", "k"), (0, "EXEC"),
    ],
    "own_writes_inside_do_not_abort": [
        (0, "SET", "k", "1"), (0, "WATCH", "k"), (0, "MULTI"), (0, "SET", "k", "2"),
        (0, "GET", "k"), (0, "EXEC"),
    ],
    "resp3_nil_exec": [
        (0, "HELLO", "3"), (0, "SET", "k", "1"), (0, "WATCH", "k"), (1, "SET", "k", "2"),
        (0, "MULTI"), (0, "GET", "k"), (0, "EXEC"), (0, "MULTI"), (0, "GET", "k"),
        (0, "EXEC"),
    ],
}


def run_scenario(port, steps):
    conns = [RawConn(port), RawConn(port)]
    try:
        cmd(conns[0], "FLUSHALL")
        replies = []
        for step in steps:
            if step[0] == "sleep":
                time.sleep(step[1])
                continue
            reply = cmd(conns[step[0]], *step[1:])
            if step[1] == "HELLO":
                reply = reply[:1]  # the server's description differs; the type must not
            replies.append(reply)
        return replies
    finally:
        for c in conns:
            c.close()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_transactions_match_redis(redis_ref, server, name):
    expected = run_scenario(redis_ref.port, SCENARIOS[name])
    got = run_scenario(server.port, SCENARIOS[name])
    assert got == expected


def test_redis_py_pipelines_are_transactions(r):
    # redis-py's pipeline() defaults to MULTI/EXEC.
    with r.pipeline() as p:
        p.set("pa", 1).incr("pa").hset("ph", "f", "v").hgetall("ph")
        assert p.execute() == [True, 2, 1, {b"f": b"v"}]
    with r.pipeline() as p:
        p.watch("pa")
        assert p.get("pa") == b"2"
        p.multi()
        p.set("pa", 10)
        assert p.execute() == [True]
    assert r.get("pa") == b"10"


def test_watch_increments_from_many_clients_are_never_lost(server):
    clients, per_client = 6, 40
    r0 = redis.Redis(port=server.port)
    r0.set("counter", 0)
    conflicts = [0]
    lock = threading.Lock()

    def worker():
        c = redis.Redis(port=server.port)
        done = 0
        while done < per_client:
            with c.pipeline() as p:
                try:
                    p.watch("counter")
                    value = int(p.get("counter"))
                    p.multi()
                    p.set("counter", value + 1)
                    p.execute()
                    done += 1
                except redis.WatchError:
                    with lock:
                        conflicts[0] += 1
        c.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert int(r0.get("counter")) == clients * per_client
    # Six clients racing on one key must have collided: the check above then proves the
    # collisions were detected, not just absent.
    assert conflicts[0] > 0


def test_exec_is_isolated_from_other_clients(server):
    # Transfers between two keys in MULTI/EXEC while readers read both in MULTI/EXEC: a reader
    # never sees a transfer half done.
    r0 = redis.Redis(port=server.port)
    r0.mset({"acct:a": 1000, "acct:b": 1000})
    stop = threading.Event()
    bad = []

    def transfer():
        c = redis.Redis(port=server.port)
        while not stop.is_set():
            with c.pipeline() as p:
                p.decrby("acct:a", 7).incrby("acct:b", 7)
                p.execute()
        c.close()

    def read():
        c = redis.Redis(port=server.port)
        while not stop.is_set():
            with c.pipeline() as p:
                a, b = p.get("acct:a").get("acct:b").execute()
                if int(a) + int(b) != 2000:
                    bad.append((a, b))
        c.close()

    threads = [threading.Thread(target=f) for f in (transfer, transfer, read, read)]
    for t in threads:
        t.start()
    time.sleep(2)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not bad, bad[:5]
    assert int(r0.get("acct:a")) + int(r0.get("acct:b")) == 2000


def test_queue_bounds_and_bad_cairn_tx(raw):
    raw.send(encode_command(b"CAIRN.TX", b"1", b"k"))
    assert raw.read_raw().startswith(b"-ERR CAIRN.TX")
    raw.send(encode_command(b"CAIRN.TX", b"0", b"2", b"1", b"PING"))
    assert raw.read_raw().startswith(b"-ERR CAIRN.TX")
    raw.send(encode_command(b"CAIRN.TX", b"0", b"1", b"99999999999", b"PING"))
    assert raw.read_raw().startswith(b"-ERR CAIRN.TX")
    raw.send(encode_command(b"CAIRN.TX", b"0", b"2", b"1", b"PING", b"2", b"ECHO", b"x"))
    assert raw.read_raw() == b"*2\r\n+PONG\r\n$1\r\nx\r\n"


def test_info_counts_transactions_by_how_they_ended(server):
    def counts():
        stats = redis.Redis(port=server.port).info("stats")
        return {k: stats[k] for k in ("cairn_transactions_committed",
                                      "cairn_transactions_watch_aborted",
                                      "cairn_transactions_queue_errors",
                                      "cairn_transactions_refused")}
    before = counts()
    a, b = RawConn(server.port), RawConn(server.port)
    try:
        for args in (["MULTI"], ["SET", "ic", "1"], ["EXEC"],                  # committed
                     ["WATCH", "ic"], ["MULTI"], ["GET", "ic"]):
            cmd(a, *args)
        cmd(b, "SET", "ic", "2")
        assert cmd(a, "EXEC") == b"*-1\r\n"                                     # watch-aborted
        for args in (["MULTI"], ["NOSUCHCOMMAND"]):
            cmd(a, *args)
        assert cmd(a, "EXEC").startswith(b"-EXECABORT")                         # queue errors
    finally:
        a.close()
        b.close()
    after = counts()
    assert {k: after[k] - before[k] for k in after} == {
        "cairn_transactions_committed": 1, "cairn_transactions_watch_aborted": 1,
        "cairn_transactions_queue_errors": 1, "cairn_transactions_refused": 0}
