"""Client-side caching (CLIENT TRACKING, docs/tracking.md) on one machine, byte-compared with
redis-server 7.0: RESP3 invalidation pushes, RESP2 through REDIRECT to a __redis__:invalidate
subscriber, BCAST with prefixes, OPTIN/OPTOUT with CLIENT CACHING, NOLOOP, FLUSHALL's null
invalidation, CLIENT GETREDIR / TRACKINGINFO, and the errors. Every read is bounded by the
connection's timeout; a client that must receive nothing is checked with a PING after it."""

import re

import pytest

from harness import RawConn, assert_same_exchanges, encode_command

ID = b"<id>"


def run_script(port, script):
    """Runs `script` on fresh connections of the server at `port`; returns the bytes read.

    Each step is (connection name, args, frames): args may be a function of the connection ids
    ({name: id}) so REDIRECT can name another connection; replies have those ids replaced by
    <id:name> so two servers compare."""
    conns, ids, out = {}, {}, []
    try:
        for name, args, frames in script:
            if name not in conns:
                conns[name] = RawConn(port, timeout=5.0)
                ids[name] = int(conns[name].cmd("CLIENT", "ID"))
            conn = conns[name]
            shown = args
            if callable(args):
                args, shown = args(ids), "<redirect>"
            if args is not None:
                conn.send(encode_command(*args))
            names_ids = args is not None and args[-1].upper() in ("GETREDIR", "TRACKINGINFO")
            for _ in range(frames):
                raw = conn.read_raw()
                for other, number in ids.items():
                    if names_ids:
                        raw = raw.replace(b":%d\r\n" % number, b":<id:%s>\r\n" % other.encode())
                raw = re.sub(rb"(\$2\r\nid\r\n:)\d+", rb"\1<id>", raw)  # HELLO's id
                out.append((name, shown, raw))
    finally:
        for conn in conns.values():
            conn.close()
    return out


def assert_same(server, redis_ref, script):
    assert_same_exchanges(run_script, server, redis_ref, script)


def test_resp3_default_mode(server, redis_ref, clean):
    assert_same(server, redis_ref, [
        ("c", ["HELLO", "3"], 1),
        ("c", ["CLIENT", "TRACKINGINFO"], 1),
        ("c", ["CLIENT", "GETREDIR"], 1),
        ("c", ["CLIENT", "TRACKING", "ON"], 1),
        ("c", ["CLIENT", "TRACKINGINFO"], 1),
        ("c", ["CLIENT", "GETREDIR"], 1),
        ("w", ["SET", "a", "1"], 1),
        ("c", ["GET", "a"], 1),
        ("c", ["MGET", "b", "c"], 1),
        ("w", ["SET", "a", "2"], 1),
        ("c", None, 1),                       # >2 invalidate [a]
        ("w", ["SET", "a", "3"], 1),          # forgotten after one invalidation
        ("w", ["MSET", "b", "1", "c", "1"], 1),
        ("c", None, 2),                       # one push per key
        ("c", ["GET", "a"], 1),               # nothing pending: the reply comes first
        ("c", ["SET", "a", "4"], 2),          # own write: the reply, then the invalidation
        ("c", ["HGET", "h", "f"], 1),
        ("w", ["HSET", "h", "f", "v"], 1),
        ("c", None, 1),
        ("c", ["GET", "z"], 1),
        ("w", ["FLUSHALL"], 1),
        ("c", None, 1),                       # >2 invalidate _
        ("c", ["CLIENT", "TRACKING", "OFF"], 1),
        ("c", ["GET", "a"], 1),
        ("w", ["SET", "a", "5"], 1),
        ("c", ["PING"], 1),                   # no invalidation after OFF
        ("c", ["CLIENT", "TRACKINGINFO"], 1),
    ])


def test_resp2_redirect(server, redis_ref, clean):
    assert_same(server, redis_ref, [
        ("s", ["SUBSCRIBE", "__redis__:invalidate"], 1),
        ("c", lambda ids: ["CLIENT", "TRACKING", "ON", "REDIRECT", str(ids["s"])], 1),
        ("c", ["CLIENT", "GETREDIR"], 1),
        ("c", ["CLIENT", "TRACKINGINFO"], 1),
        ("c", ["GET", "k"], 1),
        ("w", ["SET", "k", "v"], 1),
        ("s", None, 1),                       # message __redis__:invalidate [k]
        ("c", ["GET", "k"], 1),
        ("c", ["GET", "j"], 1),
        ("w", ["DEL", "k"], 1),
        ("s", None, 1),
        ("w", ["SET", "j", "1"], 1),
        ("s", None, 1),
        ("w", ["FLUSHALL"], 1),
        ("s", None, 1),                       # a null key list
        ("s", ["PING"], 1),
        ("c", ["PING"], 1),                   # RESP2 without pushes: nothing on c itself
    ])


