"""Clients that keep a dev cluster busy while ranges migrate, and the checks run afterwards.

Two kinds of traffic run at the default QUORUM levels, through every live machine:
  * checked clients (threads): SET of unique values and GET on a small set of hot keys spread
    over the ring; every operation goes into a fault-test History, and the fault checker
    (tests/fault/checker.py) proves afterwards that no acknowledged write was lost and no read
    was stale;
  * pipelined writers (threads, each owning its keys, so each key's last acknowledged state is
    known exactly): batches of SET with a long TTL, SET with a short TTL, SET + DEL, and INCR,
    sent as non-transactional pipelines.
Afterwards verify() reads every key once more: deleted keys are gone, short-TTL keys stayed
expired, long-TTL keys still hold their value and a TTL, counters hold at least every
acknowledged INCR and at most every attempted one.
"""

import os
import random
import re
import struct
import sys
import threading
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "fault"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "cluster"))

import checker  # noqa: E402
from history import FAIL, OK, READ, UNCERTAIN, WRITE, History  # noqa: E402
from xxh3 import token_of  # noqa: E402

CLIENT_TIMEOUT_S = 3.0
SHORT_TTL_MS = 1500
LONG_TTL_S = 3600
PIPELINE = 20
CELL_HEADER = struct.Struct(">BBBQQqI")  # docs/formats.md "Cells", layout version 1
_TRAFFIC_KEY = re.compile(r"(hot|w\d+):")


def _text(v):
    return v.decode() if isinstance(v, bytes) else v


