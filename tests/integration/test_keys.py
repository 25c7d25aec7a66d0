"""Keyspace commands: DEL, UNLINK, EXISTS, TYPE, expiry family, KEYS, SCAN, RANDOMKEY, RENAME."""

import time

from harness import (ARR, BULK, ERR, INT, NIL, NOT_INT, OK, SYNTAX, arity_error, run_script)

MAX = 9223372036854775807


def test_del_unlink_exists_type(raw):
    run_script(raw, [
        (("MSET", "a", "1", "b", "2", "c", "3"), OK()),
        (("EXISTS", "a", "a", "nosuch", "b"), INT(3)),
        (("TYPE", "a"), b"+string\r\n"),
        (("TYPE", "nosuch"), b"+none\r\n"),
        (("DEL", "a", "nosuch", "a"), INT(1)),
        (("UNLINK", "b", "c", "d"), INT(2)),
        (("EXISTS", "a", "b", "c"), INT(0)),
        (("DEL",), arity_error("del")),
        (("UNLINK",), arity_error("unlink")),
        (("EXISTS",), arity_error("exists")),
        (("TYPE",), arity_error("type")),
    ])


def test_expire_family(raw):
    now = int(time.time())
    run_script(raw, [
        (("EXPIRE", "k", "100"), INT(0)),
        (("SET", "k", "v"), OK()),
        (("TTL", "k"), INT(-1)),
        (("PTTL", "k"), INT(-1)),
        (("EXPIRETIME", "k"), INT(-1)),
        (("PEXPIRETIME", "k"), INT(-1)),
        (("TTL", "nosuch"), INT(-2)),
        (("PTTL", "nosuch"), INT(-2)),
        (("EXPIRETIME", "nosuch"), INT(-2)),
        (("PEXPIRETIME", "nosuch"), INT(-2)),
        (("EXPIRE", "k", "100"), INT(1)),
        (("TTL", "k"), lambda b: b in (INT(100), INT(99))),
        (("PEXPIRE", "k", "200000"), INT(1)),
        (("PTTL", "k"), lambda b: 199000 <= int(b[1:-2]) <= 200000),
        (("EXPIREAT", "k", str(now + 300)), INT(1)),
        (("EXPIRETIME", "k"), INT(now + 300)),
        (("PEXPIREAT", "k", str(now * 1000 + 400250)), INT(1)),
        (("PEXPIRETIME", "k"), INT(now * 1000 + 400250)),
        (("EXPIRETIME", "k"), INT(now + 400)),
        (("PERSIST", "k"), INT(1)),
        (("PERSIST", "k"), INT(0)),
        (("PERSIST", "nosuch"), INT(0)),
        (("TTL", "k"), INT(-1)),
        # NX / XX / GT / LT (Redis 7.0).
        (("EXPIRE", "k", "100", "XX"), INT(0)),
        (("EXPIRE", "k", "100", "GT"), INT(0)),  # no TTL counts as infinite
        (("EXPIRE", "k", "100", "NX"), INT(1)),
        (("EXPIRE", "k", "200", "NX"), INT(0)),
        (("EXPIRE", "k", "50", "GT"), INT(0)),
        (("EXPIRE", "k", "500", "GT"), INT(1)),
        (("EXPIRE", "k", "600", "LT"), INT(0)),
        (("EXPIRE", "k", "60", "LT"), INT(1)),
        (("EXPIRE", "k", "10", "NX", "XX"),
         ERR("ERR NX and XX, GT or LT options at the same time are not compatible")),
        (("EXPIRE", "k", "10", "GT", "LT"),
         ERR("ERR GT and LT options at the same time are not compatible")),
        (("EXPIRE", "k", "10", "FOO"), ERR("ERR Unsupported option FOO")),
        (("EXPIRE", "k", "abc"), NOT_INT),
        (("EXPIRE", "k", str(MAX)), ERR("ERR invalid expire time in 'expire' command")),
        (("PEXPIRE", "k", str(MAX)), ERR("ERR invalid expire time in 'pexpire' command")),
        (("EXPIRE", "k"), arity_error("expire")),
        (("TTL",), arity_error("ttl")),
        (("PERSIST",), arity_error("persist")),
        # A time in the past deletes the key.
        (("EXPIRE", "k", "-1"), INT(1)),
        (("EXISTS", "k"), INT(0)),
        (("SET", "k", "v"), OK()),
        (("PEXPIREAT", "k", "1000"), INT(1)),
        (("GET", "k"), NIL),
        (("SET", "k", "v"), OK()),
        (("EXPIREAT", "k", "0"), INT(1)),
        (("TTL", "k"), INT(-2)),
    ])


def test_expiry_is_enforced(raw):
    run_script(raw, [(("SET", "k", "v"), OK()), (("PEXPIRE", "k", "60"), INT(1)),
                     (("SET", "j", "v"), OK()),
                     (("PEXPIREAT", "j", str(int(time.time() * 1000) + 60)), INT(1))])
    time.sleep(0.25)
    run_script(raw, [(("GET", "k"), NIL), (("TTL", "j"), INT(-2)), (("KEYS", "*"), b"*0\r\n"),
                     (("DBSIZE",), INT(0)), (("RANDOMKEY",), NIL)])


