"""XXH3-64 (seed 0, default secret) in pure Python, to compute Cairn tokens from tests.

Cairn places a key on the ring by its Redis Cluster slot and XXH3_64bits of the key or of its
{hash tag}: token = slot << 50 | xxh3 >> 14 (src/topology/token.h, docs/formats.md). The tests
need the same function to pick keys on a given shard without asking a server. This follows the published XXH3 algorithm for every input length (0-3, 4-8,
9-16, 17-128, 129-240 bytes and the long, striped path); test_xxh3.py checks it against the
system's libxxhash on many lengths. Speed is irrelevant here: keys are short.
"""

import binascii
import struct

_M64 = (1 << 64) - 1

_P32_1 = 0x9E3779B1
_P32_2 = 0x85EBCA77
_P32_3 = 0xC2B2AE3D
_P64_1 = 0x9E3779B185EBCA87
_P64_2 = 0xC2B2AE3D27D4EB4F
_P64_3 = 0x165667B19E3779F9
_P64_4 = 0x85EBCA77C2B2AE63
_P64_5 = 0x27D4EB2F165667C5
_PMX1 = 0x165667919E3779F9
_PMX2 = 0x9FB21C651E98DF25

# The 192-byte default secret of the XXH3 specification.
_SECRET = bytes.fromhex(
    "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f"
    "cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
    "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8"
    "a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364"
    "eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e"
    "2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e"
)
assert len(_SECRET) == 192

_STRIPE = 64
_STRIPES_PER_BLOCK = (len(_SECRET) - _STRIPE) // 8
_BLOCK = _STRIPE * _STRIPES_PER_BLOCK


def _r64(b, i):
    return struct.unpack_from("<Q", b, i)[0]


def _r32(b, i):
    return struct.unpack_from("<I", b, i)[0]


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & _M64


def _swap64(x):
    return int.from_bytes(x.to_bytes(8, "little"), "big")


def _fold(a, b):
    p = a * b
    return (p ^ (p >> 64)) & _M64


def _avalanche64(h):  # the XXH64 finalizer
    h ^= h >> 33
    h = (h * _P64_2) & _M64
    h ^= h >> 29
    h = (h * _P64_3) & _M64
    return h ^ (h >> 32)


def _avalanche(h):
    h ^= h >> 37
    h = (h * _PMX1) & _M64
    return h ^ (h >> 32)


def _rrmxmx(h, n):
    h ^= _rotl(h, 49) ^ _rotl(h, 24)
    h = (h * _PMX2) & _M64
    h ^= (h >> 35) + n
    h = (h * _PMX2) & _M64
    return h ^ (h >> 28)


def _mix16(data, i, s):
    return _fold(_r64(data, i) ^ _r64(_SECRET, s), _r64(data, i + 8) ^ _r64(_SECRET, s + 8))


def _accumulate_512(acc, data, i, s):
    for lane in range(8):
        val = _r64(data, i + 8 * lane)
        key = val ^ _r64(_SECRET, s + 8 * lane)
        acc[lane ^ 1] = (acc[lane ^ 1] + val) & _M64
        acc[lane] = (acc[lane] + (key & 0xFFFFFFFF) * (key >> 32)) & _M64


def _scramble(acc, s):
    for lane in range(8):
        a = acc[lane]
        a ^= a >> 47
        a ^= _r64(_SECRET, s + 8 * lane)
        acc[lane] = (a * _P32_1) & _M64


def _long(data):
    n = len(data)
    acc = [_P32_3, _P64_1, _P64_2, _P64_3, _P64_4, _P32_2, _P64_5, _P32_1]
    blocks = (n - 1) // _BLOCK
    for b in range(blocks):
        for st in range(_STRIPES_PER_BLOCK):
            _accumulate_512(acc, data, b * _BLOCK + st * _STRIPE, st * 8)
        _scramble(acc, len(_SECRET) - _STRIPE)
    stripes = ((n - 1) - _BLOCK * blocks) // _STRIPE
    for st in range(stripes):
        _accumulate_512(acc, data, blocks * _BLOCK + st * _STRIPE, st * 8)
    _accumulate_512(acc, data, n - _STRIPE, len(_SECRET) - _STRIPE - 7)
    result = (n * _P64_1) & _M64
    for k in range(4):
        result += _fold(acc[2 * k] ^ _r64(_SECRET, 11 + 16 * k),
                        acc[2 * k + 1] ^ _r64(_SECRET, 11 + 16 * k + 8))
    return _avalanche(result & _M64)


def xxh3_64(data):
    """XXH3_64bits(data) with seed 0 and the default secret."""
    if isinstance(data, str):
        data = data.encode()
    data = bytes(data)
    n = len(data)
    if n == 0:
        return _avalanche64(_r64(_SECRET, 56) ^ _r64(_SECRET, 64))
    if n <= 3:
        combined = (data[0] << 16) | (data[n >> 1] << 24) | data[n - 1] | (n << 8)
        return _avalanche64(combined ^ (_r32(_SECRET, 0) ^ _r32(_SECRET, 4)))
    if n <= 8:
        v = (_r32(data, n - 4) + (_r32(data, 0) << 32)) & _M64
        return _rrmxmx(v ^ (_r64(_SECRET, 8) ^ _r64(_SECRET, 16)), n)
    if n <= 16:
        lo = _r64(data, 0) ^ (_r64(_SECRET, 24) ^ _r64(_SECRET, 32))
        hi = _r64(data, n - 8) ^ (_r64(_SECRET, 40) ^ _r64(_SECRET, 48))
        return _avalanche((n + _swap64(lo) + hi + _fold(lo, hi)) & _M64)
    if n <= 128:
        acc = n * _P64_1
        if n > 32:
            if n > 64:
                if n > 96:
                    acc += _mix16(data, 48, 96) + _mix16(data, n - 64, 112)
                acc += _mix16(data, 32, 64) + _mix16(data, n - 48, 80)
            acc += _mix16(data, 16, 32) + _mix16(data, n - 32, 48)
        acc += _mix16(data, 0, 0) + _mix16(data, n - 16, 16)
        return _avalanche(acc & _M64)
    if n <= 240:
        acc = n * _P64_1
        for i in range(8):
            acc += _mix16(data, 16 * i, 16 * i)
        acc = _avalanche(acc & _M64)
        for i in range(8, n // 16):
            acc += _mix16(data, 16 * i, 16 * (i - 8) + 3)
        acc += _mix16(data, n - 16, 136 - 17)
        return _avalanche(acc & _M64)
    return _long(data)


def hash_tag(key):
    """The bytes hashed for `key`: its non-empty {tag} if any, else the whole key (Redis rule)."""
    if isinstance(key, str):
        key = key.encode()
    key = bytes(key)
    open_ = key.find(b"{")
    if open_ < 0:
        return key
    close = key.find(b"}", open_ + 1)
    if close < 0 or close == open_ + 1:
        return key
    return key[open_ + 1:close]


SLOT_COUNT = 16384
SLOT_SHIFT = 50


def key_slot(key):
    """The Redis Cluster slot of `key`: CRC16-XMODEM of its hashed part mod 16384 (KEYSLOT)."""
    return binascii.crc_hqx(hash_tag(key), 0) % SLOT_COUNT


def token_of(key):
    """Cairn's token of `key` (src/topology/token.cc)."""
    hashed = hash_tag(key)
    return (binascii.crc_hqx(hashed, 0) % SLOT_COUNT) << SLOT_SHIFT | xxh3_64(hashed) >> 14
