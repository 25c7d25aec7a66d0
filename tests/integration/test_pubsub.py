"""Pub/sub and keyspace notifications on one machine, byte-compared with redis-server 7.0
(docs/pubsub.md): RESP2 and RESP3 confirmations and messages, patterns, unsubscribe-all replies,
the errors of RESP2's subscribed mode, PUBSUB introspection, RESET, keyspace events of a
scripted command sequence, and a subscriber that reads nothing disconnected at
client-output-buffer-limit. Every read is bounded by the connection's timeout."""

import socket
import time

import pytest

from harness import RawConn, assert_same_exchanges, encode_command


def run_script(port, script):
    """Runs `script` on fresh connections of the server at `port`; returns the exact bytes read.

    Each step is (connection name, command args or None, frames to read): the command is sent on
    that connection (opened on first use) and that many reply frames are read from it."""
    conns = {}
    out = []
    try:
        for name, args, frames in script:
            if name not in conns:
                conns[name] = RawConn(port, timeout=5.0)
            conn = conns[name]
            if args is not None:
                conn.send(encode_command(*args))
            for _ in range(frames):
                out.append((name, args, conn.read_raw()))
    finally:
        for conn in conns.values():
            conn.close()
    return out


def assert_same(server, redis_ref, script):
    assert_same_exchanges(run_script, server, redis_ref, script)


def test_resp2_subscribe_messages_and_subscribed_mode(server, redis_ref, clean):
    assert_same(server, redis_ref, [
        ("s", ["SUBSCRIBE", "news", "sport"], 2),
        ("s", ["GET", "x"], 1),
        ("s", ["SET", "x", "1"], 1),
        ("s", ["PING"], 1),
        ("s", ["PING", "hello"], 1),
        ("s", ["PSUBSCRIBE", "n*", "h?llo", "[ab]c"], 3),
        ("s", ["SSUBSCRIBE", "shard1"], 1),
        ("p", ["PUBLISH", "news", "m1"], 1),
        ("s", None, 2),  # message + pmessage for n*
        ("p", ["PUBLISH", "hello", "m2"], 1),
        ("s", None, 1),
        ("p", ["PUBLISH", "ac", "m3"], 1),
        ("s", None, 1),
        ("p", ["PUBLISH", "nobody", "m4"], 1),
        ("s", None, 1),
        ("p", ["SPUBLISH", "shard1", "m5"], 1),
        ("s", None, 1),
        ("p", ["PUBLISH", "shard1", "m6"], 1),  # a plain channel of the same name: nobody
        ("s", ["UNSUBSCRIBE", "sport", "never"], 2),
        ("s", ["PUNSUBSCRIBE", "h?llo"], 1),
        ("s", ["SUNSUBSCRIBE"], 1),
        ("s", ["SUNSUBSCRIBE"], 1),
        ("s", ["UNSUBSCRIBE"], 1),   # the one channel left
        ("s", ["GET", "x"], 1),      # still subscribed to patterns
        ("s", ["PUNSUBSCRIBE", "n*"], 1),
        ("s", ["PUNSUBSCRIBE", "[ab]c"], 1),
        ("s", ["UNSUBSCRIBE"], 1),   # nothing left: a null channel
        ("s", ["PUNSUBSCRIBE"], 1),
        ("s", ["GET", "x"], 1),      # out of subscribed mode
        ("s", ["SUBSCRIBE"], 1),
        ("s", ["PSUBSCRIBE"], 1),
        ("s", ["PUBLISH", "a"], 1),
        ("s", ["SPUBLISH", "a"], 1),
        ("s", ["SUBSCRIBE", "again"], 1),
        ("s", ["QUIT"], 1),
    ])


