"""Makes launcher.py and xxh3.py importable from the tests of this directory."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import probes  # noqa: E402
from probes import requires_probes  # noqa: E402,F401  (autouse)


def pytest_configure(config):
    probes.register(config)
