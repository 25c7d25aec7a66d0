"""A dead replica is rebuilt on the spare that replaces it: the spare joins its
shard, copies the shard from the surviving replicas while clients keep writing at QUORUM, and
becomes a voting replica; read alone, it then holds every acknowledged write of its shard
(deletes as tombstones), and expired keys stay expired; and every replica of the shard then
stores the same keys in each of its ranges, also when a surviving replica was killed -9 and
restarted during the copy."""

import struct
import threading
import time

import pytest
import redis

from dev_cluster import DEAD_AFTER_MS, DevCluster, orchestrator_supported, wait_for
from migration_workload import stored_cells, wait_replicas_agree
from xxh3 import token_of  # noqa: E402  (migration_workload puts tests/cluster on the path)

_SUPPORTED, _WHY_NOT = orchestrator_supported()
pytestmark = pytest.mark.requires(_SUPPORTED, _WHY_NOT)

CELL_HEADER = struct.Struct(">BBBQQqI")  # docs/formats.md "Cells", layout version 1
KEYS = 500
SHORT_TTL_MS = 1500
REBUILD_TIMEOUT_S = DEAD_AFTER_MS / 1000 + 60
# More cells than one rebuild page examines (max(1000 keys x 10, 1000) = 10,000): the row spans
# several pages, which stop inside it and resume after its last cell.
BIG_ROW_FIELDS = 12000
SETTLE_S = 15  # a write hinted to the new machine is replayed within this (hint replay interval)


def _decode(data):
    """(value or None for a tombstone, expire_at_ms) of a stored cell."""
    version, flags, _type, _ts, _writer, expire, length = CELL_HEADER.unpack_from(data)
    assert version == 1 and len(data) == CELL_HEADER.size + length, data
    return (None if flags & 1 else data[CELL_HEADER.size:]), expire


def _raw_cells(dev, key):
    """Each live machine's stored cell of `key`: (timestamp, writer, value) or the error."""
    out = {}
    for i in sorted(dev.pids):
        c = dev.client(i)
        c.execute_command("CAIRN.AUTH", dev.secret())
        try:
            data = c.execute_command("CAIRN.READ", dev.status()["epoch"], key)
            out[i] = None if data is None else (
                CELL_HEADER.unpack_from(data)[3:5] + (data[CELL_HEADER.size:],))
        except redis.ResponseError as e:
            out[i] = str(e)
    return out


class Writer:
    """Sets keys through the live machines, remembering the last acknowledged state of each."""

    def __init__(self, dev, indexes):
        self.clients = [dev.client(i) for i in indexes]
        self.acked = {}        # key -> ("set", value, ttl kind) | ("del",)
        self.uncertain = set()  # a write failed: its outcome is unknown, not checked
        self.written = set()    # an acknowledged write stored a cell (SET, DEL that deleted)
        self.n = 0

    def _client(self):
        self.n += 1
        return self.clients[self.n % len(self.clients)]

    def set(self, key, value, px=None):
        try:
            ok = self._client().set(key, value, px=px)
        except (redis.RedisError, OSError):
            self.uncertain.add(key)
            return
        assert ok is True
        self.acked[key] = ("set", value.encode(), "short" if px and px <= SHORT_TTL_MS else
                           ("long" if px else "none"))
        self.written.add(key)

    def delete(self, key):
        try:
            deleted = self._client().delete(key)
        except (redis.RedisError, OSError):
            self.uncertain.add(key)
            return
        # DEL of a key that is not live (never set, deleted, expired) writes nothing.
        self.acked[key] = ("del", deleted > 0)
        if deleted > 0:
            self.written.add(key)

    def must_agree(self, key):
        """Whether every replica must store `key` (replica_differences): yes once an
        acknowledged write stored a cell; a key only ever written by failed writes may be on
        some replicas only."""
        return key in self.written or key not in self.uncertain