def test_resp3_pushes_and_every_command_allowed(server, redis_ref, clean):
    hello = [("s", ["HELLO", "3"], 0)]
    script = [
        ("s", ["SUBSCRIBE", "news"], 1),
        ("s", ["SET", "x", "1"], 1),
        ("s", ["GET", "x"], 1),
        ("s", ["PSUBSCRIBE", "ne*"], 1),
        ("p", ["PUBLISH", "news", "hi"], 1),
        ("s", None, 2),
        ("s", ["PING"], 1),
        ("s", ["UNSUBSCRIBE"], 1),
        ("s", ["PUNSUBSCRIBE"], 1),
        ("s", ["UNSUBSCRIBE"], 1),
        ("s", ["SSUBSCRIBE", "sh"], 1),
        ("p", ["SPUBLISH", "sh", "x"], 1),
        ("s", None, 1),
        ("s", ["RESET"], 1),
        ("s", ["PING"], 1),
        ("p", ["SPUBLISH", "sh", "x"], 1),  # RESET dropped the subscription
    ]

    def run(port):
        conn = RawConn(port, timeout=5.0)
        conn.cmd("HELLO", "3")
        out = []
        pub = RawConn(port, timeout=5.0)
        for name, args, frames in script:
            c = conn if name == "s" else pub
            if args is not None:
                c.send(encode_command(*args))
            for _ in range(frames):
                out.append(c.read_raw())
        conn.close()
        pub.close()
        return out

    assert hello  # HELLO's reply holds the client id, which differs: not compared
    assert run(server.port) == run(redis_ref.port)


def test_reset_and_quit_in_subscribed_mode(server, redis_ref, clean):
    assert_same(server, redis_ref, [
        ("s", ["SUBSCRIBE", "a"], 1),
        ("s", ["MULTI"], 1),
        ("s", ["RESET"], 1),
        ("s", ["GET", "x"], 1),
        ("s", ["MULTI"], 1),
        ("s", ["RESET"], 1),
        ("s", ["EXEC"], 1),
        ("p", ["PUBLISH", "a", "nobody"], 1),
    ])


def test_pubsub_introspection(server, redis_ref, clean):
    def run(port):
        subs = [RawConn(port, timeout=5.0) for _ in range(3)]
        subs[0].send(encode_command("SUBSCRIBE", "ch1", "ch2"))
        subs[1].send(encode_command("SUBSCRIBE", "ch1"))
        subs[1].send(encode_command("PSUBSCRIBE", "ch*", "x?"))
        subs[2].send(encode_command("PSUBSCRIBE", "ch*"))
        subs[2].send(encode_command("SSUBSCRIBE", "s1", "s2"))
        for conn, frames in zip(subs, (2, 3, 3)):
            for _ in range(frames):
                conn.read()
        q = RawConn(port, timeout=5.0)
        out = [
            sorted(q.cmd("PUBSUB", "CHANNELS")),
            sorted(q.cmd("PUBSUB", "CHANNELS", "*2")),
            q.cmd_raw("PUBSUB", "NUMSUB", "ch1", "ch2", "nope"),
            q.cmd_raw("PUBSUB", "NUMSUB"),
            q.cmd_raw("PUBSUB", "NUMPAT"),
            sorted(q.cmd("PUBSUB", "SHARDCHANNELS")),
            q.cmd_raw("PUBSUB", "SHARDCHANNELS", "s[1]"),
            q.cmd_raw("PUBSUB", "SHARDNUMSUB", "s1", "s3"),
            q.cmd_raw("PUBSUB", "CHANNELS", "a", "b"),
            q.cmd_raw("PUBSUB", "NUMPAT", "x"),
            q.cmd_raw("PUBSUB", "NOSUCH"),
            q.cmd_raw("PUBSUB", "HELP"),
            q.cmd_raw("PUBLISH", "ch1", "m"),
        ]
        for conn in subs:
            conn.close()
        time.sleep(0.2)
        out.append(q.cmd_raw("PUBSUB", "NUMSUB", "ch1"))
        out.append(q.cmd_raw("PUBSUB", "NUMPAT"))
        q.close()
        return out

    assert run(server.port) == run(redis_ref.port)


