#!/usr/bin/env bash
# The migration benchmark: loads MEGABYTES (default 1024) MiB into a one-shard `cairn
# dev` cluster, adds RF machines so the orchestrator creates a second shard and moves half the
# ring to it, and reports copy throughput, cutover fence durations (max, p99), and client
# throughput / p99 (redis-benchmark, unpipelined SET+GET) before and during the migrations,
# with redis-server (appendfsync always) measured by the same client in the same run.
#
# Env: MEGABYTES (default 1024), RF (default 1), MAX_RATE (bytes/s per target, default
# unlimited), BENCH_SECONDS (default 20), CAIRN_BIN (default <repo>/build/cairn).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export CAIRN_BIN="${CAIRN_BIN:-$ROOT/build/cairn}"
[ -x "$CAIRN_BIN" ] || { echo "migration.sh: no $CAIRN_BIN (run make build)" >&2; exit 1; }
command -v redis-benchmark >/dev/null || { echo "migration.sh: redis-benchmark missing" >&2; exit 1; }
exec /usr/bin/python3 "$ROOT/bench/migration_bench.py" --megabytes "${MEGABYTES:-1024}" \
  --rf "${RF:-1}" --max-rate "${MAX_RATE:-1099511627776}" \
  --bench-seconds "${BENCH_SECONDS:-20}"
