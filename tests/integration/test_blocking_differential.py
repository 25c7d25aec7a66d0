"""The blocking commands with scripted timing on one machine, compared with redis-server 7.0
(tests/integration/blocking_scenarios.py): timeouts, a push from another client waking the
waiter, several waiters served first blocked first served, BLOCK 0 then a push, wrong types,
and what happens to a waiter whose key is deleted, unlinked, replaced by another type, renamed
or flushed, or whose consumer group is destroyed (docs/protocol.md "Blocking commands")."""

import pytest

from blocking_scenarios import DELETION_SCENARIOS, SCENARIOS, assert_same, run_scenario

ALL = {**SCENARIOS, **DELETION_SCENARIOS}


@pytest.mark.parametrize("name", sorted(ALL))
def test_blocking_scenario_matches_redis(server, redis_ref, name):
    steps = ALL[name]
    reference = run_scenario(lambda _: ("127.0.0.1", redis_ref.port), steps)
    target = run_scenario(lambda _: ("127.0.0.1", server.port), steps)
    assert_same(name, reference, target)
