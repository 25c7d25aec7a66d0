"""Fixtures for the cluster integration tests: one 2-shard x RF 3 cluster (6 machines on
127.0.0.2..7, tests/cluster/launcher.py) shared by the whole module.

Tests that kill, stop or re-table machines need not clean up: the `cluster` fixture heals the
cluster before and after each test (every machine running and resumed, one table everywhere,
hints drained, keyspace flushed), so one failure does not cascade.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cluster_support import Cluster, ClusterHelper  # noqa: E402


@pytest.fixture(scope="module")
def cluster_module():
    # Anti-entropy repair off: these tests make replicas diverge on purpose and check what read
    # repair and hints do about it (test_cluster_repair.py tests repair on its own cluster).
    c = Cluster(machines=6, shards=2, rf=3, extra_args=["--repair-cells-per-s", "0"])
    try:
        yield ClusterHelper(c)
    finally:
        c.close()


@pytest.fixture
def cluster(cluster_module):
    cluster_module.heal()
    # Hints left by an earlier test would otherwise replay old writes after the FLUSHALL.
    cluster_module.wait_hints_drained(range(len(cluster_module.machines)))
    cluster_module.flushall()
    yield cluster_module
    cluster_module.heal()
