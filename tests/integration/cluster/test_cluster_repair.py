"""Anti-entropy repair (docs/cluster.md "Anti-entropy repair"): replicas that diverged without
any read or hint to fix them converge by themselves.

A 3-machine shard (RF 3) runs with hinted handoff off and a pass every 2 s. Divergence comes
from the two ways a replica loses data in practice: it was down while writes were acknowledged
(W = QUORUM does not need it, and no hint is kept for it), and its copy of a range is lost
(CAIRN.REPAIR DROP discards it). No key is read until the replicas are compared, cell by cell,
as each stores them (CAIRN.MIGRATE SCAN), so only repair can have brought them together.
"""

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cluster_support import Cluster, ClusterHelper, decode_cell, info_cluster, session  # noqa: E402

CONVERGE_S = 120  # the acceptance bound of docs/cluster.md


@pytest.fixture(scope="module")
def shard():
    c = Cluster(machines=3, shards=1, rf=3, ranges_per_shard=4,
                extra_args=["--hinted-handoff", "off", "--repair-interval-s", "2"])
    try:
        yield ClusterHelper(c)
    finally:
        c.close()


def dump(cluster, i):
    """Every cell machine i stores, as {(key, sub-key): encoded cell}, read page by page."""
    ic = cluster.internal_client(i)
    cells = {}
    try:
        cursor, resume = "0", None
        while True:
            args = ["CAIRN.MIGRATE", "SCAN", cursor, "0", 1000]
            if resume:
                args += ["FROM", resume]
            reply = ic.execute_command(*args)
            entries = reply[1]
            for j in range(0, len(entries), 3):
                cells[(entries[j], entries[j + 1])] = entries[j + 2]
            resume = reply[2] if len(reply) > 2 else None
            cursor = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
            if resume is None and int(cursor, 0) == 0:
                return cells
    finally:
        ic.close()


def differences(a, b):
    keys = set(a) | set(b)
    return sorted(k for k in keys if a.get(k) != b.get(k))


def wait_converged(cluster, timeout=CONVERGE_S):
    """Seconds until the three replicas store the same cells; fails after `timeout`."""
    start = time.monotonic()
    while True:
        dumps = [dump(cluster, i) for i in range(3)]
        diff = differences(dumps[0], dumps[1]) + differences(dumps[0], dumps[2])
        if not diff:
            return time.monotonic() - start, dumps[0]
        if time.monotonic() - start > timeout:
            raise AssertionError("replicas still differ after %ds in %d cells, e.g. %r"
                                 % (timeout, len(diff), diff[:5]))
        time.sleep(0.5)


def repair_info(cluster, i):
    info = info_cluster(cluster.client(i))
    return {k: v for k, v in info.items() if k.startswith("repair")}


def hints_pending(cluster, machines):
    return [info_cluster(cluster.client(i))["hints_pending"] for i in machines]


def test_a_replica_that_was_down_gets_every_write_it_missed(shard):
    shard.flushall()
    w = session(shard, 0, write="QUORUM")
    # Written once, before the outage, and never again: must survive as it was.
    for i in range(1500):
        w.set("pre:%d" % i, "v%d" % i)
    w.hset("profile", mapping={"f%d" % i: i for i in range(100)})
    w.zadd("board", {"m%d" % i: i for i in range(100)})
    wait_converged(shard, timeout=30)

    shard.kill(2)
    w.close()
    w = session(shard, 0, write="QUORUM")
    for i in range(1000):
        w.set("during:%d" % i, "d%d" % i)
    for i in range(0, 200):
        w.set("pre:%d" % i, "new%d" % i)
    w.delete(*["pre:%d" % i for i in range(200, 300)])
    w.hset("profile", mapping={"g%d" % i: i for i in range(50)})
    w.hdel("profile", *["f%d" % i for i in range(10)])
    w.zadd("board", {"m%d" % i: 1000 + i for i in range(20)})
    w.close()
    assert hints_pending(shard, [0, 1]) == [0, 0]  # hinted handoff is off: only repair can fix it

    shard.restart(2)
    took, cells = wait_converged(shard)
    print("converged %.1f s after the restart (%d cells per replica)" % (took, len(cells)))
    assert repair_info(shard, 2)["repair_cells_fixed"] >= 1000 + 200 + 100

    # Read back key by key on the repaired replica alone (a read at ONE it coordinates).
    r = session(shard, 2, read="ONE")
    for i in range(1500):
        expected = None if 200 <= i < 300 else (("new%d" if i < 200 else "v%d") % i).encode()
        assert r.get("pre:%d" % i) == expected, i
    for i in range(1000):
        assert r.get("during:%d" % i) == ("d%d" % i).encode()
    assert r.hlen("profile") == 140
    assert r.zscore("board", "m5") == 1005
    r.close()


