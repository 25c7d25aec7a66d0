"""Two-phase migration end to end (issue 5, docs/migration.md): real `cairn dev` clusters, real
clients writing and reading at QUORUM the whole time, the fault checker on their history.

  * adding RF machines creates a shard that takes its share of the ring; nothing acknowledged is
    lost, no read is stale, the moved ranges are gone from the sources, keys are balanced;
  * kill -9 of the orchestrator, a source replica or a target machine in the middle of a
    migration: it still completes and the checker finds nothing;
  * `cairn admin split` / `move` / `migrations` by hand, and their refusals.
"""

import json
import os
import time

import pytest

from dev_cluster import DevCluster, orchestrator_supported, wait_for
from migration_workload import Traffic, keys_per_shard, misplaced_keys, stored_keys

_SUPPORTED, _WHY_NOT = orchestrator_supported()
pytestmark = pytest.mark.skipif(not _SUPPORTED, reason=_WHY_NOT)

MIGRATION_TIMEOUT_S = 240
PRELOAD_KEYS = 3000


def preload(dev, count=PRELOAD_KEYS, value_bytes=0):
    c = dev.client(0)
    pad = "x" * value_bytes
    for start in range(0, count, 500):
        pipe = c.pipeline(transaction=False)
        for i in range(start, min(count, start + 500)):
            pipe.set("pre:%d" % i, "v%d%s" % (i, pad))
        assert all(r is True for r in pipe.execute())


def migrations(dev):
    return dev.get("/v1/migrations")


def active(dev):
    return [m for m in migrations(dev) if m["phase"] not in ("done", "cancelled")]


def wait_phase(dev, phases, timeout_s=MIGRATION_TIMEOUT_S):
    """The first migration found in one of `phases`."""
    return wait_for(lambda: next((m for m in migrations(dev) if m["phase"] in phases), None),
                    timeout_s, interval_s=0.05, what="a migration in %s" % (phases,))


def wait_settled(dev, shards, timeout_s=MIGRATION_TIMEOUT_S):
    """Waits until `shards` shards exist, each owns ranges, and no migration is active."""
    def settled():
        table = dev.get("/v1/table")
        owners = {r["shard"] for r in table["ranges"]}
        return (len(table["shards"]) == shards and len(owners) == shards and not active(dev)
                and table)
    return wait_for(settled, timeout_s, interval_s=0.5, what="%d balanced shards" % shards)


def add_rf_machines(dev):
    return [dev.add_machine() for _ in range(dev.rf)]


def check_clean(dev, traffic, table):
    traffic.final_reads()
    violations = traffic.violations()
    assert not violations, "\n".join(v.describe() for v in violations[:20])
    problems = traffic.verify_writers()
    assert not problems, "\n".join(problems[:30])
    assert traffic.counts["checked"] > 200, traffic.counts
    assert traffic.counts["pipelines"] > 20, traffic.counts
    # Cleanup ran before the migrations were done: no machine keeps a range it does not own.
    misplaced = misplaced_keys(dev, table)
    assert not misplaced, {i: keys[:5] for i, keys in misplaced.items()}


def test_adding_rf_machines_creates_a_shard_that_takes_its_share_without_loss():
    with DevCluster(shards=2, rf=3, spares=1) as dev:
        preload(dev)
        # Keys that expire before the migration: their cells are copied as they are stored, and
        # must stay expired on the new shard.
        pipe = dev.client(1).pipeline(transaction=False)
        for i in range(300):
            pipe.set("gone:%d" % i, "x", px=300)
        assert all(r is True for r in pipe.execute())
        time.sleep(0.5)
        traffic = Traffic(dev, sorted(dev.pids)).start()
        try:
            time.sleep(2)
            added = add_rf_machines(dev)
            wait_phase(dev, ("staging", "catchup", "cutover", "cleanup", "done"))
            table = wait_settled(dev, 3)
            time.sleep(1)
        finally:
            traffic.stop()
        new_shard = next(s for s in table["shards"] if s["id"] not in (1, 2))
        assert len(new_shard["replicas"]) == 3, new_shard
        assert set(new_shard["replicas"]) <= {dev.id_of(i) for i in sorted(dev.pids)}, added
        done = [m for m in migrations(dev) if m["phase"] == "done"]
        assert done and all(m["target"] == new_shard["id"] for m in done), done
        check_clean(dev, traffic, table)
        c = dev.client(2)
        assert [k for k in range(300) if c.get("gone:%d" % k) is not None] == []
        counts = keys_per_shard(dev, table)
        mean = sum(counts.values()) / len(counts)
        assert all(abs(n - mean) <= 0.2 * mean for n in counts.values()), counts
        # What an operator sees afterwards.
        listing = dev.admin("migrations")
        assert "done" in listing and "shard" in listing.lower(), listing
        as_json = dev.admin("migrations", json_output=True)
        assert any(m["phase"] == "done" and m.get("fence_ms_last") is not None for m in as_json), \
            as_json


