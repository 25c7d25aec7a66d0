"""Transactions across shards when their coordinator dies (docs/transactions.md "Recovery"):
a coordinator killed between prepare and decision, or between decision and apply, leaves intents
that the participants resolve from the transaction record within a bounded, measured time, with
no key left held; and a bank-transfer checker whose total never changes while coordinators are
killed -9 and paused.

The table is hand-pushed (no orchestrator), so shard leaders never move: the machines killed and
paused here are replicas that lead no shard, each the coordinator of the transactions sent to it.
"""

import os
import random
import threading
import time

import pytest
import redis

from cluster_support import session

RECOVERY_BOUND_S = 10.0


def tx_info(cluster, i):
    c = cluster.client(i)
    try:
        return c.info("transactions")
    finally:
        c.close()


def wait_intents_resolved(cluster, machines, timeout=RECOVERY_BOUND_S):
    """Seconds until no machine of `machines` holds an intent; fails after `timeout`."""
    started = time.monotonic()
    while True:
        pending = {i: tx_info(cluster, i)["tx_intents_pending"] for i in machines}
        if all(v == 0 for v in pending.values()):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError("intents still pending after %.0fs: %r" % (timeout, pending))
        time.sleep(0.02)


def coordinator_outside_home(cluster, home_key):
    """A machine that leads no shard and is not a replica of `home_key`'s shard, so its death
    takes no replica of the transaction record."""
    home = cluster.shard_of(home_key)
    other = 3 - home
    leaders = {cluster.leader_of_shard(1), cluster.leader_of_shard(2)}
    return [i for i in cluster.replicas_of_shard(other) if i not in leaders][0]


def run_killed_transaction(cluster, point):
    """EXEC of keys of both shards through a coordinator that dies at `point`, then a SET of one
    of its keys; returns the keys, the machine that died, how long until every intent was
    resolved and how long the SET waited."""
    a = cluster.keys_on_shard(1, 1, prefix="rk" + point)[0]
    b = cluster.keys_on_shard(2, 1, prefix="rk" + point)[0]
    home_key = min(a, b)  # the record lives at the shard of the transaction's first written key
    setup = session(cluster, cluster.leader_of_shard(1))
    setup.mset({a: 100, b: 100})
    victim = coordinator_outside_home(cluster, home_key)
    os.environ["CAIRN_TEST_TX_FAULT"] = point
    try:
        cluster.restart(victim)
    finally:
        del os.environ["CAIRN_TEST_TX_FAULT"]
    c = session(cluster, victim)
    with c.pipeline() as p:
        p.decrby(a, 30).incrby(b, 30)
        with pytest.raises(redis.ConnectionError):
            p.execute()
    assert cluster.machines[victim].wait_exit(5), "the coordinator did not die at " + point
    alive = [i for i in range(len(cluster.machines)) if i != victim]
    # A plain write of a held key waits for the decision, and lands after the transaction.
    plain_s = set_while_held(cluster, a, victim)
    took = wait_intents_resolved(cluster, alive)
    return setup, a, b, victim, max(took, plain_s), plain_s


def set_while_held(cluster, key, victim):
    """SET of a key the dead coordinator's transaction holds, through another machine, retried
    while it answers UNCERTAIN: returns how long until it was acknowledged."""
    c = session(cluster, [i for i in cluster.replicas_of(key) if i != victim][0])
    started = time.monotonic()
    try:
        while True:
            try:
                assert c.set(key, "plain") is True
                return time.monotonic() - started
            except redis.ResponseError as e:
                assert str(e).startswith("UNCERTAIN"), e
                assert time.monotonic() - started < RECOVERY_BOUND_S
    finally:
        c.close()


def assert_keys_free(cluster, keys):
    """A read-modify-write at each key's leader runs at once: no key is left held."""
    for key in keys:
        c = session(cluster, cluster.leader_of_shard(cluster.shard_of(key)))
        started = time.monotonic()
        with c.pipeline() as p:
            p.append(key, "")
            p.execute()
        assert time.monotonic() - started < 0.5
        c.close()


def test_coordinator_killed_between_prepare_and_decision_aborts(cluster):
    setup, a, b, victim, took, plain_s = run_killed_transaction(cluster, "exit-after-prepare")
    assert setup.mget(a, b) == [b"plain", b"100"]  # nothing of it applied; the SET after it
    assert plain_s > 0.3  # the SET waited for recovery
    assert_keys_free(cluster, [a, b])
    aborted = sum(tx_info(cluster, i)["tx_intents_recovered_abort"]
                  for i in range(len(cluster.machines)) if i != victim)
    assert aborted >= 2  # a quorum of each participant shard resolved its own intent
    print("recovery after a death between prepare and decision: %.3f s" % took)
    assert took < RECOVERY_BOUND_S
    setup.close()


def test_coordinator_killed_between_decision_and_apply_commits(cluster):
    setup, a, b, victim, took, plain_s = run_killed_transaction(cluster, "exit-after-decision")
    assert setup.mget(a, b) == [b"plain", b"130"]  # all of it applied, then the SET over a
    assert plain_s > 0.3
    assert_keys_free(cluster, [a, b])
    committed = sum(tx_info(cluster, i)["tx_intents_recovered_commit"]
                    for i in range(len(cluster.machines)) if i != victim)
    assert committed >= 2
    print("recovery after a death between decision and apply: %.3f s" % took)
    assert took < RECOVERY_BOUND_S
    setup.close()


BANK_ACCOUNTS = 8
BANK_INITIAL = 1000
BANK_SECONDS = 30