def collect_events(c, s):
    """Turns notifications off on `c`, then returns the (channel, payload) pairs the pattern
    subscriber `s` received up to a marker published after the last event; closes both."""
    c.cmd("CONFIG", "SET", "notify-keyspace-events", "")
    c.cmd("PUBLISH", "__keyspace@0__:end", "end")
    events = []
    while True:
        frame = s.read()
        if frame[3] == b"end":
            break
        events.append((frame[2], frame[3]))
    s.close()
    c.close()
    return events


KEYSPACE_SCRIPT = [
    ("SET", "k", "v"), ("SET", "k", "v", "NX"), ("SET", "k2", "v", "EX", "100"),
    ("SETNX", "k", "w"), ("APPEND", "k", "x"), ("INCR", "n"), ("DECRBY", "n", "3"),
    ("INCRBYFLOAT", "n", "1.5"), ("DEL", "k"), ("DEL", "nope"), ("SET", "d1", "1"),
    ("HSET", "d2", "f", "v"), ("DEL", "d1", "nope", "d2", "d1"), ("SET", "d3", "1"),
    ("UNLINK", "nope", "d3"),
    ("LPUSH", "l", "a", "b"), ("RPUSH", "l", "c"), ("LPOP", "l"), ("RPOP", "l"),
    ("LSET", "l", "0", "z"), ("LINSERT", "l", "BEFORE", "z", "y"), ("LREM", "l", "0", "y"),
    ("HSET", "h", "f", "v"), ("HINCRBY", "h", "g", "2"), ("HDEL", "h", "f"), ("HDEL", "h", "f"),
    ("HDEL", "h", "g"), ("SADD", "s", "a", "b"), ("SADD", "s", "a"), ("SREM", "s", "a"),
    ("SMOVE", "s", "s2", "b"), ("ZADD", "z", "1", "a"), ("ZINCRBY", "z", "2", "a"),
    ("ZREM", "z", "a"), ("EXPIRE", "k2", "50"), ("PERSIST", "k2"), ("PERSIST", "k2"),
    ("RENAME", "k2", "k3"), ("MSET", "m1", "1", "m2", "2"), ("GETDEL", "m1"),
    ("SETRANGE", "m2", "0", "x"), ("LMOVE", "l", "l2", "LEFT", "RIGHT"), ("COPY", "m2", "m3"),
    ("SETEX", "se", "10", "v"), ("GETSET", "se", "w"), ("RPUSH", "t", "1", "2", "3"),
    ("LTRIM", "t", "0", "0"), ("ZADD", "zz", "1", "a", "2", "b"), ("ZPOPMIN", "zz"),
    ("ZREMRANGEBYSCORE", "zz", "0", "10"), ("SADD", "u", "x"), ("SPOP", "u"),
    ("RPUSH", "b1", "1", "2"), ("BLPOP", "none", "b1", "1"), ("BRPOP", "b1", "1"),
    ("RPUSH", "b2", "1", "2", "3"), ("LMPOP", "2", "none", "b2", "RIGHT", "COUNT", "2"),
    ("BLMPOP", "1", "1", "b2", "LEFT"), ("LMPOP", "1", "b2", "LEFT"),
]


@pytest.mark.parametrize("classes", ["KEA", "Kg", "E$l", "Ehsz", "KA"])
def test_keyspace_events(server, redis_ref, clean, classes):
    def run(port):
        c = RawConn(port, timeout=5.0)
        c.cmd("FLUSHALL")
        assert c.cmd("CONFIG", "SET", "notify-keyspace-events", classes) == b"OK"
        config = c.cmd("CONFIG", "GET", "notify-keyspace-events")
        s = RawConn(port, timeout=5.0)
        s.cmd("PSUBSCRIBE", "__key*__:*")
        for args in KEYSPACE_SCRIPT:
            c.cmd(*args)
        events = collect_events(c, s)
        return config, events

    assert run(server.port) == run(redis_ref.port)


