"""The orchestrator's dashboard in a real browser (headless Debian Chromium driven by npm's
puppeteer-core, both installed by scripts/install-deps and the build): on a 2-shard cluster
under `cairn bench --distribution hot-range`, the page loads with no console error or failed
request, draws its charts with the compiled-in uPlot and the ring, and shows the hot shard.
A screenshot is kept at build/test-artifacts/dashboard.png."""

import json
import os
import shutil
import subprocess

import pytest

from dev_cluster import CAIRN_BIN, DevCluster, orchestrator_supported, wait_for
from test_hot_split import HOT_ARGS, Bench

_SUPPORTED, _WHY_NOT = orchestrator_supported()
BUILD = os.path.dirname(os.path.abspath(CAIRN_BIN))
NODE_MODULES = os.path.join(BUILD, "web", "node_modules")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboard_check.js")


def _why_not():
    if not _SUPPORTED:
        return _WHY_NOT
    if not os.access(CHROMIUM, os.X_OK):
        return "no Chromium at %s (scripts/install-deps installs Debian's chromium)" % CHROMIUM
    if shutil.which("node") is None:
        return "no node (scripts/install-deps installs Debian's npm)"
    if not os.path.isdir(os.path.join(NODE_MODULES, "puppeteer-core")):
        return "no puppeteer-core in %s (the build installs it when npm is there)" % NODE_MODULES
    return None


pytestmark = pytest.mark.requires(_why_not() is None, _why_not() or "")


def check(dev, screenshot, no_library=False):
    """The page as dashboard_check.js saw it (one JSON object)."""
    env = dict(os.environ, NODE_PATH=NODE_MODULES, CHROMIUM=CHROMIUM,
               NO_CHART_LIBRARY="1" if no_library else "0")
    run = subprocess.run(["node", CHECK, "http://127.0.0.1:%d/" % dev.orchestrator_port,
                          screenshot, "HOT"], capture_output=True, text=True, timeout=90, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(result)
    return result


def test_dashboard_shows_a_hot_shard_without_console_errors():
    # Splits off: the shard stays hot while the page is looked at.
    with DevCluster(shards=2, rf=1, spares=1,
                    extra_args=HOT_ARGS + ["--orchestrator-arg=--no-hot-split"]) as dev:
        bench = Bench(dev, "hot-range", 45)
        try:
            wait_for(lambda: any(s["hot"] for s in dev.get("/v1/load")["hot"]["shards"]),
                     30, interval_s=0.5, what="a hot shard in /v1/load")
            artifacts = os.path.join(BUILD, "test-artifacts")
            os.makedirs(artifacts, exist_ok=True)
            screenshot = os.path.join(artifacts, "dashboard.png")
            result = check(dev, screenshot)
            assert result["errors"] == [], result
            assert result["found"], result
            assert result["uplot"] and result["charts"] >= 2, result
            assert result["ring_arcs"] >= 2, result
            assert os.path.getsize(screenshot) > 10000
            # As a build without npm serves it: no library, the page's own SVG charts.
            bare = check(dev, os.path.join(artifacts, "dashboard-svg.png"), no_library=True)
            assert bare["errors"] == [] and bare["found"], bare
            assert not bare["uplot"] and bare["charts"] >= 2, bare
        finally:
            bench.stop()
