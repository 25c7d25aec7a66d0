"""The commands that finish the wide-rows surface, checked where the differential test cannot:
per-field hash expiry (HEXPIRE family, Redis 7.4, which the reference 7.0 lacks), COPY with
TTLs and field expiries, CONFIG GET * against redis-server 7.0's own parameter list, CONFIG SET
checks, BITFIELD overflow arithmetic, OBJECT ENCODING thresholds, sorted-set algebra over sets."""

import time

import pytest
import redis

from harness import ServerProcess

FIELDS_MISSING = "Mandatory argument FIELDS is missing or not at the right position"
NUMFIELDS = "The `numfields` parameter must match the number of arguments"


@pytest.fixture
def cairn_only(server):
    if server.kind != "cairn":
        pytest.skip("per-field expiry is Redis 7.4; the reference is 7.0")


def test_hexpire_field_expires_and_disappears(r, cairn_only):
    r.hset("h", mapping={"a": "1", "b": "2", "c": "3"})
    assert r.execute_command("HPEXPIRE", "h", 200, "FIELDS", 2, "a", "zz") == [1, -2]
    assert r.execute_command("HTTL", "h", "FIELDS", 3, "a", "b", "zz") == [1, -1, -2]
    pttl = r.execute_command("HPTTL", "h", "FIELDS", 1, "a")[0]
    assert 0 < pttl <= 200
    at = r.execute_command("HPEXPIRETIME", "h", "FIELDS", 1, "a")[0]
    assert abs(at - (time.time() * 1000 + pttl)) < 1000
    assert r.hlen("h") == 3
    time.sleep(0.35)
    assert r.hgetall("h") == {b"b": b"2", b"c": b"3"}
    assert r.hlen("h") == 2
    assert r.hexists("h", "a") is False
    assert r.hget("h", "a") is None
    assert sorted(r.hkeys("h")) == [b"b", b"c"]
    assert r.execute_command("HTTL", "h", "FIELDS", 1, "a") == [-2]
    # A time in the past deletes the field (2); the emptied hash is deleted.
    assert r.execute_command("HEXPIREAT", "h", 1, "FIELDS", 1, "b") == [2]
    assert r.execute_command("HPEXPIRE", "h", 100, "FIELDS", 1, "c") == [1]
    time.sleep(0.25)
    assert r.exists("h") == 0
    assert r.hlen("h") == 0
    assert r.dbsize() == 0
    assert r.execute_command("HTTL", "h", "FIELDS", 2, "a", "b") == [-2, -2]


