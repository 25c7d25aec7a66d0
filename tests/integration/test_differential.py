"""Differential test: seeded random command sequences sent to redis-server and to the server
under test; every reply is compared byte for byte.

Normalized only where the two servers legitimately differ:
* TTL / EXPIRETIME (±1 s) and PTTL / PEXPIRETIME (±100 ms), since each server computes a
  relative expiry from its own clock at a slightly different moment;
* SCAN: a full iteration runs on each server and the sets of keys are compared (cursors differ);
* RANDOMKEY: the key must exist on that server (checked with KEYS *), nil only when empty;
* DBSIZE: Redis counts expired keys it has not reclaimed yet, so every key of the (small) key
  space is touched with EXISTS on both servers first, which reclaims them;
* TIME, INFO, CLIENT, COMMAND, HELLO are not generated;
* hashes: HGETALL/HKEYS/HVALS are compared as sorted pairs/lists (Redis answers in insertion
  order, Cairn in field order), HSCAN by a full iteration's set of pairs, HRANDFIELD by shape
  (null or not, length, every field belongs to the hash);
* ZSCAN by a full iteration's set of pairs, ZRANDMEMBER like SRANDMEMBER by shape;
* OBJECT ENCODING: a string's int/embstr/raw depends on how Redis built the value (APPEND,
  MSET... keep other encodings), and Redis never converts a collection back to its small
  encoding when it shrinks, so for a string any of the three is accepted and for a collection
  Cairn may answer the small encoding where Redis answers the big one (docs/protocol.md);
  OBJECT REFCOUNT of a string: 1 or Redis's shared-integer count, for the same reason.

Short expiries (a few ms) are deliberately generated; before any later command touches such a
key, the driver sleeps until it has certainly expired on both servers, so no reply depends on
which side of the deadline a server happened to be.

Env: CAIRN_DIFF_OPS (commands per seed, default 1500), CAIRN_DIFF_SEEDS (number of seeds,
default 4), CAIRN_DIFF_SEED (run only this seed).
"""

import os
import random
import time

import pytest

from harness import ErrorReply, RawConn, encode_command

OPS = int(os.environ.get("CAIRN_DIFF_OPS", "1500"))
if "CAIRN_DIFF_SEED" in os.environ:
    SEEDS = [int(os.environ["CAIRN_DIFF_SEED"])]
else:
    SEEDS = list(range(1, int(os.environ.get("CAIRN_DIFF_SEEDS", "4")) + 1))

KEYS = [b"k0", b"k1", b"k2", b"k3", b"n0", b"n1", b"", b"\x00b\xff\r\n", b"k*", b"a b"]
ALL = "all"
MAX = b"9223372036854775807"
MIN = b"-9223372036854775808"
SHORT_EXPIRY_MARGIN_S = 0.05

ARITY = {
    "get": 2, "set": -3, "setnx": 3, "setex": 4, "psetex": 4, "getset": 3, "getdel": 2,
    "getex": -2, "mget": -2, "mset": -3, "msetnx": -3, "append": 3, "strlen": 2,
    "getrange": 4, "setrange": 4, "incr": 2, "decr": 2, "incrby": 3, "decrby": 3,
    "incrbyfloat": 3, "del": -2, "unlink": -2, "exists": -2, "type": 2, "expire": -3,
    "pexpire": -3, "expireat": -3, "pexpireat": -3, "expiretime": 2, "pexpiretime": 2,
    "ttl": 2, "pttl": 2, "persist": 2, "keys": 2, "scan": -2, "randomkey": 1, "rename": 3,
    "renamenx": 3, "echo": 2, "select": 2, "dbsize": 1,
    "hset": -4, "hsetnx": 4, "hmset": -4, "hget": 3, "hmget": -3, "hgetall": 2, "hdel": -3,
    "hexists": 3, "hlen": 2, "hstrlen": 3, "hkeys": 2, "hvals": 2, "hincrby": 4,
    "hincrbyfloat": 4, "hrandfield": -2, "hscan": -3,
    "sadd": -3, "srem": -3, "smembers": 2, "sismember": 3, "smismember": -3, "scard": 2,
    "spop": -2, "srandmember": -2, "smove": 4, "sinter": -2, "sintercard": -3,
    "sinterstore": -3, "sunion": -2, "sunionstore": -3, "sdiff": -2, "sdiffstore": -3,
    "sscan": -3, "setbit": 4, "getbit": 3, "bitcount": -2,
    "zadd": -4, "zincrby": 4, "zrem": -3, "zscore": 3, "zmscore": -3, "zcard": 2, "zcount": 4,
    "zlexcount": 4, "zrange": -4, "zrevrange": -4, "zrangebyscore": -4, "zrevrangebyscore": -4,
    "zrangebylex": -4, "zrevrangebylex": -4, "zrank": 3, "zrevrank": 3, "zpopmin": -2,
    "zpopmax": -2, "zremrangebyrank": 4, "zremrangebyscore": 4, "zremrangebylex": 4,
    "zrangestore": -5, "zrandmember": -2, "zunion": -3, "zinter": -3, "zdiff": -3,
    "zunionstore": -4, "zinterstore": -4, "zdiffstore": -4, "zintercard": -3, "zscan": -3,
    "bitpos": -3, "bitop": -4, "bitfield": -2, "bitfield_ro": -2, "lcs": -3, "copy": -3,
    "lpush": -3, "rpush": -3, "lpushx": -3, "rpushx": -3, "lpop": -2, "rpop": -2, "llen": 2,
    "lrange": 4, "lindex": 3, "lset": 4, "linsert": 5, "lrem": 4, "ltrim": 4, "lpos": -3,
    "lmove": 5, "rpoplpush": 3, "lmpop": -4, "blpop": -3, "brpop": -3, "blmove": 6,
    "brpoplpush": 4, "blmpop": -5,
    "xadd": -5, "xrange": -4, "xrevrange": -4, "xlen": 2, "xdel": -3, "xtrim": -4,
}
MEMBERS = [b"a", b"b", b"c", b"1", b"2", b"", b"x y", b"\xff"]
FIELDS = [b"f0", b"f1", b"f2", b"f3", b"", b"a b", b"\xff\x00", b"n"]
TOLERANCE = {"ttl": 1, "expiretime": 1, "pttl": 100, "pexpiretime": 100}


class Op:
    """One generated command: args, how to compare it, the keys it touches, short expiries."""

    def __init__(self, args, kind="exact", keys=(), short=None):
        self.args = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        self.kind = kind
        self.keys = keys  # a list of keys, or ALL
        self.short = short or {}  # key -> expiry in ms, counted from when the reply arrives


