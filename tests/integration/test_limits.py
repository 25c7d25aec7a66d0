"""AUTH / requirepass, maxclients and idle timeout: each test starts its own server."""

import time

import pytest
import redis

from harness import BULK, ERR, NIL, OK, RawConn, arity_error, run_script, target_server

PASSWORD = "s3cret"
NOAUTH = ERR("NOAUTH Authentication required.")
WRONGPASS = ERR("WRONGPASS invalid username-password pair or user is disabled.")


@pytest.fixture(scope="module")
def auth_server():
    s = target_server(requirepass=PASSWORD)
    s.start()
    yield s
    s.cleanup()


def test_noauth_before_auth(auth_server):
    with RawConn(auth_server.port) as c:
        run_script(c, [
            (("PING",), NOAUTH),
            (("GET", "x"), NOAUTH),
            (("SET", "x", "1"), NOAUTH),
            (("FOO",), ERR("ERR unknown command 'FOO', with args beginning with: ")),
            (("HELLO", "3"), lambda b: b.startswith(b"-NOAUTH HELLO must be called")),
            (("AUTH", "bad"), WRONGPASS),
            (("AUTH", "default", "bad"), WRONGPASS),
            (("AUTH", "nosuchuser", PASSWORD), WRONGPASS),
            (("HELLO", "2", "AUTH", "default", "bad"), WRONGPASS),
            (("AUTH", "x", "y", "z"), ERR("ERR syntax error")),
            (("AUTH",), arity_error("auth")),
            (("GET", "x"), NOAUTH),
            (("QUIT",), OK()),
        ])


def test_hello_noauth_message(auth_server):
    with RawConn(auth_server.port) as c:
        got = c.cmd_raw("HELLO", "3")
        # Redis 7.0.15's exact text; compared whole so a paraphrase is caught.
        assert got == ERR("NOAUTH HELLO must be called with the client already authenticated, "
                          "otherwise the HELLO AUTH <user> <pass> option can be used to "
                          "authenticate the client and select the RESP protocol version at "
                          "the same time"), got


def test_auth_then_commands(auth_server):
    with RawConn(auth_server.port) as c:
        run_script(c, [
            (("AUTH", PASSWORD), OK()),
            (("SET", "x", "1"), OK()),
            (("GET", "x"), BULK("1")),
            (("AUTH", "default", PASSWORD), OK()),
            # A failed AUTH does not log an authenticated connection out.
            (("AUTH", "bad"), WRONGPASS),
            (("GET", "x"), BULK("1")),
        ])
    with RawConn(auth_server.port) as c:
        reply = c.cmd("HELLO", "3", "AUTH", "default", PASSWORD)
        assert isinstance(reply, dict) and reply[b"proto"] == 3
        assert c.cmd_raw("GET", "nosuch") == b"_\r\n"
        assert c.cmd_raw("GET", "x") == BULK("1")
    with RawConn(auth_server.port) as c:
        reply = c.cmd("HELLO", "2", "AUTH", "default", PASSWORD, "SETNAME", "n1")
        assert isinstance(reply, list)
        assert c.cmd_raw("CLIENT", "GETNAME") == BULK("n1")


def test_unauthenticated_size_limits(auth_server):
    """Before AUTH, Redis refuses big multibulk counts and bulk lengths outright."""
    with RawConn(auth_server.port) as c:
        c.send(b"*20\r\n")
        assert c.read_until_closed() == ERR("ERR Protocol error: unauthenticated multibulk length")
    with RawConn(auth_server.port) as c:
        c.send(b"*1\r\n$20000\r\n")
        assert c.read_until_closed() == ERR("ERR Protocol error: unauthenticated bulk length")


def test_redis_py_auth(auth_server, client_for):
    bad = client_for(auth_server)
    with pytest.raises(redis.exceptions.AuthenticationError):
        bad.get("x")
    wrong = client_for(auth_server, password="nope")
    with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ResponseError),
                       match="WRONGPASS|invalid username-password"):
        wrong.ping()
    good = client_for(auth_server, password=PASSWORD)
    assert good.ping() is True
    assert good.set("py", "1") is True


def test_auth_without_password_configured(raw):
    assert raw.cmd_raw("AUTH", "x") == ERR(
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?")
    # The default user accepts any password when none is configured.
    assert raw.cmd_raw("AUTH", "default", "x") == OK()


def test_maxclients(make_server):
    s = make_server(maxclients=3)
    conns = [RawConn(s.port) for _ in range(3)]
    for c in conns:
        assert c.cmd_raw("PING") == b"+PONG\r\n"
    extra = RawConn(s.port)
    assert extra.read_until_closed() == ERR("ERR max number of clients reached")
    extra.close()
    # The existing clients are unaffected; closing one frees a slot.
    for c in conns:
        assert c.cmd_raw("PING") == b"+PONG\r\n"
    conns.pop().close()
    deadline = time.monotonic() + 5
    while True:
        with RawConn(s.port) as again:
            try:
                if again.cmd_raw("PING") == b"+PONG\r\n":
                    break
            except ConnectionError:
                pass
        assert time.monotonic() < deadline, "slot not freed after a client disconnected"
        time.sleep(0.1)
    for c in conns:
        c.close()


def test_idle_timeout(make_server):
    s = make_server(timeout=1)
    idle = RawConn(s.port)
    busy = RawConn(s.port)
    assert idle.cmd_raw("PING") == b"+PONG\r\n"
    start = time.monotonic()
    closed_after = None
    while time.monotonic() - start < 6:
        assert busy.cmd_raw("PING") == b"+PONG\r\n"
        if idle.is_closed(wait=0.25):
            closed_after = time.monotonic() - start
            break
    assert closed_after is not None, "idle client was not disconnected within 6 s"
    assert closed_after >= 0.9, "idle client closed too early (%.2fs)" % closed_after
    # The active client is still served.
    assert busy.cmd_raw("GET", "nosuch") == NIL
    idle.close()
    busy.close()
