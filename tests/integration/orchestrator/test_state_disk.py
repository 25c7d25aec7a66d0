"""The orchestrator acknowledges a decision only once state.json holds it (docs/operations.md
"When the state cannot be written"): a real `cairn orchestrator` whose data directory is a
64 KiB tmpfs, filled up while it runs. A machine's registration is then refused with 503 and
the reason, the events say so, state.json keeps what it held; once space is freed the same
registration succeeds and is on disk. Needs root (mount); skipped otherwise."""

import json
import os
import subprocess
import tempfile
import time

import pytest

from dev_cluster import CAIRN_BIN, free_port_block, orchestrator_supported, wait_for
from ha_cluster import http_json

_SUPPORTED, _WHY_NOT = orchestrator_supported()
pytestmark = [
    pytest.mark.requires(_SUPPORTED, _WHY_NOT),
    pytest.mark.requires(os.geteuid() == 0, "mounting a tmpfs needs root"),
]

SECRET = "state-disk-secret"


def fill(path):
    """Writes `path` until the file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while os.write(fd, b"x" * 4096) > 0:
            pass
    except OSError:
        pass  # ENOSPC: full
    finally:
        os.close(fd)


def test_a_full_state_disk_refuses_decisions_with_503_until_space_is_freed():
    root = tempfile.mkdtemp(prefix="cairn-state-disk-")
    data = os.path.join(root, "data")
    os.makedirs(data)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", data], check=True)
    port = free_port_block(1)
    log = open(os.path.join(root, "orchestrator.log"), "w")
    proc = subprocess.Popen([CAIRN_BIN, "orchestrator", "--port", str(port), "--bind",
                             "127.0.0.1", "--data-dir", data, "--cluster-secret", SECRET],
                            stdout=log, stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d" % port
    try:
        wait_for(lambda: http_json(url + "/v1/status")[0] == 200, 30, what="the orchestrator")
        state_path = os.path.join(data, "state.json")
        with open(state_path) as f:
            before = json.load(f)
        filler = os.path.join(data, "filler")
        fill(filler)

        code, body = http_json(url + "/v1/register", "POST", {"address": "127.0.0.1:7001"},
                               secret=SECRET)
        assert code == 503, (code, body)
        assert "could not store the orchestrator state" in body["error"], body
        assert "No space left on device" in body["error"], body
        code, events = http_json(url + "/v1/events")
        assert code == 200
        assert any("cannot write the orchestrator state" in e["message"] for e in events), events
        code, machines = http_json(url + "/v1/machines")
        assert code == 200 and machines == [], machines
        with open(state_path) as f:
            assert json.load(f)["machines"] == before["machines"]

        os.unlink(filler)
        code, body = http_json(url + "/v1/register", "POST", {"address": "127.0.0.1:7001"},
                               secret=SECRET)
        assert code == 200, (code, body)
        with open(state_path) as f:
            stored = json.load(f)
        assert [m["address"] for m in stored["machines"]] == ["127.0.0.1:7001"], stored
        messages = [e["message"] for e in stored["events"]]
        assert any("decisions resume" in m for m in messages), messages
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        for _ in range(50):
            if subprocess.run(["umount", data]).returncode == 0:
                break
            time.sleep(0.1)
        subprocess.run(["rm", "-rf", root])
