"""Feature probes fail, they never skip: `make test` must not go green by quietly not running a
test because a tool, a package or a build feature is missing (scripts/install-deps installs
everything the tests need).

A test or module marked `pytest.mark.requires(ok, why)` fails with `why` when `ok` is false.
The conftest.py of every test directory that uses the marker imports `requires_probes` (an
autouse fixture) and calls `register(config)` from its pytest_configure."""

import pytest


def register(config):
    config.addinivalue_line(
        "markers", "requires(ok, why): fail the test (never skip it) when a feature probe failed")


@pytest.fixture(autouse=True)
def requires_probes(request):
    failed = [mark.args[1] for mark in request.node.iter_markers("requires") if not mark.args[0]]
    if failed:
        pytest.fail("feature probe failed: " + "; ".join(failed), pytrace=False)