class Generator:
    def __init__(self, seed, hashes=True):
        self.rng = random.Random(seed)
        # The cluster keyspace has no hashes yet (docs/protocol.md "Hashes").
        self.hash_weight = 1 if hashes else 0

    # -- building blocks ----------------------------------------------------------------------

    def key(self):
        return self.rng.choice(KEYS)

    def name(self, name):
        """The command name, sometimes in odd case (names are case-insensitive)."""
        if self.rng.random() < 0.1:
            return "".join(c.upper() if self.rng.random() < 0.5 else c for c in name)
        return name.upper()

    def value(self):
        rng = self.rng
        choice = rng.randrange(10)
        if choice <= 2:
            return str(rng.randrange(-20, 21)).encode()
        if choice == 3:
            return rng.choice([MAX, MIN, b"9223372036854775806", b"-9223372036854775807",
                               b"4611686018427387904"])
        if choice == 4:
            return rng.choice([b"3.5", b"-0.25", b"1e3", b"0.1", b"1.5e-3", b"10.0", b"5.",
                               b".5", b"-7.125", b"1e20"])
        if choice == 5:
            return rng.choice([b"abc", b" 1", b"1 ", b"01", b"", b"+5", b"0x10", b"inf",
                               b"-inf", b"nan", b"1e400", b"-0", b"1\x00"])
        if choice == 6:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 17)))
        if choice == 7:
            return b"x" * rng.randrange(100, 2000)
        return bytes(rng.choice(b"abcdefghij") for _ in range(rng.randrange(1, 11)))

    def integer_arg(self):
        rng = self.rng
        choice = rng.randrange(8)
        if choice <= 3:
            return str(rng.randrange(-100, 101)).encode()
        if choice == 4:
            return rng.choice([MAX, MIN, b"9223372036854775808", b"-9223372036854775809"])
        if choice == 5:
            return rng.choice([b"abc", b"", b"1.5", b" 2", b"0x1"])
        return str(rng.randrange(-10 ** 12, 10 ** 12)).encode()

    def float_arg(self):
        rng = self.rng
        choice = rng.randrange(6)
        if choice <= 2:
            return str(rng.randrange(-1000, 1001) / rng.choice([1, 2, 4, 8, 10, 100])).encode()
        if choice == 3:
            return rng.choice([b"1e308", b"-1e308", b"inf", b"-inf", b"nan", b"abc", b"",
                               b"5.0e3", b"1e-5", b"0x10", b" 1"])
        return self.integer_arg()

    def index_arg(self):
        rng = self.rng
        if rng.random() < 0.1:
            return rng.choice([MAX, MIN, b"abc", b"9223372036854775808"])
        return str(rng.randrange(-30, 31)).encode()

    def expiry(self, absolute_ok=True, seconds_ok=True):
        """(args, short_ms or None, is_error) for SET/GETEX-style expiry options."""
        rng = self.rng
        now_s = time.time()
        choice = rng.randrange(12)
        if choice <= 2 and seconds_ok:
            return [b"EX", str(rng.randrange(100, 100000)).encode()], None
        if choice <= 4:
            return [b"PX", str(rng.randrange(100000, 100000000)).encode()], None
        if choice == 5 and absolute_ok:
            return [b"EXAT", str(int(now_s) + rng.randrange(100, 100000)).encode()], None
        if choice == 6 and absolute_ok:
            return [b"PXAT", str(int(now_s * 1000) + rng.randrange(100000, 10 ** 8)).encode()], \
                None
        if choice == 7:
            ms = rng.randrange(1, 30)
            return [b"PX", str(ms).encode()], ms
        if choice == 8 and absolute_ok:
            ms = rng.randrange(1, 30)
            return [b"PXAT", str(int(now_s * 1000) + ms).encode()], ms
        if choice == 9 and absolute_ok:
            # In the past: the key is deleted at once.
            return [rng.choice([b"EXAT", b"PXAT"]), str(rng.randrange(1, 10 ** 9)).encode()], None
        # Invalid on purpose.
        return [rng.choice([b"EX", b"PX", b"EXAT", b"PXAT"]),
                rng.choice([b"0", b"-1", b"abc", MAX, b"", b"1.5"])], None

    @staticmethod
    def short_map(keys, ms):
        # The deadline is fixed only once the reply arrives: the command may first wait for an
        # earlier short expiry of the same key, and must not lose its own margin to that wait.
        return {} if ms is None else {k: ms for k in keys}

    # -- commands -----------------------------------------------------------------------------

    def op(self):
        rng = self.rng
        weights = [
            (self.op_set, 14), (self.op_get, 8), (self.op_simple_key, 8), (self.op_incr, 8),
            (self.op_incrbyfloat, 4), (self.op_expire, 8), (self.op_ttl, 6), (self.op_getex, 3),
            (self.op_multi, 6), (self.op_range, 6), (self.op_rename, 3), (self.op_keys, 3),
            (self.op_scan, 2), (self.op_randomkey, 1), (self.op_misc, 3), (self.op_dbsize, 1),
            (self.op_flush, 0.3), (self.op_wrong_arity, 4), (self.op_setex, 3),
        ]
        weights += [(self.op_bit, 6)]
        h = self.hash_weight
        weights += [
            (self.op_hset, 14 * h), (self.op_hread, 10 * h), (self.op_hdel, 4 * h),
            (self.op_hincr, 5 * h), (self.op_hlist, 4 * h), (self.op_hrandfield, 2 * h),
            (self.op_hscan, 2 * h),
            (self.op_sadd, 10 * h), (self.op_sread, 8 * h), (self.op_salgebra, 5 * h),
            (self.op_spop, 3 * h), (self.op_smove, 2 * h), (self.op_sscan, 1 * h),
            (self.op_zadd, 12 * h), (self.op_zread, 8 * h), (self.op_zrange, 10 * h),
            (self.op_zrem, 3 * h), (self.op_zpop, 3 * h),
            (self.op_zalgebra, 6 * h), (self.op_zrangestore, 3 * h), (self.op_zrandmember, 2 * h),
            (self.op_zscan, 1 * h), (self.op_object, 2 * h),
        ]
        weights += [(self.op_bit2, 6), (self.op_copy, 3)]
        weights += [
            (self.op_lpush, 12 * h), (self.op_lpop, 6 * h), (self.op_lread, 8 * h),
            (self.op_lchange, 6 * h), (self.op_lpos, 3 * h), (self.op_lmove, 4 * h),
            (self.op_lmpop, 3 * h), (self.op_lblocking, 2 * h),
        ]
        weights += [
            (self.op_xadd, 10 * h), (self.op_xread, 8 * h), (self.op_xdel, 3 * h),
            (self.op_xtrim, 3 * h),
        ]
        total = sum(w for _, w in weights)
        x = rng.random() * total
        for fn, w in weights:
            x -= w
            if x < 0:
                return fn()
        return self.op_get()

    def op_set(self):
        rng = self.rng
        k = self.key()
        args = [self.name("set"), k, self.value()]
        ms = None
        opts = []
        if rng.random() < 0.5:
            exp, ms = self.expiry()
            opts.append(exp)
        if rng.random() < 0.25:
            opts.append([rng.choice([b"NX", b"XX", b"nx"])])
        if rng.random() < 0.2:
            opts.append([b"GET"])
        if rng.random() < 0.1:
            opts.append([b"KEEPTTL"])
        if rng.random() < 0.05:
            opts.append([rng.choice([b"FOO", b"EX", b"NX", b"PXAT"])])
        rng.shuffle(opts)
        for o in opts:
            args += o
        return Op(args, keys=[k], short=self.short_map([k], ms))

    def op_setex(self):
        rng = self.rng
        k = self.key()
        if rng.random() < 0.5:
            return Op([self.name("setex"), k,
                       rng.choice([str(rng.randrange(100, 10000)).encode(), b"0", b"-5",
                                   b"abc"]), self.value()], keys=[k])
        ms = rng.randrange(1, 30) if rng.random() < 0.3 else None
        t = str(ms).encode() if ms else rng.choice(
            [str(rng.randrange(100000, 10 ** 8)).encode(), b"0", b"abc"])
        return Op([self.name("psetex"), k, t, self.value()], keys=[k],
                  short=self.short_map([k], ms))

    def op_get(self):
        k = self.key()
        return Op([self.name(self.rng.choice(["get", "strlen", "type", "getdel", "exists"])), k],
                  keys=[k])

    def op_simple_key(self):
        rng = self.rng
        k = self.key()
        name = rng.choice(["setnx", "getset", "append", "append", "persist"])
        if name == "persist":
            return Op([self.name(name), k], keys=[k])
        return Op([self.name(name), k, self.value()], keys=[k])

    def op_incr(self):
        rng = self.rng
        k = rng.choice([b"n0", b"n1", b"n0", self.key()])
        name = rng.choice(["incr", "decr", "incrby", "decrby"])
        if name in ("incr", "decr"):
            return Op([self.name(name), k], keys=[k])
        return Op([self.name(name), k, self.integer_arg()], keys=[k])

    def op_incrbyfloat(self):
        k = self.rng.choice([b"n0", b"n1", self.key()])
        return Op([self.name("incrbyfloat"), k, self.float_arg()], keys=[k])

    def op_expire(self):
        rng = self.rng
        k = self.key()
        name = rng.choice(["expire", "pexpire", "expireat", "pexpireat"])
        now = time.time()
        ms = None
        choice = rng.randrange(10)
        if choice <= 5:
            if name == "expire":
                t = rng.randrange(100, 100000)
            elif name == "pexpire":
                t = rng.randrange(100000, 10 ** 8)
            elif name == "expireat":
                t = int(now) + rng.randrange(100, 100000)
            else:
                t = int(now * 1000) + rng.randrange(100000, 10 ** 8)
        elif choice == 6:
            t = rng.choice([-1, 0, 1, 1000]) if name != "pexpire" else rng.choice([-1, 0])
        elif choice == 7 and name in ("pexpire", "pexpireat"):
            ms = rng.randrange(1, 30)
            t = ms if name == "pexpire" else int(now * 1000) + ms
        else:
            t = rng.choice([b"abc", MAX, MIN, b"", b"1.5", b"9223372036854775"])
        args = [self.name(name), k, t]
        if rng.random() < 0.3:
            args.append(rng.choice([b"NX", b"XX", b"GT", b"LT", b"gt", b"FOO"]))
            if rng.random() < 0.2:
                args.append(rng.choice([b"NX", b"XX", b"GT", b"LT"]))
        return Op(args, keys=[k], short=self.short_map([k], ms))

    def op_ttl(self):
        k = self.key()
        name = self.rng.choice(["ttl", "pttl", "expiretime", "pexpiretime"])
        return Op([self.name(name), k], kind=name, keys=[k])

    def op_getex(self):
        rng = self.rng
        k = self.key()
        args = [self.name("getex"), k]
        ms = None
        choice = rng.randrange(5)
        if choice <= 1:
            exp, ms = self.expiry()
            args += exp
        elif choice == 2:
            args.append(b"PERSIST")
        elif choice == 3:
            args += rng.choice([[b"PERSIST", b"EX", b"10"], [b"FOO"], [b"EX"]])
        return Op(args, keys=[k], short=self.short_map([k], ms))

    def op_multi(self):
        rng = self.rng
        ks = [self.key() for _ in range(rng.randrange(1, 5))]
        name = rng.choice(["mget", "mset", "msetnx", "del", "unlink", "exists"])
        if name in ("mset", "msetnx"):
            args = [self.name(name)]
            for k in ks:
                args += [k, self.value()]
            return Op(args, keys=ks)
        return Op([self.name(name)] + ks, keys=ks)

    def op_range(self):
        rng = self.rng
        k = self.key()
        if rng.random() < 0.5:
            return Op([self.name("getrange"), k, self.index_arg(), self.index_arg()], keys=[k])
        if rng.random() < 0.1:
            off = rng.choice([b"-1", b"536870912", b"abc", MAX])
        else:
            off = str(rng.randrange(0, 60)).encode()
        val = self.value() if rng.random() < 0.9 else b""
        return Op([self.name("setrange"), k, off, val], keys=[k])

    def op_rename(self):
        a, b = self.key(), self.key()
        return Op([self.name(self.rng.choice(["rename", "renamenx"])), a, b], keys=[a, b])

    def op_keys(self):
        pattern = self.rng.choice([b"*", b"k*", b"k?", b"k[0-2]", b"k[^0]", b"n*", b"", b"[",
                                   b"k[", b"\\", b"k\\", b"*1", b"?", b"[a-z]?", b"k\\*",
                                   b"*\\**", b"[!k]*", b"a b", b"*\xff*", b"k[1-]"])
        return Op([self.name("keys"), pattern], kind="sorted", keys=ALL)

    def op_scan(self):
        rng = self.rng
        opts = []
        if rng.random() < 0.5:
            opts += [b"MATCH", rng.choice([b"k*", b"*", b"n?", b"*b*", b"[kn]0"])]
        if rng.random() < 0.5:
            opts += [b"COUNT", rng.choice([b"1", b"2", b"10", b"1000", MAX])]
        if rng.random() < 0.3:
            opts += [b"TYPE", rng.choice([b"string", b"hash", b"STRING", b"list"])]
        if rng.random() < 0.1:
            # Error forms are compared exactly.
            return Op([b"SCAN", rng.choice([b"abc", b"-1x"])] + opts, keys=ALL)
        if rng.random() < 0.05:
            return Op([b"SCAN", b"0", rng.choice([b"COUNT", b"MATCH", b"FOO", b"TYPE"]),
                       rng.choice([b"0", b"-1", b"abc"])], keys=ALL)
        return Op([b"SCAN", b"0"] + opts, kind="scan", keys=ALL)

    # -- hashes --------------------------------------------------------------------------------

    def field(self):
        return self.rng.choice(FIELDS)

    def hash_key(self):
        return self.rng.choice([b"h0", b"h1", b"h0", self.key()])

    def op_hset(self):
        rng = self.rng
        k = self.hash_key()
        name = rng.choice(["hset", "hset", "hmset", "hsetnx"])
        if name == "hsetnx":
            return Op([self.name(name), k, self.field(), self.value()], keys=[k])
        args = [self.name(name), k]
        for _ in range(rng.randrange(1, 4)):
            args += [self.field(), self.value()]
        if rng.random() < 0.05:
            args.append(self.field())  # an odd number of arguments
        return Op(args, keys=[k])

    def op_hread(self):
        rng = self.rng
        k = self.hash_key()
        name = rng.choice(["hget", "hexists", "hstrlen", "hlen", "hmget", "type", "exists"])
        if name in ("hlen", "type", "exists"):
            return Op([self.name(name), k], keys=[k])
        if name == "hmget":
            return Op([self.name(name), k] + [self.field() for _ in range(rng.randrange(1, 4))],
                      keys=[k])
        return Op([self.name(name), k, self.field()], keys=[k])

    def op_hdel(self):
        k = self.hash_key()
        return Op([self.name("hdel"), k] + [self.field() for _ in range(self.rng.randrange(1, 4))],
                  keys=[k])

    def op_hincr(self):
        rng = self.rng
        k = self.hash_key()
        if rng.random() < 0.6:
            return Op([self.name("hincrby"), k, self.field(), self.integer_arg()], keys=[k])
        return Op([self.name("hincrbyfloat"), k, self.field(), self.float_arg()], keys=[k])

    def op_hlist(self):
        k = self.hash_key()
        name = self.rng.choice(["hgetall", "hkeys", "hvals"])
        return Op([self.name(name), k], kind="pairs" if name == "hgetall" else "sorted", keys=[k])

    def op_hrandfield(self):
        rng = self.rng
        k = self.hash_key()
        args = [self.name("hrandfield"), k]
        if rng.random() < 0.7:
            args.append(rng.choice([b"1", b"2", b"5", b"100", b"-3", b"-1", b"0", b"abc", MIN,
                                    MAX]))
            if rng.random() < 0.4:
                args.append(rng.choice([b"WITHVALUES", b"withvalues", b"FOO"]))
        return Op(args, kind="hrandfield", keys=[k])

    def op_hscan(self):
        rng = self.rng
        k = self.hash_key()
        opts = []
        if rng.random() < 0.4:
            opts += [b"MATCH", rng.choice([b"f*", b"*", b"f[01]", b"?"])]
        if rng.random() < 0.4:
            opts += [b"COUNT", rng.choice([b"1", b"2", b"100"])]
        if rng.random() < 0.1:
            return Op([b"HSCAN", k, rng.choice([b"0", b"abc"]),
                       rng.choice([b"COUNT", b"FOO", b"MATCH"]), rng.choice([b"0", b"x"])],
                      keys=[k])
        return Op([b"HSCAN", k, b"0"] + opts, kind="hscan", keys=[k])

    # -- bits ----------------------------------------------------------------------------------

    def bit_offset(self):
        rng = self.rng
        if rng.random() < 0.1:
            return rng.choice([b"-1", b"abc", b"4294967296", MAX, b""])
        return str(rng.randrange(0, 200)).encode()

    def op_bit(self):
        rng = self.rng
        k = self.key()
        name = rng.choice(["setbit", "setbit", "getbit", "bitcount"])
        if name == "setbit":
            bit = rng.choice([b"0", b"1", b"1"]) if rng.random() < 0.95 else rng.choice(
                [b"2", b"-1", b"abc"])
            return Op([self.name(name), k, self.bit_offset(), bit], keys=[k])
        if name == "getbit":
            return Op([self.name(name), k, self.bit_offset()], keys=[k])
        args = [self.name(name), k]
        if rng.random() < 0.6:
            args += [self.index_arg(), self.index_arg()]
            if rng.random() < 0.4:
                args.append(rng.choice([b"BIT", b"byte", b"FOO"]))
        elif rng.random() < 0.1:
            args.append(self.index_arg())
        return Op(args, keys=[k])

    # -- sets ----------------------------------------------------------------------------------

    def member(self):
        return self.rng.choice(MEMBERS)

    def set_key(self):
        return self.rng.choice([b"s0", b"s1", b"s2", b"s0", b"h0", self.key()])

    def op_sadd(self):
        k = self.set_key()
        name = self.rng.choice(["sadd", "sadd", "srem"])
        return Op([self.name(name), k] + [self.member() for _ in range(self.rng.randrange(1, 4))],
                  keys=[k])

    def op_sread(self):
        rng = self.rng
        k = self.set_key()
        name = rng.choice(["sismember", "smismember", "scard", "smembers", "type", "srandmember"])
        if name in ("scard", "type"):
            return Op([self.name(name), k], keys=[k])
        if name == "smembers":
            return Op([self.name(name), k], kind="sorted", keys=[k])
        if name == "smismember":
            return Op([self.name(name), k] + [self.member() for _ in range(rng.randrange(1, 4))],
                      keys=[k])
        if name == "srandmember":
            args = [self.name(name), k]
            if rng.random() < 0.7:
                args.append(rng.choice([b"1", b"3", b"100", b"-2", b"0", b"abc", MIN]))
            return Op(args, kind="srandmember", keys=[k])
        return Op([self.name(name), k, self.member()], keys=[k])

    def op_salgebra(self):
        rng = self.rng
        keys = [self.set_key() for _ in range(rng.randrange(1, 4))]
        name = rng.choice(["sinter", "sunion", "sdiff", "sinterstore", "sunionstore",
                           "sdiffstore", "sintercard"])
        if name.endswith("store"):
            dst = self.set_key()
            return Op([self.name(name), dst] + keys, keys=[dst] + keys)
        if name == "sintercard":
            args = [self.name(name), str(len(keys)).encode()] + keys
            if rng.random() < 0.3:
                args += [b"LIMIT", rng.choice([b"0", b"1", b"-1", b"abc"])]
            if rng.random() < 0.05:
                args[1] = rng.choice([b"0", b"9", b"abc"])
            return Op(args, keys=keys)
        return Op([self.name(name)] + keys, kind="sorted", keys=keys)

    def op_spop(self):
        rng = self.rng
        k = self.set_key()
        args = [self.name("spop"), k]
        if rng.random() < 0.5:
            args.append(rng.choice([b"1", b"2", b"100", b"0", b"-1", b"abc"]))
        return Op(args, kind="spop", keys=[k])

    def op_smove(self):
        a, b = self.set_key(), self.set_key()
        return Op([self.name("smove"), a, b, self.member()], keys=[a, b])

    def op_sscan(self):
        rng = self.rng
        k = self.set_key()
        opts = []
        if rng.random() < 0.4:
            opts += [b"MATCH", rng.choice([b"a*", b"*", b"[ab]", b"?"])]
        if rng.random() < 0.4:
            opts += [b"COUNT", rng.choice([b"1", b"100"])]
        return Op([b"SSCAN", k, b"0"] + opts, kind="sscan", keys=[k])

    # -- sorted sets ---------------------------------------------------------------------------

    def zset_key(self):
        return self.rng.choice([b"z0", b"z1", b"z0", b"z1", b"s0", b"h0", self.key()])

    def score(self):
        rng = self.rng
        choice = rng.randrange(8)
        if choice <= 3:
            return str(rng.randrange(-5, 6)).encode()
        if choice <= 5:
            return rng.choice([b"1.5", b"-2.25", b"0.1", b"1e3", b"-0", b"3.0", b"1e-320",
                               b"0.30000000000000004"])
        if choice == 6:
            return rng.choice([b"inf", b"-inf", b"+inf", b"+5"])
        return rng.choice([b"nan", b"abc", b"", b" 1", b"1e400", b"(1", b"0x10", b"1e-400"])

    def score_bound(self):
        rng = self.rng
        if rng.random() < 0.85:
            prefix = rng.choice([b"", b"", b"("])
            return prefix + rng.choice([str(rng.randrange(-6, 7)).encode(), b"1.5", b"-inf",
                                        b"+inf", b"inf", b"-2.25"])
        return rng.choice([b"abc", b"", b"(", b"nan", b"[1", b" 2", b"1e400", b"(nan"])

    def lex_bound(self):
        rng = self.rng
        if rng.random() < 0.85:
            return rng.choice([b"-", b"+", b"[", b"("]) + (
                b"" if rng.random() < 0.3 else self.member())
        return rng.choice([b"a", b"", b"+x", b"-a", b"]a"])

    def op_zadd(self):
        rng = self.rng
        k = self.zset_key()
        if rng.random() < 0.2:
            return Op([self.name("zincrby"), k, self.score(), self.member()], keys=[k])
        args = [self.name("zadd"), k]
        if rng.random() < 0.5:
            options = [o for o in [b"NX", b"XX", b"GT", b"LT", b"CH", b"INCR", b"ch"]
                       if rng.random() < 0.25]
            rng.shuffle(options)
            args += options
        for _ in range(rng.randrange(1, 4)):
            args += [self.score(), self.member()]
        if rng.random() < 0.05:
            args.append(self.member())  # an odd count: syntax error
        return Op(args, keys=[k])

    def op_zrem(self):
        rng = self.rng
        k = self.zset_key()
        if rng.random() < 0.4:
            name = rng.choice(["zremrangebyrank", "zremrangebyscore", "zremrangebylex"])
            if name == "zremrangebyrank":
                bounds = [self.index_arg(), self.index_arg()]
            elif name == "zremrangebyscore":
                bounds = [self.score_bound(), self.score_bound()]
            else:
                bounds = [self.lex_bound(), self.lex_bound()]
            return Op([self.name(name), k] + bounds, keys=[k])
        return Op([self.name("zrem"), k] + [self.member() for _ in range(self.rng.randrange(1, 4))],
                  keys=[k])

    def op_zread(self):
        rng = self.rng
        k = self.zset_key()
        name = rng.choice(["zscore", "zmscore", "zcard", "zrank", "zrevrank", "type", "zcount",
                           "zlexcount"])
        if name in ("zcard", "type"):
            return Op([self.name(name), k], keys=[k])
        if name == "zmscore":
            return Op([self.name(name), k] + [self.member() for _ in range(rng.randrange(1, 4))],
                      keys=[k])
        if name == "zcount":
            return Op([self.name(name), k, self.score_bound(), self.score_bound()], keys=[k])
        if name == "zlexcount":
            return Op([self.name(name), k, self.lex_bound(), self.lex_bound()], keys=[k])
        return Op([self.name(name), k, self.member()], keys=[k])

    def op_zrange(self):
        rng = self.rng
        k = self.zset_key()
        name = rng.choice(["zrange", "zrange", "zrange", "zrevrange", "zrangebyscore",
                           "zrevrangebyscore", "zrangebylex", "zrevrangebylex"])
        by = {"zrangebyscore": "score", "zrevrangebyscore": "score", "zrangebylex": "lex",
              "zrevrangebylex": "lex"}.get(name)
        options = []
        if name == "zrange":
            by = rng.choice([None, None, "score", "lex"])
            if by:
                options.append(b"BYSCORE" if by == "score" else b"BYLEX")
            if rng.random() < 0.4:
                options.append(rng.choice([b"REV", b"rev"]))
        if rng.random() < 0.4:
            options.append(b"WITHSCORES")
        if rng.random() < (0.4 if by else 0.05):
            options += [b"LIMIT", rng.choice([b"0", b"1", b"2", b"-1", b"10", b"abc"]),
                        rng.choice([b"1", b"2", b"-1", b"0", b"-5", b"abc"])]
        if rng.random() < 0.03:
            options.append(rng.choice([b"BYSCORE", b"REV", b"LIMIT", b"FOO"]))
        rng.shuffle(options)
        if by == "score":
            bounds = [self.score_bound(), self.score_bound()]
        elif by == "lex":
            bounds = [self.lex_bound(), self.lex_bound()]
        else:
            bounds = [self.index_arg(), self.index_arg()]
        return Op([self.name(name), k] + bounds + options, keys=[k])

    def op_zpop(self):
        rng = self.rng
        k = self.zset_key()
        args = [self.name(rng.choice(["zpopmin", "zpopmax"])), k]
        if rng.random() < 0.5:
            args.append(rng.choice([b"1", b"2", b"100", b"0", b"-1", b"abc"]))
        if rng.random() < 0.03:
            args.append(b"1")
        return Op(args, keys=[k])

    def zalgebra_key(self):
        return self.rng.choice([b"z0", b"z1", b"z2", b"s0", b"s1", b"h0", self.key()])

    def op_zalgebra(self):
        rng = self.rng
        keys = [self.zalgebra_key() for _ in range(rng.randrange(1, 4))]
        name = rng.choice(["zunion", "zinter", "zdiff", "zunionstore", "zinterstore",
                           "zdiffstore", "zintercard"])
        store = name.endswith("store")
        dst = self.zset_key() if store else None
        numkeys = str(len(keys)).encode()
        if rng.random() < 0.05:
            numkeys = rng.choice([b"0", b"-1", b"9", b"abc"])
        args = [self.name(name)] + ([dst] if store else []) + [numkeys] + keys
        if name == "zintercard":
            if rng.random() < 0.3:
                args += [b"LIMIT", rng.choice([b"0", b"1", b"2", b"-1", b"abc"])]
        else:
            if name not in ("zdiff", "zdiffstore") or rng.random() < 0.05:
                if rng.random() < 0.4:
                    args += [b"WEIGHTS"] + [rng.choice([b"1", b"2", b"-1", b"0.5", b"0", b"inf",
                                                        b"abc"])
                                            for _ in range(len(keys))]
                if rng.random() < 0.4:
                    args += [b"AGGREGATE", rng.choice([b"SUM", b"min", b"MAX", b"foo"])]
            if not store and rng.random() < 0.5:
                args.append(b"WITHSCORES")
            if rng.random() < 0.03:
                args.append(rng.choice([b"WEIGHTS", b"LIMIT", b"FOO"]))
        return Op(args, keys=([dst] if store else []) + keys)

    def op_zrangestore(self):
        rng = self.rng
        dst, src = self.zset_key(), self.zalgebra_key()
        by = rng.choice([None, "score", "lex"])
        options = []
        if by:
            options.append(b"BYSCORE" if by == "score" else b"BYLEX")
        if rng.random() < 0.3:
            options.append(b"REV")
        if rng.random() < (0.4 if by else 0.05):
            options += [b"LIMIT", rng.choice([b"0", b"1", b"-1", b"abc"]),
                        rng.choice([b"1", b"2", b"-1"])]
        if rng.random() < 0.05:
            options.append(b"WITHSCORES")
        if by == "score":
            bounds = [self.score_bound(), self.score_bound()]
        elif by == "lex":
            bounds = [self.lex_bound(), self.lex_bound()]
        else:
            bounds = [self.index_arg(), self.index_arg()]
        return Op([self.name("zrangestore"), dst, src] + bounds + options, keys=[dst, src])

    def op_zrandmember(self):
        rng = self.rng
        k = self.zalgebra_key()
        args = [self.name("zrandmember"), k]
        if rng.random() < 0.7:
            args.append(rng.choice([b"1", b"3", b"100", b"-2", b"0", b"abc", MIN]))
            if rng.random() < 0.4:
                args.append(rng.choice([b"WITHSCORES", b"withscores", b"FOO"]))
        return Op(args, kind="srandmember", keys=[k])

    def op_zscan(self):
        rng = self.rng
        k = self.zalgebra_key()
        opts = []
        if rng.random() < 0.4:
            opts += [b"MATCH", rng.choice([b"a*", b"*", b"[ab]", b"?"])]
        if rng.random() < 0.4:
            opts += [b"COUNT", rng.choice([b"1", b"100"])]
        return Op([b"ZSCAN", k, b"0"] + opts, kind="zscan", keys=[k])

    def op_object(self):
        rng = self.rng
        k = rng.choice([self.zalgebra_key(), self.key(), b"h0", b"l0"])
        sub = rng.choice([b"ENCODING", b"ENCODING", b"REFCOUNT", b"FREQ", b"encoding"])
        if rng.random() < 0.03:
            return Op([self.name("object"), rng.choice([b"HELP", b"FOO"])], keys=[k])
        return Op([self.name("object"), sub, k], kind="encoding", keys=[k])

    # -- lists ---------------------------------------------------------------------------------

    def list_key(self):
        return self.rng.choice([b"l0", b"l1", b"l2", b"l0", b"s0", self.key()])

    def list_end(self):
        if self.rng.random() < 0.03:
            return self.rng.choice([b"up", b""])
        return self.rng.choice([b"LEFT", b"RIGHT", b"left", b"right"])

    def op_lpush(self):
        rng = self.rng
        k = self.list_key()
        name = rng.choice(["lpush", "rpush", "lpush", "rpush", "lpushx", "rpushx"])
        return Op([self.name(name), k] + [self.member() for _ in range(rng.randrange(1, 5))],
                  keys=[k])

    def op_lpop(self):
        rng = self.rng
        k = self.list_key()
        args = [self.name(rng.choice(["lpop", "rpop"])), k]
        if rng.random() < 0.4:
            args.append(rng.choice([b"1", b"2", b"10", b"0", b"-1", b"abc", MAX]))
        return Op(args, keys=[k])

    def op_lread(self):
        rng = self.rng
        k = self.list_key()
        name = rng.choice(["llen", "lrange", "lrange", "lindex", "type"])
        if name in ("llen", "type"):
            return Op([self.name(name), k], keys=[k])
        if name == "lindex":
            return Op([self.name(name), k, self.index_arg()], keys=[k])
        return Op([self.name(name), k, self.index_arg(), self.index_arg()], keys=[k])

    def op_lchange(self):
        rng = self.rng
        k = self.list_key()
        name = rng.choice(["lset", "linsert", "linsert", "lrem", "ltrim"])
        if name == "lset":
            return Op([self.name(name), k, self.index_arg(), self.member()], keys=[k])
        if name == "linsert":
            where = rng.choice([b"BEFORE", b"after", b"AFTER", b"before", b"middle"])
            return Op([self.name(name), k, where, self.member(), self.member()], keys=[k])
        if name == "lrem":
            return Op([self.name(name), k, rng.choice([b"0", b"1", b"-1", b"2", b"-2", MIN, b"x"]),
                       self.member()], keys=[k])
        return Op([self.name(name), k, self.index_arg(), self.index_arg()], keys=[k])

    def op_lpos(self):
        rng = self.rng
        k = self.list_key()
        args = [self.name("lpos"), k, self.member()]
        for option, values in ((b"RANK", [b"1", b"2", b"-1", b"-3", b"0", MIN, b"x"]),
                               (b"COUNT", [b"0", b"1", b"3", b"-1"]),
                               (b"MAXLEN", [b"0", b"2", b"5", b"-1"])):
            if rng.random() < 0.4:
                args += [option, rng.choice(values)]
        return Op(args, keys=[k])

    def op_lmove(self):
        rng = self.rng
        a, b = self.list_key(), self.list_key()
        if rng.random() < 0.3:
            return Op([self.name("rpoplpush"), a, b], keys=[a, b])
        return Op([self.name("lmove"), a, b, self.list_end(), self.list_end()], keys=[a, b])

    def lmpop_args(self):
        rng = self.rng
        keys = [self.list_key() for _ in range(rng.randrange(1, 4))]
        numkeys = str(len(keys)).encode()
        if rng.random() < 0.05:
            numkeys = rng.choice([b"0", b"9", b"abc", b"-1"])
        args = [numkeys] + keys + [self.list_end()]
        if rng.random() < 0.4:
            args += [b"COUNT", rng.choice([b"1", b"2", b"10", b"0", b"-1", b"abc"])]
        return args, keys

    def op_lmpop(self):
        args, keys = self.lmpop_args()
        return Op([self.name("lmpop")] + args, keys=keys)

    def op_lblocking(self):
        """Blocking pops whose outcome does not depend on timing: a list that has an element
        answers at once, an empty one waits the same 10 ms on both servers (nobody pushes)."""
        rng = self.rng
        timeout = rng.choice([b"0.01", b"0.01", b"0.02", b"-1", b"abc"])
        name = rng.choice(["blpop", "brpop", "blmove", "brpoplpush", "blmpop"])
        if name in ("blpop", "brpop"):
            keys = [self.list_key() for _ in range(rng.randrange(1, 3))]
            return Op([self.name(name)] + keys + [timeout], keys=keys)
        if name == "blmpop":
            args, keys = self.lmpop_args()
            return Op([self.name(name), timeout] + args, keys=keys)
        a, b = self.list_key(), self.list_key()
        if name == "brpoplpush":
            return Op([self.name(name), a, b, timeout], keys=[a, b])
        return Op([self.name(name), a, b, self.list_end(), self.list_end(), timeout],
                  keys=[a, b])

    # -- streams (explicit IDs only: a `*` ID would come from each server's clock) ----------

    def stream_key(self):
        return self.rng.choice([b"x0", b"x1", b"x0", b"l0", self.key()])

    def stream_id(self, bounds=False):
        rng = self.rng
        r = rng.random()
        if r < 0.04:
            return rng.choice([b"0-0", b"abc", b"1-2-3", b"-1", MAX + b"-" + MAX, b""])
        if bounds and r < 0.25:
            return rng.choice([b"-", b"+", b"(3", b"(10-1", b"(-", b"(+"])
        ms = str(rng.randrange(1, 30)).encode()
        if rng.random() < 0.3:
            return ms
        return ms + b"-" + str(rng.randrange(0, 4)).encode()

    def trim_args(self):
        rng = self.rng
        strategy = rng.choice([b"MAXLEN", b"MINID", b"maxlen"])
        args = [strategy]
        if rng.random() < 0.4:
            args.append(rng.choice([b"=", b"~"]))
        if strategy == b"MINID":
            args.append(self.stream_id())
        else:
            args.append(rng.choice([b"0", b"1", b"3", b"10", b"-1", b"x"]))
        if rng.random() < 0.1:
            args += [b"LIMIT", rng.choice([b"0", b"5", b"-1"])]
        return args

    def op_xadd(self):
        rng = self.rng
        k = self.stream_key()
        args = [self.name("xadd"), k]
        if rng.random() < 0.1:
            args.append(b"NOMKSTREAM")
        if rng.random() < 0.15:
            args += self.trim_args()
        if rng.random() < 0.2:
            args.append(str(rng.randrange(1, 30)).encode() + b"-*")
        else:
            args.append(self.stream_id())
        for _ in range(rng.randrange(1, 3)):
            args += [self.member(), self.value()]
        if rng.random() < 0.03:
            args.pop()
        return Op(args, keys=[k])

    def op_xread(self):
        rng = self.rng
        k = self.stream_key()
        name = rng.choice(["xrange", "xrevrange", "xrange", "xlen", "xread", "type"])
        if name in ("xlen", "type"):
            return Op([self.name(name), k], keys=[k])
        if name == "xread":
            keys = [k] + ([self.stream_key()] if rng.random() < 0.3 else [])
            args = [self.name("xread")]
            if rng.random() < 0.4:
                args += [b"COUNT", rng.choice([b"1", b"2", b"0", b"-1", b"x"])]
            ids = [rng.choice([b"0", b"$", self.stream_id()]) for _ in keys]
            return Op(args + [b"STREAMS"] + keys + ids, keys=keys)
        args = [self.name(name), k, self.stream_id(True), self.stream_id(True)]
        if rng.random() < 0.4:
            args += [b"COUNT", rng.choice([b"1", b"2", b"0", b"-1", b"x"])]
        return Op(args, keys=[k])

    def op_xdel(self):
        k = self.stream_key()
        return Op([self.name("xdel"), k] + [self.stream_id()
                                              for _ in range(self.rng.randrange(1, 4))],
                  keys=[k])

    def op_xtrim(self):
        k = self.stream_key()
        return Op([self.name("xtrim"), k] + self.trim_args(), keys=[k])

    # -- more bits, LCS, COPY ------------------------------------------------------------------

    def bit_type(self):
        rng = self.rng
        if rng.random() < 0.08:
            return rng.choice([b"u64", b"i65", b"i0", b"x8", b"I8", b"", b"u"])
        return rng.choice([b"i", b"u"]) + str(rng.randrange(1, 64)).encode()

    def op_bit2(self):
        rng = self.rng
        k = self.key()
        name = rng.choice(["bitpos", "bitpos", "bitop", "bitfield", "bitfield", "bitfield_ro",
                           "lcs"])
        if name == "bitpos":
            args = [self.name(name), k, rng.choice([b"0", b"1", b"1", b"2", b"abc"])]
            if rng.random() < 0.6:
                args.append(self.index_arg())
                if rng.random() < 0.6:
                    args.append(self.index_arg())
                    if rng.random() < 0.4:
                        args.append(rng.choice([b"BIT", b"byte", b"FOO"]))
            return Op(args, keys=[k])
        if name == "bitop":
            op = rng.choice([b"AND", b"or", b"XOR", b"NOT", b"FOO"])
            srcs = [self.key() for _ in range(1 if op == b"NOT" and rng.random() < 0.9
                                              else rng.randrange(1, 4))]
            dst = self.key()
            return Op([self.name(name), op, dst] + srcs, keys=[dst] + srcs)
        if name == "lcs":
            a, b = self.key(), self.key()
            args = [self.name(name), a, b]
            for option in (b"LEN", b"IDX", b"WITHMATCHLEN"):
                if rng.random() < 0.3:
                    args.append(option)
            if rng.random() < 0.2:
                args += [b"MINMATCHLEN", rng.choice([b"0", b"2", b"-1", b"abc"])]
            return Op(args, keys=[a, b])
        args = [self.name(name), k]
        for _ in range(rng.randrange(0, 4)):
            sub = rng.choice([b"GET", b"SET", b"INCRBY", b"OVERFLOW"]) if name == "bitfield" \
                else rng.choice([b"GET", b"GET", b"GET", b"SET"])
            if sub == b"OVERFLOW":
                args += [sub, rng.choice([b"WRAP", b"sat", b"FAIL", b"FAIL", b"foo"])]
                continue
            offset = (b"#" if rng.random() < 0.3 else b"") + self.bit_offset()
            args += [sub, self.bit_type(), offset]
            if sub != b"GET":
                args.append(rng.choice([self.integer_arg(), b"1", b"-1", b"100", b"300"]))
        if rng.random() < 0.03:
            args.append(b"GET")
        return Op(args, keys=[k])

    def op_copy(self):
        rng = self.rng
        src = rng.choice([self.key(), self.zalgebra_key()])
        dst = rng.choice([self.key(), self.zalgebra_key()])
        args = [self.name("copy"), src, dst]
        if rng.random() < 0.4:
            args.append(b"REPLACE")
        if rng.random() < 0.1:
            args += [b"DB", rng.choice([b"0", b"abc"])]
        if rng.random() < 0.03:
            args.append(b"FOO")
        return Op(args, keys=[src, dst])

    def op_randomkey(self):
        return Op([self.name("randomkey")], kind="randomkey", keys=ALL)

    def op_dbsize(self):
        return Op([self.name("dbsize")], kind="dbsize", keys=ALL)

    def op_flush(self):
        args = [self.name(self.rng.choice(["flushall", "flushdb"]))]
        if self.rng.random() < 0.3:
            args.append(self.rng.choice([b"ASYNC", b"SYNC", b"FOO"]))
        return Op(args, keys=ALL)

    def op_misc(self):
        rng = self.rng
        choice = rng.randrange(6)
        if choice == 0:
            return Op([self.name("ping")])
        if choice == 1:
            return Op([self.name("ping"), self.value()])
        if choice == 2:
            return Op([self.name("echo"), self.value()])
        if choice == 3:
            return Op([self.name("select"), rng.choice([b"0", b"1", b"-1", b"abc", b"16"])])
        if choice == 4:
            return Op([rng.choice([b"NOSUCHCMD", b"gett", b"SETT"]), self.key(), self.value()])
        return Op([self.name("type"), self.key()], keys=ALL)

    def op_wrong_arity(self):
        rng = self.rng
        name = rng.choice(sorted(ARITY))
        arity = ARITY[name]
        if arity > 0:
            choices = [n for n in (arity - 1, arity + 1) if n >= 1]
            n = rng.choice(choices)
        else:
            n = -arity - 1
            if n < 1:
                return self.op_get()
        args = [self.name(name)] + [self.key() for _ in range(n - 1)]
        return Op(args, keys=ALL)


