#!/usr/bin/env bash
# Usage: bash tests/fuzz/run.sh SECONDS
#
# Builds the RESP parser libFuzzer harness straight with clang++ (no CMake, a few seconds) into
# build/fuzz/ and runs it for SECONDS seconds on the seed corpus in tests/fuzz/corpus/resp/.
# Inputs the fuzzer discovers go to build/fuzz/corpus/resp/ (never into the committed seeds);
# a crashing input is saved under build/fuzz/artifacts/. Exits non-zero if the build fails or
# the fuzzer finds a crash, a leak, undefined behaviour or a broken invariant.
# Needs clang (14 or later) and its runtime (Debian: clang, libclang-rt-14-dev).
set -euo pipefail

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 SECONDS (a positive whole number)" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

cxx="${FUZZ_CXX:-}"
if [[ -z "$cxx" ]]; then
  for candidate in clang++ clang++-14 clang++-15 clang++-16; do
    if command -v "$candidate" > /dev/null; then cxx="$candidate"; break; fi
  done
fi
if [[ -z "$cxx" ]]; then
  echo "fuzz: clang++ not found (install clang and libclang-rt-14-dev)" >&2
  exit 1
fi

out="build/fuzz"
binary="$out/resp_parser_fuzz"
mkdir -p "$out/corpus/resp" "$out/artifacts"

sources=(tests/fuzz/resp_parser_fuzz.cc src/resp/parser.cc src/resp/writer.cc
         src/common/assert.cc)
headers=(src/resp/parser.h src/resp/writer.h src/common/assert.h)

# Rebuild only when a source, a header or this script changed since the last build.
needs_build=0
if [[ ! -x "$binary" ]]; then
  needs_build=1
else
  for f in "${sources[@]}" "${headers[@]}" "${BASH_SOURCE[0]}"; do
    if [[ "$f" -nt "$binary" ]]; then needs_build=1; break; fi
  done
fi
if [[ "$needs_build" == 1 ]]; then
  echo "fuzz: building $binary with $cxx"
  "$cxx" -std=c++20 -O1 -g -fno-omit-frame-pointer -Wall -Wextra \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I src "${sources[@]}" -o "$binary.tmp"
  mv "$binary.tmp" "$binary"
fi

echo "fuzz: running $binary for ${seconds}s"
status=0
"$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -print_final_stats=1 -artifact_prefix="$out/artifacts/" \
  "$out/corpus/resp" tests/fuzz/corpus/resp || status=$?
if [[ "$status" != 0 ]]; then
  echo "fuzz: FAILED (exit $status); reproduce with: $binary $out/artifacts/<crash file>" >&2
  exit "$status"
fi
echo "fuzz: no crash in ${seconds}s"