def test_dead_replica_rebuilt_on_spare_holds_every_acknowledged_write(dev):
    shard = dev.shards()[0]
    victim = next(m for m in shard["replicas"] if m != shard.get("leader"))
    (spare,) = dev.spares()
    victim_index = dev.index_of(victim)
    spare_index = dev.index_of(spare)
    live = [i for i in sorted(dev.pids) if i not in (victim_index, spare_index)]

    writer = Writer(dev, live)
    for i in range(KEYS):
        key = "rb:%d" % i
        if i % 10 == 3:
            writer.set(key, "short%d" % i, px=SHORT_TTL_MS)
        elif i % 10 == 5:
            writer.set(key, "long%d" % i, px=3_600_000)
        else:
            writer.set(key, "v%d" % i)
        if i % 7 == 0:
            writer.delete(key)
    assert not writer.uncertain, writer.uncertain

    dev.kill(victim_index)
    stop = threading.Event()

    def keep_writing():
        n = 0
        while not stop.is_set():
            key = "rb:%d" % (n % KEYS) if n % 2 else "rbw:%d" % n
            if n % 13 == 0:
                writer.delete(key)
            else:
                writer.set(key, "w%d" % n)
            n += 1
            time.sleep(0.005)

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        def voting():
            s = next(s for s in dev.admin("shards", json_output=True) if s["id"] == shard["id"])
            return spare in s["replicas"] and victim not in dev.shard_members(s) and s

        wait_for(voting, REBUILD_TIMEOUT_S, interval_s=0.2,
                 what="the spare to be rebuilt into a voting replica")
        machines = {m["id"]: m for m in dev.admin("machines", json_output=True)}
        assert machines[spare]["role"] in ("replica", "leader"), machines[spare]
        time.sleep(1)  # writes after the promotion too
    finally:
        stop.set()
        thread.join()
    events = " ".join(e["message"] for e in dev.get("/v1/events?since=0"))
    assert "machine %d rebuilt: now a voting replica of shard %d" % (spare, shard["id"]) in events

    info = dev.client(spare_index).info("cluster")
    assert info["rebuild_state"] == "done", info
    assert int(info["rebuild_shard"]) == shard["id"], info
    assert int(info["rebuild_keys_copied"]) > 0, info

    # The new machine alone: its stored cell of every acknowledged key of its shard.
    alone = dev.client(spare_index)
    assert alone.execute_command("CAIRN.AUTH", dev.secret()) in (b"OK", "OK", True)

    def stored(key):
        """The decoded cell, None if absent, or "other" if another shard owns the key."""
        for _ in range(50):
            try:
                data = alone.execute_command("CAIRN.READ", dev.status()["epoch"], key)
            except redis.ResponseError as e:
                if str(e).startswith("NOTOWNER"):
                    return "other"
                time.sleep(0.1)  # STALEEPOCH / TABLEBEHIND while a new epoch spreads
                continue
            return None if data is None else _decode(data)
        raise AssertionError("CAIRN.READ %s kept failing" % key)

    def matches(key, expected, cell):
        now_ms = int(time.time() * 1000)
        if expected[0] == "del":
            if expected[1]:
                return cell is not None and cell[0] is None  # the DEL's tombstone
            # Nothing was live: absent, a tombstone, or an expired cell.
            return cell is None or cell[0] is None or 0 < cell[1] <= now_ms
        _, value, ttl = expected
        if cell is None or cell[0] != value:
            return False
        if ttl == "short":
            return 0 < cell[1] <= now_ms  # expired, and it stays so
        if ttl == "long":
            return cell[1] > now_ms
        return cell[1] == 0

    checked = 0
    deadline = time.monotonic() + SETTLE_S
    for key, expected in sorted(writer.acked.items()):
        if key in writer.uncertain:
            continue
        cell = stored(key)
        if cell == "other":
            continue
        while not matches(key, expected, cell) and time.monotonic() < deadline:
            time.sleep(0.2)
            cell = stored(key)
        if not matches(key, expected, cell):
            # Every machine's stored cell (timestamp, writer, value) for the report.
            pytest.fail("%s: expected %s, the rebuilt machine stores %s; all machines: %s"
                        % (key, expected, cell, _raw_cells(dev, key)))
        checked += 1
    # About half of the keys hash to the rebuilt shard.
    assert checked >= len(writer.acked) // 5, (checked, len(writer.acked))

    # Expired keys did not come back to life anywhere.
    reader = dev.client(live[0])
    for key, expected in writer.acked.items():
        if key not in writer.uncertain and expected[0] == "set" and expected[2] == "short":
            assert reader.get(key) is None, key

    # Every voting replica of the rebuilt shard (the new one and the two that survived) stores
    # the same keys in each of the shard's ranges.
    diff = wait_replicas_agree(dev, dev.get("/v1/table"), shards={shard["id"]},
                               must_agree=writer.must_agree)
    assert not diff, "\n".join(diff[:20])


