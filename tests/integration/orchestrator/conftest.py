"""Fixtures for the orchestrator tests: a fresh `cairn dev` cluster per test (each test changes
membership), with short failure-detection times so that a test takes seconds, not minutes."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "fault"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "cluster"))

import probes  # noqa: E402
from dev_cluster import DevCluster  # noqa: E402
from probes import requires_probes  # noqa: E402,F401  (autouse)


def pytest_configure(config):
    probes.register(config)


@pytest.fixture
def dev():
    """A started 2-shard x RF 3 + 1 spare dev cluster, stopped (and its data removed) after."""
    cluster = DevCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()
