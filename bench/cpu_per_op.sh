#!/bin/bash
# CPU time the server spends per command: starts a single cairn machine, optionally preloads it,
# runs a fixed number of one redis-benchmark test against it and divides the server's user +
# system CPU time (from /proc/PID/stat) by the number of requests. Unlike requests per second,
# this barely moves when other work shares the box, so it compares two builds on a busy machine
# (run them alternately, twice or more).
#
#   bash bench/cpu_per_op.sh TEST N [PIPELINE]
#
# Environment: CAIRN_BIN (default <repo>/build/cairn), DURABILITY (none), PRELOAD (a
# redis-benchmark test run first, e.g. zadd before zpopmin), PRELOAD_N (50000), KEYSPACE
# (100000, redis-benchmark -r).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${CAIRN_BIN:-$ROOT/build/cairn}"
TEST="${1:?usage: cpu_per_op.sh TEST N [PIPELINE]}"
N="${2:?usage: cpu_per_op.sh TEST N [PIPELINE]}"
PIPELINE="${3:-1}"
KEYSPACE="${KEYSPACE:-100000}"
[ -x "$BIN" ] || { echo "cairn binary not found at $BIN (run make build, or set CAIRN_BIN)" >&2; exit 1; }
DIR="$(mktemp -d /tmp/cairn-cpu.XXXXXX)"
PORT="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$BIN" server --port "$PORT" --data-dir "$DIR/data" --durability "${DURABILITY:-none}" \
  >"$DIR/log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
if [ -n "${PRELOAD:-}" ]; then
  redis-benchmark -p "$PORT" -t "$PRELOAD" -n "${PRELOAD_N:-50000}" -r "$KEYSPACE" -q >/dev/null
fi
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
before="$(cpu_ticks)"
result="$(redis-benchmark -p "$PORT" -t "$TEST" -n "$N" -P "$PIPELINE" -r "$KEYSPACE" -q 2>&1 |
  tr '\r' '\n' | grep -v '^$' | tail -1)"
after="$(cpu_ticks)"
ticks_per_s="$(getconf CLK_TCK)"
us="$(awk -v t="$((after - before))" -v hz="$ticks_per_s" -v n="$N" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}')"
echo "$TEST P=$PIPELINE: ${us} us of server CPU per command | $result"