# Every event redis-server 7.0 emits for the stream commands (class t), and the generic ones on
# streams: with and without a trim, on success and on errors and no-ops (which emit nothing),
# consumers created by XGROUP CREATECONSUMER, by reads that are served (not by one that finds
# nothing) and by claims (not by one that claims nothing).
STREAM_KEYSPACE_SCRIPT = [
    ("XADD", "s", "1-1", "f", "v"), ("XADD", "s", "1-1", "f", "v"),
    ("XADD", "n", "NOMKSTREAM", "*", "f", "v"), ("XADD", "s", "MAXLEN", "1", "2-1", "f", "v"),
    ("XADD", "s", "MAXLEN", "5", "3-1", "f", "v"), ("XTRIM", "s", "MAXLEN", "5"),
    ("XTRIM", "s", "MAXLEN", "1"), ("XDEL", "s", "9-9"), ("XDEL", "s", "3-1"),
    ("XADD", "s", "4-1", "f", "v"), ("XGROUP", "CREATE", "s", "g", "0"),
    ("XGROUP", "CREATE", "s", "g", "0"), ("XGROUP", "CREATE", "m", "g", "$", "MKSTREAM"),
    ("XGROUP", "CREATE", "nokey", "g", "$"), ("XGROUP", "CREATECONSUMER", "s", "g", "c1"),
    ("XGROUP", "CREATECONSUMER", "s", "g", "c1"), ("XGROUP", "DELCONSUMER", "s", "g", "c1"),
    ("XGROUP", "DELCONSUMER", "s", "g", "c1"), ("XGROUP", "DELCONSUMER", "s", "nog", "c1"),
    ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"),
    ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"),
    ("XREADGROUP", "GROUP", "g", "c9", "STREAMS", "s", ">"),
    ("XREADGROUP", "GROUP", "g", "c3", "STREAMS", "s", "0"),
    ("XCLAIM", "s", "g", "c4", "0", "999-1"), ("XCLAIM", "s", "g", "c4", "0", "4-1"),
    ("XAUTOCLAIM", "s", "g", "c5", "0", "0"), ("XAUTOCLAIM", "s", "g", "c6", "0", "5-0"),
    ("XACK", "s", "g", "4-1"), ("XGROUP", "SETID", "s", "g", "0"),
    ("XGROUP", "SETID", "s", "nog", "0"), ("XSETID", "s", "10-1"), ("XSETID", "s", "1-1"),
    ("XGROUP", "DESTROY", "s", "g"), ("XGROUP", "DESTROY", "s", "g"),
    ("XADD", "s", "MINID", "5", "11-1", "f", "v"), ("XTRIM", "s", "MINID", "100"),
    ("EXPIRE", "s", "100"), ("PERSIST", "s"), ("RENAME", "s", "s2"), ("COPY", "s2", "s3"),
    ("DEL", "s2", "s3"), ("XGROUP", "CREATE", "s", "g", "0", "MKSTREAM", "ENTRIESREAD", "3"),
    ("XREADGROUP", "GROUP", "g", "c2", "NOACK", "STREAMS", "s", ">"),
    ("XADD", "s", "12-1", "a", "b"),
    ("XREADGROUP", "GROUP", "g", "c2", "NOACK", "COUNT", "1", "STREAMS", "s", "m", ">", ">"),
    ("XADD", "s", "MAXLEN", "~", "0", "LIMIT", "1", "*", "a", "b"), ("UNLINK", "s", "m"),
]



def event_clients(port, classes):
    """A client on an emptied server with notify-keyspace-events set to `classes`, and a
    subscriber to every keyspace and keyevent channel."""
    c = RawConn(port, timeout=5.0)
    c.cmd("FLUSHALL")
    assert c.cmd("CONFIG", "SET", "notify-keyspace-events", classes) == b"OK"
    s = RawConn(port, timeout=5.0)
    s.cmd("PSUBSCRIBE", "__key*__:*")
    return c, s

