"""String commands: happy paths and Redis's exact error replies (compared byte for byte)."""

import time

import pytest

from harness import (ARR, BULK, ERR, INT, NIL, NOT_FLOAT, NOT_INT, OK, SYNTAX, arity_error,
                     run_script)

MAX = 9223372036854775807
MIN = -9223372036854775808


def test_get_set_basic(raw):
    run_script(raw, [
        (("GET", "k"), NIL),
        (("SET", "k", "v"), OK()),
        (("GET", "k"), BULK("v")),
        (("SET", "k", ""), OK()),
        (("GET", "k"), BULK("")),
        (("set", "K", "upper"), OK()),  # command names are case-insensitive, keys are not
        (("GET", "k"), BULK("")),
        (("GET", "K"), BULK("upper")),
        (("GET",), arity_error("get")),
        (("GET", "a", "b"), arity_error("get")),
        (("SET", "k"), arity_error("set")),
    ])


def test_set_nx_xx_get(raw):
    run_script(raw, [
        (("SET", "k", "1", "XX"), NIL),
        (("GET", "k"), NIL),
        (("SET", "k", "1", "NX"), OK()),
        (("SET", "k", "2", "NX"), NIL),
        (("GET", "k"), BULK("1")),
        (("SET", "k", "3", "XX"), OK()),
        (("SET", "k", "4", "GET"), BULK("3")),
        (("SET", "new", "x", "GET"), NIL),
        (("GET", "new"), BULK("x")),
        (("SET", "k", "5", "NX", "GET"), BULK("4")),
        (("GET", "k"), BULK("4")),
        (("SET", "k", "6", "XX", "GET"), BULK("4")),
        (("SET", "k", "7", "NX", "XX"), SYNTAX),
        (("SET", "k", "7", "FOO"), SYNTAX),
        (("SET", "k", "7", "nx", "nx"), NIL),
        (("GET", "k"), BULK("6")),
    ])


def test_set_expiry_options(raw):
    now = int(time.time())
    run_script(raw, [
        (("SET", "k", "v", "EX", "100"), OK()),
        (("TTL", "k"), lambda b: b in (INT(100), INT(99))),
        (("SET", "k", "v", "PX", "100000"), OK()),
        (("PTTL", "k"), lambda b: 99000 <= int(b[1:-2]) <= 100000),
        (("SET", "k", "v", "EXAT", str(now + 1000)), OK()),
        (("EXPIRETIME", "k"), INT(now + 1000)),
        (("SET", "k", "v", "PXAT", str(now * 1000 + 1000500)), OK()),
        (("PEXPIRETIME", "k"), INT(now * 1000 + 1000500)),
        (("SET", "k", "w", "KEEPTTL"), OK()),
        (("PEXPIRETIME", "k"), INT(now * 1000 + 1000500)),
        (("SET", "k", "w"), OK()),
        (("TTL", "k"), INT(-1)),
        (("SET", "k", "v", "EX", "0"), ERR("ERR invalid expire time in 'set' command")),
        (("SET", "k", "v", "EX", "-5"), ERR("ERR invalid expire time in 'set' command")),
        (("SET", "k", "v", "PX", "0"), ERR("ERR invalid expire time in 'set' command")),
        (("SET", "k", "v", "EX", "abc"), NOT_INT),
        (("SET", "k", "v", "EX"), SYNTAX),
        (("SET", "k", "v", "EX", "10", "PX", "10"), SYNTAX),
        (("SET", "k", "v", "EX", "10", "KEEPTTL"), SYNTAX),
        (("SET", "k", "v", "EX", str(MAX)), ERR("ERR invalid expire time in 'set' command")),
        (("SET", "k", "v", "EXAT", "1"), OK()),  # absolute time in the past: gone at once
        (("GET", "k"), NIL),
        (("EXISTS", "k"), INT(0)),
    ])


