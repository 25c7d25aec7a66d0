"""Two-phase migration end to end (docs/migration.md): real `cairn dev` clusters, real
clients writing and reading at QUORUM the whole time, the fault checker on their history.

  * adding RF machines creates a shard that takes its share of the ring; nothing acknowledged is
    lost, no read is stale, the moved ranges are gone from the sources, keys are balanced;
  * kill -9 of the orchestrator, a source replica or a target machine in the middle of a
    migration: it still completes and the checker finds nothing;
  * after every migration test, every voting replica of every shard stores the same keys in
    every range the shard owns (check_clean, replica_differences): QUORUM reads alone would not
    see a replica that lacks keys, since the other two answer for it;
  * repeated kill -9 and restart of source replicas and of the new shard's members
    while ranges migrate to it;
  * `cairn admin split` / `move` / `migrations` by hand, and their refusals;
  * hashes, sets and sorted sets move with every field under field writes;
  * a list moves with every element in order under pushes.
"""

import json
import threading
import time

import pytest

from dev_cluster import DevCluster, orchestrator_supported, wait_for
from migration_workload import (Traffic, keys_per_shard, misplaced_keys, owner_of, stored_cells,
                                wait_replicas_agree)
from xxh3 import token_of  # noqa: E402  (migration_workload puts tests/cluster on the path)

_SUPPORTED, _WHY_NOT = orchestrator_supported()
pytestmark = pytest.mark.requires(_SUPPORTED, _WHY_NOT)

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
    # Every voting replica of every shard stores the same keys in each range the shard owns
    # (hinted handoff of writes a replica missed while down may still be under way: retried).
    diff = wait_replicas_agree(dev, table, must_agree=traffic.must_agree)
    assert not diff, "replicas of a shard store different keys:\n" + "\n".join(diff[:20])


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
            traffic.models, traffic.incr_attempted, traffic.uncertain, traffic.written = (
                old.models, old.incr_attempted, old.uncertain, old.written)
            traffic.start()
        if after_kill:
            after_kill()
        table = wait_settled(dev, 3)
        time.sleep(1)
    finally:
        if traffic is not None:
            traffic.stop()
    check_clean(dev, traffic, table)
    return added, table, traffic


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

        # _kill_during's check_clean compared every shard's voting replicas, range by range.
        _, table, traffic = _kill_during(dev, ("staging",), kill)
        shard = next(s for s in table["shards"] if s["id"] == victim["shard"])
        # Restarted in time: still a voting replica (not replaced as dead).
        assert victim["machine"] in shard["replicas"], (victim, shard, dev.get("/v1/events"))
        diff = wait_replicas_agree(dev, table, must_agree=traffic.must_agree,
                                   shards={victim["shard"]}, timeout_s=5)
        assert not diff, (victim, diff)


# Issue 16's recipe, scaled down (test_restarts_of_sources_and_new_shard_members_...).
CHURN_PRELOAD_KEYS = 20000
CHURN_VALUE_BYTES = 100
# Bytes/s per target machine: with ~2.5 MB preloaded, the new shard's third of the ring (six
# ranges in the runs seen, migrated one at a time, each copied from each of 3 source replicas)
# takes about half a minute, so migrations stay active through a dozen kills (each one makes
# targets copy again).
CHURN_RATE = 150000
CHURN_WINDOW_S = 45      # the kill/restart loop stops after this, migrations done or not
CHURN_INTERVAL_S = 3.0   # between kills
CHURN_SETTLE_S = 90      # from the end of the loop to 3 settled shards