class Driver:
    def __init__(self, ref_port, target_port, seed, resp3):
        self.ref = RawConn(ref_port)
        self.tgt = RawConn(target_port)
        self.seed = seed
        self.pending = {}  # key -> monotonic time after which its short expiry has passed
        self.history = []
        if resp3:
            for c in (self.ref, self.tgt):
                reply = c.cmd("HELLO", "3")
                assert isinstance(reply, dict), reply
        for c in (self.ref, self.tgt):
            assert c.cmd("FLUSHALL") == b"OK"

    def close(self):
        self.ref.close()
        self.tgt.close()

    def both(self, args):
        data = encode_command(*args)
        self.ref.send(data)
        self.tgt.send(data)
        return self.ref.read_frame(), self.tgt.read_frame()

    def fail(self, index, op, ref, tgt, why):
        lines = ["differential mismatch (%s)" % why,
                 "  seed=%d index=%d" % (self.seed, index),
                 "  command:  %r" % (op.args,),
                 "  redis:    %r" % (ref,),
                 "  target:   %r" % (tgt,),
                 "  rerun:    CAIRN_DIFF_SEED=%d CAIRN_DIFF_OPS=%d" % (self.seed, index + 1),
                 "  previous commands:"]
        lines += ["    %r" % (h,) for h in self.history[-12:]]
        pytest.fail("\n".join(lines), pytrace=False)

    def wait_for_short_expiries(self, keys):
        if keys == ALL:
            waiting = list(self.pending.values())
            self.pending.clear()
        else:
            waiting = [self.pending.pop(k) for k in keys if k in self.pending]
        if waiting:
            delay = max(waiting) - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def full_scan(self, conn, opts):
        keys = set()
        cursor = b"0"
        for _ in range(100000):
            reply = conn.cmd(b"SCAN", cursor, *opts)
            if isinstance(reply, ErrorReply):
                return reply
            cursor, batch = reply
            keys.update(batch)
            if cursor == b"0":
                return sorted(keys)
        raise AssertionError("SCAN did not finish")

    def full_hscan(self, conn, key, opts, command=b"HSCAN"):
        pairs = set()
        cursor = b"0"
        for _ in range(100000):
            reply = conn.cmd(command, key, cursor, *opts)
            if isinstance(reply, ErrorReply):
                return reply
            cursor, batch = reply
            pairs.update(zip(batch[0::2], batch[1::2]))
            if cursor == b"0":
                return sorted(pairs)
        raise AssertionError("HSCAN did not finish")

    @staticmethod
    def as_pairs(value):
        if isinstance(value, dict):
            return sorted(value.items())
        if isinstance(value, list):
            return sorted(zip(value[0::2], value[1::2]))
        return value

    def hrandfield_same(self, op, ref, tgt):
        if isinstance(ref, ErrorReply) or isinstance(tgt, ErrorReply) or ref is None:
            return None  # compare the raw bytes
        if not isinstance(ref, list):
            return isinstance(tgt, bytes)
        if not isinstance(tgt, list) or len(ref) != len(tgt):
            return False
        if not tgt:
            return True
        fields = set(self.tgt.cmd(b"HKEYS", op.args[1]))
        flat = [e[0] if isinstance(e, list) else e for e in tgt]
        if len(op.args) == 4:
            flat = flat if isinstance(tgt[0], list) else flat[0::2]
        return all(f in fields for f in flat)

    def full_sscan(self, conn, key, opts):
        members = set()
        cursor = b"0"
        for _ in range(100000):
            reply = conn.cmd(b"SSCAN", key, cursor, *opts)
            if isinstance(reply, ErrorReply):
                return reply
            cursor, batch = reply
            members.update(batch)
            if cursor == b"0":
                return sorted(members)
        raise AssertionError("SSCAN did not finish")

    def random_pick_same(self, op, ref_raw, ref, tgt_raw, tgt):
        """SPOP/SRANDMEMBER: the same kind and size of reply; members are checked by the final
        state and by later commands (SPOP removes what it returned on both sides only if the
        same members were chosen, so the popped sets are made equal again afterwards)."""
        if isinstance(ref, ErrorReply) or ref is None or isinstance(ref, (bytes, int)):
            if isinstance(ref, bytes):
                return isinstance(tgt, bytes)
            return ref_raw == tgt_raw
        return type(ref) == type(tgt) and len(ref) == len(tgt)

    def run_op(self, index, op):
        self.wait_for_short_expiries(op.keys)
        if op.kind == "sscan":
            ref = self.full_sscan(self.ref, op.args[1], op.args[3:])
            tgt = self.full_sscan(self.tgt, op.args[1], op.args[3:])
            if ref != tgt:
                self.fail(index, op, ref, tgt, "SSCAN full iteration members differ")
            self.history.append(op.args)
            return
        if op.kind in ("spop", "srandmember"):
            (ref_raw, ref), (tgt_raw, tgt) = self.both(op.args)
            if not self.random_pick_same(op, ref_raw, ref, tgt_raw, tgt):
                self.fail(index, op, ref_raw, tgt_raw, "random pick replies differ in shape")
            if op.kind == "spop" and not isinstance(ref, ErrorReply):
                # Each side popped its own random choice: make both hold redis's result again.
                key = op.args[1]
                members = self.ref.cmd(b"SMEMBERS", key) if self.ref.cmd(b"TYPE", key) in (
                    b"set", "set") else None
                if members is not None:
                    self.tgt.cmd(b"DEL", key)
                    self.tgt.cmd(b"SADD", key, *members)
                    ttl = self.ref.cmd(b"PTTL", key)
                    if isinstance(ttl, int) and ttl > 0:
                        self.tgt.cmd(b"PEXPIRE", key, ttl)
                else:
                    self.tgt.cmd(b"DEL", key)
            self.history.append(op.args)
            return
        if op.kind == "exact" and op.args[0].upper() == b"SCAN" and len(op.args) >= 2:
            # An odd option that is still valid (TYPE -1) answers a page whose cursor differs
            # (a documented difference): compared by the keys of a full iteration instead.
            (ref_raw, ref), (tgt_raw, tgt) = self.both(op.args)
            if isinstance(ref, ErrorReply) or isinstance(tgt, ErrorReply):
                if ref_raw != tgt_raw:
                    self.fail(index, op, ref_raw, tgt_raw, "replies differ")
            elif self.full_scan(self.ref, op.args[2:]) != self.full_scan(self.tgt, op.args[2:]):
                self.fail(index, op, ref_raw, tgt_raw, "SCAN full iteration key sets differ")
            self.history.append(op.args)
            return
        if op.kind == "zscan":
            ref = self.full_hscan(self.ref, op.args[1], op.args[3:], b"ZSCAN")
            tgt = self.full_hscan(self.tgt, op.args[1], op.args[3:], b"ZSCAN")
            if ref != tgt:
                self.fail(index, op, ref, tgt, "ZSCAN full iteration pairs differ")
        elif op.kind == "hscan":
            ref = self.full_hscan(self.ref, op.args[1], op.args[3:])
            tgt = self.full_hscan(self.tgt, op.args[1], op.args[3:])
            if ref != tgt:
                self.fail(index, op, ref, tgt, "HSCAN full iteration pairs differ")
        elif op.kind == "scan":
            ref = self.full_scan(self.ref, op.args[2:])
            tgt = self.full_scan(self.tgt, op.args[2:])
            if ref != tgt:
                self.fail(index, op, ref, tgt, "SCAN full iteration key sets differ")
        elif op.kind == "randomkey":
            (_, ref), (_, tgt) = self.both(op.args)
            ref_keys = set(self.ref.cmd("KEYS", "*"))
            tgt_keys = set(self.tgt.cmd("KEYS", "*"))
            ok = (tgt is None) == (not tgt_keys) and (tgt is None or tgt in tgt_keys)
            if not ok or (ref is None) != (tgt is None):
                self.fail(index, op, (ref, sorted(ref_keys)), (tgt, sorted(tgt_keys)),
                          "RANDOMKEY")
        else:
            if op.kind == "dbsize":
                for k in KEYS:
                    self.both([b"EXISTS", k])
            (ref_raw, ref), (tgt_raw, tgt) = self.both(op.args)
            if op.kind in TOLERANCE:
                same = ref_raw == tgt_raw or (
                    isinstance(ref, int) and isinstance(tgt, int) and ref >= 0 and tgt >= 0
                    and abs(ref - tgt) <= TOLERANCE[op.kind])
            elif op.kind == "sorted" and isinstance(ref, list) and isinstance(tgt, list):
                same = sorted(ref) == sorted(tgt) and type(ref) == type(tgt)
            elif op.kind == "pairs" and isinstance(ref, (list, dict)):
                same = self.as_pairs(ref) == self.as_pairs(tgt)
            elif op.kind == "encoding" and isinstance(ref, int) and isinstance(tgt, int):
                # REFCOUNT: whether Redis shares a small integer depends on how it was built.
                same = {ref, tgt} <= {1, 2147483647}
            elif op.kind == "encoding" and isinstance(ref, bytes) and isinstance(tgt, bytes):
                same = ref == tgt or {ref, tgt} <= {b"int", b"embstr", b"raw"} or (
                    (ref, tgt) in {(b"hashtable", b"listpack"), (b"hashtable", b"intset"),
                                   (b"skiplist", b"listpack")})
            elif op.kind == "hrandfield" and self.hrandfield_same(op, ref, tgt) is not None:
                same = self.hrandfield_same(op, ref, tgt)
            else:
                same = ref_raw == tgt_raw
            if not same:
                self.fail(index, op, ref_raw, tgt_raw, "replies differ")
        self.history.append(op.args)
        now = time.monotonic()
        for k, ms in op.short.items():
            deadline = now + ms / 1000.0 + SHORT_EXPIRY_MARGIN_S
            self.pending[k] = max(deadline, self.pending.get(k, 0))

    def compare_final_state(self, index):
        self.wait_for_short_expiries(ALL)
        ref_keys = sorted(self.ref.cmd("KEYS", "*"))
        tgt_keys = sorted(self.tgt.cmd("KEYS", "*"))
        op = Op([b"<final state>"])
        if ref_keys != tgt_keys:
            self.fail(index, op, ref_keys, tgt_keys, "final key sets differ")
        for k in ref_keys:
            (ra, _), (ta, _) = self.both([b"TYPE", k])
            if ra != ta:
                self.fail(index, Op([b"TYPE", k]), ra, ta, "final types differ")
            (_, rh), (_, th) = self.both([b"HGETALL", k])
            if self.as_pairs(rh) != self.as_pairs(th) and not isinstance(rh, ErrorReply):
                self.fail(index, Op([b"HGETALL", k]), rh, th, "final hashes differ")
            (_, rs), (_, ts) = self.both([b"SMEMBERS", k])
            if not isinstance(rs, ErrorReply) and sorted(rs) != sorted(ts):
                self.fail(index, Op([b"SMEMBERS", k]), rs, ts, "final sets differ")
            (rz, rzv), (tz, _) = self.both([b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"])
            if rz != tz and not isinstance(rzv, ErrorReply):
                self.fail(index, Op([b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"]), rz, tz,
                          "final sorted sets differ")
            (rl, _), (tl, _) = self.both([b"LRANGE", k, b"0", b"-1"])
            if rl != tl:
                self.fail(index, Op([b"LRANGE", k, b"0", b"-1"]), rl, tl, "final lists differ")
            (ra, _), (ta, _) = self.both([b"GET", k])
            if ra != ta:
                self.fail(index, Op([b"GET", k]), ra, ta, "final values differ")
            (_, rt), (_, tt) = self.both([b"PTTL", k])
            if (rt < 0 or tt < 0) and rt != tt or abs(rt - tt) > 100:
                self.fail(index, Op([b"PTTL", k]), rt, tt, "final TTLs differ")


@pytest.fixture(scope="module")
def diff_pair(redis_ref, server):
    return redis_ref, server


@pytest.mark.parametrize("seed", SEEDS)
def test_differential(diff_pair, seed):
    ref, target = diff_pair
    gen = Generator(seed)
    # Odd seeds run over RESP3, even ones over RESP2.
    driver = Driver(ref.port, target.port, seed, resp3=(seed % 2 == 1))
    try:
        for i in range(OPS):
            driver.run_op(i, gen.op())
        driver.compare_final_state(OPS)
    finally:
        driver.close()


def test_big_sorted_set_ranges_match_redis(diff_pair):
    """Sorted sets bigger than redis-server's listpack encoding (a skiplist there; 5,000 members:
    several rank blocks in Cairn), read from both ends and the middle: ranks anywhere, ZREVRANGE, ZREVRANGEBYSCORE with LIMIT,
    ZPOPMAX, ZREVRANK, and lex ranges on a set whose members all share one score (read by a
    seek), with random bounds. Every reply must equal redis-server's."""
    import random

    import redis as redis_py
    ref, target = diff_pair
    clients = [redis_py.Redis(port=ref.port), redis_py.Redis(port=target.port)]
    rng = random.Random(7)
    for c in clients:
        c.flushall()
        c.zadd("scores", {"m%04d" % i: (i * 37 % 500) / 4 for i in range(5000)})
        c.zadd("lex", {"w%04d" % i: 0 for i in range(0, 1200, 2)})
    members = ["w%04d" % i for i in range(0, 1210, 3)] + ["", "w", "x", "w0600\x00"]

    def lex_bound():
        kind = rng.random()
        if kind < 0.1:
            return rng.choice(["-", "+"])
        return rng.choice(["[", "("]) + rng.choice(members)

    def score_bound():
        return rng.choice(["", "("]) + str(rng.randrange(-20, 140))

    for _ in range(600):
        n = rng.randrange(10)
        if n == 0:
            first = rng.randrange(-5020, 5020)
            args = ["ZRANGE", "scores", first, first + rng.randrange(-5, 40)]
        elif n == 1:
            args = ["ZREVRANGE", "scores", rng.randrange(0, 30), rng.randrange(0, 60),
                    "WITHSCORES"]
        elif n == 2:
            args = ["ZREVRANGEBYSCORE", "scores", score_bound(), score_bound(), "LIMIT",
                    rng.randrange(0, 5), rng.randrange(-1, 8)]
        elif n == 3:
            args = ["ZRANGEBYSCORE", "scores", score_bound(), score_bound(), "LIMIT",
                    rng.randrange(-1, 5), rng.randrange(-1, 8)]
        elif n == 4:
            args = [rng.choice(["ZRANK", "ZREVRANK"]), "scores", "m%04d" % rng.randrange(5010)]
        elif n == 5:
            args = ["ZRANGEBYLEX", "lex", lex_bound(), lex_bound()]
        elif n == 6:
            args = ["ZREVRANGEBYLEX", "lex", lex_bound(), lex_bound(), "LIMIT",
                    rng.randrange(0, 4), rng.randrange(-1, 6)]
        elif n == 7:
            args = ["ZLEXCOUNT", "lex", lex_bound(), lex_bound()]
        elif n == 8:
            args = ["ZRANGE", "lex", lex_bound(), lex_bound(), "BYLEX", "REV", "LIMIT", 0, 5]
        else:
            args = [rng.choice(["ZPOPMAX", "ZPOPMIN"]), rng.choice(["scores", "lex"]),
                    rng.randrange(0, 3)]
        replies = []
        for c in clients:
            try:
                replies.append(c.execute_command(*args))
            except redis_py.ResponseError as e:
                replies.append("error: %s" % e)
        assert replies[0] == replies[1], (args, replies)
