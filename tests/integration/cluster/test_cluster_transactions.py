"""MULTI / EXEC / WATCH in a cluster (docs/transactions.md): a transaction whose keys live on
one shard runs at that shard's leader under its key locks, whichever machine the client is
connected to; WATCH sees writes made through any machine; keys of several shards are refused.
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


def test_keys_of_several_shards_are_refused_and_nothing_runs(cluster):
    a = cluster.keys_on_shard(1, 1, prefix="xa")[0]
    b = cluster.keys_on_shard(2, 1, prefix="xb")[0]
    c = session(cluster, 0)
    with c.pipeline() as p:
        p.set(a, 1).set(b, 1)
        with pytest.raises(redis.ResponseError, match="CROSSSHARD"):
            p.execute()
    assert c.exists(a, b) == 0
    c.close()