def test_rebuilt_replica_holds_every_field_of_hashes_sets_and_sorted_sets(dev):
    """Issue 9: a replica of a shard holding hashes, sets and sorted sets dies while fields are
    written; the spare rebuilt in its place stores every field, the shard's voting replicas
    store the same cells field by field, and the spare alone (its own stored row, CAIRN.ROW)
    holds every acknowledged field."""
    shard = dev.shards()[0]
    victim = next(m for m in shard["replicas"] if m != shard.get("leader"))
    (spare,) = dev.spares()
    victim_index, spare_index = dev.index_of(victim), dev.index_of(spare)
    live = [i for i in sorted(dev.pids) if i not in (victim_index, spare_index)]
    c = dev.client(live[0], socket_timeout=20)
    rows = 60
    for h in range(rows):
        assert c.hset("rbh:%d" % h, mapping={"f%d" % f: "v%d" % f for f in range(10)}) == 10
        assert c.sadd("rbs:%d" % h, "a", "b", "c") == 3
        assert c.zadd("rbz:%d" % h, {"a": 1, "b": 2}) == 2
    # A row bigger than a page, on the victim's shard.
    ranges = [r for r in dev.get("/v1/table")["ranges"] if r["shard"] == shard["id"]]
    big = next(k for k in ("{rbig%d}h" % i for i in range(10000)) if any(
        int(r["start"], 0) <= token_of(k) and (int(r["end"], 0) == 0 or
                                                token_of(k) < int(r["end"], 0)) for r in ranges))
    for b in range(0, BIG_ROW_FIELDS, 1000):
        assert c.hset(big, mapping={"f%d" % f: "v%d" % f for f in range(b, b + 1000)}) == 1000
    acked = {}
    dev.kill(victim_index)
    stop = threading.Event()

    def keep_writing():
        w = dev.client(live[1], socket_timeout=20)
        n = 0
        while not stop.is_set():
            key, field = "rbh:%d" % (n % rows), "late%d" % n
            try:
                if w.hset(key, field, "x%d" % n) == 1:
                    acked[(key, field)] = "x%d" % n
            except redis.ResponseError:
                time.sleep(0.05)  # refused or uncertain while the shard changes: not acked
            n += 1
            time.sleep(0.005)

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        def voting():
            s = next(s for s in dev.admin("shards", json_output=True) if s["id"] == shard["id"])
            return spare in s["replicas"] and victim not in dev.shard_members(s) and s

        wait_for(voting, REBUILD_TIMEOUT_S, interval_s=0.2,
                 what="the spare to be rebuilt into a voting replica")
        time.sleep(1)
    finally:
        stop.set()
        thread.join()
    assert len(acked) > 20
    table = dev.get("/v1/table")
    diff = wait_replicas_agree(dev, table, shards={shard["id"]})
    assert not diff, "\n".join(diff[:20])
    reader = dev.client(live[0], socket_timeout=20)
    alone = dev.client(spare_index)
    assert alone.execute_command("CAIRN.AUTH", dev.secret()) in (b"OK", "OK", True)
    on_spare = 0
    for h in range(rows):
        key = "rbh:%d" % h
        want = {("f%d" % f).encode(): ("v%d" % f).encode() for f in range(10)}
        want.update({f.encode(): v.encode() for (k, f), v in acked.items() if k == key})
        # Every acknowledged field; beyond them only late fields of refused (uncertain) writes.
        got = reader.hgetall(key)
        assert {f: got.get(f) for f in want} == want, key
        assert all(f.startswith(b"late") for f in set(got) - set(want)), key
        assert reader.smembers("rbs:%d" % h) == {b"a", b"b", b"c"}
        assert reader.zrange("rbz:%d" % h, 0, -1, withscores=True) == [(b"a", 1.0), (b"b", 2.0)]
        try:
            _h, _s, nxt, flat = alone.execute_command("CAIRN.ROW", dev.status()["epoch"], key,
                                                      "", 10000)
        except redis.ResponseError as e:
            assert str(e).startswith("NOTOWNER"), e
            continue
        assert nxt is None
        stored = {sub[1:]: _decode(cell)[0] for sub, cell in zip(flat[0::2], flat[1::2])
                  if sub[:1] == b"\x01"}
        assert {f: stored.get(f) for f in want} == want, key
        on_spare += 1
    assert on_spare > 0
    # The big row: whole at QUORUM, and every one of its fields stored on the spare itself.
    assert reader.hlen(big) == BIG_ROW_FIELDS
    token = token_of(big)
    fields = [sub for k, sub, _ in stored_cells(dev, spare_index, token, token + 1)
              if k == big and sub[:1] == b"\x01"]
    assert len(fields) == BIG_ROW_FIELDS, len(fields)


RESTART_PRELOAD_KEYS = 6000
RESTART_VALUE_BYTES = 1000  # ~3 MB per shard: the copy takes seconds at 1 MiB/s