def _kill_during(dev, phases, do_kill, after_kill=None):
    """Starts a rebalance by adding RF machines, runs `do_kill(migration)` once a migration is
    in one of `phases`, and checks that everything settles with no violation."""
    # 3 MB: each range takes a few seconds to copy at the tests' --migration-max-rate, so the
    # migration is caught in the wanted phase.
    preload(dev, value_bytes=1000)
    dev.admin("migrations")  # the command works before any migration exists
    traffic = None
    try:
        added = add_rf_machines(dev)
        clients = [i for i in sorted(dev.pids)]
        traffic = Traffic(dev, clients).start()
        migration = wait_phase(dev, phases)
        victim = do_kill(migration)
        if victim is not None and victim in traffic.indexes:
            traffic.stop()
            traffic_indexes = [i for i in sorted(dev.pids)]
            old = traffic
            traffic = Traffic(dev, traffic_indexes, generation=old.generation + 1)
            traffic.history = old.history  # one history: the checker sees both halves
            traffic.models, traffic.incr_attempted, traffic.uncertain = (
                old.models, old.incr_attempted, old.uncertain)
            traffic.start()
        if after_kill:
            after_kill()
        table = wait_settled(dev, 3)
        time.sleep(1)
    finally:
        if traffic is not None:
            traffic.stop()
    check_clean(dev, traffic, table)
    return added, table


def test_kill_orchestrator_during_catchup_migration_completes():
    with DevCluster(shards=2, rf=3, spares=1,
                    extra_args=["--migration-max-rate", "200000"]) as dev:
        def kill(migration):
            dev.kill_orchestrator()
            time.sleep(2)
            dev.restart_orchestrator()
            m = next(x for x in migrations(dev) if x["id"] == migration["id"])
            assert m["phase"] in ("catchup", "cutover", "cleanup", "done"), m
            return None
        _kill_during(dev, ("catchup", "cutover"), kill)


def test_kill_source_replica_during_staging_migration_completes():
    with DevCluster(shards=2, rf=3, spares=2,
                    extra_args=["--migration-max-rate", "200000"]) as dev:
        def kill(migration):
            shard = next(s for s in dev.shards() if s["id"] == migration["source"])
            victim = next(m for m in shard["replicas"] if m != shard.get("leader"))
            index = dev.index_of(victim)
            dev.kill(index)
            return index
        _kill_during(dev, ("staging",), kill)


def test_kill_target_machine_during_catchup_migration_completes():
    with DevCluster(shards=2, rf=3, spares=2,
                    extra_args=["--migration-max-rate", "200000"]) as dev:
        def kill(migration):
            shard = next(s for s in dev.shards() if s["id"] == migration["target"])
            members = shard["replicas"] + shard.get("joining", [])
            victim = next(m for m in members if m != shard.get("leader"))
            index = dev.index_of(victim)
            dev.kill(index)
            return index
        _kill_during(dev, ("catchup", "cutover"), kill)


@pytest.mark.skipif(not os.environ.get("CAIRN_MIGRATION_REPLICA_KEYS"),
                    reason="open finding (docs/migration.md 'Known problems'): fails about 1 run "
                           "in 15; set CAIRN_MIGRATION_REPLICA_KEYS=1 to run it")
def test_target_killed_while_staging_and_restarted_copies_again_and_holds_every_key():
    """Staged pages skip the target's WAL until the stream's flush: a target killed mid-copy
    loses them, and must stage again (it cannot FINISH before). Afterwards it stores exactly
    the keys its shard's other replicas store in every range the shard owns, which a QUORUM
    checker alone would not see (the other two replicas would answer for it)."""
    with DevCluster(shards=2, rf=3, spares=2,
                    extra_args=["--migration-max-rate", "200000"]) as dev:
        victim = {}

        def kill(migration):
            # Some of the range is staged (unlogged, not flushed yet) before the kill.
            wait_for(lambda: next((m for m in migrations(dev) if m["id"] == migration["id"]
                                   and (m.get("bytes") or 0) > 0), None),
                     30, interval_s=0.05, what="bytes staged")
            shard = next(s for s in dev.shards() if s["id"] == migration["target"])
            members = shard["replicas"] + shard.get("joining", [])
            machine = next(m for m in members if m != shard.get("leader"))
            index = dev.index_of(machine)
            dev.kill(index)
            dev.restart(index)  # same data directory, back before it is declared dead
            victim.update(index=index, machine=machine, shard=migration["target"])
            return index

        _, table = _kill_during(dev, ("staging",), kill)
        shard = next(s for s in table["shards"] if s["id"] == victim["shard"])
        # Restarted in time: still a voting replica (not replaced as dead).
        assert victim["machine"] in shard["replicas"], (victim, shard, dev.get("/v1/events"))
        others = [dev.index_of(m) for m in shard["replicas"] if m != victim["machine"]]
        ranges = [r for r in table["ranges"] if r["shard"] == victim["shard"]]

        def differences():
            out = []
            for r in ranges:
                start, end = int(r["start"], 0), int(r["end"], 0)
                mine = set(stored_keys(dev, victim["index"], start, end))
                for other in others:
                    theirs = set(stored_keys(dev, other, start, end))
                    if mine != theirs:
                        out.append((r["start"], other, sorted(theirs - mine)[:10],
                                    sorted(mine - theirs)[:10]))
            return out

        # Writes the shard took while the victim was down reach it by hinted handoff, which may
        # still be under way.
        deadline = time.monotonic() + 15
        diff = differences()
        while diff and time.monotonic() < deadline:
            time.sleep(0.5)
            diff = differences()
        assert not diff, (victim, diff)


