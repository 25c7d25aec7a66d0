"""Fixtures: real server processes on free ports with fresh data directories.

CAIRN_TARGET=redis runs every test against redis-server instead of cairn (to validate the tests
against the reference); CAIRN_BIN overrides the cairn binary (default <repo>/build/cairn).
"""

import pytest
import redis

from harness import RawConn, ServerProcess, reference_server, target_server


def _client(port, **kwargs):
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=15, **kwargs)


@pytest.fixture(scope="module")
def server():
    """The server under test, shared by one test module (each test starts from an empty db)."""
    s = target_server()
    s.start()
    yield s
    s.cleanup()


@pytest.fixture
def r(server):
    """A redis-py client on the shared server, with the keyspace flushed first."""
    if not server.running():
        server.start()
    c = _client(server.port)
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def raw(server, r):
    """A raw-socket connection to the shared server (keyspace already flushed by `r`)."""
    conn = RawConn(server.port)
    yield conn
    conn.close()


@pytest.fixture
def make_server():
    """Factory for servers with their own options; every one is stopped at teardown.

    make_server(requirepass="pw", maxclients=3, durability="none", ...) returns a started
    ServerProcess of the kind under test. kind="redis" forces a reference redis-server.
    """
    started = []

    def factory(kind=None, **options):
        if kind is None:
            s = target_server(**options)
        else:
            s = ServerProcess(kind, **options)
        started.append(s)
        return s.start()

    yield factory
    for s in started:
        s.cleanup()


@pytest.fixture(scope="module")
def redis_ref():
    """A reference redis-server (--save '' --appendonly no) on a free port."""
    s = reference_server()
    s.start()
    yield s
    s.cleanup()


@pytest.fixture
def clean(r, redis_ref):
    """Both the server under test (through `r`) and the reference start from an empty db."""
    c = RawConn(redis_ref.port)
    c.cmd("FLUSHALL")
    c.close()
    yield


@pytest.fixture
def client_for():
    """client_for(server, **kw) -> redis-py client, closed at teardown."""
    clients = []

    def factory(srv, **kwargs):
        c = _client(srv.port, **kwargs)
        clients.append(c)
        return c

    yield factory
    for c in clients:
        c.close()