def test_set_px_expires(raw):
    run_script(raw, [(("SET", "k", "v", "PX", "50"), OK()), (("GET", "k"), BULK("v"))])
    time.sleep(0.2)
    run_script(raw, [(("GET", "k"), NIL), (("EXISTS", "k"), INT(0)), (("DBSIZE",), INT(0))])


def test_setnx_setex_psetex(raw):
    run_script(raw, [
        (("SETNX", "k", "1"), INT(1)),
        (("SETNX", "k", "2"), INT(0)),
        (("GET", "k"), BULK("1")),
        (("SETNX", "k"), arity_error("setnx")),
        (("SETEX", "k", "100", "v"), OK()),
        (("TTL", "k"), lambda b: b in (INT(100), INT(99))),
        (("SETEX", "k", "0", "v"), ERR("ERR invalid expire time in 'setex' command")),
        (("SETEX", "k", "x", "v"), NOT_INT),
        (("SETEX", "k", "10"), arity_error("setex")),
        (("PSETEX", "k", "100000", "p"), OK()),
        (("GET", "k"), BULK("p")),
        (("PTTL", "k"), lambda b: 99000 <= int(b[1:-2]) <= 100000),
        (("PSETEX", "k", "-1", "v"), ERR("ERR invalid expire time in 'psetex' command")),
    ])


def test_getset_getdel_getex(raw):
    now = int(time.time())
    run_script(raw, [
        (("GETSET", "k", "1"), NIL),
        (("GETSET", "k", "2"), BULK("1")),
        (("SETEX", "t", "100", "v"), OK()),
        (("GETSET", "t", "w"), BULK("v")),
        (("TTL", "t"), INT(-1)),  # GETSET discards the TTL
        (("GETDEL", "k"), BULK("2")),
        (("GETDEL", "k"), NIL),
        (("GETDEL",), arity_error("getdel")),
        (("SET", "g", "v"), OK()),
        (("GETEX", "g"), BULK("v")),
        (("GETEX", "g", "EX", "100"), BULK("v")),
        (("TTL", "g"), lambda b: b in (INT(100), INT(99))),
        (("GETEX", "g", "PERSIST"), BULK("v")),
        (("TTL", "g"), INT(-1)),
        (("GETEX", "g", "PX", "100000"), BULK("v")),
        (("GETEX", "g", "EXAT", str(now + 500)), BULK("v")),
        (("EXPIRETIME", "g"), INT(now + 500)),
        (("GETEX", "g", "PXAT", str(now * 1000 + 500123)), BULK("v")),
        (("PEXPIRETIME", "g"), INT(now * 1000 + 500123)),
        (("GETEX", "missing", "EX", "10"), NIL),
        (("GETEX", "g", "EX", "0"), ERR("ERR invalid expire time in 'getex' command")),
        (("GETEX", "g", "EX", "x"), NOT_INT),
        (("GETEX", "g", "PERSIST", "EX", "1"), SYNTAX),
        (("GETEX", "g", "FOO"), SYNTAX),
        (("GETEX", "g", "EXAT", "1"), BULK("v")),  # past: key deleted after the reply
        (("EXISTS", "g"), INT(0)),
    ])


def test_getex_missing_key_checks_key_before_expire_value(raw):
    """Redis looks the key up before it parses the expire value: a missing key gives nil even
    when the value is invalid (option syntax is still checked first)."""
    run_script(raw, [
        (("GETEX", "missing", "EX", "abc"), NIL),
        (("GETEX", "missing", "PX", "-1"), NIL),
        (("GETEX", "missing", "EXAT", "0"), NIL),
        (("GETEX", "missing", "PERSIST", "EX", "1"), SYNTAX),
        (("SET", "present", "v"), OK()),
        (("GETEX", "present", "EX", "abc"), NOT_INT),
        (("GETEX", "present", "PX", "-1"), ERR("ERR invalid expire time in 'getex' command")),
    ])


