"""Helpers shared by the cluster integration tests (conftest.py and test_*.py): cell encoding
(docs/formats.md), CAIRN.READ of one replica's stored cell, INFO cluster, healing the cluster
between tests."""

import os
import struct
import sys
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "cluster"))
sys.path.insert(0, os.path.join(HERE, ".."))

from launcher import Cluster  # noqa: E402
from harness import RawConn  # noqa: E402

CELL_HEADER = struct.Struct(">BBBQQqI")  # docs/formats.md "Cells", layout version 1
HINT_WAIT_S = 20.0


def encode_cell(value, timestamp, writer, expire_at_ms=0, tombstone=False):
    value = b"" if tombstone else (value.encode() if isinstance(value, str) else value)
    return CELL_HEADER.pack(1, 1 if tombstone else 0, 1, timestamp, writer, expire_at_ms,
                            len(value)) + value


def decode_cell(data):
    """(value or None for a tombstone, timestamp, writer, expire_at_ms) of a stored cell."""
    version, flags, _type, ts, writer, expire, length = CELL_HEADER.unpack_from(data)
    assert version == 1 and len(data) == CELL_HEADER.size + length, data
    value = None if flags & 1 else data[CELL_HEADER.size:]
    return value, ts, writer, expire


def hlc_now(counter=0):
    return (int(time.time() * 1000) << 16) | counter


def info_cluster(client):
    return client.info("cluster")


def session(cluster, i, read=None, write=None):
    """A single-connection redis-py client on machine i (CONSISTENCY is per connection)."""
    c = cluster.client(i, single_connection_client=True)
    args = []
    if read:
        args += ["READ", read]
    if write:
        args += ["WRITE", write]
    if args:
        assert c.execute_command("CONSISTENCY", *args) in (b"OK", True)
    return c


class ClusterHelper:
    """The launcher's Cluster plus what the tests need on top of it."""

    def __init__(self, cluster):
        self.c = cluster

    def __getattr__(self, name):
        return getattr(self.c, name)

    def raw(self, i):
        return RawConn(self.c.port(i), host=self.c.host(i))

    def epoch(self):
        return self.c.table()["epoch"]

    def stored(self, i, key):
        """The cell machine i stores for `key` (CAIRN.READ at the current epoch), decoded."""
        ic = self.c.internal_client(i)
        try:
            data = ic.execute_command("CAIRN.READ", self.epoch(), key)
        finally:
            ic.close()
        return None if data is None else decode_cell(data)

    def stored_value(self, i, key):
        cell = self.stored(i, key)
        return None if cell is None else cell[0]

    def wait_hints_drained(self, coordinators, timeout=HINT_WAIT_S):
        deadline = time.monotonic() + timeout
        while True:
            pending = {i: info_cluster(self.c.client(i))["hints_pending"] for i in coordinators}
            if all(v == 0 for v in pending.values()):
                return
            if time.monotonic() > deadline:
                raise AssertionError("hints still pending after %.0fs: %r" % (timeout, pending))
            time.sleep(0.1)

    def flushall(self, via=0, timeout=10.0):
        """FLUSHALL through machine `via`, retried while it answers UNAVAILABLE (a machine just
        restarted may still be in its peers' reconnect backoff)."""
        deadline = time.monotonic() + timeout
        c = self.c.client(via)
        try:
            while True:
                try:
                    return c.flushall()
                except redis.ResponseError as e:
                    if not str(e).startswith("UNAVAILABLE") or time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        finally:
            c.close()

    def heal(self):
        """Every machine running and resumed, the launcher's table on every machine."""
        for i, m in enumerate(self.c.machines):
            if m.paused:
                self.c.resume(i)
            if not m.running():
                self.c.restart(i)
        # A test may have pushed a newer table to some machines only: push one newer than any.
        newest = max((self.c.table_of(i) or {"epoch": 0})["epoch"]
                     for i in range(len(self.c.machines)))
        table = self.c.table()
        if newest != table["epoch"] or any(
                (self.c.table_of(i) or {}).get("epoch") != table["epoch"]
                for i in range(len(self.c.machines))):
            table["epoch"] = newest + 1
            self.c.push_table(table)


