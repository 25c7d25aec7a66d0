"""Lists on one machine, beyond what the differential test can script: blocking commands that
really wait (woken by a push from another client, first blocked first served, fractional
timeouts, a waiting client that goes away), many blocked clients while others are served."""

import socket
import threading
import time

import pytest
import redis

from harness import RawConn, encode_command


def blocked_client(port, *args):
    """Sends a blocking command on a raw connection without reading the reply."""
    conn = RawConn(port, timeout=10.0)
    conn.send(encode_command(*args))
    return conn


def wait_for_blocked(r, count, timeout_s=5.0):
    """Waits until `count` clients are waiting (their requests have arrived)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = r.execute_command("CLIENT", "LIST")
        lines = lines.decode() if isinstance(lines, bytes) else lines
        blocked = [line for line in lines.splitlines()
                   if "cmd=blpop" in line or "cmd=brpop" in line or "cmd=blmove" in line
                   or "cmd=blmpop" in line or "cmd=brpoplpush" in line]
        if len(blocked) >= count:
            return
        time.sleep(0.01)
    time.sleep(0.2)  # CLIENT LIST may not name the command: give the requests time to land


def test_push_wakes_the_first_blocked_client_first(server, r):
    clients = []
    for i in range(3):
        clients.append(blocked_client(server.port, "BLPOP", "q", "other", "0"))
        time.sleep(0.05)  # a fixed order of arrival
    wait_for_blocked(r, 3)
    assert r.rpush("q", "a", "b", "c") == 3
    replies = [c.read_frame()[1] for c in clients]
    assert replies == [[b"q", b"a"], [b"q", b"b"], [b"q", b"c"]]
    assert r.exists("q") == 0
    for c in clients:
        c.close()


def test_blocking_forms_wake_and_move(server, r):
    move = blocked_client(server.port, "BLMOVE", "src", "dst", "RIGHT", "LEFT", "0")
    mpop = blocked_client(server.port, "BLMPOP", "0", "2", "none", "m", "LEFT", "COUNT", "5")
    time.sleep(0.1)
    r.rpush("src", "x")
    r.rpush("m", "1", "2", "3")
    assert move.read_frame()[1] == b"x"
    assert mpop.read_frame()[1] == [b"m", [b"1", b"2", b"3"]]
    assert r.lrange("dst", 0, -1) == [b"x"]
    push = blocked_client(server.port, "BRPOPLPUSH", "dst", "src", "0")
    assert push.read_frame()[1] == b"x"
    for c in (move, mpop, push):
        c.close()


def test_fractional_timeout_answers_null(server, r):
    started = time.monotonic()
    assert r.blpop(["nothing"], timeout=0.2) is None
    elapsed = time.monotonic() - started
    assert 0.18 <= elapsed < 1.0
    conn = RawConn(server.port)
    conn.cmd("HELLO", "3")
    started = time.monotonic()
    conn.send(encode_command("BLMOVE", "nothing", "x", "LEFT", "LEFT", "0.1"))
    raw, value = conn.read_frame()
    assert raw == b"_\r\n" and time.monotonic() - started >= 0.09
    conn.close()


def test_client_gone_while_blocked_takes_nothing(server, r):
    conn = blocked_client(server.port, "BRPOP", "gone", "0")
    time.sleep(0.1)
    conn.sock.shutdown(socket.SHUT_WR)
    conn.close()
    time.sleep(0.1)
    r.rpush("gone", "kept")
    time.sleep(0.1)
    assert r.lrange("gone", 0, -1) == [b"kept"]


def test_many_blocked_clients_do_not_stop_others(server, r):
    clients = [blocked_client(server.port, "BLPOP", "many%d" % i, "0") for i in range(200)]
    time.sleep(0.2)
    started = time.monotonic()
    for i in range(50):
        assert r.set("k%d" % i, i)
        assert r.lpush("busy", i) == i + 1
    assert time.monotonic() - started < 2.0
    for i in range(200):
        r.rpush("many%d" % i, "v")
    for i, c in enumerate(clients):
        assert c.read_frame()[1] == [b"many%d" % i, b"v"]
        c.close()


def test_pipelined_requests_wait_behind_a_blocked_one(server, r):
    conn = RawConn(server.port)
    conn.send(encode_command("BLPOP", "p", "0") + encode_command("PING"))
    time.sleep(0.1)
    r.rpush("p", "v")
    assert conn.read_frame()[1] == [b"p", b"v"]
    assert conn.read_frame()[1] in (b"PONG", "PONG")
    conn.close()


def blocked_id(r, command="blpop"):
    """The id of the client waiting in `command` (one only)."""
    lines = r.execute_command("CLIENT", "LIST")
    lines = lines.decode() if isinstance(lines, bytes) else lines
    ids = [int(line.split()[0][3:]) for line in lines.splitlines() if "cmd=%s" % command in line]
    assert len(ids) == 1, lines
    return ids[0]


@pytest.mark.parametrize("reason", ["", "TIMEOUT", "ERROR"])
def test_client_unblock_answers_as_a_timeout_or_with_an_error(server, r, reason):
    conn = blocked_client(server.port, "BLPOP", "never", "0")
    wait_for_blocked(r, 1)
    client = blocked_id(r)
    assert r.execute_command("CLIENT", "UNBLOCK", client, *([reason] if reason else [])) == 1
    expected = (b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n" if reason == "ERROR"
                else b"*-1\r\n")
    assert conn.read_raw() == expected
    assert conn.cmd_raw("PING") == b"+PONG\r\n"  # the connection goes on
    # Unblocked, it takes nothing pushed later.
    r.rpush("never", "kept")
    assert r.lrange("never", 0, -1) == [b"kept"]
    conn.close()


def test_client_unblock_of_a_client_not_blocked_and_bad_arguments(server, r):
    assert r.execute_command("CLIENT", "UNBLOCK", r.client_id()) == 0
    assert r.execute_command("CLIENT", "UNBLOCK", 987654321) == 0
    with pytest.raises(redis.ResponseError, match="^value is not an integer or out of range$"):
        r.execute_command("CLIENT", "UNBLOCK", "x")
    with pytest.raises(redis.ResponseError,
                       match="^CLIENT UNBLOCK reason should be TIMEOUT or ERROR$"):
        r.execute_command("CLIENT", "UNBLOCK", r.client_id(), "later")


def test_client_kill_closes_a_blocked_client_at_once(server, r):
    conn = blocked_client(server.port, "BLPOP", "never", "0")
    wait_for_blocked(r, 1)
    assert r.execute_command("CLIENT", "KILL", "ID", blocked_id(r)) == 1
    assert conn.is_closed(wait=3.0)
    r.rpush("never", "kept")
    assert r.lrange("never", 0, -1) == [b"kept"]
    conn.close()