def test_mget_mset_msetnx(raw):
    run_script(raw, [
        (("MSET", "a", "1", "b", "2"), OK()),
        (("MGET", "a", "b", "c"), ARR(BULK("1"), BULK("2"), NIL)),
        (("MSET", "a", "x", "a", "y"), OK()),
        (("GET", "a"), BULK("y")),
        (("MSET", "a"), arity_error("mset")),
        (("MSET", "a", "1", "b"), arity_error("mset")),
        (("MGET",), arity_error("mget")),
        (("MSETNX", "c", "3", "d", "4"), INT(1)),
        (("MSETNX", "d", "5", "e", "6"), INT(0)),
        (("MGET", "c", "d", "e"), ARR(BULK("3"), BULK("4"), NIL)),
        (("MSETNX", "e"), arity_error("msetnx")),
    ])


def test_append_strlen_getrange_setrange(raw):
    run_script(raw, [
        (("APPEND", "s", "Hello"), INT(5)),
        (("APPEND", "s", " World"), INT(11)),
        (("STRLEN", "s"), INT(11)),
        (("STRLEN", "nosuch"), INT(0)),
        (("GETRANGE", "s", "0", "4"), BULK("Hello")),
        (("GETRANGE", "s", "-5", "-1"), BULK("World")),
        (("GETRANGE", "s", "0", "-1"), BULK("Hello World")),
        (("GETRANGE", "s", "5", "2"), BULK("")),
        (("GETRANGE", "s", "-100", "100"), BULK("Hello World")),
        (("GETRANGE", "s", "20", "30"), BULK("")),
        (("GETRANGE", "s", "0", str(MAX)), BULK("Hello World")),
        (("GETRANGE", "nosuch", "0", "-1"), BULK("")),
        (("GETRANGE", "s", "a", "1"), NOT_INT),
        (("GETRANGE", "s", "0"), arity_error("getrange")),
        (("SETRANGE", "s", "6", "Redis"), INT(11)),
        (("GET", "s"), BULK("Hello Redis")),
        (("SETRANGE", "pad", "5", "x"), INT(6)),
        (("GET", "pad"), BULK(b"\x00\x00\x00\x00\x00x")),
        (("SETRANGE", "empty", "3", ""), INT(0)),
        (("EXISTS", "empty"), INT(0)),
        (("SETRANGE", "s", "-1", "x"), ERR("ERR offset is out of range")),
        (("SETRANGE", "s", "536870912", "x"),
         ERR("ERR string exceeds maximum allowed size (proto-max-bulk-len)")),
        (("SETRANGE", "s", "x", "y"), NOT_INT),
        (("APPEND", "s"), arity_error("append")),
    ])


def test_incr_decr(raw):
    run_script(raw, [
        (("INCR", "n"), INT(1)),
        (("INCRBY", "n", "10"), INT(11)),
        (("DECR", "n"), INT(10)),
        (("DECRBY", "n", "20"), INT(-10)),
        (("INCRBY", "n", "-5"), INT(-15)),
        (("GET", "n"), BULK("-15")),
        (("SET", "n", str(MAX)), OK()),
        (("INCR", "n"), ERR("ERR increment or decrement would overflow")),
        (("INCRBY", "n", "1"), ERR("ERR increment or decrement would overflow")),
        (("SET", "n", str(MIN)), OK()),
        (("DECR", "n"), ERR("ERR increment or decrement would overflow")),
        (("DECRBY", "n", str(MIN)), ERR("ERR decrement would overflow")),
        (("SET", "n", "abc"), OK()),
        (("INCR", "n"), NOT_INT),
        (("SET", "n", " 1"), OK()),
        (("INCR", "n"), NOT_INT),
        (("SET", "n", "01"), OK()),
        (("INCR", "n"), NOT_INT),
        (("SET", "n", "1.5"), OK()),
        (("INCR", "n"), NOT_INT),
        (("SET", "n", "9223372036854775808"), OK()),
        (("INCR", "n"), NOT_INT),
        (("INCRBY", "m", "x"), NOT_INT),
        (("INCRBY", "m", "9223372036854775808"), NOT_INT),
        (("INCRBY", "m", ""), NOT_INT),
        (("INCR",), arity_error("incr")),
        (("INCRBY", "m"), arity_error("incrby")),
        (("SET", "z", "-0"), OK()),
        (("INCR", "z"), NOT_INT),
        (("SETEX", "t", "100", "5"), OK()),
        (("INCR", "t"), INT(6)),
        (("TTL", "t"), lambda b: b in (INT(100), INT(99))),  # INCR keeps the TTL
    ])


