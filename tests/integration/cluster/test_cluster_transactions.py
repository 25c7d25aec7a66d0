"""MULTI / EXEC / WATCH in a cluster (docs/transactions.md): a transaction whose keys live on
one shard runs at that shard's leader under its key locks, whichever machine the client is
connected to; WATCH sees writes made through any machine; keys of several shards commit by
two-phase commit (strings and whole keys; rows across shards are refused).
"""

import threading

import pytest
import redis

from cluster_support import session


def test_exec_through_every_machine_runs_at_the_leader(cluster):
    for i in range(len(cluster.machines)):
        c = session(cluster, i)
        with c.pipeline() as p:
            p.set("{tx}:a%d" % i, 1).incr("{tx}:a%d" % i).hset("{tx}:h", "m%d" % i, i)
            p.get("{tx}:a%d" % i)
            assert p.execute() == [True, 2, 1, b"2"]
        c.close()
    c = session(cluster, 3)
    assert c.hlen("{tx}:h") == len(cluster.machines)
    c.close()


def test_watch_sees_a_write_through_another_machine(cluster):
    shard = cluster.shard_of("{w}k")
    watcher = session(cluster, cluster.replicas_of_shard(3 - shard)[0])  # not a replica
    writer = session(cluster, cluster.replicas_of_shard(shard)[2])
    writer.set("{w}k", "1")
    with watcher.pipeline() as p:
        p.watch("{w}k")
        assert p.get("{w}k") == b"1"
        writer.set("{w}k", "2")
        p.multi()
        p.set("{w}k", "mine")
        with pytest.raises(redis.WatchError):
            p.execute()
    assert writer.get("{w}k") == b"2"
    with watcher.pipeline() as p:  # unchanged: runs
        p.watch("{w}k")
        p.multi()
        p.set("{w}k", "mine")
        assert p.execute() == [True]
    assert writer.get("{w}k") == b"mine"
    watcher.close()
    writer.close()


def test_watch_increments_through_all_machines_are_never_lost(cluster):
    per_client = 15
    machines = list(range(len(cluster.machines)))
    c0 = session(cluster, 0)
    c0.set("{ctr}n", 0)
    conflicts = [0]
    lock = threading.Lock()
    errors = []

    def worker(i):
        c = session(cluster, i)
        done = 0
        try:
            while done < per_client:
                with c.pipeline() as p:
                    try:
                        p.watch("{ctr}n")
                        value = int(p.get("{ctr}n"))
                        p.multi()
                        p.set("{ctr}n", value + 1)
                        p.execute()
                        done += 1
                    except redis.WatchError:
                        with lock:
                            conflicts[0] += 1
        except Exception as e:  # reported below, not swallowed
            errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in machines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert int(c0.get("{ctr}n")) == per_client * len(machines)
    assert conflicts[0] > 0
    c0.close()


def two_shard_keys(cluster, prefix):
    """A key of shard 1 and a key of shard 2."""
    return (cluster.keys_on_shard(1, 1, prefix=prefix + "a")[0],
            cluster.keys_on_shard(2, 1, prefix=prefix + "b")[0])


def test_exec_across_shards_answers_as_redis_and_applies_everything(cluster):
    a, b = two_shard_keys(cluster, "xs")
    for i in range(len(cluster.machines)):
        c = session(cluster, i)
        c.set(a, 10)
        with c.pipeline() as p:
            p.incrby(a, -3).set(b, "x").append(b, "yz").get(a).strlen(b).delete("missing")
            p.get(b).exists(a, b)
            assert p.execute() == [7, True, 3, b"7", 3, 0, b"xyz", 2]
        other = session(cluster, (i + 3) % len(cluster.machines))
        assert other.mget(a, b) == [b"7", b"xyz"]
        other.close()
        c.delete(a, b)
        c.close()


