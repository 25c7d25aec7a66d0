#!/usr/bin/env bash
# Usage: bash tests/fuzz/run.sh SECONDS
#
# Builds the libFuzzer harnesses straight with clang++ (no CMake, a few seconds each) into
# build/fuzz/ and runs them one after the other, sharing SECONDS seconds between them:
#   resp_parser_fuzz  the request parser, seeds in tests/fuzz/corpus/resp/
#   resp_reply_fuzz   the reply parser (what peers send), seeds in tests/fuzz/corpus/reply/
# Inputs the fuzzer discovers go to build/fuzz/corpus/<name>/ (never into the committed seeds);
# a crashing input is saved under build/fuzz/artifacts/. Exits non-zero if a build fails or a
# fuzzer finds a crash, a leak, undefined behaviour or a broken invariant.
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

out="${FUZZ_OUT:-build/fuzz}"  # FUZZ_OUT: another directory, e.g. for a private build
mkdir -p "$out/artifacts"

# build_harness NAME SOURCES... -- HEADERS...: rebuilds $out/NAME only when one of its sources,
# headers or this script changed since its last build.
build_harness() {
  local name="$1"; shift
  local files=() sources=() f
  while [[ "$1" != "--" ]]; do sources+=("$1"); files+=("$1"); shift; done
  shift
  files+=("$@" "${BASH_SOURCE[0]}")
  local binary="$out/$name"
  local needs_build=0
  if [[ ! -x "$binary" ]]; then
    needs_build=1
  else
    for f in "${files[@]}"; do
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
}

# run_harness NAME CORPUS SECONDS
run_harness() {
  local name="$1" corpus="$2" run_seconds="$3"
  local binary="$out/$name"
  mkdir -p "$out/corpus/$corpus"
  echo "fuzz: running $binary for ${run_seconds}s"
  local status=0
  "$binary" -max_total_time="$run_seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/" \
    "$out/corpus/$corpus" "tests/fuzz/corpus/$corpus" || status=$?
  if [[ "$status" != 0 ]]; then
    echo "fuzz: $name FAILED (exit $status); reproduce with:" \
      "$binary $out/artifacts/<crash file>" >&2
    exit "$status"
  fi
}

build_harness resp_parser_fuzz tests/fuzz/resp_parser_fuzz.cc src/resp/parser.cc \
  src/resp/writer.cc src/common/assert.cc -- src/resp/parser.h src/resp/writer.h \
  src/common/assert.h
build_harness resp_reply_fuzz tests/fuzz/resp_reply_fuzz.cc src/resp/reply_parser.cc \
  src/common/assert.cc -- src/resp/reply_parser.h src/resp/parser.h src/common/assert.h

# The request parser gets the larger half; each harness runs at least one second.
reply_seconds=$(( seconds / 2 ))
if (( reply_seconds < 1 )); then reply_seconds=1; fi
request_seconds=$(( seconds - reply_seconds ))
if (( request_seconds < 1 )); then request_seconds=1; fi
run_harness resp_parser_fuzz resp "$request_seconds"
run_harness resp_reply_fuzz reply "$reply_seconds"
echo "fuzz: no crash in ${seconds}s"
