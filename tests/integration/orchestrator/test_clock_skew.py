"""The clock guard (docs/operations.md "Clock offset"): a machine whose wall clock jumps an hour
ahead of the orchestrator's (libfaketime, monotonic clock untouched) stops coordinating writes
at once, says why in its error, INFO, `cairn admin machines`, /v1/machines and the events, while
the other machines keep taking writes and reads through it go on; back in bound, it coordinates
writes again. No cell stamped by the skewed clock is stored anywhere."""

import os
import re
import struct
import time

import pytest
import redis

from dev_cluster import DevCluster, orchestrator_supported, wait_for

_SUPPORTED, _WHY_NOT = orchestrator_supported()
pytestmark = pytest.mark.requires(_SUPPORTED, _WHY_NOT)

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
CELL_HEADER = struct.Struct(">BBBQQqI")  # docs/formats.md "Cells"
HOUR_MS = 3600 * 1000


def _faketime_env(path):
    # FAKETIME_DONT_FAKE_MONOTONIC: Asio's timers run on the monotonic clock and stop if it is
    # faked; NO_CACHE: the file is read on every clock call, so a test can step the clock.
    return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": str(path),
            "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def _clock_of(dev, index):
    for machine in dev.api("/v1/machines")[1]:
        if machine["address"] == dev.address(index):
            return machine.get("clock")
    return None


def _refusal(client, *args):
    """The CLOCKSKEW error text of a write, or None if it succeeded."""
    try:
        client.execute_command(*args)
        return None
    except redis.ResponseError as e:
        assert str(e).startswith("CLOCKSKEW"), e
        return str(e)


def test_a_machine_whose_clock_jumps_coordinates_no_writes_until_back_in_bound(tmp_path):
    assert os.path.exists(FAKETIME_LIB), "libfaketime is missing (scripts/install-deps installs it)"
    skew = tmp_path / "faketime"
    skew.write_text("+0\n")
    with DevCluster(shards=1, rf=3, spares=0) as dev:
        dev.kill(2)
        dev.restart(2, env=_faketime_env(skew))
        skewed = dev.client(2)
        wait_for(lambda: skewed.set("before", "1"), 30, what="machine 2 to take writes")
        wait_for(lambda: _clock_of(dev, 2) is not None, 10, what="machine 2's first clock report")

        skew.write_text("+1h\n")
        started = time.monotonic()
        # The step is seen on the next write, not a heartbeat later.
        message = _refusal(skewed, "SET", "k", "late")
        assert message is not None, "a write through a clock an hour ahead was accepted"
        assert "stepped forward" in message, message
        # Then measured against the orchestrator: an hour ahead.
        message = wait_for(lambda: "ahead of the orchestrator's" in (_refusal(skewed, "SET", "k",
                                                                              "late") or "")
                           and _refusal(skewed, "SET", "k", "late"), 10,
                           what="machine 2 to measure its offset")
        measured_after_s = time.monotonic() - started
        for args in (("DEL", "before"), ("SET", "e", "v", "EX", "60"), ("MSET", "a", "1", "b", "2"),
                     ("FLUSHALL",)):
            assert _refusal(skewed, *args) is not None, args
        # A read-modify-write is stamped by its shard's leader: refused if machine 2 leads the
        # shard, else forwarded to the leader and applied.
        me = dev.id_of(2)
        leads = any(s["leader"] == me for s in dev.shards())
        refusal = _refusal(skewed, "INCR", "n")
        assert (refusal is not None) == leads, (leads, refusal)
        info = skewed.info("cluster")
        assert info["clock_in_bound"] == 0, info
        assert info["clock_offset_ms"] < -HOUR_MS + 5000, info
        assert info["clock_refused_writes"] >= 6, info

        # The others write as usual, and reads through the skewed machine go on.
        dev.client(0).set("k", "fine")
        assert skewed.get("k") == b"fine"
        assert skewed.get("before") == b"1"
        clock = wait_for(lambda: (_clock_of(dev, 2) or {}).get("in_bound") is False
                         and _clock_of(dev, 2), 10, what="the orchestrator to see the offset")
        assert clock["offset_ms"] < -HOUR_MS + 5000, clock
        table = dev.admin("machines")
        assert "CLOCK" in table and re.search(r"OFF \+3[56]\d{5}ms", table), table
        events = [e["message"] for e in dev.api("/v1/events")[1]]
        assert any("clock" in e and "refuses to coordinate writes" in e for e in events), events

        skew.write_text("+0\n")
        wait_for(lambda: _refusal(skewed, "SET", "k", "again") is None, 10,
                 what="machine 2 to coordinate writes again")
        assert dev.client(0).get("k") == b"again"
        assert skewed.incr("n") == (1 if leads else 2)  # a refused INCR never ran
        assert skewed.get("a") is None and skewed.get("before") == b"1"  # nor the refused writes
        wait_for(lambda: (_clock_of(dev, 2) or {}).get("in_bound") is True, 10,
                 what="the orchestrator to see the clock back in bound")
        events = [e["message"] for e in dev.api("/v1/events")[1]]
        assert any("clock back in bound" in e for e in events), events

        # No replica stores a cell stamped by the skewed clock (an hour ahead).
        now_ms = int(time.time() * 1000)
        secret = dev.secret()
        epoch = dev.status()["epoch"]
        for i in sorted(dev.pids):
            c = dev.client(i)
            c.execute_command("CAIRN.AUTH", secret)
            for key in ("k", "n", "before", "e"):
                data = c.execute_command("CAIRN.READ", epoch, key)
                if data is None:
                    continue
                stamped_ms = CELL_HEADER.unpack_from(data)[3] >> 16
                assert stamped_ms < now_ms + 60_000, (i, key, stamped_ms - now_ms)
        print("measured an hour ahead %.2f s after the step" % measured_after_s)