def test_bcast_prefixes_and_noloop(server, redis_ref, clean):
    assert_same(server, redis_ref, [
        ("c", ["HELLO", "3"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:", "PREFIX", "obj:"], 1),
        ("c", ["CLIENT", "TRACKINGINFO"], 1),
        ("w", ["SET", "user:1", "x"], 1),
        ("c", None, 1),
        ("w", ["SET", "other", "x"], 1),
        ("w", ["SET", "obj:9", "x"], 1),
        ("c", None, 1),                       # only obj:9
        ("c", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "use"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "new:"], 1),
        ("c", ["CLIENT", "TRACKINGINFO"], 1),
        ("c", ["CLIENT", "TRACKING", "ON"], 1),
        ("c", ["CLIENT", "TRACKING", "OFF"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "BCAST", "NOLOOP"], 1),
        ("c", ["CLIENT", "TRACKINGINFO"], 1),
        ("c", ["SET", "mine", "1"], 1),       # own write: no invalidation
        ("w", ["SET", "theirs", "1"], 1),
        ("c", None, 1),
        ("c", ["PING"], 1),
    ])


def test_optin_optout(server, redis_ref, clean):
    assert_same(server, redis_ref, [
        ("c", ["HELLO", "3"], 1),
        ("c", ["CLIENT", "CACHING", "YES"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "OPTIN"], 1),
        ("c", ["CLIENT", "CACHING", "NO"], 1),
        ("c", ["GET", "a"], 1),               # not cached: not tracked
        ("c", ["CLIENT", "CACHING", "YES"], 1),
        ("c", ["CLIENT", "TRACKINGINFO"], 1),
        ("c", ["GET", "b"], 1),               # tracked
        ("c", ["GET", "a"], 1),               # CACHING YES lasted one command
        ("w", ["MSET", "a", "1", "b", "1"], 1),
        ("c", None, 1),                       # only b
        ("c", ["PING"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "OPTOUT"], 1),
        ("c", ["CLIENT", "TRACKING", "OFF"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "OPTOUT"], 1),
        ("c", ["CLIENT", "CACHING", "YES"], 1),
        ("c", ["CLIENT", "CACHING", "NO"], 1),
        ("c", ["GET", "a"], 1),               # opted out
        ("c", ["GET", "b"], 1),               # tracked
        ("w", ["MSET", "a", "2", "b", "2"], 1),
        ("c", None, 1),                       # only b
        ("c", ["PING"], 1),
    ])


def test_errors(server, redis_ref, clean):
    assert_same(server, redis_ref, [
        ("c", ["CLIENT", "TRACKING", "ON", "PREFIX", "a"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "ab"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "REDIRECT", "999999"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "REDIRECT", "x"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "FOO"], 1),
        ("c", ["CLIENT", "TRACKING", "MAYBE"], 1),
        ("c", ["CLIENT", "TRACKING"], 1),
        ("c", ["CLIENT", "CACHING", "YES"], 1),
        ("c", ["CLIENT", "TRACKING", "ON"], 1),
        ("c", ["CLIENT", "CACHING", "YES"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "BCAST"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "OPTIN"], 1),
        ("c", ["CLIENT", "CACHING", "NO"], 1),
        ("c", ["CLIENT", "CACHING", "MAYBE"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "OPTOUT"], 1),
        ("c", ["CLIENT", "TRACKING", "OFF"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab"], 1),
        ("c", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a"], 1),
        ("c", ["RESET"], 1),
        ("c", ["CLIENT", "TRACKINGINFO"], 1),
    ])


def test_table_max_keys_evicts_with_an_invalidation(server, r):
    c = RawConn(server.port, timeout=5.0)
    try:
        assert c.cmd("CONFIG", "SET", "tracking-table-max-keys", "2") == b"OK"
        c.cmd("HELLO", "3")
        c.cmd("CLIENT", "TRACKING", "ON")
        c.cmd("GET", "k1")
        c.cmd("GET", "k2")
        c.send(encode_command("GET", "k3"))
        frames = [c.read(), c.read()]
        # Redis evicts a random key; Cairn the oldest (k1). Either way one key is invalidated.
        pushes = [f for f in frames if isinstance(f, list) and f and f[0] == b"invalidate"]
        assert len(pushes) == 1 and pushes[0][1][0] in (b"k1", b"k2", b"k3")
    finally:
        c.cmd("CONFIG", "SET", "tracking-table-max-keys", "1000000")
        c.close()