def test_incrbyfloat(raw):
    run_script(raw, [
        (("INCRBYFLOAT", "f", "10.5"), BULK("10.5")),
        (("INCRBYFLOAT", "f", "0.1"), BULK("10.6")),
        (("INCRBYFLOAT", "f", "-5"), BULK("5.6")),
        (("INCRBYFLOAT", "f", "5.0e3"), BULK("5005.60000000000000009")),  # long double, as Redis
        (("SET", "f", "3"), OK()),
        (("INCRBYFLOAT", "f", "1.5"), BULK("4.5")),
        (("INCRBYFLOAT", "f", "-4.5"), BULK("0")),
        (("INCRBYFLOAT", "f", "1e-5"), BULK("0.00001")),
        (("INCRBYFLOAT", "g", "1e20"), BULK("100000000000000000000")),
        (("INCRBYFLOAT", "f", "abc"), NOT_FLOAT),
        (("INCRBYFLOAT", "f", ""), NOT_FLOAT),
        (("INCRBYFLOAT", "f", "inf"), ERR("ERR increment would produce NaN or Infinity")),
        (("INCRBYFLOAT", "f", "nan"), NOT_FLOAT),
        (("SET", "s", "abc"), OK()),
        (("INCRBYFLOAT", "s", "1"), NOT_FLOAT),
        (("INCRBYFLOAT", "s"), arity_error("incrbyfloat")),
    ])


@pytest.mark.parametrize("value", [b"", b"0", b"\x00", b"\r\n", bytes(range(256)),
                                   b"x" * 100000])
def test_binary_values(raw, value):
    run_script(raw, [(("SET", "k", value), OK()), (("GET", "k"), BULK(value)),
                     (("STRLEN", "k"), INT(len(value))),
                     (("APPEND", "k", value), INT(2 * len(value))),
                     (("GET", "k"), BULK(value + value))])


def test_binary_keys(raw):
    keys = [b"", bytes(range(256)), b"\r\n", b"a b", b"*", b"\x00"] + [bytes([i]) for i in
                                                                       range(256)]
    for i, k in enumerate(keys):
        assert raw.cmd_raw("SET", k, b"v%d" % i) == OK()
    # Single-byte keys \r\n and \x00 repeat earlier multi-byte ones only by coincidence, so
    # count the distinct keys.
    distinct = {}
    for i, k in enumerate(keys):
        distinct[k] = b"v%d" % i
    assert raw.cmd_raw("DBSIZE") == INT(len(distinct))
    for k, v in distinct.items():
        assert raw.cmd_raw("GET", k) == BULK(v), k
    assert raw.cmd_raw("EXISTS", b"") == INT(1)
    assert raw.cmd_raw("DEL", b"") == INT(1)
    assert raw.cmd_raw("GET", b"") == NIL


def test_redis_py_roundtrip(r):
    """The same commands through a real client library."""
    assert r.set("a", "1") is True
    assert r.get("a") == b"1"
    assert r.incr("a") == 2
    assert r.incrbyfloat("a", 0.5) == 2.5
    assert r.mset({"x": "1", "y": "2"}) is True
    assert r.mget(["x", "y", "z"]) == [b"1", b"2", None]
    assert r.set("x", "3", nx=True) is None
    assert r.getdel("x") == b"1"
    assert r.append("y", "3") == 2
    assert r.getrange("y", 0, 0) == b"2"