def _in_threads(jobs):
    """Runs each callable of `jobs` in its own thread; returns their results in order (an
    exception is returned as its result)."""
    results = [None] * len(jobs)

    def run(n):
        try:
            results[n] = jobs[n]()
        except Exception as e:  # surfaced by the caller
            results[n] = e
    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def preload_parallel(dev, indexes, count, value_bytes, connections=8):
    """preload(), faster: pre:0..count-1 at QUORUM in pipelines of 500 over `connections`
    connections spread over machines `indexes` (a cluster connection runs one command at a
    time, so one pipelined connection is slow)."""
    pad = "x" * value_bytes

    def load(n):
        c = dev.client(indexes[n % len(indexes)], socket_timeout=20)
        mine = list(range(n, count, connections))
        for start in range(0, len(mine), 500):
            pipe = c.pipeline(transaction=False)
            for i in mine[start:start + 500]:
                pipe.set("pre:%d" % i, "v%d%s" % (i, pad))
            replies = pipe.execute(raise_on_error=False)
            assert all(r is True for r in replies), [r for r in replies if r is not True][:5]
    errors = [r for r in _in_threads([lambda n=n: load(n) for n in range(connections)])
              if isinstance(r, Exception)]
    assert not errors, errors


def _read_preloaded(dev, index, keys, value_bytes):
    """Problems reading the preloaded keys `keys` (numbers) back at QUORUM through machine
    `index`."""
    c = dev.client(index, socket_timeout=20)
    pad = b"x" * value_bytes
    problems = []
    for start in range(0, len(keys), 1000):
        pipe = c.pipeline(transaction=False)
        batch = keys[start:start + 1000]
        for i in batch:
            pipe.get("pre:%d" % i)
        for i, value in zip(batch, pipe.execute(raise_on_error=False)):
            if value != b"v%d" % i + pad:
                problems.append("m%d: pre:%d reads %r" % (index, i, value if not isinstance(
                    value, bytes) else value[:20]))
    return problems


def check_preloaded(dev, table, count, value_bytes, connections_per_machine=3):
    """Every preloaded key reads back right at QUORUM through one machine of each shard (each
    machine reads every key, over a few connections in parallel)."""
    indexes = [dev.index_of(s["replicas"][0]) for s in table["shards"]]
    jobs = [lambda index=index, n=n: _read_preloaded(
        dev, index, list(range(n, count, connections_per_machine)), value_bytes)
        for index in indexes for n in range(connections_per_machine)]
    problems = []
    for result in _in_threads(jobs):
        problems += ["%r" % result] if isinstance(result, Exception) else result
    assert not problems, "%d problems reading the preloaded keys through m%s:\n%s" % (
        len(problems), indexes, "\n".join(problems[:30]))