def test_hexpire_conditions_persist_and_errors(r, cairn_only):
    r.hset("h", mapping={"a": "1", "b": "2"})
    assert r.execute_command("HEXPIRE", "h", 100, "XX", "FIELDS", 1, "a") == [0]
    assert r.execute_command("HEXPIRE", "h", 100, "NX", "FIELDS", 2, "a", "b") == [1, 1]
    assert r.execute_command("HEXPIRE", "h", 100, "NX", "FIELDS", 1, "a") == [0]
    assert r.execute_command("HEXPIRE", "h", 50, "GT", "FIELDS", 1, "a") == [0]
    assert r.execute_command("HEXPIRE", "h", 200, "GT", "FIELDS", 1, "a") == [1]
    assert r.execute_command("HEXPIRE", "h", 300, "LT", "FIELDS", 1, "a") == [0]
    assert r.execute_command("HEXPIRE", "h", 10, "LT", "FIELDS", 1, "a") == [1]
    assert r.execute_command("HTTL", "h", "FIELDS", 2, "a", "b") == [10, 100]
    assert r.execute_command("HPERSIST", "h", "FIELDS", 3, "a", "zz", "a") == [1, -2, -1]
    assert r.execute_command("HTTL", "h", "FIELDS", 1, "a") == [-1]
    # HSET of a field drops its expiry, as in Redis 7.4.
    r.hset("h", "b", "new")
    assert r.execute_command("HTTL", "h", "FIELDS", 1, "b") == [-1]
    for args, message in [
        (("HEXPIRE", "h", 10, "FIELDS", 2, "a"), NUMFIELDS),
        (("HEXPIRE", "h", 10, "FOO", 1, "a"), FIELDS_MISSING),
        (("HEXPIRE", "h", 10, "FIELDS", 0, "a"), "Number of fields must be a positive integer"),
        (("HEXPIRE", "h", -1, "FIELDS", 1, "a"), "invalid expire time, must be >= 0"),
        (("HEXPIRE", "h", "x", "FIELDS", 1, "a"), "value is not an integer or out of range"),
        (("HEXPIRE", "h", 10 ** 15, "FIELDS", 1, "a"), "invalid expire time in 'hexpire'"),
        (("HTTL", "h", "FIELDS", 2, "a"), NUMFIELDS),
    ]:
        with pytest.raises(redis.ResponseError, match=message):
            r.execute_command(*args)
    r.set("s", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.execute_command("HEXPIRE", "s", 10, "FIELDS", 1, "a")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.execute_command("HTTL", "s", "FIELDS", 1, "a")
    assert r.execute_command("HPERSIST", "nokey", "FIELDS", 1, "a") == [-2]


def test_field_expiry_survives_copy_and_rename(r, cairn_only):
    r.hset("h", mapping={"a": "1", "b": "2"})
    r.execute_command("HPEXPIRE", "h", 300, "FIELDS", 1, "a")
    assert r.copy("h", "h2") is True
    r.rename("h", "h3")
    for key in ("h2", "h3"):
        assert 0 < r.execute_command("HPTTL", key, "FIELDS", 1, "a")[0] <= 300
    time.sleep(0.45)
    assert r.hgetall("h2") == {b"b": b"2"}
    assert r.hlen("h3") == 1


def test_copy(r):
    r.set("s", "v", px=100000)
    assert r.copy("s", "s2") is True
    assert r.get("s2") == b"v" and 0 < r.pttl("s2") <= 100000
    assert r.copy("s", "s2") is False
    r.zadd("z", {"a": 1, "b": 2})
    assert r.copy("z", "s2", replace=True) is True
    assert r.zrange("s2", 0, -1, withscores=True) == [(b"a", 1.0), (b"b", 2.0)]
    r.zadd("z", {"c": 3})
    assert r.zcard("s2") == 2  # a copy, not a reference
    r.sadd("set", "x")
    assert r.copy("set", "set2") and r.smembers("set2") == {b"x"}
    assert r.copy("nokey", "x") is False
    assert r.execute_command("COPY", "z", "z3", "DB", "0") == 1
    with pytest.raises(redis.ResponseError, match="source and destination objects are the same"):
        r.copy("z", "z")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("COPY", "z", "z4", "FOO")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.execute_command("COPY", "z", "z4", "DB", "x")


def test_config_get_has_every_redis_parameter(r, make_server):
    reference = make_server(kind="redis")
    ref = redis.Redis(port=reference.port)
    names = set(ref.config_get("*"))
    ref.close()
    assert len(names) > 150
    ours = r.config_get("*")
    missing = sorted(names - set(ours))
    assert not missing, missing
    assert r.config_get("zset-max-*") == {
        "zset-max-listpack-entries": "128", "zset-max-listpack-value": "64",
        "zset-max-ziplist-entries": "128", "zset-max-ziplist-value": "64"}


def test_config_set_checks_and_stores(r):
    try:
        assert r.config_set("maxmemory-policy", "allkeys-lfu") is True
        assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lfu"}
        # Several parameters at once; an alias answers its parameter's value.
        r.execute_command("CONFIG", "SET", "slave-priority", "42", "maxmemory", "1mb")
        assert r.config_get("replica-priority") == {"replica-priority": "42"}
        assert r.config_get("maxmemory") == {"maxmemory": "1048576"}
        for name, value, reason in [
            ("maxmemory-policy", "foo", "argument(s) must be one of the following"),
            ("activerehashing", "maybe", "argument must be 'yes' or 'no'"),
            ("hz", "-1", "argument must be between 0 and 2147483647 inclusive"),
            ("hz", "x", "argument couldn't be parsed into an integer"),
            ("maxmemory", "-1", "argument must be a memory value"),
            ("daemonize", "yes", "can't set immutable config"),
            ("save", "100 x", "Invalid save parameters"),
        ]:
            with pytest.raises(redis.ResponseError,
                               match="CONFIG SET failed \\(possibly related to argument '%s'\\) - "
                               % name + reason.replace("(", "\\(").replace(")", "\\)")):
                r.config_set(name, value)
        # All or nothing: a bad second value leaves the first unchanged.
        with pytest.raises(redis.ResponseError):
            r.execute_command("CONFIG", "SET", "hz", "20", "activerehashing", "maybe")
        assert r.config_get("hz") == {"hz": "10"}
        with pytest.raises(redis.ResponseError, match="Unknown option"):
            r.config_set("no-such-parameter", "1")
        assert r.config_resetstat() is True
    finally:
        r.execute_command("CONFIG", "SET", "maxmemory-policy", "noeviction", "slave-priority",
                          "100", "maxmemory", "0")


def test_bitfield_overflow(r):
    assert r.execute_command("BITFIELD", "k", "OVERFLOW", "WRAP", "INCRBY", "u8", 0, 300) == [44]
    assert r.execute_command("BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "u8", 0, 300) == [255]
    assert r.execute_command("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u8", 0, 1) == [None]
    assert r.execute_command("BITFIELD", "k", "GET", "u8", 0) == [255]
    assert r.execute_command("BITFIELD", "k", "SET", "i8", 0, 100, "INCRBY", "i8", 0, 100,
                             "OVERFLOW", "SAT", "INCRBY", "i8", 0, 100, "INCRBY", "i8", 0, -300,
                             "OVERFLOW", "FAIL", "INCRBY", "i8", 0, -1) == [-1, -56, 44, -128,
                                                                           None]
    # The i64 at 0 reads the one byte 0x80 and zero padding; 2^63 - 1 + 1 wraps.
    assert r.execute_command("BITFIELD", "k", "SET", "i64", 0, 2 ** 63 - 1,
                             "INCRBY", "i64", 0, 1) == [-2 ** 63, -2 ** 63]
    # #N offsets count in units of the type's width; OVERFLOW FAIL still grows the string.
    assert r.execute_command("BITFIELD", "f", "OVERFLOW", "FAIL", "SET", "u4", "#3", 16) == [None]
    assert r.strlen("f") == 2
    assert r.execute_command("BITFIELD", "f", "SET", "u4", "#3", 9, "GET", "u4", 12) == [0, 9]
    with pytest.raises(redis.ResponseError, match="BITFIELD_RO only supports the GET"):
        r.execute_command("BITFIELD_RO", "f", "SET", "u4", 0, 1)
    with pytest.raises(redis.ResponseError, match="Invalid bitfield type"):
        r.execute_command("BITFIELD", "f", "GET", "u64", 0)
    with pytest.raises(redis.ResponseError, match="Invalid OVERFLOW type"):
        r.execute_command("BITFIELD", "f", "OVERFLOW", "foo")


def test_object_encoding_follows_the_thresholds(r):
    r.hset("h", "f", "v")
    assert r.object("encoding", "h") == b"listpack"
    r.hset("h", "big", "x" * 65)
    assert r.object("encoding", "h") == b"hashtable"
    r.sadd("s", 1, 2, 3)
    assert r.object("encoding", "s") == b"intset"
    r.sadd("s", "a")
    assert r.object("encoding", "s") == b"hashtable"
    r.zadd("z", {"a": 1})
    assert r.object("encoding", "z") == b"listpack"
    r.zadd("z", {str(i): i for i in range(200)})
    assert r.object("encoding", "z") == b"skiplist"
    r.set("n", "12345")
    r.set("e", "abc")
    r.set("raw", "x" * 45)
    assert [r.object("encoding", k) for k in ("n", "e", "raw")] == [b"int", b"embstr", b"raw"]
    assert r.object("encoding", "nokey") is None
    with pytest.raises(redis.ResponseError, match="An LFU maxmemory policy is not selected"):
        r.object("freq", "n")


def test_zset_algebra_takes_sets_as_score_one(r):
    r.zadd("z", {"a": 2, "b": 3})
    r.sadd("s", "a", "c")
    assert r.zunion(["z", "s"], withscores=True) == [(b"c", 1.0), (b"a", 3.0), (b"b", 3.0)]
    assert r.zinter(["z", "s"], aggregate="MAX", withscores=True) == [(b"a", 2.0)]
    assert r.zunionstore("d", {"z": 2, "s": 10}) == 3
    assert r.zrange("d", 0, -1, withscores=True) == [(b"b", 6.0), (b"c", 10.0), (b"a", 14.0)]
    assert r.zintercard(2, ["z", "s"]) == 1
    assert r.zdiffstore("d", ["s", "z"]) == 1 and r.zrange("d", 0, -1) == [b"c"]
    assert r.zrangestore("d2", "z", 0, 0) == 1 and r.zrange("d2", 0, -1) == [b"a"]