def test_rebuild_survives_restart_of_a_surviving_replica_and_replicas_agree():
    """A replica dies; the spare replacing it copies the shard from the two surviving replicas
    (throttled to 1 MiB/s so the copy lasts a few seconds); while the spare is `joining` and
    copying, the surviving replica that is not the leader is killed -9 and restarted with its
    data (before it is declared dead; while it is down the shard's copy and QUORUM writes
    wait, and writes are hinted to it). Proves: the rebuild still completes (the spare becomes a voting replica,
    the restarted machine stays one); afterwards every voting replica of the shard stores the
    same keys in each of its ranges (replica_differences), every preloaded key reads back at
    QUORUM with its value, and every acknowledged write of the background writer reads back
    as acknowledged."""
    with DevCluster(shards=2, rf=3, spares=1) as dev:
        # The spare, restarted with its copy throttled (still a spare: back before it is dead).
        (spare,) = dev.spares()
        spare_index = dev.index_of(spare)
        dev.kill(spare_index)
        dev.restart(spare_index, extra_args=["--rebuild-max-mb-per-s", "1"])
        wait_for(lambda: spare in dev.spares(), 30, interval_s=0.2, what="the spare to be up")
        shard, other = dev.shards()[0], dev.shards()[1]
        victim = next(m for m in shard["replicas"] if m != shard.get("leader"))
        survivor = next(m for m in shard["replicas"] if m not in (victim, shard.get("leader")))
        victim_index, survivor_index = dev.index_of(victim), dev.index_of(survivor)
        # Clients go through the other shard's machines only, which are never killed: a write
        # that misses a replica of the shard is hinted to it.
        coordinators = [dev.index_of(m) for m in other["replicas"]]

        c = dev.client(coordinators[0])
        pad = "x" * RESTART_VALUE_BYTES
        for start in range(0, RESTART_PRELOAD_KEYS, 500):
            pipe = c.pipeline(transaction=False)
            for i in range(start, min(RESTART_PRELOAD_KEYS, start + 500)):
                pipe.set("pre:%d" % i, "v%d%s" % (i, pad))
            assert all(r is True for r in pipe.execute())

        writer = Writer(dev, coordinators)
        stop = threading.Event()

        def keep_writing():
            n = 0
            while not stop.is_set():
                key = "rs:%d" % (n % 300)
                if n % 11 == 0:
                    writer.delete(key)
                else:
                    writer.set(key, "w%d" % n)
                n += 1
                time.sleep(0.005)

        dev.kill(victim_index)
        thread = threading.Thread(target=keep_writing)
        thread.start()
        try:
            def copying():
                s = next(s for s in dev.shards() if s["id"] == shard["id"])
                if spare not in s.get("joining", []):
                    return None
                info = dev.client(spare_index).info("cluster")
                return (info.get("rebuild_state") == "copying"
                        and int(info.get("rebuild_keys_copied", 0)) > 0 and info)
            at_kill = wait_for(copying, REBUILD_TIMEOUT_S, interval_s=0.05,
                               what="the spare to be joining and copying")
            dev.kill(survivor_index)
            dev.restart(survivor_index)  # same data directory, back before it is declared dead
            after_restart = dev.client(spare_index).info("cluster")

            def voting():
                s = next(s for s in dev.shards() if s["id"] == shard["id"])
                return spare in s["replicas"] and victim not in dev.shard_members(s) and s
            rebuilt = wait_for(voting, REBUILD_TIMEOUT_S, interval_s=0.2,
                               what="the spare to be rebuilt into a voting replica")
            time.sleep(1)  # writes after the promotion too
        finally:
            stop.set()
            thread.join()
        where = "spare m%d at the kill: %s; after the restart: %s" % (
            spare_index, {k: v for k, v in at_kill.items() if k.startswith("rebuild")},
            {k: v for k, v in after_restart.items() if k.startswith("rebuild")})
        assert survivor in rebuilt["replicas"], (rebuilt, where)
        info = dev.client(spare_index).info("cluster")
        assert info["rebuild_state"] == "done" and int(info["rebuild_shard"]) == shard["id"], info

        diff = wait_replicas_agree(dev, dev.get("/v1/table"), shards={shard["id"]},
                                   must_agree=writer.must_agree)
        assert not diff, "%s\n%s" % (where, "\n".join(diff[:20]))

        problems = []
        for index in (spare_index, coordinators[0]):
            reader = dev.client(index, socket_timeout=10)
            for start in range(0, RESTART_PRELOAD_KEYS, 1000):
                pipe = reader.pipeline(transaction=False)
                keys = range(start, min(RESTART_PRELOAD_KEYS, start + 1000))
                for i in keys:
                    pipe.get("pre:%d" % i)
                for i, value in zip(keys, pipe.execute(raise_on_error=False)):
                    if value != ("v%d%s" % (i, pad)).encode():
                        problems.append("m%d: pre:%d reads %r" % (
                            index, i, value[:20] if isinstance(value, bytes) else value))
        assert not problems, "%d problems, %s:\n%s" % (len(problems), where,
                                                        "\n".join(problems[:30]))
        reader = dev.client(spare_index)
        for key, expected in sorted(writer.acked.items()):
            if key in writer.uncertain:
                continue
            value = reader.get(key)
            want = expected[1] if expected[0] == "set" else None
            assert value == want, (key, expected, value, _raw_cells(dev, key), where)