def test_restarts_of_sources_and_new_shard_members_during_rebalance_keep_every_key_everywhere():
    """Issue 16 ("migrations while machines restart left a new shard's replicas without whole
    ranges"), scaled down to run in about two minutes.

    2 shards x RF 3 + 1 spare hold 20,000 preloaded keys (QUORUM); checked and pipelined
    clients run throughout; 3 machines are added, so a third shard forms and ranges migrate to
    it. While migrations are active (at most CHURN_WINDOW_S), every ~3 s one machine is killed
    -9 and restarted with its data before it is declared dead: the original six replicas in
    turn (sources of every migration, both shards), and members of the new shard (the
    target): at least once, and whenever a migration is caught in `cutover`.

    Proves, once 3 shards have settled with no active migration:
      * the fault checker finds no lost acknowledged write and no stale read; the pipelined
        writers' keys hold their last acknowledged state; no machine keeps a range it does not
        own (check_clean);
      * every voting replica of every shard stores the same keys in every range the shard owns
        (check_clean -> replica_differences): no replica of the new shard misses a range or
        part of one, which QUORUM reads alone would hide;
      * every preloaded key reads back with its value at QUORUM through a machine of each
        shard (none nil).
    """
    with DevCluster(shards=2, rf=3, spares=1,
                    extra_args=["--migration-max-rate", str(CHURN_RATE)]) as dev:
        t0 = time.monotonic()
        marks = []  # (what, seconds since the cluster was up), printed with the kills

        def mark(what):
            marks.append((what, round(time.monotonic() - t0, 1)))
        preload_parallel(dev, sorted(dev.pids), CHURN_PRELOAD_KEYS, CHURN_VALUE_BYTES)
        mark("preloaded")
        old_shards = dev.shards()
        old_ids = {s["id"] for s in old_shards}
        # The original six, alternating between the two shards.
        originals = [dev.index_of(m) for pair in zip(*(s["replicas"] for s in old_shards))
                     for m in pair]
        assert len(originals) == 6, old_shards
        kills = []  # (seconds since the loop began, index, what it was, migrations' phases)
        traffic = Traffic(dev, sorted(dev.pids)).start()
        try:
            add_rf_machines(dev)
            wait_phase(dev, ("staging", "catchup", "cutover", "cleanup", "done"), timeout_s=60)
            began = time.monotonic()
            next_original = 0

            def new_shard():
                return next((s for s in dev.shards() if s["id"] not in old_ids), None)

            def kill_restart(index, what):
                phases = ["%d:%s" % (m["id"], m["phase"]) for m in active(dev)]
                dev.kill(index)
                dev.restart(index)  # same data directory, back before it is declared dead
                kills.append((round(time.monotonic() - began, 1), index, what, phases))

            cutover_kills = set()  # migrations a target was killed in the cutover of
            turn = 0
            while time.monotonic() - began < CHURN_WINDOW_S and active(dev):
                # Until the next kill is due, watch for a migration in `cutover` (polled as in
                # wait_phase) whose targets were not killed in a cutover yet.
                next_kill = time.monotonic() + CHURN_INTERVAL_S
                cutover = None
                while time.monotonic() < next_kill and len(cutover_kills) < 2:
                    cutover = next((m for m in active(dev) if m["phase"] == "cutover"
                                    and m["id"] not in cutover_kills), None)
                    if cutover is not None:
                        break
                    time.sleep(0.05)
                time.sleep(max(0.0, next_kill - time.monotonic()) if cutover is None else 0)
                if not active(dev):
                    break
                target = new_shard()
                members = []
                if target is not None:
                    members = [m for m in target["replicas"] + target.get("joining", [])
                               if m != target.get("leader")]
                # A target killed in a cutover makes the attempt fail and every target of that
                # migration copy again: at most once per migration and twice in all, or the
                # migrations would not progress.
                if (cutover is not None and target is not None
                        and cutover["target"] == target["id"]):
                    victim = next((m for m in members if m != cutover.get("driver")), None)
                    if victim is not None:
                        cutover_kills.add(cutover["id"])
                        kill_restart(dev.index_of(victim), "new-shard member %d during "
                                     "cutover of migration %d" % (victim, cutover["id"]))
                        continue
                # Two original replicas, then a member of the new shard (once it exists).
                turn += 1
                if members and turn % 3 == 0:
                    victim = members[(turn // 3) % len(members)]
                    kill_restart(dev.index_of(victim), "new-shard member %d" % victim)
                else:
                    index = originals[next_original % len(originals)]
                    next_original += 1
                    kill_restart(index, "original replica m%d" % index)
            mark("kill loop ended")
            table = wait_settled(dev, 3, timeout_s=CHURN_SETTLE_S)
            mark("settled")
            time.sleep(1)
        finally:
            traffic.stop()
        summary = "kills: %s; times: %s" % (kills, marks)
        print(summary)
        check_clean(dev, traffic, table)
        mark("check_clean")
        check_preloaded(dev, table, CHURN_PRELOAD_KEYS, CHURN_VALUE_BYTES)
        mark("preloaded keys read")
        # The recipe was followed: sources of both shards and the new shard were restarted.
        restarted = {dev.id_of(k[1]) for k in kills if k[2].startswith("original")}
        assert all(restarted & set(s["replicas"]) for s in old_shards), summary
        assert any(k[2].startswith("new-shard") for k in kills), summary
        new = next(s for s in table["shards"] if s["id"] not in old_ids)
        assert len(new["replicas"]) == 3, new


# More cells than one copy page examines (max(1000 keys x 10, 1000) = 10,000): each row spans
# several pages, which stop inside it and resume after its last cell.
BIG_ROW_FIELDS = 12000


def in_range(token, r):
    return int(r["start"], 0) <= token and (int(r["end"], 0) == 0 or token < int(r["end"], 0))


def test_rows_bigger_than_a_page_move_whole_under_writes():
    """Issue 9: a hash of 12,000 fields and a sorted set of 6,000 members (12,000 cells with its
    score index) move by hand to the other shard while fields are added through every machine;
    With them a list of 6,000 elements, pushed to while it moves.
    Afterwards every acknowledged field reads back at QUORUM, the sorted set is whole and in
    order, and every voting replica stores the same cells, field by field."""
    with DevCluster(shards=2, rf=3, spares=0, extra_args=["--no-auto-rebalance"]) as dev:
        c = dev.client(0, socket_timeout=60)
        for b in range(0, BIG_ROW_FIELDS, 1000):
            assert c.hset("{big}h", mapping={"f%d" % f: "v%d" % f
                                             for f in range(b, b + 1000)}) == 1000
        for b in range(0, BIG_ROW_FIELDS // 2, 1000):
            assert c.zadd("{big}z", {"m%d" % f: f for f in range(b, b + 1000)}) == 1000
            assert c.rpush("{big}l", *["e%d" % f for f in range(b, b + 1000)]) == b + 1000
        table = dev.get("/v1/table")
        moved = next(r for r in table["ranges"] if in_range(token_of("{big}h"), r))
        target = next(s["id"] for s in table["shards"] if s["id"] != moved["shard"])
        acked = {}
        pushed = []
        stop = threading.Event()
        errors = []
        indexes = sorted(dev.pids)

        def writer(n):
            w = dev.client(indexes[n % len(indexes)], socket_timeout=20)
            i = 0
            while not stop.is_set():
                field, value = "late%d-%d" % (n, i), "x%d" % i
                i += 1
                try:
                    assert w.hset("{big}h", field, value) == 1
                    acked[field] = value
                    w.rpush("{big}l", field)
                    pushed.append(field)
                except Exception as e:  # noqa: BLE001 - only refusals are allowed
                    if not str(e).startswith(("UNCERTAIN", "UNAVAILABLE", "NOLEADER")):
                        errors.append(repr(e))
                    time.sleep(0.01)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            out = dev.admin("move", moved["start"], "--to", str(target))
            assert "migration" in out.lower(), out
            table = wait_for(lambda: (lambda t: all(
                r["shard"] == target for r in t["ranges"] if r["start"] == moved["start"]) and
                not active(dev) and t)(dev.get("/v1/table")), MIGRATION_TIMEOUT_S,
                interval_s=0.5, what="the move")
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert errors == [], errors[:5]
        assert len(acked) > 20
        r = dev.client(indexes[-1], socket_timeout=60)
        want = {("f%d" % f).encode(): ("v%d" % f).encode() for f in range(BIG_ROW_FIELDS)}
        want.update({f.encode(): v.encode() for f, v in acked.items()})
        got = r.hgetall("{big}h")
        missing = [f for f in want if got.get(f) != want[f]]
        assert not missing, "%d acknowledged fields lost, e.g. %s" % (len(missing), missing[:5])
        # Beyond them only late fields of writes that were refused as uncertain.
        assert all(f.startswith(b"late") for f in set(got) - set(want))
        assert r.hlen("{big}h") == len(got)
        assert r.zcard("{big}z") == BIG_ROW_FIELDS // 2
        assert r.zrange("{big}z", 0, -1, withscores=True) == [
            (("m%d" % f).encode(), float(f)) for f in range(BIG_ROW_FIELDS // 2)]
        elements = [e.decode() for e in r.lrange("{big}l", 0, -1)]
        preloaded = ["e%d" % f for f in range(BIG_ROW_FIELDS // 2)]
        assert elements[:len(preloaded)] == preloaded
        late = elements[len(preloaded):]
        assert set(pushed) <= set(late), "acknowledged pushes lost"
        assert all(e.startswith("late") for e in late) and len(set(late)) == len(late)
        for n in range(3):  # each writer's pushes keep their order
            mine = [e for e in late if e.startswith("late%d-" % n)]
            assert mine == sorted(mine, key=lambda e: int(e.split("-")[1]))
        assert r.llen("{big}l") == len(elements)
        assert not misplaced_keys(dev, table)
        diff = wait_replicas_agree(dev, table)
        assert not diff, "replicas of a shard store different cells:\n" + "\n".join(diff[:20])


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


def live_keys(dev, index):
    """Keys machine `index` stores as a live value (no tombstone; no TTL is used here)."""
    return {k for k, sub, cell in stored_cells(dev, index) if not sub and not cell[1] & 1}


def test_flushall_and_dels_while_a_range_moves_bring_no_key_back_on_any_replica():
    """A FLUSHALL is a range deletion, not a timestamped tombstone: it deletes what was written
    before it and nothing after. The targets of a paused move get the sources' WAL tail (new
    keys, DELs, the FLUSHALL, keys written after it, DELs of some of those) in one piece when it
    resumes, and must apply it in that order: afterwards no key deleted by the FLUSHALL or a DEL
    is live on any machine, and every key written after the FLUSHALL is on every voting replica
    of its shard."""
    with DevCluster(shards=2, rf=3, spares=0,
                    extra_args=["--no-auto-rebalance", "--migration-max-rate", "100000"]) as dev:
        preload(dev, 4000, value_bytes=500)  # a range takes seconds per source at 100 kB/s
        table = dev.get("/v1/table")
        moved = table["ranges"][0]
        target = next(s["id"] for s in table["shards"] if s["id"] != moved["shard"])
        out = dev.admin("move", moved["start"], "--to", str(target))
        assert "migration" in out.lower(), out
        # Once a target copies, it holds its sources' WAL: pause it there so the tail grows.
        m = wait_for(lambda: next((m for m in migrations(dev)
                                   if m["phase"] == "staging" and m["bytes"] > 0), None),
                     60, interval_s=0.05, what="a target copying")
        dev.admin("migrations", "pause", str(m["id"]))
        time.sleep(1.0)
        c = dev.client(0, socket_timeout=30)
        gone = {"pre:%d" % i for i in range(4000)}
        pipe = c.pipeline(transaction=False)
        for i in range(1000):
            pipe.set("mid:%d" % i, "before the flush")
            gone.add("mid:%d" % i)
        for i in range(0, 4000, 3):
            pipe.delete("pre:%d" % i)
        pipe.execute()
        assert c.flushall() is True
        kept = {}
        pipe = c.pipeline(transaction=False)
        for i in range(1000):
            pipe.set("post:%d" % i, "after the flush %d" % i)
            kept["post:%d" % i] = "after the flush %d" % i
        for i in range(0, 1000, 4):
            pipe.delete("post:%d" % i)
            gone.add("post:%d" % i)
            del kept["post:%d" % i]
        assert all(r in (True, 1) for r in pipe.execute())
        dev.admin("migrations", "resume", str(m["id"]))
        dev.admin("migrations", "rate", str(m["id"]), "10MB")
        table = wait_for(lambda: (lambda t: all(
            r["shard"] == target for r in t["ranges"] if r["start"] == moved["start"]) and not
            active(dev) and t)(dev.get("/v1/table")), MIGRATION_TIMEOUT_S, interval_s=0.5,
            what="the move")
        # Machine by machine: no deleted key is live anywhere.
        for index in sorted(dev.pids):
            back = sorted(live_keys(dev, index) & gone)
            assert not back, "machine %d: %d deleted keys came back, e.g. %s" % (
                dev.id_of(index), len(back), back[:5])
        # Every key written after the FLUSHALL is live on every voting replica of its shard
        # (retried: a replica may still be getting a hint).
        def replicas_hold_every_kept_key():
            missing = []
            for s in table["shards"]:
                want = {k for k in kept if owner_of(table["ranges"], token_of(k)) == s["id"]}
                for machine in s["replicas"]:
                    lacking = want - live_keys(dev, dev.index_of(machine))
                    missing += ["machine %d lacks %s" % (machine, k) for k in sorted(lacking)]
            return missing
        missing = replicas_hold_every_kept_key()
        if missing:
            time.sleep(5)
            missing = replicas_hold_every_kept_key()
        assert not missing, "%d missing, e.g. %s" % (len(missing), missing[:5])
        moved_keys = [k for k in kept if in_range(token_of(k), moved)]
        assert moved_keys, "no key written after the FLUSHALL falls in the moved range"
        r = dev.client(1)
        for key, value in kept.items():
            assert r.get(key) == value.encode(), key
        assert not misplaced_keys(dev, table)


def test_hashes_sets_and_sorted_sets_move_with_their_fields_under_writes():
    """Issue 9 in the cluster: rows (every field its own cell) move in a migration to a new shard
    while clients keep writing fields through every machine. Every acknowledged field reads back
    at QUORUM afterwards, and every voting replica stores the same cells, field by field."""
    with DevCluster(shards=2, rf=3, spares=0) as dev:
        hashes, fields = 150, 20
        c = dev.client(0, socket_timeout=20)
        for h in range(hashes):
            assert c.hset("row:h%d" % h, mapping={"f%d" % f: "v%d" % f for f in range(fields)}) \
                == fields
            assert c.sadd("row:s%d" % h, *["m%d" % f for f in range(5)]) == 5
            assert c.zadd("row:z%d" % h, {"m%d" % f: f for f in range(5)}) == 5
        acked = {}  # (hash, field) -> value
        stop = threading.Event()
        errors = []
        indexes = sorted(dev.pids)

        def writer(n):
            w = dev.client(indexes[n % len(indexes)], socket_timeout=20)
            i = 0
            while not stop.is_set():
                h, field, value = "row:h%d" % (i % hashes), "late%d-%d" % (n, i), "x%d" % i
                i += 1
                try:
                    assert w.hset(h, field, value) == 1
                    acked[(h, field)] = value
                except Exception as e:  # noqa: BLE001 - only refusals are allowed
                    if not str(e).startswith(("UNCERTAIN", "UNAVAILABLE", "NOLEADER")):
                        errors.append(repr(e))
                    time.sleep(0.01)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(1)
            add_rf_machines(dev)
            wait_phase(dev, ("staging", "catchup", "cutover", "cleanup", "done"))
            table = wait_settled(dev, 3)
            time.sleep(1)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert errors == [], errors[:5]
        assert len(acked) > 50
        new_shard = next(s for s in table["shards"] if s["id"] not in (1, 2))
        moved = [h for h in range(hashes) if any(
            r["shard"] == new_shard["id"] and int(r["start"], 0) <= token_of("row:h%d" % h) and
            (int(r["end"], 0) == 0 or token_of("row:h%d" % h) < int(r["end"], 0))
            for r in table["ranges"])]
        assert moved, "no hash moved to the new shard"
        r = dev.client(indexes[-1], socket_timeout=20)
        for h in range(hashes):
            want = {("f%d" % f).encode(): ("v%d" % f).encode() for f in range(fields)}
            want.update({f.encode(): v.encode() for (k, f), v in acked.items()
                         if k == "row:h%d" % h})
            # Every acknowledged field; beyond them only late fields of uncertain writes.
            got = r.hgetall("row:h%d" % h)
            assert {f: got.get(f) for f in want} == want, h
            assert all(f.startswith(b"late") for f in set(got) - set(want)), h
            assert r.hlen("row:h%d" % h) == len(got)
            assert r.smembers("row:s%d" % h) == {("m%d" % f).encode() for f in range(5)}
            assert r.zrange("row:z%d" % h, 0, -1, withscores=True) == [
                (("m%d" % f).encode(), float(f)) for f in range(5)]
        misplaced = misplaced_keys(dev, table)
        assert not misplaced, {i: keys[:5] for i, keys in misplaced.items()}
        diff = wait_replicas_agree(dev, table)
        assert not diff, "replicas of a shard store different cells:\n" + "\n".join(diff[:20])
