"""xxh3.py agrees with the system's libxxhash (the library Cairn links) on every length path."""

import os
import shutil
import subprocess

import pytest

from xxh3 import hash_tag, key_slot, token_of, xxh3_64

_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>
int main(int argc, char** argv) {
  static unsigned char buf[4096];
  int max = atoi(argv[1]);
  for (int i = 0; i < (int)sizeof buf; i++) buf[i] = (unsigned char)(i * 131 + 7);
  for (int n = 0; n <= max; n++) printf("%d %llu\n", n, (unsigned long long)XXH3_64bits(buf, n));
  printf("tag %llu\n", (unsigned long long)XXH3_64bits("user1000", 8));
  return 0;
}
"""
MAX_LEN = 2100  # covers 0-3, 4-8, 9-16, 17-128, 129-240 and two full 1024-byte blocks + tail


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    if shutil.which("gcc") is None or not os.path.exists("/usr/include/xxhash.h"):
        pytest.fail("feature probe failed: gcc or libxxhash-dev missing: cannot build the "
                    "reference", pytrace=False)
    d = tmp_path_factory.mktemp("xxh3")
    (d / "ref.c").write_text(_PROGRAM)
    subprocess.run(["gcc", "-O1", "-o", str(d / "ref"), str(d / "ref.c"), "-lxxhash"],
                   check=True)
    out = subprocess.run([str(d / "ref"), str(MAX_LEN)], check=True, capture_output=True,
                         text=True).stdout
    table = {}
    for line in out.splitlines():
        k, v = line.split()
        table[k] = int(v)
    return table


def test_every_length_matches_libxxhash(reference):
    buf = bytes((i * 131 + 7) & 0xFF for i in range(4096))
    bad = [n for n in range(MAX_LEN + 1) if xxh3_64(buf[:n]) != reference[str(n)]]
    assert bad == [], "lengths with a different hash: %s" % bad[:20]


def test_hash_tag_rule(reference):
    assert hash_tag("{user1000}.following") == b"user1000"
    assert hash_tag("foo{}{bar}") == b"foo{}{bar}"  # empty first tag: whole key
    assert hash_tag("foo{{bar}}zap") == b"{bar"
    assert hash_tag("foo{bar}{zap}") == b"bar"
    assert hash_tag("nobraces") == b"nobraces"
    assert hash_tag("open{only") == b"open{only"
    assert token_of("{user1000}.following") == token_of("{user1000}.followers")
    # 3443 is redis-server's CLUSTER KEYSLOT user1000.
    assert token_of("{user1000}.x") == 3443 << 50 | reference["tag"] >> 14


def test_slots_are_redis_key_slots():
    # Values of redis-server 7.0's CLUSTER KEYSLOT.
    assert key_slot("foo") == 12182
    assert key_slot("somekey") == 11058
    assert key_slot("{user1000}.following") == key_slot("{user1000}.followers") == 3443
    assert token_of("foo") >> 50 == 12182