class Bank:
    """The history of a bank-transfer run: acknowledged and uncertain transfers, and totals
    read inside transactions."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acknowledged = []  # (src, dst, amount)
        self.uncertain = []
        self.totals = []
        self.errors = []


def transfer_once(c, bank, accounts, rng):
    src, dst = rng.sample(accounts, 2)
    amount = rng.randint(1, 50)
    watched = rng.random() < 0.5
    try:
        with c.pipeline() as p:
            if watched:
                p.watch(src, dst)
                p.get(src)
                p.multi()
            p.decrby(src, amount).incrby(dst, amount)
            p.execute()
        with bank.lock:
            bank.acknowledged.append((src, dst, amount))
    except redis.WatchError:
        pass  # nothing ran
    except redis.ResponseError as e:
        if not str(e).startswith("TXCONFLICT"):  # TXCONFLICT: nothing was applied
            with bank.lock:
                bank.uncertain.append((src, dst, amount))
    except redis.RedisError:
        with bank.lock:
            bank.uncertain.append((src, dst, amount))
        raise


def read_total(c, bank, accounts):
    try:
        with c.pipeline() as p:
            for k in accounts:
                p.get(k)
            values = p.execute()
    except redis.ResponseError:
        return  # TXCONFLICT after its retries, UNAVAILABLE: no read happened
    with bank.lock:
        bank.totals.append(sum(int(v) for v in values))


def bank_client(cluster, bank, accounts, machines, stop, seed):
    rng = random.Random(seed)
    while not stop.is_set():
        i = rng.choice(machines)
        try:
            c = session(cluster, i)
            c.connection_pool.connection_kwargs["socket_timeout"] = 10
            for _ in range(20):
                if stop.is_set():
                    break
                if rng.random() < 0.2:
                    read_total(c, bank, accounts)
                else:
                    transfer_once(c, bank, accounts, rng)
            c.close()
        except redis.RedisError:
            time.sleep(0.05)  # the machine is dead or paused: another one
        except Exception as e:  # reported by the test, not swallowed
            with bank.lock:
                bank.errors.append(repr(e))
            return


def expected_balances(accounts, transfers):
    balances = {k: BANK_INITIAL for k in accounts}
    for src, dst, amount in transfers:
        balances[src] -= amount
        balances[dst] += amount
    return balances


UNCERTAIN_MAX = 34


def subset_deltas(accounts, transfers):
    """Every subset of `transfers` as the balance changes it makes: {delta vector: subset}."""
    index = {k: n for n, k in enumerate(accounts)}
    sums = {tuple([0] * len(accounts)): ()}
    for transfer in transfers:
        src, dst, amount = transfer
        for delta, subset in list(sums.items()):
            moved = list(delta)
            moved[index[src]] -= amount
            moved[index[dst]] += amount
            sums.setdefault(tuple(moved), subset + (transfer,))
    return sums


def whole_subset_explains(accounts, acknowledged, uncertain, final):
    """Whether the final balances are the acknowledged transfers plus some subset of the
    uncertain ones, each applied whole (meet in the middle: 2 x 2^(k/2) subsets)."""
    assert len(uncertain) <= UNCERTAIN_MAX, "too many uncertain transfers to check: %d" % len(
        uncertain)
    base = expected_balances(accounts, acknowledged)
    missing = tuple(final[k] - base[k] for k in accounts)
    half = len(uncertain) // 2
    first = subset_deltas(accounts, uncertain[:half])
    for delta in subset_deltas(accounts, uncertain[half:]):
        if tuple(m - d for m, d in zip(missing, delta)) in first:
            return True
    return False


def test_bank_transfers_keep_the_total_while_coordinators_die(cluster):
    accounts = (cluster.keys_on_shard(1, BANK_ACCOUNTS // 2, prefix="bank") +
                cluster.keys_on_shard(2, BANK_ACCOUNTS // 2, prefix="bank"))
    leaders = {cluster.leader_of_shard(1), cluster.leader_of_shard(2)}
    victims = [i for i in range(len(cluster.machines)) if i not in leaders]
    c0 = session(cluster, cluster.leader_of_shard(1))
    c0.mset({k: BANK_INITIAL for k in accounts})
    bank = Bank()
    stop = threading.Event()
    machines = list(range(len(cluster.machines)))
    threads = [threading.Thread(target=bank_client,
                                args=(cluster, bank, accounts, machines, stop, seed))
               for seed in range(6)]
    for t in threads:
        t.start()
    started = time.monotonic()
    rng = random.Random(7)
    try:
        while time.monotonic() - started < BANK_SECONDS:
            victim = rng.choice(victims)
            time.sleep(2)
            if rng.random() < 0.5:
                cluster.kill(victim)
                time.sleep(3)
                cluster.restart(victim)
            else:
                cluster.pause(victim)
                time.sleep(3)
                cluster.resume(victim)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        cluster.heal()
    assert not any(t.is_alive() for t in threads)
    assert not bank.errors, bank.errors
    wait_intents_resolved(cluster, machines)
    total = BANK_INITIAL * BANK_ACCOUNTS
    assert bank.totals and all(t == total for t in bank.totals), bank.totals
    final = {k: int(v) for k, v in zip(accounts, c0.mget(accounts))}
    assert sum(final.values()) == total
    # Every acknowledged transfer applied once, and each uncertain one entirely or not at all.
    assert whole_subset_explains(accounts, bank.acknowledged, bank.uncertain, final), (
        "final balances match no whole subset of the uncertain transfers")
    print("bank: %d acknowledged, %d uncertain, %d totals read" %
          (len(bank.acknowledged), len(bank.uncertain), len(bank.totals)))
    assert len(bank.acknowledged) > 50
    c0.close()
