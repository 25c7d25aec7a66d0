"""Streams on one machine: the same command sequences sent to redis-server 7.0 and to Cairn,
replies compared byte for byte (RESP2 and RESP3), IDs made deterministic by explicit IDs where
`*` would differ. Replies that carry times (idle, seen-time, delivery times) or redis-server's
radix-tree internals are compared after those values are blanked (`norm`). Blocking reads
(XREAD / XREADGROUP BLOCK) are run against both servers and their outcomes compared."""

import re
import threading
import time

import pytest

from harness import RawConn, encode_command, parse_frame  # noqa: F401

# Keys whose value depends on time or on redis-server's internal node layout.
BLANKED = {b"idle", b"seen-time", b"radix-tree-keys", b"radix-tree-nodes"}


def blank(value):
    """Replaces times (ints that look like Unix ms) and BLANKED map values by markers."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 10 ** 12:
        return "T"
    if isinstance(value, bytes) and re.fullmatch(rb"\d{13,}-\d+", value):
        return "ID"  # an ID a `*` made from each server's clock
    if isinstance(value, dict):
        return {k: ("X" if k in BLANKED else blank(v)) for k, v in value.items()}
    if isinstance(value, list):
        out = []
        skip = False
        for i, item in enumerate(value):
            if skip:
                out.append("X")
                skip = False
                continue
            out.append(blank(item))
            if isinstance(item, bytes) and item in BLANKED and i + 1 < len(value):
                skip = True
        return out
    return value


def blank_xpending(value):
    """XPENDING's extended form: each row's idle time (the third element) is blanked."""
    if isinstance(value, list):
        return [[row[0], row[1], "X", row[3]] if isinstance(row, list) and len(row) == 4
                else row for row in value]
    return value


def S(*args, norm=None):
    return (args, norm)


def run_script(port, script, protocol=2):
    out = []
    with RawConn(port) as c:
        if protocol == 3:
            c.cmd("HELLO", "3")
        for args, norm in script:
            c.send(encode_command(*args))
            raw, value = c.read_frame()
            if norm is None:
                out.append((args, raw))
            else:
                out.append((args, norm(value)))
    return out


def compare(server, redis_ref, script, protocol=2):
    for conn_port in (server.port, redis_ref.port):
        with RawConn(conn_port) as c:
            c.cmd("FLUSHALL")
    ours = run_script(server.port, script, protocol)
    theirs = run_script(redis_ref.port, script, protocol)
    for mine, expected in zip(ours, theirs):
        assert mine == expected
    assert len(ours) == len(theirs)


BASICS = [
    S("XADD", "s", "1-1", "a", "1"),
    S("XADD", "s", "1-2", "b", "2", "c", "3"),
    S("XADD", "s", "1-*", "d", "4"),
    S("XADD", "s", "2-*", "e", "5"),
    S("XADD", "s", "5", "f", "6"),
    S("XADD", "s", "5-0", "f", "6"),
    S("XADD", "s", "4-9", "f", "6"),
    S("XADD", "s", "0-0", "f", "6"),
    S("XADD", "t", "0-0", "f", "6"),
    S("XADD", "s", "0-*", "f", "6"),
    S("XADD", "s", "abc", "f", "6"),
    S("XADD", "s", "1-2-3", "f", "6"),
    S("XADD", "s", "-1", "f", "6"),
    S("XADD", "s", "6-1", "f"),
    S("XADD", "s", "6-1", "f", "v", "g"),
    S("XADD", "s", "MAXLEN", "5"),
    S("XADD", "s", "6-1"),
    S("XLEN", "s"),
    S("XLEN", "nosuch"),
    S("EXISTS", "t"),
    S("TYPE", "s"),
    S("OBJECT", "ENCODING", "s"),
    S("XRANGE", "s", "-", "+"),
    S("XRANGE", "s", "1", "1"),
    S("XRANGE", "s", "1-2", "+"),
    S("XRANGE", "s", "(1-2", "+"),
    S("XRANGE", "s", "-", "(2-0"),
    S("XRANGE", "s", "(1", "(5"),
    S("XRANGE", "s", "-", "+", "COUNT", "2"),
    S("XRANGE", "s", "-", "+", "COUNT", "0"),
    S("XRANGE", "s", "-", "+", "COUNT", "-3"),
    S("XRANGE", "s", "-", "+", "COUNT"),
    S("XRANGE", "s", "-", "+", "COUNT", "x"),
    S("XRANGE", "s", "-", "+", "LIMIT", "1"),
    S("XRANGE", "s", "5", "1"),
    S("XRANGE", "s", "(-", "+"),
    S("XRANGE", "s", "(+", "+"),
    S("XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"),
    S("XRANGE", "s", "-", "(0-0"),
    S("XRANGE", "s", "x", "+"),
    S("XRANGE", "nosuch", "-", "+"),
    S("XRANGE", "nosuch", "-", "+", "COUNT", "0"),
    S("XREVRANGE", "s", "+", "-"),
    S("XREVRANGE", "s", "+", "-", "COUNT", "2"),
    S("XREVRANGE", "s", "(5", "(1-1"),
    S("XREVRANGE", "s", "2", "1-2"),
    S("XREVRANGE", "s", "-", "+"),
    S("XDEL", "s", "1-2", "9-9", "1-2"),
    S("XDEL", "s", "bad"),
    S("XDEL", "nosuch", "1-1"),
    S("XLEN", "s"),
    S("XRANGE", "s", "-", "+"),
    S("XADD", "s", "NOMKSTREAM", "7-1", "x", "y"),
    S("XADD", "nosuch", "NOMKSTREAM", "*", "x", "y"),
    S("EXISTS", "nosuch"),
    S("XDEL", "s", "1-1", "1-3", "2-1", "5-0", "5-1", "7-1"),
    S("XLEN", "s"),
    S("EXISTS", "s"),
    S("XRANGE", "s", "-", "+"),
    S("XADD", "s", "7-1", "x", "y"),
    S("XADD", "s", "7-2", "x", "y"),
    S("SET", "str", "v"),
    S("XADD", "str", "*", "f", "v"),
    S("XLEN", "str"),
    S("XRANGE", "str", "-", "+"),
    S("XDEL", "str", "1-1"),
    S("GET", "s"),
    S("LPUSH", "s", "x"),
    S("XADD", "big", "18446744073709551615-18446744073709551615", "f", "v"),
    S("XADD", "big", "*", "f", "v"),
    S("XADD", "big2", "18446744073709551615-18446744073709551614", "f", "v"),
    S("XADD", "big2", "18446744073709551615-*", "f", "v"),
    S("XADD", "big2", "18446744073709551615-*", "f", "v"),
]

TRIMMING = [
    *[S("XADD", "s", "%d-1" % i, "f", "v%d" % i) for i in range(1, 11)],
    S("XADD", "s", "MAXLEN", "5", "11-1", "f", "v"),
    S("XRANGE", "s", "-", "+"),
    S("XADD", "s", "MAXLEN", "=", "3", "12-1", "f", "v"),
    S("XLEN", "s"),
    S("XADD", "s", "MAXLEN", "~", "1", "13-1", "f", "v"),
    S("XLEN", "s"),
    S("XADD", "s", "MAXLEN", "~", "0", "14-1", "f", "v"),
    S("XLEN", "s"),
    S("XADD", "s", "MAXLEN", "-1", "15-1", "f", "v"),
    S("XADD", "s", "MAXLEN", "x", "15-1", "f", "v"),
    S("XADD", "s", "MAXLEN", "1", "MINID", "1", "15-1", "f", "v"),
    S("XADD", "s", "LIMIT", "10", "15-1", "f", "v"),
    S("XADD", "s", "MAXLEN", "1", "LIMIT", "10", "15-1", "f", "v"),
    S("XADD", "s", "MAXLEN", "~", "1", "LIMIT", "-1", "15-1", "f", "v"),
    S("XADD", "s", "MINID", "bad", "15-1", "f", "v"),
    S("XADD", "s", "MINID", "-", "15-1", "f", "v"),
    S("XADD", "s", "MAXLEN", "~", "1", "LIMIT", "10", "15-1", "f", "v"),
    S("XLEN", "s"),
    *[S("XADD", "m", "%d-1" % i, "f", "v") for i in range(1, 9)],
    S("XADD", "m", "MINID", "4", "9-1", "f", "v"),
    S("XRANGE", "m", "-", "+"),
    S("XADD", "m", "MINID", "=", "6-1", "10-1", "f", "v"),
    S("XRANGE", "m", "-", "+"),
    S("XADD", "m", "MINID", "~", "9", "11-1", "f", "v"),
    S("XLEN", "m"),
    S("XTRIM", "m", "MINID", "9"),
    S("XRANGE", "m", "-", "+"),
    S("XTRIM", "m", "MAXLEN", "1"),
    S("XTRIM", "m", "MAXLEN", "0"),
    S("XLEN", "m"),
    S("EXISTS", "m"),
    S("XTRIM", "m"),
    S("XTRIM", "m", "MAXLEN"),
    S("XTRIM", "m", "FOO", "1"),
    S("XTRIM", "m", "MAXLEN", "1", "LIMIT", "5"),
    S("XTRIM", "m", "MAXLEN", "~", "1", "LIMIT", "5"),
    S("XTRIM", "nosuch", "MAXLEN", "1"),
    S("XTRIM", "m", "MAXLEN", "1", "MAXLEN", "2"),
    # A stream of 250 entries: approximate trimming removes whole nodes of 100 only.
    *[S("XADD", "n", "%d-1" % i, "f", "v") for i in range(1, 251)],
    S("XTRIM", "n", "MAXLEN", "~", "180"),
    S("XLEN", "n"),
    S("XTRIM", "n", "MAXLEN", "~", "140"),
    S("XLEN", "n"),
    S("XTRIM", "n", "MAXLEN", "~", "10", "LIMIT", "50"),
    S("XLEN", "n"),
    S("XTRIM", "n", "MINID", "~", "230"),
    S("XLEN", "n"),
    S("XTRIM", "n", "MAXLEN", "149"),
    S("XLEN", "n"),
    S("XRANGE", "n", "-", "+", "COUNT", "1"),
    S("XINFO", "STREAM", "n", norm=blank),
]

INFO_AND_SETID = [
    S("XINFO", "STREAM", "nosuch"),
    S("XADD", "s", "1-1", "a", "1"),
    S("XADD", "s", "2-1", "b", "2"),
    S("XADD", "s", "3-1", "c", "3"),
    S("XINFO", "STREAM", "s", norm=blank),
    S("XDEL", "s", "2-1"),
    S("XINFO", "STREAM", "s", norm=blank),
    S("XDEL", "s", "1-1"),
    S("XINFO", "STREAM", "s", norm=blank),
    S("XINFO", "STREAM", "s", "FULL", norm=blank),
    S("XINFO", "STREAM", "s", "FULL", "COUNT", "0", norm=blank),
    S("XINFO", "STREAM", "s", "FULL", "COUNT"),
    S("XINFO", "STREAM", "s", "FULL", "COUNT", "x"),
    S("XINFO", "STREAM", "s", "PARTIAL"),
    S("XINFO", "STREAM", "s", "FULL", "LIMIT", "1"),
    S("XINFO", "GROUPS", "s"),
    S("XINFO", "GROUPS", "nosuch"),
    S("XINFO", "CONSUMERS", "s", "g"),
    S("XINFO", "FOO", "s"),
    S("XINFO", "GROUPS"),
    S("XSETID", "s", "2-0"),
    S("XSETID", "s", "3-1"),
    S("XSETID", "s", "10-0"),
    S("XINFO", "STREAM", "s", norm=blank),
    S("XADD", "s", "*", "x", "y", norm=lambda v: v[:3] if isinstance(v, bytes) else v),
    S("XSETID", "nosuch", "1-1"),
    S("XSETID", "s", "bad"),
    S("XSETID", "s", "99-0", "ENTRIESADDED", "-1"),
    S("XSETID", "s", "99-0", "ENTRIESADDED", "1"),
    S("XSETID", "s", "99-0", "MAXDELETEDID", "100-0"),
    S("XSETID", "s", "99-0", "ENTRIESADDED", "50", "MAXDELETEDID", "90-0"),
    S("XSETID", "s", "99-0", "FOO", "1"),
    S("XINFO", "STREAM", "s", norm=blank),
    S("XSETID", "s", "80-0"),
    S("XADD", "e", "5-5", "f", "v"),
    S("XDEL", "e", "5-5"),
    S("XSETID", "e", "1-0"),
    S("XSETID", "e", "5-5"),
    S("XINFO", "STREAM", "e", norm=blank),
    S("XINFO", "HELP", norm=lambda v: v[0] if isinstance(v, list) else v),
]

GROUPS = [
    S("XGROUP", "CREATE", "s", "g", "$"),
    S("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
    S("XGROUP", "CREATE", "s", "g", "$"),
    S("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
    S("TYPE", "s"),
    S("XLEN", "s"),
    S("XINFO", "GROUPS", "s"),
    S("XADD", "s", "1-1", "a", "1"),
    S("XADD", "s", "2-1", "b", "2"),
    S("XADD", "s", "3-1", "c", "3"),
    S("XADD", "s", "4-1", "d", "4"),
    S("XGROUP", "CREATE", "s", "h", "0", "ENTRIESREAD", "-5"),
    S("XGROUP", "CREATE", "s", "h", "0", "ENTRIESREAD", "x"),
    S("XGROUP", "CREATE", "s", "h", "0", "FOO"),
    S("XGROUP", "CREATE", "s", "h", "bad"),
    S("XGROUP", "CREATE", "s", "h", "0", "MKSTREAM", "ENTRIESREAD", "0", "X"),
    S("XGROUP", "CREATE", "s", "h", "0"),
    S("XGROUP", "CREATE", "s", "late", "2-1", "ENTRIESREAD", "2"),
    S("XINFO", "GROUPS", "s"),
    S("XREADGROUP", "GROUP", "late", "x", "STREAMS", "s", "s", ">", ">"),
    S("XREADGROUP", "GROUP", "late", "x", "STREAMS", "s", "s", "0", "3-1"),
    S("XINFO", "GROUPS", "s"),
    S("XREADGROUP", "GROUP", "h", "alice", "COUNT", "2", "STREAMS", "s", ">"),
    S("XREADGROUP", "GROUP", "h", "bob", "COUNT", "1", "STREAMS", "s", ">"),
    S("XINFO", "GROUPS", "s"),
    S("XINFO", "CONSUMERS", "s", "h", norm=blank),
    S("XPENDING", "s", "h"),
    S("XPENDING", "s", "h", "-", "+", "10", norm=blank_xpending),
    S("XPENDING", "s", "h", "-", "+", "10", "bob", norm=blank_xpending),
    S("XPENDING", "s", "h", "-", "+", "10", "nobody"),
    S("XPENDING", "s", "h", "(1-1", "+", "1", norm=blank_xpending),
    S("XPENDING", "s", "h", "-", "+", "0"),
    S("XPENDING", "s", "h", "-", "+", "-1"),
    S("XPENDING", "s", "h", "-", "+"),
    S("XPENDING", "s", "h", "-", "+", "x"),
    S("XPENDING", "s", "h", "IDLE", "x", "-", "+", "10"),
    S("XPENDING", "s", "h", "IDLE", "10", "-", "+"),
    S("XPENDING", "s", "nogroup"),
    S("XPENDING", "nosuch", "h"),
    S("XPENDING", "s", "h", "x", "+", "10"),
    S("XREADGROUP", "GROUP", "h", "alice", "STREAMS", "s", "0"),
    S("XREADGROUP", "GROUP", "h", "alice", "STREAMS", "s", "1-1"),
    S("XREADGROUP", "GROUP", "h", "carol", "STREAMS", "s", "0"),
    S("XPENDING", "s", "h", "-", "+", "10", norm=blank_xpending),
    S("XACK", "s", "h", "1-1", "1-1", "9-9"),
    S("XACK", "s", "h", "bad"),
    S("XACK", "s", "nogroup", "1-1"),
    S("XACK", "nosuch", "h", "1-1"),
    S("XPENDING", "s", "h"),
    S("XDEL", "s", "2-1"),
    S("XREADGROUP", "GROUP", "h", "alice", "STREAMS", "s", "0"),
    S("XINFO", "GROUPS", "s"),
    S("XREADGROUP", "GROUP", "h", "alice", "NOACK", "STREAMS", "s", ">"),
    S("XPENDING", "s", "h"),
    S("XREADGROUP", "GROUP", "h", "alice", "STREAMS", "s", ">"),
    S("XREADGROUP", "GROUP", "nog", "alice", "STREAMS", "s", ">"),
    S("XREADGROUP", "GROUP", "h", "alice", "STREAMS", "nosuch", ">"),
    S("XREADGROUP", "GROUP", "h", "alice", "STREAMS", "s", "$"),
    S("XREADGROUP", "GROUP", "h", "alice", "STREAMS", "s"),
    S("XREADGROUP", "STREAMS", "s", ">"),
    S("XREADGROUP", "GROUP", "h", "alice", "COUNT", "x", "STREAMS", "s", ">"),
    S("XREADGROUP", "GROUP", "h", "alice", "STREAMS", "s", "bad"),
    S("XREADGROUP", "GROUP", "h", "alice", "FOO", "STREAMS", "s", ">"),
    S("XREADGROUP", "GROUP", "h", "alice", "BLOCK", "-1", "STREAMS", "s", ">"),
    S("XREADGROUP", "GROUP", "h", "alice", "BLOCK", "x", "STREAMS", "s", ">"),
    S("XGROUP", "SETID", "s", "h", "0"),
    S("XINFO", "GROUPS", "s"),
    S("XREADGROUP", "GROUP", "h", "bob", "STREAMS", "s", ">"),
    S("XPENDING", "s", "h"),
    S("XGROUP", "SETID", "s", "h", "$", "ENTRIESREAD", "3"),
    S("XINFO", "GROUPS", "s"),
    S("XGROUP", "SETID", "s", "nog", "0"),
    S("XGROUP", "SETID", "nosuch", "h", "0"),
    S("XGROUP", "SETID", "s", "h", "bad"),
    S("XGROUP", "SETID", "s", "h", "0", "MKSTREAM"),
    S("XGROUP", "CREATECONSUMER", "s", "h", "dave"),
    S("XGROUP", "CREATECONSUMER", "s", "h", "dave"),
    S("XGROUP", "CREATECONSUMER", "s", "nog", "dave"),
    S("XINFO", "CONSUMERS", "s", "h", norm=blank),
    S("XGROUP", "DELCONSUMER", "s", "h", "bob"),
    S("XGROUP", "DELCONSUMER", "s", "h", "nobody"),
    S("XGROUP", "DELCONSUMER", "s", "nog", "bob"),
    S("XPENDING", "s", "h"),
    S("XINFO", "CONSUMERS", "s", "h", norm=blank),
    S("XINFO", "CONSUMERS", "s", "nog"),
    S("XINFO", "STREAM", "s", "FULL", norm=blank),
    S("XGROUP", "DESTROY", "s", "h"),
    S("XGROUP", "DESTROY", "s", "h"),
    S("XGROUP", "DESTROY", "nosuch", "h"),
    S("XINFO", "GROUPS", "s"),
    S("XGROUP", "FOO", "s", "h"),
    S("XGROUP", "CREATE", "s"),
    S("XGROUP", "DESTROY", "s", "h", "extra"),
    S("XGROUP", "HELP", norm=lambda v: v[0] if isinstance(v, list) else v),
    S("SET", "str", "x"),
    S("XGROUP", "CREATE", "str", "g", "$"),
    S("XREADGROUP", "GROUP", "g", "c", "STREAMS", "str", ">"),
    S("XACK", "str", "g", "1-1"),
    S("XPENDING", "str", "g"),
    S("XINFO", "STREAM", "str"),
    S("DEL", "s"),
    S("XINFO", "GROUPS", "s"),
]

CLAIMING = [
    *[S("XADD", "s", "%d-1" % i, "f", "v%d" % i) for i in range(1, 7)],
    S("XGROUP", "CREATE", "s", "g", "0"),
    S("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"),
    S("XCLAIM", "s", "g", "bob", "3600000", "1-1"),
    S("XCLAIM", "s", "g", "bob", "0", "1-1", "2-1"),
    S("XPENDING", "s", "g", "-", "+", "10", norm=blank_xpending),
    S("XCLAIM", "s", "g", "bob", "0", "3-1", "JUSTID"),
    S("XCLAIM", "s", "g", "carol", "0", "4-1", "RETRYCOUNT", "7", "IDLE", "500000"),
    S("XPENDING", "s", "g", "IDLE", "400000", "-", "+", "10", norm=blank_xpending),
    S("XPENDING", "s", "g", "IDLE", "600000", "-", "+", "10"),
    S("XPENDING", "s", "g", "IDLE", "400000", "-", "+", "10", "carol", norm=blank_xpending),
    S("XCLAIM", "s", "g", "carol", "400000", "4-1", "5-1", "JUSTID"),
    S("XCLAIM", "s", "g", "dave", "0", "5-1", "TIME", "1000", "JUSTID"),
    S("XPENDING", "s", "g", "IDLE", "400000", "-", "+", "10", norm=blank_xpending),
    S("XCLAIM", "s", "g", "dave", "0", "9-1", "JUSTID"),
    S("XCLAIM", "s", "g", "dave", "0", "9-1", "FORCE", "JUSTID"),
    S("XCLAIM", "s", "g", "dave", "0", "1-1", "LASTID", "5-1"),
    S("XCLAIM", "s", "g", "dave", "0", "1-1", "FOO"),
    S("XCLAIM", "s", "g", "dave", "x", "1-1"),
    S("XCLAIM", "s", "g", "dave", "0", "1-1", "IDLE", "x"),
    S("XCLAIM", "s", "g", "dave", "0", "1-1", "TIME", "x"),
    S("XCLAIM", "s", "g", "dave", "0", "1-1", "RETRYCOUNT", "x"),
    S("XCLAIM", "s", "g", "dave", "0", "1-1", "LASTID", "x"),
    S("XCLAIM", "s", "nog", "dave", "0", "1-1"),
    S("XCLAIM", "nosuch", "g", "dave", "0", "1-1"),
    S("XPENDING", "s", "g"),
    S("XDEL", "s", "2-1"),
    S("XCLAIM", "s", "g", "alice", "0", "2-1", "3-1"),
    S("XPENDING", "s", "g"),
    S("XADD", "s", "7-1", "f", "v7"),
    S("XADD", "s", "8-1", "f", "v8"),
    S("XCLAIM", "s", "g", "erin", "0", "7-1", "FORCE"),
    S("XPENDING", "s", "g", "-", "+", "10", norm=blank_xpending),
    S("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"),
    S("XDEL", "s", "4-1"),
    S("XAUTOCLAIM", "s", "g", "zed", "0", "0", "COUNT", "2"),
    S("XAUTOCLAIM", "s", "g", "zed", "0", "4-1", "COUNT", "1", "JUSTID"),
    S("XAUTOCLAIM", "s", "g", "zed", "0", "5-1", "COUNT", "2", "JUSTID"),
    S("XAUTOCLAIM", "s", "g", "zed", "3600000", "0"),
    S("XAUTOCLAIM", "s", "g", "zed", "0", "(5-1"),
    S("XAUTOCLAIM", "s", "g", "zed", "0", "0", "COUNT", "0"),
    S("XAUTOCLAIM", "s", "g", "zed", "0", "0", "COUNT", "x"),
    S("XAUTOCLAIM", "s", "g", "zed", "0", "0", "FOO"),
    S("XAUTOCLAIM", "s", "g", "zed", "x", "0"),
    S("XAUTOCLAIM", "s", "g", "zed", "0", "bad"),
    S("XAUTOCLAIM", "s", "nog", "zed", "0", "0"),
    S("XAUTOCLAIM", "nosuch", "g", "zed", "0", "0"),
    S("XPENDING", "s", "g"),
    S("XPENDING", "s", "g", "-", "+", "10", norm=blank_xpending),
    S("XINFO", "CONSUMERS", "s", "g", norm=blank),
    S("XINFO", "STREAM", "s", "FULL", "COUNT", "2", norm=blank),
]

READS = [
    S("XREAD", "STREAMS", "s", "0"),
    S("XREAD", "BLOCK", "0"),
    S("XREAD", "STREAMS", "s"),
    S("XREAD", "STREAMS", "s", "a", "0"),
    S("XREAD", "COUNT", "x", "STREAMS", "s", "0"),
    S("XREAD", "BLOCK", "-1", "STREAMS", "s", "0"),
    S("XREAD", "BLOCK", "1.5", "STREAMS", "s", "0"),
    S("XREAD", "GROUP", "g", "c", "STREAMS", "s", "0"),
    S("XREAD", "NOACK", "STREAMS", "s", "0"),
    S("XREAD", "STREAMS", "s", ">"),
    S("XREAD", "STREAMS", "s", "bad"),
    S("XREAD", "FOO", "STREAMS", "s", "0"),
    S("XADD", "s", "1-1", "a", "1"),
    S("XADD", "s", "2-1", "b", "2"),
    S("XADD", "t", "3-1", "c", "3"),
    S("XREAD", "STREAMS", "s", "t", "0", "0"),
    S("XREAD", "COUNT", "1", "STREAMS", "s", "t", "0", "0"),
    S("XREAD", "STREAMS", "s", "t", "1-1", "$"),
    S("XREAD", "STREAMS", "s", "t", "$", "$"),
    S("XREAD", "STREAMS", "nosuch", "s", "0", "1"),
    S("XREAD", "COUNT", "0", "STREAMS", "s", "0"),
    S("XREAD", "COUNT", "-5", "STREAMS", "s", "0"),
    S("XREAD", "BLOCK", "50", "STREAMS", "s", "$"),
    S("XREAD", "BLOCK", "50", "STREAMS", "s", "0"),
    S("XREAD", "BLOCK", "50", "STREAMS", "nosuch", "$"),
    S("SET", "str", "x"),
    S("XREAD", "STREAMS", "s", "str", "0", "0"),
    S("XREAD", "STREAMS", "str", "0"),
    S("XGROUP", "CREATE", "s", "g", "0"),
    S("XREADGROUP", "GROUP", "g", "c", "BLOCK", "50", "STREAMS", "s", ">"),
    S("XREADGROUP", "GROUP", "g", "c", "BLOCK", "50", "STREAMS", "s", ">"),
    S("XREADGROUP", "GROUP", "g", "c", "BLOCK", "50", "STREAMS", "s", "0"),
    S("COMMAND", "GETKEYS", "XREAD", "COUNT", "1", "STREAMS", "a", "b", "0", "0"),
    S("COMMAND", "GETKEYS", "XREAD", "STREAMS", "streams", "0"),
    S("COMMAND", "GETKEYS", "XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", ">"),
    S("COMMAND", "GETKEYS", "XREADGROUP", "GROUP", "streams", "c", "STREAMS", "a", ">"),
    S("MULTI"),
    S("XREAD", "BLOCK", "0", "STREAMS", "s", "$"),
    S("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"),
    S("EXEC"),
]

KEYS = [
    S("XADD", "s", "1-1", "a", "1"),
    S("XGROUP", "CREATE", "s", "g", "0"),
    S("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"),
    S("TYPE", "s"),
    S("EXPIRE", "s", "100"),
    S("TTL", "s"),
    S("PERSIST", "s"),
    S("COPY", "s", "s2"),
    S("XRANGE", "s2", "-", "+"),
    S("XPENDING", "s2", "g"),
    S("XINFO", "GROUPS", "s2"),
    S("RENAME", "s", "s3"),
    S("EXISTS", "s"),
    S("XLEN", "s3"),
    S("XPENDING", "s3", "g"),
    S("SCAN", "0", "TYPE", "stream", norm=lambda v: sorted(v[1]) if isinstance(v, list) else v),
    S("SCAN", "0", "TYPE", "string", norm=lambda v: sorted(v[1]) if isinstance(v, list) else v),
    S("DEL", "s2", "s3"),
    S("EXISTS", "s2", "s3"),
    S("XADD", "s3", "1-1", "a", "1"),
    S("XINFO", "GROUPS", "s3"),
]


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("name,script", [
    ("basics", BASICS), ("trimming", TRIMMING), ("info_and_setid", INFO_AND_SETID),
    ("groups", GROUPS), ("claiming", CLAIMING), ("reads", READS), ("keys", KEYS),
])
def test_same_replies_as_redis(server, redis_ref, r, name, script, protocol):
    compare(server, redis_ref, script, protocol)


# ---- Blocking reads that really wait ----

def _blocked(port, *args, protocol=2):
    conn = RawConn(port, timeout=10.0)
    if protocol == 3:
        conn.cmd("HELLO", "3")
    conn.send(encode_command(*args))
    return conn


def _blocking_flow(port, protocol):
    """XREAD $ and XREADGROUP > woken by an XADD from another client; returns the replies."""
    with RawConn(port) as c:
        c.cmd("FLUSHALL")
        c.cmd("XADD", "s", "1-1", "old", "x")
        c.cmd("XGROUP", "CREATE", "s", "g", "$")
    reader = _blocked(port, "XREAD", "BLOCK", "5000", "STREAMS", "s", "other", "$", "$",
                      protocol=protocol)
    group_reader = _blocked(port, "XREADGROUP", "GROUP", "g", "c1", "BLOCK", "5000", "STREAMS",
                            "s", ">", protocol=protocol)
    second = _blocked(port, "XREADGROUP", "GROUP", "g", "c2", "BLOCK", "300", "STREAMS",
                      "s", ">", protocol=protocol)
    time.sleep(0.3)
    with RawConn(port) as c:
        c.cmd("XADD", "s", "5-1", "new", "y")
    out = [reader.read_raw(), group_reader.read_raw(), second.read_raw()]
    for conn in (reader, group_reader, second):
        conn.close()
    with RawConn(port) as c:
        out.append(blank_xpending(c.cmd("XPENDING", "s", "g", "-", "+", "10", "c1")))
        # A forever XREAD woken by the first add of a stream that does not exist yet.
        waiter = _blocked(port, "XREAD", "BLOCK", "0", "STREAMS", "fresh", "$")
        time.sleep(0.2)
        c.cmd("XADD", "fresh", "9-9", "k", "v")
        out.append(waiter.read_raw())
        waiter.close()
    return out


@pytest.mark.parametrize("protocol", [2, 3])
def test_blocking_reads_wake_like_redis(server, redis_ref, r, protocol):
    assert _blocking_flow(server.port, protocol) == _blocking_flow(redis_ref.port, protocol)


def test_block_timeout_waits_then_answers_null(server, r):
    with RawConn(server.port) as c:
        c.cmd("XADD", "s", "1-1", "f", "v")
        started = time.monotonic()
        assert c.cmd_raw("XREAD", "BLOCK", "200", "STREAMS", "s", "$") == b"*-1\r\n"
        assert 0.18 <= time.monotonic() - started < 2.0
        c.cmd("XGROUP", "CREATE", "s", "g", "$")
        c.cmd("HELLO", "3")
        started = time.monotonic()
        assert c.cmd_raw("XREADGROUP", "GROUP", "g", "c", "BLOCK", "150", "STREAMS", "s",
                         ">") == b"_\r\n"
        assert time.monotonic() - started >= 0.13


def test_many_group_readers_each_get_distinct_entries(server, r):
    r.xgroup_create("q", "g", id="$", mkstream=True)
    readers = [_blocked(server.port, "XREADGROUP", "GROUP", "g", "c%d" % i, "COUNT", "1",
                        "BLOCK", "5000", "STREAMS", "q", ">") for i in range(5)]
    time.sleep(0.3)
    for i in range(5):
        r.xadd("q", {"n": str(i)}, id="%d-1" % (i + 1))
    got = set()
    for conn in readers:
        value = conn.read()
        assert value is not None
        got.add(value[0][1][0][0])
        conn.close()
    assert got == {b"1-1", b"2-1", b"3-1", b"4-1", b"5-1"}
    assert r.xpending("q", "g")["pending"] == 5


def test_auto_ids_increase_under_concurrent_producers(server, r):
    ids = []
    lock = threading.Lock()

    def produce():
        with RawConn(server.port) as c:
            for _ in range(200):
                v = c.cmd("XADD", "s", "*", "f", "v")
                with lock:
                    ids.append(v)

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = [entry[0] for entry in r.xrange("s")]
    assert len(stored) == 800 == len(set(ids))
    assert sorted(stored, key=lambda x: tuple(int(p) for p in x.split(b"-"))) == stored
    assert set(stored) == set(ids)


def _tracking_flow(port):
    """A RESP3 client that tracks keys reads a stream with XREAD; an XADD by another client
    invalidates it, as for any key read."""
    with RawConn(port) as c, RawConn(port) as other:
        c.cmd("FLUSHALL")
        c.cmd("HELLO", "3")
        out = [c.cmd_raw("CLIENT", "TRACKING", "ON")]
        other.cmd("XADD", "s", "1-1", "f", "v")
        out.append(c.cmd_raw("XREAD", "STREAMS", "s", "0"))
        other.cmd("XADD", "s", "2-1", "f", "v")
        out.append(c.read_raw())  # the invalidation push
        return out


def test_xread_keys_are_tracked_like_redis(server, redis_ref, r):
    assert _tracking_flow(server.port) == _tracking_flow(redis_ref.port)