def test_keys_patterns(raw):
    keys = ["hello", "hallo", "hxllo", "hllo", "heeeello", "hillo", "a*b", "a?b", "", "h\\x"]
    for k in keys:
        assert raw.cmd_raw("SET", k, "1") == OK()

    def keys_of(pattern):
        reply = raw.cmd("KEYS", pattern)
        assert isinstance(reply, list)
        return sorted(reply)

    assert keys_of("*") == sorted(k.encode() for k in keys)
    assert keys_of("h?llo") == [b"hallo", b"hello", b"hillo", b"hxllo"]
    assert keys_of("h*llo") == [b"hallo", b"heeeello", b"hello", b"hillo", b"hllo", b"hxllo"]
    assert keys_of("h[ae]llo") == [b"hallo", b"hello"]
    assert keys_of("h[^e]llo") == [b"hallo", b"hillo", b"hxllo"]
    assert keys_of("h[a-f]llo") == [b"hallo", b"hello"]
    assert keys_of("a\\*b") == [b"a*b"]
    assert keys_of("a\\?b") == [b"a?b"]
    assert keys_of("nomatch*") == []
    assert keys_of("") == [b""]
    assert keys_of("h\\\\x") == [b"h\\x"]
    assert raw.cmd_raw("KEYS") == arity_error("keys")


def test_scan(raw, r):
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.set("key:%d" % i, i)
    for i in range(50):
        pipe.set("other:%d" % i, i)
    pipe.execute()
    assert set(r.scan_iter(count=10)) == ({b"key:%d" % i for i in range(1000)}
                                          | {b"other:%d" % i for i in range(50)})
    assert set(r.scan_iter(match="other:*", count=7)) == {b"other:%d" % i for i in range(50)}
    assert set(r.scan_iter(match="key:1?", count=1000)) == {b"key:%d" % i for i in range(10, 20)}
    assert set(r.scan_iter(_type="string")) == set(r.keys("*"))
    assert set(r.scan_iter(_type="hash")) == set()
    # A huge COUNT is fine and the iteration still finishes.
    keys = set()
    cursor = b"0"
    for _ in range(100):
        cursor, batch = raw.cmd("SCAN", cursor, "COUNT", str(MAX))
        keys.update(batch)
        if cursor == b"0":
            break
    assert len(keys) == 1050
    run_script(raw, [
        (("SCAN", "abc"), ERR("ERR invalid cursor")),
        (("SCAN", "0", "COUNT", "0"), SYNTAX),
        (("SCAN", "0", "COUNT", "-1"), SYNTAX),
        (("SCAN", "0", "COUNT", "x"), NOT_INT),
        (("SCAN", "0", "COUNT"), SYNTAX),
        (("SCAN", "0", "FOO", "1"), SYNTAX),
        (("SCAN", "0", "MATCH"), SYNTAX),
        (("SCAN",), arity_error("scan")),
    ])


def test_scan_empty(raw):
    assert raw.cmd_raw("SCAN", "0") == ARR(BULK("0"), b"*0\r\n")


def test_randomkey(raw):
    assert raw.cmd_raw("RANDOMKEY") == NIL
    raw.cmd("MSET", "a", "1", "b", "2", "c", "3")
    seen = set()
    for _ in range(100):
        k = raw.cmd("RANDOMKEY")
        assert k in (b"a", b"b", b"c")
        seen.add(k)
    assert len(seen) >= 2
    assert raw.cmd_raw("RANDOMKEY", "x") == arity_error("randomkey")


def test_rename(raw):
    run_script(raw, [
        (("RENAME", "a", "b"), ERR("ERR no such key")),
        (("RENAMENX", "a", "b"), ERR("ERR no such key")),
        (("SET", "a", "1"), OK()),
        (("EXPIRE", "a", "100"), INT(1)),
        (("RENAME", "a", "b"), OK()),
        (("EXISTS", "a"), INT(0)),
        (("GET", "b"), BULK("1")),
        (("TTL", "b"), lambda x: x in (INT(100), INT(99))),  # the TTL moves with the value
        (("SET", "c", "3"), OK()),
        (("RENAME", "c", "b"), OK()),  # overwrites, and the target's TTL goes away
        (("TTL", "b"), INT(-1)),
        (("GET", "b"), BULK("3")),
        (("RENAME", "b", "b"), OK()),
        (("RENAMENX", "b", "b"), INT(0)),
        (("SET", "d", "4"), OK()),
        (("RENAMENX", "d", "b"), INT(0)),
        (("RENAMENX", "d", "e"), INT(1)),
        (("MGET", "b", "d", "e"), ARR(BULK("3"), NIL, BULK("4"))),
        (("RENAME", "b"), arity_error("rename")),
        (("RENAMENX", "b"), arity_error("renamenx")),
    ])
