"""Makes the fault framework (this directory) and the launcher (tests/cluster) importable."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))

import probes  # noqa: E402
from probes import requires_probes  # noqa: E402,F401  (autouse)


def pytest_configure(config):
    probes.register(config)