class Traffic:
    """Starts the clients on `indexes` (machines of `dev`); stop() joins them."""

    def __init__(self, dev, indexes, checked_threads=3, writer_threads=2, hot_keys=48, seed=None,
                 generation=0):
        self.dev = dev
        self.generation = generation  # part of every client name: values stay unique per key
        self.indexes = list(indexes)
        self.rng = random.Random(seed if seed is not None else random.randrange(1 << 30))
        self.history = History()
        self.hot_keys = ["hot:%d" % i for i in range(hot_keys)]
        self.stop_event = threading.Event()
        self.errors = []
        self.threads = []
        # Pipelined writers' model, key -> state; written by the owning thread only.
        self.models = [dict() for _ in range(writer_threads)]
        self.incr_attempted = [dict() for _ in range(writer_threads)]
        self.uncertain = [set() for _ in range(writer_threads)]
        self.counts = {"checked": 0, "pipelines": 0, "pipeline_failures": 0}
        # Keys some acknowledged operation wrote a cell to (SET, INCR, DEL that deleted): every
        # voting replica of their shard must store them. Shared by the threads (set.add is
        # atomic), and by a Traffic that takes over this one's history.
        self.written = set()
        for n in range(checked_threads):
            self.threads.append(threading.Thread(target=self._guard(self._checked, n),
                                                 name="checked%d" % n, daemon=True))
        for n in range(writer_threads):
            self.threads.append(threading.Thread(target=self._guard(self._writer, n),
                                                 name="writer%d" % n, daemon=True))

    def _guard(self, fn, n):
        def run():
            try:
                fn(n)
            except BaseException as e:  # a bug in the test driver: surface it
                self.errors.append(e)
        return run

    def _conn(self, rng):
        return self.dev.client(rng.choice(self.indexes), socket_timeout=CLIENT_TIMEOUT_S,
                               socket_connect_timeout=CLIENT_TIMEOUT_S)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(CLIENT_TIMEOUT_S * 5)
        if self.errors:
            raise self.errors[0]

    # ---- checked SET/GET -------------------------------------------------------------------

    def _checked(self, n):
        rng = random.Random(self.rng.randrange(1 << 30))
        conns = {}
        count = 0
        while not self.stop_event.is_set():
            i = rng.choice(self.indexes)
            conn = conns.get(i) or conns.setdefault(i, self.dev.client(
                i, socket_timeout=CLIENT_TIMEOUT_S, socket_connect_timeout=CLIENT_TIMEOUT_S))
            key = rng.choice(self.hot_keys)
            name = "g%dc%d" % (self.generation, n)
            if rng.random() < 0.5:
                count += 1
                value = "%s-%d" % (name, count)
                op = self.history.invoke(name, WRITE, key, value)
                try:
                    conn.set(key, value)
                    self.history.complete(op, OK)
                    self.written.add(key)
                except redis.ResponseError as e:
                    outcome = UNCERTAIN if str(e).startswith("UNCERTAIN") else FAIL
                    self.history.complete(op, outcome, error=str(e))
                except redis.RedisError as e:
                    self.history.complete(op, UNCERTAIN, error=type(e).__name__)
                    time.sleep(0.05)
            else:
                op = self.history.invoke(name, READ, key)
                try:
                    self.history.complete(op, OK, value=_text(conn.get(key)))
                except redis.RedisError as e:
                    self.history.complete(op, FAIL, error="%s: %s" % (type(e).__name__, e))
                    if not isinstance(e, redis.ResponseError):
                        time.sleep(0.05)
            self.counts["checked"] += 1

    # ---- pipelined writers ------------------------------------------------------------------

    def _writer(self, n):
        rng = random.Random(self.rng.randrange(1 << 30))
        model, attempted, uncertain = self.models[n], self.incr_attempted[n], self.uncertain[n]
        seq = 0
        while not self.stop_event.is_set():
            pipe = self._conn(rng).pipeline(transaction=False)
            planned = []
            for _ in range(PIPELINE):
                seq += 1
                kind = seq % 5
                if kind == 0:
                    key = "w%d:long:%d" % (n, seq % 400)
                    value = "L%d" % seq
                    pipe.set(key, value, ex=LONG_TTL_S)
                    planned.append((key, ("long", value)))
                elif kind == 1:
                    key = "w%d:short:%d" % (n, seq % 400)
                    value = "S%d" % seq
                    pipe.set(key, value, px=SHORT_TTL_MS)
                    planned.append((key, ("short", value)))
                elif kind == 2:
                    key = "w%d:plain:%d" % (n, seq % 400)
                    value = "P%d" % seq
                    pipe.set(key, value)
                    planned.append((key, ("plain", value)))
                elif kind == 3:
                    key = "w%d:plain:%d" % (n, (seq * 7) % 400)
                    pipe.delete(key)
                    planned.append((key, ("del",)))
                else:
                    key = "w%d:ctr:%d" % (n, seq % 50)
                    attempted[key] = attempted.get(key, 0) + 1
                    pipe.incr(key)
                    planned.append((key, ("incr",)))
            try:
                replies = pipe.execute(raise_on_error=False)
            except redis.RedisError:
                replies = [redis.ConnectionError("pipeline failed")] * len(planned)
                self.counts["pipeline_failures"] += 1
                time.sleep(0.05)
            self.counts["pipelines"] += 1
            for (key, state), reply in zip(planned, replies):
                if isinstance(reply, Exception):
                    uncertain.add(key)
                    continue
                if state[0] != "del" or reply:
                    self.written.add(key)  # a DEL of nothing live writes nothing
                if state[0] == "incr":
                    model[key] = ("ctr", model.get(key, ("ctr", 0))[1] + 1)
                else:
                    model[key] = state
                    uncertain.discard(key)  # a later acknowledged SET or DEL decides the key

    # ---- checks -----------------------------------------------------------------------------

    def must_agree(self, key):
        """Whether every voting replica of `key`'s shard must store it (replica_differences):
        keys of other writers (preloads) always; this traffic's keys once an acknowledged
        operation wrote them. A key only ever written by failed or uncertain operations (e.g.
        through a machine killed mid-request, which then stored no hint) may be on some
        replicas only."""
        return not _TRAFFIC_KEY.match(key) or key in self.written

    def final_reads(self, deadline_s=30.0):
        """One successful read of every hot key (into the history)."""
        rng = random.Random(1)
        for key in self.hot_keys:
            end = time.monotonic() + deadline_s
            while True:
                op = self.history.invoke("final", READ, key, final=True)
                try:
                    self.history.complete(op, OK, value=_text(self._conn(rng).get(key)))
                    break
                except redis.RedisError as e:
                    self.history.complete(op, FAIL, error=str(e))
                    if time.monotonic() > end:
                        break
                    time.sleep(0.2)

    def violations(self):
        """The fault checker's findings on the checked clients' history (after final_reads)."""
        return checker.check(self.history.ops())

    def verify_writers(self):
        """Problems found in the pipelined writers' keys (a list of strings; empty = none)."""
        problems = []
        rng = random.Random(2)
        time.sleep(SHORT_TTL_MS / 1000.0 + 0.5)  # every short TTL written has expired
        for n, model in enumerate(self.models):
            conn = self._conn(rng)
            keys = sorted(set(model) | set(self.incr_attempted[n]))
            for key in keys:
                state = model.get(key)
                if key in self.uncertain[n] and (state is None or state[0] != "ctr"):
                    continue
                value = _text(conn.get(key))
                if key.split(":")[1] == "ctr":
                    got = int(value or 0)
                    low = state[1] if state else 0
                    high = self.incr_attempted[n].get(key, 0)
                    if not low <= got <= high:
                        problems.append("%s = %s, expected between %d acknowledged and %d "
                                        "attempted INCRs" % (key, value, low, high))
                elif state is None:
                    continue
                elif state[0] == "del":
                    if value is not None:
                        problems.append("%s deleted but reads %r" % (key, value))
                elif state[0] == "short":
                    if value is not None:
                        problems.append("%s expired (PX %d) but reads %r"
                                        % (key, SHORT_TTL_MS, value))
                elif state[0] == "long":
                    ttl = conn.ttl(key)
                    if value != state[1] or not 0 < ttl <= LONG_TTL_S:
                        problems.append("%s = %r ttl %s, expected %r with a TTL"
                                        % (key, value, ttl, state[1]))
                elif value != state[1]:
                    problems.append("%s = %r, expected %r" % (key, value, state[1]))
        return problems


