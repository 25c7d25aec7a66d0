#!/usr/bin/env bash
# MULTI/EXEC throughput, Cairn vs redis-server in the same run (docs/transactions.md): each
# operation is MULTI, SETs of 2 keys sharing a hash tag, EXEC, on 100,000 random tags, driven by
# `cairn bench --transaction 2` against both servers alternately. Prints transactions/s, p50 and
# p99 per target and the cairn/redis ratio (median of ROUNDS).
#
# Env: PAIRING (memory: cairn --durability none vs redis without persistence, the default;
# durable: --durability always vs appendfsync always), SECONDS_EACH (default 10), CONNECTIONS
# (default 20), PIPELINE (transactions in flight per connection, default 1), ROUNDS (default 3),
# CAIRN_BIN (default <repo>/build/cairn), REDIS_SERVER (default /usr/bin/redis-server).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CAIRN_BIN="${CAIRN_BIN:-$ROOT/build/cairn}"
REDIS_SERVER="${REDIS_SERVER:-/usr/bin/redis-server}"
PAIRING="${PAIRING:-memory}"
SECONDS_EACH="${SECONDS_EACH:-10}"
CONNECTIONS="${CONNECTIONS:-20}"
PIPELINE="${PIPELINE:-1}"
ROUNDS="${ROUNDS:-3}"
PY=/usr/bin/python3

WORK="$(mktemp -d /tmp/cairn-txbench.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_ready() {
  for _ in $(seq 200); do
    [ "$(redis-cli -p "$1" PING 2>/dev/null)" = "PONG" ] && return 0
    sleep 0.05
  done
  echo "server on port $1 did not start" >&2
  exit 1
}

case "$PAIRING" in
  memory) cairn_mode=none; redis_args=(--save '' --appendonly no) ;;
  durable) cairn_mode=always; redis_args=(--save '' --appendonly yes --appendfsync always) ;;
  *) echo "PAIRING is memory or durable" >&2; exit 2 ;;
esac

CAIRN_PORT=$(free_port)
"$CAIRN_BIN" server --port "$CAIRN_PORT" --data-dir "$WORK/cairn" --durability "$cairn_mode" \
  >"$WORK/cairn.log" 2>&1 &
PIDS+=($!)
REDIS_PORT=$(free_port)
mkdir -p "$WORK/redis"
"$REDIS_SERVER" --port "$REDIS_PORT" --dir "$WORK/redis" "${redis_args[@]}" >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
wait_ready "$CAIRN_PORT"
wait_ready "$REDIS_PORT"

run() {  # TARGET PORT
  "$CAIRN_BIN" bench --port "$2" --duration "${SECONDS_EACH}s" --connections "$CONNECTIONS" \
    --pipeline "$PIPELINE" --transaction 2 --keys 100000 --json 2>/dev/null |
    tail -1 | "$PY" -c 'import json,sys; d=json.load(sys.stdin)
print("%s,%f,%f,%f,%d" % (sys.argv[1], d["ops_per_sec"], d["p50_ms"], d["p99_ms"], d["errors"]))' "$1"
}

RESULTS="$WORK/results.csv"
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then
    run cairn "$CAIRN_PORT" >>"$RESULTS"; run redis "$REDIS_PORT" >>"$RESULTS"
  else
    run redis "$REDIS_PORT" >>"$RESULTS"; run cairn "$CAIRN_PORT" >>"$RESULTS"
  fi
  tail -2 "$RESULTS" | sed 's/^/  round '"$round"': /'
done

"$PY" - "$RESULTS" "$PAIRING" <<'EOF'
import statistics, sys
rows = [l.strip().split(",") for l in open(sys.argv[1]) if l.strip()]
med = lambda t, i: statistics.median(float(r[i]) for r in rows if r[0] == t)
errors = sum(int(r[4]) for r in rows if r[0] == "cairn")
c = [med("cairn", i) for i in (1, 2, 3)]
r = [med("redis", i) for i in (1, 2, 3)]
print("pairing %s, MULTI + 2 SETs + EXEC: cairn %.0f tx/s (p50 %.3f ms, p99 %.3f ms), "
      "redis %.0f tx/s (p50 %.3f ms, p99 %.3f ms); ratio %.2f, p99 x %.2f; cairn errors %d"
      % (sys.argv[2], c[0], c[1], c[2], r[0], r[1], r[2], c[0] / r[0], c[2] / r[2], errors))
EOF