def test_a_lost_range_is_copied_back_and_an_in_sync_shard_fixes_nothing(shard):
    shard.flushall()
    w = session(shard, 0, write="ALL")
    for i in range(3000):
        w.set("r:%d" % i, "x%d" % i)
    w.close()
    _, before = wait_converged(shard, timeout=30)
    table = shard.table()
    lost = table["ranges"][1]
    ic = shard.internal_client(1)
    try:
        assert ic.execute_command("CAIRN.REPAIR", "DROP", lost["start"], lost["end"]) in (
            b"OK", True)
    finally:
        ic.close()
    assert len(dump(shard, 1)) < len(before)
    took, after = wait_converged(shard)
    print("a dropped range was copied back in %.1f s" % took)
    assert after == before

    # In sync: later passes compare everything and fix nothing.
    fixed = [repair_info(shard, i)["repair_cells_fixed"] for i in range(3)]
    passes = [repair_info(shard, i)["repair_passes"] for i in range(3)]
    deadline = time.monotonic() + 30
    while any(repair_info(shard, i)["repair_passes"] < passes[i] + 2 for i in range(3)):
        assert time.monotonic() < deadline, "no repair pass in 30 s"
        time.sleep(0.5)
    assert [repair_info(shard, i)["repair_cells_fixed"] for i in range(3)] == fixed
    shard_line = repair_info(shard, 0)["repair_shard_1"]
    assert shard_line["complete_passes"] >= 1 and shard_line["last_full_age_s"] <= 10, shard_line


def test_repair_commands_reject_bad_input(shard):
    ic = shard.internal_client(0)
    try:
        epoch = shard.epoch()
        for args, text in [
            (["DIGEST", epoch, 0, 0, 0, 10], "leaves"),
            (["DIGEST", epoch, 0, 0, 8, 0], "max cells"),
            (["DIGEST", epoch, 5, 0, 99999, 10], "leaves"),
            (["DIGEST", "x", 0, 0, 8, 10], "epoch"),
            (["DROP", 10, 5], "end"),
        ]:
            with pytest.raises(Exception, match=text):
                ic.execute_command("CAIRN.REPAIR", *args)
        # A stale epoch is fenced like every internal read.
        with pytest.raises(Exception, match="STALEEPOCH|TABLEBEHIND"):
            ic.execute_command("CAIRN.REPAIR", "DIGEST", epoch + 5, 0, 0, 8, 10)
    finally:
        ic.close()
    # Not for clients: without CAIRN.AUTH the command is refused.
    c = shard.client(0)
    with pytest.raises(Exception):
        c.execute_command("CAIRN.REPAIR", "DIGEST", 1, 0, 0, 8, 10)


# --- tombstone purge (docs/cluster.md "Tombstone purge") ---------------------------------------

HINT_AGE_S = 1  # with the 10 s margin: a deletion may go 11 s before a pass that matched


@pytest.fixture(scope="module")
def purging():
    c = Cluster(machines=3, shards=1, rf=3, ranges_per_shard=4,
                extra_args=["--hinted-handoff", "off", "--repair-interval-s", "2",
                            "--hint-max-age-s", str(HINT_AGE_S)])
    try:
        yield ClusterHelper(c)
    finally:
        c.close()


def tombstones(cluster, i, prefix):
    """Keys under `prefix` whose stored cell on machine i is a tombstone."""
    return {k for (k, sub), cell in dump(cluster, i).items()
            if k.startswith(prefix) and sub == b"" and decode_cell(cell)[0] is None}


def compact(cluster, i):
    ic = cluster.internal_client(i)
    try:
        assert ic.execute_command("CAIRN.REPAIR", "COMPACT") in (b"OK", True)
    finally:
        ic.close()


def wait_purgeable_after(cluster, machines, moment, timeout=90):
    """Until every machine's last pass matched on every range and started after `moment` plus
    the purge delay (so deletions before `moment` are below the bound)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [repair_info(cluster, i).get("repair_shard_1", {}) for i in machines]
        if all(line.get("ranges_purgeable") == 4 and
               line.get("last_full_ms", 0) / 1000 > moment + HINT_AGE_S + 10 for line in lines):
            return
        assert time.monotonic() < deadline, lines
        time.sleep(0.5)


def test_deletions_are_purged_only_once_every_replica_holds_them(purging):
    purging.flushall()
    w = session(purging, 0, write="ALL")
    for i in range(600):
        w.set("p:%d" % i, "v%d" % i)
    w.delete(*["p:%d" % i for i in range(0, 200)])
    w.close()
    purging.kill(2)
    # Deleted while machine 2 is down: it still holds these values.
    w = session(purging, 0, write="QUORUM")
    w.delete(*["p:%d" % i for i in range(200, 300)])
    w.close()
    deleted_at = time.time()
    old = {b"p:%d" % i for i in range(200)}
    late = {b"p:%d" % i for i in range(200, 300)}

    # No pass can match while a replica is down: the late deletions stay, however long we wait
    # and however often storage compacts; the earlier ones (held by all three) may go.
    time.sleep(HINT_AGE_S + 10 + 6)
    for i in (0, 1):
        compact(purging, i)
        assert late <= tombstones(purging, i, b"p:"), i

    purging.restart(2)
    wait_converged(purging)
    wait_purgeable_after(purging, range(3), deleted_at)
    for i in range(3):
        compact(purging, i)
    for i in range(3):
        left = tombstones(purging, i, b"p:") & (old | late)
        assert not left, (i, sorted(left)[:5])
        # Machine 2's old values did not come back anywhere.
        stored = {k for (k, sub) in dump(purging, i) if k.startswith(b"p:")}
        assert not (stored & late), (i, sorted(stored & late)[:5])
    r = session(purging, 2, read="ALL")
    for i in range(600):
        assert r.get("p:%d" % i) == (None if i < 300 else ("v%d" % i).encode()), i
    r.close()