@pytest.mark.parametrize("classes", ["KEA", "Et", "Kt", "Eg", "K$lshz"])
def test_stream_keyspace_events(server, redis_ref, clean, classes):
    def run(port):
        c, s = event_clients(port, classes)
        replies = [c.cmd_raw(*args) for args in STREAM_KEYSPACE_SCRIPT]
        events = collect_events(c, s)
        return events, [r for r in replies if r.startswith(b"-")]

    cairn_events, cairn_errors = run(server.port)
    redis_events, redis_errors = run(redis_ref.port)
    assert cairn_errors == redis_errors
    assert cairn_events == redis_events
    if "t" in classes or "A" in classes:
        assert any(b"xgroup-createconsumer" in event for pair in cairn_events for event in pair)


def test_stream_events_of_a_served_blocked_reader(server, redis_ref, clean):
    """A client blocked in XREADGROUP that an XADD serves creates its consumer then. Redis
    publishes XADD's event first; Cairn publishes the waiter's from its own connection's thread,
    so the two may come in either order (docs/pubsub.md): compared as a multiset."""
    def run(port):
        c = RawConn(port, timeout=5.0)
        c.cmd("FLUSHALL")
        c.cmd("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        assert c.cmd("CONFIG", "SET", "notify-keyspace-events", "KEA") == b"OK"
        s = RawConn(port, timeout=5.0)
        s.cmd("PSUBSCRIBE", "__key*__:*")
        w = RawConn(port, timeout=5.0)
        w.send(encode_command("XREADGROUP", "GROUP", "g", "new", "BLOCK", "0", "STREAMS", "s",
                              ">"))
        time.sleep(0.2)
        c.cmd("XADD", "s", "1-1", "f", "v")
        served = w.read_raw()
        w.close()
        return served, sorted(collect_events(c, s))

    cairn = run(server.port)
    assert cairn == run(redis_ref.port)
    assert (b"__keyevent@0__:xgroup-createconsumer", b"s") in cairn[1]


def test_slow_subscriber_is_disconnected_at_the_limit(make_server):
    server = make_server(durability="none")
    c = RawConn(server.port, timeout=10.0)
    assert c.cmd("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 256kb 60") == b"OK"
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", server.port))
    slow.sendall(encode_command("SUBSCRIBE", "firehose"))
    fast = RawConn(server.port, timeout=10.0)
    assert fast.cmd("SUBSCRIBE", "firehose")[2] == 1
    deadline = time.monotonic() + 5
    while c.cmd("PUBSUB", "NUMSUB", "firehose")[1] != 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    payload = b"x" * 1024
    received = 0
    sent = 0
    while sent < 12000:
        c.send(b"".join(encode_command("PUBLISH", "firehose", payload) for _ in range(100)))
        for _ in range(100):
            c.read()
        sent += 100
        while received < sent:
            received += 1
            assert fast.read()[2] == payload
    deadline = time.monotonic() + 10
    while c.cmd("PUBSUB", "NUMSUB", "firehose")[1] != 1:
        assert time.monotonic() < deadline, "slow subscriber still connected"
        time.sleep(0.05)
    assert "for overcoming of output buffer limits" in server.output()
    slow.close()
    fast.close()
    c.close()


@pytest.mark.parametrize("classes", ["Ex", "KEA"])
def test_expired_event_when_an_expired_key_is_read(server, redis_ref, clean, classes):
    def run(port):
        c, s = event_clients(port, classes)
        c.cmd("SET", "e", "v", "PX", "50")
        c.cmd("HSET", "eh", "f", "v")
        c.cmd("PEXPIRE", "eh", "50")
        time.sleep(0.3)
        # Redis may have expired them already (active expiry); Cairn when they are read.
        c.cmd("GET", "e")
        c.cmd("HGET", "eh", "f")
        c.cmd("GET", "e")
        events = collect_events(c, s)
        return sorted(events)

    assert run(server.port) == run(redis_ref.port)