# The first byte of a sorted set's score index sub-keys (docs/formats.md "Sorted sets").
SCORE_INDEX_NAMESPACE = b"\x02"


def stored_cells(dev, index, start=0, end=0):
    """[(key, sub-key bytes, cell bytes)] of every cell machine `index` stores with start <=
    token < end (CAIRN.MIGRATE SCAN: not fenced, what the machine stores, tombstones and expired
    values included). The sub-key is b"" for a key's own cell and names a field of the key's row
    otherwise (docs/formats.md "Rows")."""
    c = dev.client(index)
    c.execute_command("CAIRN.AUTH", dev.secret())
    cells = []
    cursor = start
    resume = []  # FROM <position>: the last page stopped inside a big row
    for _ in range(100000):
        reply = c.execute_command("CAIRN.MIGRATE", "SCAN", "0x%016x" % cursor,
                                  "0x%016x" % end, 1000, *resume)
        nxt, flat = reply[0], reply[1]
        cells += [(_text(k), bytes(sub), v)
                  for k, sub, v in zip(flat[0::3], flat[1::3], flat[2::3])]
        cursor = int(_text(nxt), 0)
        resume = ["FROM", reply[2]] if len(reply) == 3 else []
        if not resume and (cursor == end or (end == 0 and cursor == 0)):
            return cells
    raise AssertionError("scan did not finish")


def stored_keys(dev, index, start=0, end=0):
    """Every key machine `index` stores with start <= token < end (CAIRN.MIGRATE SCAN)."""
    return [k for k, sub, _ in stored_cells(dev, index, start, end) if not sub]


def cell_expire_at_ms(cell):
    """The expiry (Unix ms, 0 = never) in a stored cell's header (docs/formats.md "Cells")."""
    version = cell[0]
    assert version == 1, cell
    return CELL_HEADER.unpack_from(cell)[5]


def cell_name(key, sub_key):
    """How replica_differences names a stored cell: the key for its own cell, `key/<sub-key>`
    for a field of its row (each field cell is compared on its own)."""
    return key if not sub_key else "%s/%r" % (key, sub_key)