def test_split_and_move_by_hand_and_their_refusals():
    with DevCluster(shards=1, rf=1, spares=1, extra_args=["--no-auto-rebalance"]) as dev:
        preload(dev, 1000)
        secret = dev.secret()
        # One spare is all there is, and the spare target keeps it: a split needs RF = 1 free.
        out = dev.admin("split", "1")
        assert "migration" in out.lower(), out
        table = wait_settled(dev, 2)
        counts = keys_per_shard(dev, table)
        assert all(abs(n - 500) <= 100 for n in counts.values()), counts
        # No free machine left: refused with a reason.
        code, body = dev.api("/v1/migrations", method="POST", secret=secret)
        assert code == 400, body
        r = dev.admin_fail("split", "1")
        assert "free machine" in r, r
        # Move one range of shard 2 back to shard 1 by hand.
        moved = next(r for r in table["ranges"] if r["shard"] == 2)
        out = dev.admin("move", moved["start"], "--to", "1")
        assert "migration" in out.lower(), out
        table = wait_for(lambda: (lambda t: all(
            r["shard"] == 1 for r in t["ranges"] if r["start"] == moved["start"]) and not
            active(dev) and t)(dev.get("/v1/table")), MIGRATION_TIMEOUT_S, interval_s=0.5,
            what="the move")
        assert not misplaced_keys(dev, table)
        r = dev.admin_fail("move", moved["start"], "--to", "1")
        assert "already" in r or "owns" in r, r
        r = dev.admin_fail("move", moved["start"], "--to", "99")
        assert "99" in r, r
        for i in range(1000):
            assert dev.client(0).get("pre:%d" % i) == b"v%d" % i
        listing = dev.admin("migrations", json_output=True)
        assert json.dumps(listing)


def test_pause_resume_cancel_and_rate_are_obeyed():
    with DevCluster(shards=1, rf=1, spares=1,
                    extra_args=["--no-auto-rebalance", "--migration-max-rate", "100000"]) as dev:
        preload(dev, 2000, value_bytes=1000)  # 2 MB: each range takes seconds at 100 kB/s
        dev.admin("split", "1")
        first = wait_phase(dev, ("staging",), timeout_s=60)
        dev.admin("migrations", "pause", str(first["id"]))

        def mine():
            return next(m for m in migrations(dev) if m["id"] == first["id"])
        time.sleep(1.0)  # reports in flight when the pause began arrive
        paused_bytes = mine()["bytes"]
        time.sleep(2.0)
        m = mine()
        assert m["paused"] and m["phase"] == "staging", m
        assert m["bytes"] == paused_bytes, (paused_bytes, m)
        listing = dev.admin("migrations")
        assert "paused" in listing, listing
        dev.admin("migrations", "resume", str(first["id"]))
        dev.admin("migrations", "rate", str(first["id"]), "10MB")
        wait_for(lambda: mine()["phase"] in ("cleanup", "done"), 60, interval_s=0.2,
                 what="the resumed migration to commit")
        # The next one is cancelled before it commits; its range stays with shard 1.
        second = wait_for(lambda: next((m for m in migrations(dev) if m["id"] != first["id"]
                                        and m["phase"] in ("queued", "staging", "catchup")),
                                       None), 60, what="a second migration")
        dev.admin("migrations", "cancel", str(second["id"]))
        def cancelled_and_rest_done():
            ms = migrations(dev)
            return (any(m["id"] == second["id"] and m["phase"] == "cancelled" for m in ms)
                    and not any(m["phase"] not in ("done", "cancelled") for m in ms))
        wait_for(cancelled_and_rest_done, 120, interval_s=0.5, what="the rest to finish")
        table = dev.get("/v1/table")
        owner = [r["shard"] for r in table["ranges"] if int(r["start"], 0) <= int(
            second["start"], 0) and (int(r["end"], 0) == 0 or int(second["start"], 0) <
                                     int(r["end"], 0))]
        assert owner == [1], (owner, second)
        code, body = dev.api("/v1/migrations/%d/cancel" % first["id"], method="POST",
                             secret=dev.secret())
        assert code == 409 and "committed" in json.dumps(body), (code, body)
        wait_for(lambda: not misplaced_keys(dev, dev.get("/v1/table")), 30, interval_s=1,
                 what="copies of the cancelled range to be dropped")
        c = dev.client(0)
        for i in range(0, 2000, 7):
            assert c.get("pre:%d" % i).startswith(b"v%d" % i)
