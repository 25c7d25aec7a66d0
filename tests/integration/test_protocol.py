"""Wire protocol: pipelining, inline commands, malformed and oversized input."""

import pytest

from harness import BULK, INT, OK, RawConn, encode_command


def test_redis_py_pipeline_1000(r):
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.set("p:%d" % i, i)
        pipe.incr("counter")
    replies = pipe.execute()
    assert replies == [x for i in range(1000) for x in (True, i + 1)]
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.get("p:%d" % i)
    assert pipe.execute() == [str(i).encode() for i in range(1000)]
    assert r.dbsize() == 1001


def test_raw_pipeline_one_send(raw):
    """Many commands in one send(): replies come back complete and in order."""
    n = 5000
    data = b"".join(encode_command("SET", "k%d" % i, "v%d" % i) for i in range(n))
    data += b"".join(encode_command("GET", "k%d" % i) for i in range(n))
    raw.send(data)
    for i in range(n):
        assert raw.read_raw() == OK(), i
    for i in range(n):
        assert raw.read_raw() == BULK("v%d" % i), i


def test_pipeline_split_at_every_byte(raw):
    """A command arriving one byte at a time is parsed the same as in one piece."""
    data = encode_command("SET", "split", "x" * 20) + encode_command("GET", "split")
    for b in data:
        raw.send(bytes([b]))
    assert raw.read_raw() == OK()
    assert raw.read_raw() == BULK("x" * 20)


def test_inline_commands(raw):
    raw.send(b"PING\r\n")
    assert raw.read_raw() == b"+PONG\r\n"
    raw.send(b"SET a 1\r\nGET a\nINCR a\r\n")
    assert [raw.read_raw() for _ in range(3)] == [OK(), BULK("1"), INT(2)]
    raw.send(b'set "a\\x41b" \'c d\'\r\nGET aAb\r\nECHO "x\\n"\r\n')
    assert [raw.read_raw() for _ in range(3)] == [OK(), BULK("c d"), BULK("x\n")]
    # Empty lines and blank lines are ignored; mixing with RESP arrays works.
    raw.send(b"\r\n\n   \r\n" + encode_command("PING") + b"ping\r\n")
    assert [raw.read_raw() for _ in range(2)] == [b"+PONG\r\n", b"+PONG\r\n"]
    # *0 and *-1 are empty commands: no reply.
    raw.send(b"*0\r\n*-1\r\nPING\r\n")
    assert raw.read_raw() == b"+PONG\r\n"


MALFORMED = [
    (b"*1\r\n$600000000\r\n", b"invalid bulk length"),
    (b"*1\r\n$536870913\r\n", b"invalid bulk length"),
    (b"*1\r\n$abc\r\n", b"invalid bulk length"),
    (b"*1\r\n$-1\r\n", b"invalid bulk length"),
    (b"*3000000000\r\n", b"invalid multibulk length"),
    (b"*2147483648\r\n", b"invalid multibulk length"),
    (b"*abc\r\n", b"invalid multibulk length"),
    (b"*1\r\nfoo\r\n", b"expected '$', got 'f'"),
    (b"*2\r\n$3\r\nGET\r\n:1\r\n", b"expected '$', got ':'"),
    (b'SET "a b\r\n', b"unbalanced quotes in request"),
    (b"SET 'a\r\n", b"unbalanced quotes in request"),
    (b"*1\r\n$" + b"1" * 70000, b"too big bulk count string"),
    (b"*" + b"1" * 70000, b"too big mbulk count string"),
    (b"x" * 70000, b"too big inline request"),
]


@pytest.mark.parametrize("data,message", MALFORMED, ids=[m[1].decode() for m in MALFORMED])
def test_malformed_input_closes_only_that_connection(server, r, data, message):
    r.set("survivor", "intact")
    with RawConn(server.port) as bystander, RawConn(server.port) as bad:
        assert bystander.cmd_raw("PING") == b"+PONG\r\n"
        # A valid command first: its reply must still arrive before the error.
        bad.send(encode_command("PING") + data)
        try:
            got = bad.read_until_closed(timeout=5)
        except TimeoutError as e:
            pytest.fail("connection not closed after malformed input: %s" % e)
        assert got == b"+PONG\r\n-ERR Protocol error: " + message + b"\r\n"
        assert bystander.cmd_raw("GET", "survivor") == BULK("intact")
    assert r.get("survivor") == b"intact"
    assert r.ping()


def test_garbage_bytes_never_crash(server, r):
    """Random binary junk on several connections: the server stays up, data intact."""
    import random
    rnd = random.Random(7)
    r.set("survivor", "intact")
    for i in range(30):
        junk = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300)))
        if i % 3 == 0:
            junk = b"*" + junk
        elif i % 3 == 1:
            junk = b"*2\r\n$" + junk
        try:
            with RawConn(server.port, timeout=0.3) as c:
                c.send(junk)
                try:
                    c.read_until_closed(timeout=0.1)
                except (TimeoutError, OSError):
                    pass
        except OSError:
            pass
    assert r.get("survivor") == b"intact"


def test_large_value_and_many_args(raw):
    big = b"\xab" * (8 * 1024 * 1024)
    assert raw.cmd_raw("SET", "big", big) == OK()
    assert raw.cmd_raw("STRLEN", "big") == INT(len(big))
    assert raw.cmd_raw("GET", "big") == BULK(big)
    args = []
    for i in range(20000):
        args += ["m%d" % i, "v%d" % i]
    assert raw.cmd_raw("MSET", *args) == OK()
    assert raw.cmd_raw("DBSIZE") == INT(20001)
    reply = raw.cmd("MGET", *["m%d" % i for i in range(20000)] + ["nosuch"])
    assert reply[:3] == [b"v0", b"v1", b"v2"] and reply[-1] is None and len(reply) == 20001