def replica_differences(dev, table, must_agree=None, shards=None):
    """Where the voting replicas of a shard do not store the same keys: for every shard of
    `table` (or only those in `shards`), for every range the shard owns, the keys each voting
    replica stores in it (CAIRN.MIGRATE SCAN) are compared, and the field cells of rows one by
    one (cell_name). Returns readable lines, [] if all agree.

    What is compared: every stored cell counts, values and tombstones alike, since a tombstone
    stays until the 10-day grace period (docs/formats.md "TTL and tombstone GC"), so an
    acknowledged DEL must be on every replica too. Left out: keys whose cell is expired on any
    replica (with their fields), fields whose cell is expired on any replica (an expired value may be rewritten or dropped by compaction on one replica and not
    another; it reads as nothing everywhere), and keys for which must_agree(key) is false (e.g.
    keys only ever written by unacknowledged writes, which may have reached some replicas only:
    Traffic.must_agree), and sorted sets' score index entries, which each replica derives from
    its member cells (compared): replicas that reached the same members by different paths
    keep different tombstones of old entries (docs/formats.md "Sorted sets")."""
    index_of = {}
    for m in dev.machines():
        index_of[m["id"]] = int(m["address"].rsplit(":", 1)[1]) - dev.base_port
    out = []
    for shard in table["shards"]:
        if shards is not None and shard["id"] not in shards:
            continue
        voting = list(shard["replicas"])
        for r in [r for r in table["ranges"] if r["shard"] == shard["id"]]:
            start, end = int(r["start"], 0), int(r["end"], 0)
            where = "shard %d range [%s, %s)" % (shard["id"], r["start"], r["end"])
            stored = {}
            for machine in voting:
                index = index_of.get(machine)
                if index is None or index not in dev.pids:
                    out.append("%s: voting replica %s is not a running machine (index %s)"
                               % (where, machine, index))
                    continue
                try:
                    stored[machine] = stored_cells(dev, index, start, end)
                except Exception as e:  # a machine that does not answer: report, retry later
                    out.append("%s: m%d (id %d) cannot be scanned: %r" % (where, index, machine,
                                                                          e))
            now_ms = time.time() * 1000
            expired = set()  # keys whose own cell expired, (key, sub-key) of expired fields
            for cells in stored.values():
                for key, sub, cell in cells:
                    expire = cell_expire_at_ms(cell)
                    if 0 < expire <= now_ms:
                        expired.add((key, sub) if sub else key)
            keys = {machine: {cell_name(k, sub) for k, sub, _ in cells
                              if not sub.startswith(SCORE_INDEX_NAMESPACE) and
                              k not in expired and (k, sub) not in expired and
                              (must_agree is None or must_agree(k))}
                    for machine, cells in stored.items()}
            if len(keys) < 2:
                continue  # nothing to compare with (RF 1, or the scans above failed)
            for machine, mine in keys.items():
                others = [m for m in keys if m != machine]
                theirs = set().union(*(keys[m] for m in others))
                missing = theirs - mine
                only_here = mine - theirs
                if not missing and not only_here:
                    continue
                line = "%s: m%d (id %d) stores %d keys" % (where, index_of[machine], machine,
                                                           len(mine))
                if missing:
                    holders = ", ".join("m%d has %d of them" % (
                        index_of[m], len(missing & keys[m])) for m in others)
                    line += "; lacks %d that others store (%s), e.g. %s" % (
                        len(missing), holders, sorted(missing)[:6])
                if only_here:
                    line += "; %d that no other replica stores, e.g. %s" % (
                        len(only_here), sorted(only_here)[:6])
                out.append(line)
    return out


def wait_replicas_agree(dev, table, timeout_s=20, interval_s=0.5, must_agree=None, shards=None):
    """replica_differences until there are none or `timeout_s` passed; the last differences
    ([] = the replicas agree). Writes a replica missed while it was down reach it by hinted
    handoff (replayed every 500 ms once it answers), which may still be under way."""
    deadline = time.monotonic() + timeout_s
    while True:
        diff = replica_differences(dev, table, must_agree=must_agree, shards=shards)
        if not diff or time.monotonic() >= deadline:
            return diff
        time.sleep(interval_s)


def owner_of(ranges, token):
    for r in ranges:
        start, end = int(r["start"], 0), int(r["end"], 0)
        if start <= token and (end == 0 or token < end):
            return r["shard"]
    raise AssertionError("no range holds token %x" % token)


def misplaced_keys(dev, table):
    """Keys a live machine stores in a range its shards do not own: {index: [keys]}."""
    members = {}
    for s in table["shards"]:
        for m in s["replicas"] + s.get("extras", []) + s.get("joining", []):
            members.setdefault(m, set()).add(s["id"])
    out = {}
    for index in sorted(dev.pids):
        shards = members.get(dev.id_of(index), set())
        bad = [k for k in stored_keys(dev, index) if owner_of(table["ranges"], token_of(k))
               not in shards]
        if bad:
            out[index] = bad
    return out


def keys_per_shard(dev, table):
    """{shard: number of stored keys} counted on one voting replica of each shard."""
    out = {}
    for s in table["shards"]:
        ranges = [r for r in table["ranges"] if r["shard"] == s["id"]]
        index = dev.index_of(s["replicas"][0])
        out[s["id"]] = sum(len(stored_keys(dev, index, int(r["start"], 0), int(r["end"], 0)))
                           for r in ranges)
    return out
