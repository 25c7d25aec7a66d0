"""The blocking-command scenarios of tests/integration/blocking_scenarios.py against redis-server
7.0 and a 2-shard x RF 3 cluster (conftest.py): the waiting clients are on one machine, the
clients that push, delete or flush on another, so every wake crosses machines. Scenarios
alternate (in name order) between waiters on a replica of the keys' shard (woken when it
applies the write) and waiters on a machine without one (woken by its 100 ms retry), which
keeps the module under a minute; replies and "still waiting" observations must be those of
redis-server."""

import pytest

from blocking_scenarios import DELETION_SCENARIOS, SCENARIOS, assert_same, run_scenario

ALL = {**SCENARIOS, **DELETION_SCENARIOS}
NAMES = sorted(ALL)
# Every scenario's keys share the hash tag {q}, so one shard.
TAGGED_KEY = "{q}a"


def placement(cluster, waiters_on_replica):
    replicas = cluster.replicas_of(TAGGED_KEY)
    others = [i for i in range(len(cluster.machines)) if i not in replicas]
    waiting = replicas[0] if waiters_on_replica else others[0]
    acting = replicas[1] if waiters_on_replica else replicas[0]
    assert waiting != acting

    def place(name):
        machine = waiting if name.startswith("w") else acting
        return cluster.host(machine), cluster.port(machine)
    return place


@pytest.mark.parametrize("name", NAMES)
def test_cluster_blocking_scenario_matches_redis(redis_ref, cluster, name):
    steps = ALL[name]
    on_replica = NAMES.index(name) % 2 == 0
    reference = run_scenario(lambda _: ("127.0.0.1", redis_ref.port), steps)
    target = run_scenario(placement(cluster, on_replica), steps)
    assert_same("%s (waiters on %s)" % (name, "a replica" if on_replica else "an outsider"),
                reference, target)
