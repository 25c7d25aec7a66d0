"""Client-side caching across a 2-shard x RF 3 cluster of 6 machines (docs/tracking.md).

A client keeps a near cache (a dict) of keys it read through machine 0 with CLIENT TRACKING ON
(RESP3 pushes). Writers update the keys through machines 1 and 2. After each round of
acknowledged writes plus a bounded wait (INVALIDATION_WAIT_S), reading every key through the
cache must give the last acknowledged value: never an older one. Every wait is bounded.
"""

import threading
import time

from harness import Push, RawConn, encode_command

INVALIDATION_WAIT_S = 1.0
ROUNDS = 8
KEYS_PER_WRITER = 10


class NearCache:
    """A dict filled by GETs on one RESP3 tracking connection, emptied by invalidations."""

    def __init__(self, conn):
        self.conn = conn
        self.cache = {}
        self.hits = 0
        self.invalidations = 0
        self.flushes = 0

    def _reply(self):
        while True:
            frame = self.conn.read()
            if isinstance(frame, Push) and frame and frame[0] == b"invalidate":
                self.invalidations += 1
                if frame[1] is None:
                    self.flushes += 1
                    self.cache.clear()
                else:
                    for key in frame[1]:
                        self.cache.pop(key.decode(), None)
                continue
            return frame

    def command(self, *args):
        self.conn.send(encode_command(*args))
        return self._reply()

    def get(self, key):
        if key in self.cache:
            self.hits += 1
            return self.cache[key]
        value = self.command("GET", key)
        self.cache[key] = value
        return value

    def drain(self):
        """Applies the invalidations that arrived so far (a PING round trip)."""
        assert self.command("PING") == b"PONG"


def test_near_cache_never_serves_an_older_value(cluster):
    conn = RawConn(cluster.port(0), host=cluster.host(0), timeout=10.0)
    near = NearCache(conn)
    near.command("HELLO", "3")
    assert near.command("CLIENT", "TRACKING", "ON") == b"OK"
    writers = {1: ["b%d" % i for i in range(KEYS_PER_WRITER)],
               2: ["c%d" % i for i in range(KEYS_PER_WRITER)]}
    latest = {}
    for i, keys in writers.items():
        c = cluster.client(i)
        for key in keys:
            c.set(key, "0")
            latest[key] = b"0"
        c.close()
    stale_before_wait = 0
    for round_number in range(1, ROUNDS + 1):
        for key in latest:  # fill the cache
            near.get(key)
        errors = []

        def write(i, keys):
            c = cluster.client(i)
            try:
                for n, key in enumerate(keys):
                    if (n + round_number) % 2 == 0:
                        value = b"%d" % round_number
                        c.set(key, value)
                        latest[key] = value  # acknowledged
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
            finally:
                c.close()

        threads = [threading.Thread(target=write, args=(i, keys)) for i, keys in writers.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors
        near.drain()
        stale_before_wait += sum(1 for key in latest if near.get(key) != latest[key])
        time.sleep(INVALIDATION_WAIT_S)
        near.drain()
        for key, value in latest.items():
            assert near.get(key) == value, (round_number, key)
    assert near.invalidations > 0 and near.hits > 0
    conn.close()


def test_lost_invalidations_flush_the_near_cache(cluster):
    """Machine 0 paused while machine 1 writes: the batches to it time out and are dropped. The
    next batch machine 1 sends after machine 0 resumed starts with a flush: the tracking client
    of machine 0 gets a null invalidation and its cache never keeps the lost write's old value."""
    conn = RawConn(cluster.port(0), host=cluster.host(0), timeout=10.0)
    near = NearCache(conn)
    near.command("HELLO", "3")
    assert near.command("CLIENT", "TRACKING", "ON") == b"OK"
    writer = cluster.client(1)
    writer.set("lost", "old")
    assert near.get("lost") == b"old"
    cluster.pause(0)
    try:
        writer.set("lost", "new")  # acknowledged by the other replicas
        time.sleep(3.0)  # longer than the batch timeout (2 s): the invalidation is dropped
    finally:
        cluster.resume(0)
    deadline = time.monotonic() + 10.0
    while "lost" in near.cache and time.monotonic() < deadline:
        writer.set("other", "x")  # the next message to machine 0 carries the flush
        time.sleep(0.2)
        near.drain()
    assert near.get("lost") == b"new"
    assert near.flushes >= 1
    writer.close()
    conn.close()