def test_a_command_error_inside_a_transaction_across_shards_is_its_reply(cluster):
    a, b = two_shard_keys(cluster, "xe")
    c = session(cluster, 1)
    c.set(a, "not a number")
    with c.pipeline() as p:
        p.incr(a).set(b, 1)
        replies = p.execute(raise_on_error=False)
    assert isinstance(replies[0], redis.ResponseError) and replies[1] is True
    assert c.get(b) == b"1" and c.get(a) == b"not a number"
    c.close()


def test_watch_across_shards_aborts_when_a_key_changed_through_another_machine(cluster):
    a, b = two_shard_keys(cluster, "xw")
    c = session(cluster, 0)
    writer = session(cluster, 4)
    c.mset({a: 1, b: 1})
    with c.pipeline() as p:
        p.watch(a, b)
        writer.set(b, 2)
        p.multi()
        p.set(a, "mine").set(b, "mine")
        with pytest.raises(redis.WatchError):
            p.execute()
    assert c.mget(a, b) == [b"1", b"2"]
    with c.pipeline() as p:  # nothing changed: runs
        p.watch(a, b)
        p.multi()
        p.set(a, "mine").set(b, "mine")
        assert p.execute() == [True, True]
    assert writer.mget(a, b) == [b"mine", b"mine"]
    c.close()
    writer.close()


def test_mset_msetnx_del_across_shards_are_all_or_nothing(cluster):
    a, b = two_shard_keys(cluster, "xm")
    c = session(cluster, 2)
    assert c.mset({a: "1", b: "2"}) is True
    assert c.mget(a, b) == [b"1", b"2"]
    assert c.msetnx({a: "x", "{new}": "y", b: "z"}) is False  # a exists: nothing written
    assert c.mget(a, b, "{new}") == [b"1", b"2", None]
    assert c.delete(a, b, "nothere", a) == 2
    assert c.msetnx({a: "x", b: "z"}) is True
    assert c.mget(a, b) == [b"x", b"z"]
    assert c.unlink(a, b) == 2
    assert c.exists(a, b) == 0
    # The empty key is a key like any other, also as the first (home) key of the transaction.
    assert c.mset({"": "e", a: "1", b: "2"}) is True
    assert c.mget("", a, b) == [b"e", b"1", b"2"]
    assert c.delete("", a, b) == 3
    c.close()


def test_concurrent_transfers_across_shards_keep_the_total(cluster):
    accounts = cluster.keys_on_shard(1, 2, prefix="acct") + cluster.keys_on_shard(2, 2, "acct")
    c0 = session(cluster, 0)
    c0.mset({k: 100 for k in accounts})
    errors, totals = [], []

    def mover(i):
        c = session(cluster, i)
        try:
            for n in range(25):
                src, dst = accounts[(i + n) % 4], accounts[(i + n + 1 + i % 2) % 4]
                with c.pipeline() as p:
                    p.decrby(src, 3).incrby(dst, 3)
                    p.execute()
        except Exception as e:  # reported below, not swallowed
            errors.append(repr(e))
        finally:
            c.close()

    def reader():
        c = session(cluster, 5)
        try:
            for _ in range(25):
                with c.pipeline() as p:
                    for k in accounts:
                        p.get(k)
                    totals.append(sum(int(v) for v in p.execute()))
        except Exception as e:
            errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=mover, args=(i,)) for i in range(4)]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert totals and all(t == 400 for t in totals), totals
    assert sum(int(v) for v in c0.mget(accounts)) == 400
    c0.close()


def test_rows_across_shards_are_refused_and_nothing_runs(cluster):
    """Hashes, sets, sorted sets and lists are not collected by the overlay a transaction across
    shards runs on, so such a transaction is refused whole, as before."""
    a, b = two_shard_keys(cluster, "xh")
    c = session(cluster, 0)
    with c.pipeline() as p:
        p.set(a, 1).hset(b, "f", 1)
        with pytest.raises(redis.ResponseError, match="CROSSSHARD"):
            p.execute()
    assert c.exists(a, b) == 0
    c.close()
