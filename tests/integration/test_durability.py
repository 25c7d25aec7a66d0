"""Durability across clean restarts: SIGTERM and SHUTDOWN keep every acknowledged write."""

import pytest

from harness import BULK, NIL, RawConn


def _write_dataset(c):
    pipe = c.pipeline(transaction=False)
    for i in range(2000):
        pipe.set("k:%d" % i, "v:%d" % i)
    pipe.set(b"bin\x00\xff", bytes(range(256)))
    pipe.set("", "empty-key")
    pipe.set("ttl", "x", ex=1000)
    pipe.set("gone", "x")
    pipe.delete("gone")
    pipe.incrby("counter", 41)
    pipe.incr("counter")
    pipe.set("expired", "x", px=1)
    pipe.execute()


def _check_dataset(c):
    pipe = c.pipeline(transaction=False)
    for i in range(2000):
        pipe.get("k:%d" % i)
    values = pipe.execute()
    assert values == [b"v:%d" % i for i in range(2000)]
    assert c.get(b"bin\x00\xff") == bytes(range(256))
    assert c.get("") == b"empty-key"
    assert 900 < c.ttl("ttl") <= 1000
    assert c.get("gone") is None
    assert c.get("counter") == b"42"
    assert c.get("expired") is None
    assert c.dbsize() == 2004


@pytest.mark.parametrize("durability", ["always", "batch"])
def test_data_survives_sigterm_restart(make_server, client_for, durability):
    s = make_server(durability=durability)
    _write_dataset(client_for(s))
    assert s.stop() == 0, "clean SIGTERM shutdown should exit 0:\n" + s.output()
    s.start()
    _check_dataset(client_for(s))
    # And once more, after writing on the restarted server.
    client_for(s).set("after", "restart")
    s.restart()
    c = client_for(s)
    assert c.get("after") == b"restart"
    assert c.dbsize() == 2005


def test_data_survives_shutdown_command(make_server):
    s = make_server()
    with RawConn(s.port) as c:
        assert c.cmd_raw("SET", "a", "1") == b"+OK\r\n"
        assert c.cmd_raw("SET", "b", bytes(range(256))) == b"+OK\r\n"
        assert c.cmd_raw("DEL", "b") == b":1\r\n"
        assert c.cmd_raw("SET", "c", "3") == b"+OK\r\n"
        c.send(b"*1\r\n$8\r\nSHUTDOWN\r\n")
        # Redis closes the connection without a reply when SHUTDOWN succeeds.
        assert c.read_until_closed(timeout=10) == b""
    assert s.wait_exit(timeout=10) == 0
    s.start()
    with RawConn(s.port) as c:
        assert c.cmd_raw("GET", "a") == BULK("1")
        assert c.cmd_raw("GET", "b") == NIL
        assert c.cmd_raw("GET", "c") == BULK("3")
        assert c.cmd_raw("DBSIZE") == b":2\r\n"
