#!/usr/bin/env bash
# Runs cairn and redis-server side by side on this machine with redis-benchmark and prints
# req/s, p50 and p99 per target plus the cairn/redis ratios. Absolute numbers drift on shared
# machines, so the ratios are the result; the targets are run alternately for the same reason.
#
# Pairings:
#   durable:        cairn --durability always   vs  redis --appendonly yes --appendfsync always
#   memory:         cairn --durability none     vs  redis --save '' --appendonly no
#   cluster:        a 3-machine, 1-shard, RF 3 cairn cluster (tests/cluster/launcher.py, loopback
#                   127.0.0.2-4), every machine --durability always, clients on machine 1 (the
#                   shard leader) at the default QUORUM/QUORUM  vs  redis --appendfsync always
#   cluster-memory: the same cluster with --durability none  vs  redis without persistence
# Each pairing runs `redis-benchmark -t TESTS -c CLIENTS -n N -q --csv` unpipelined and with
# -P 16. Idle RSS of cairn is measured after start-up and again after the runs.
#
# Env: TESTS (redis-benchmark's test names, default "set,get"; the wide-row ones are
# "hset,sadd,zadd,zpopmin,spop"; streams: "xadd,xrange", XADD and XRANGE COUNT 10 on random
# stream keys), KEYSPACES (redis-benchmark -r per run, space-separated,
# default "100000 0": 100,000 random keys (or fields) as real traffic has, then
# redis-benchmark's single key, reported as e.g. "SET/1key"; KEYSPACE=N is the same as
# KEYSPACES=N),
# N (requests per test, default 200000), CLIENTS (default 50), ROUNDS (alternations per
# configuration, default 2; the median is reported), PIPELINES (default "1 16"),
# PAIRINGS (default "durable memory cluster"), CAIRN_BIN (default <repo>/build/cairn),
# REDIS_SERVER (default /usr/bin/redis-server), OUT (optional path for the raw CSV).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CAIRN_BIN="${CAIRN_BIN:-$ROOT/build/cairn}"
REDIS_SERVER="${REDIS_SERVER:-/usr/bin/redis-server}"
N="${N:-200000}"
CLIENTS="${CLIENTS:-50}"
ROUNDS="${ROUNDS:-2}"
PIPELINES="${PIPELINES:-1 16}"
PAIRINGS="${PAIRINGS:-durable memory cluster}"
TESTS="${TESTS:-set,get}"
KEYSPACES="${KEYSPACES:-${KEYSPACE:-100000 0}}"
PY=/usr/bin/python3

WORK="$(mktemp -d /tmp/cairn-bench.XXXXXX)"
RAW="$WORK/raw.csv"
PIDS=()

cleanup() {
  local pid
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]:-}"; do
    [ -z "$pid" ] && continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "redis_compare: $*" >&2; exit 1; }

[ -x "$CAIRN_BIN" ] || die "cairn binary not found at $CAIRN_BIN (run make build, or set CAIRN_BIN)"
[ -x "$REDIS_SERVER" ] || die "redis-server not found at $REDIS_SERVER"
command -v redis-benchmark >/dev/null || die "redis-benchmark not installed"
command -v redis-cli >/dev/null || die "redis-cli not installed"

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_ready PORT PID LOG: until the server answers PING (10 s), else show its log and fail.
wait_ready() {
  local port=$1 pid=$2 log=$3
  for _ in $(seq 200); do
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$log" >&2; die "server on port $port exited during start-up"
    fi
    if [ "$(redis-cli -p "$port" PING 2>/dev/null)" = "PONG" ]; then return 0; fi
    sleep 0.05
  done
  cat "$log" >&2; die "server on port $port did not answer PING within 10 s"
}

# start_cairn DURABILITY -> sets CAIRN_PORT, CAIRN_PID
start_cairn() {
  CAIRN_PORT=$(free_port)
  local dir="$WORK/cairn-$1-$CAIRN_PORT"
  mkdir -p "$dir"
  "$CAIRN_BIN" server --port "$CAIRN_PORT" --data-dir "$dir" --durability "$1" \
    --bind 127.0.0.1 >"$dir.log" 2>&1 &
  CAIRN_PID=$!
  PIDS+=("$CAIRN_PID")
  wait_ready "$CAIRN_PORT" "$CAIRN_PID" "$dir.log"
}

# start_cluster DURABILITY -> sets CAIRN_HOST, CAIRN_PORT, CAIRN_PID (machine 1), CLUSTER_PID
# (the launcher, which stops every machine on SIGTERM).
start_cluster() {
  local log="$WORK/cluster-$1.log"
  "$PY" "$ROOT/tests/cluster/launcher.py" --machines 3 --shards 1 --rf 3 --durability "$1" \
    --binary "$CAIRN_BIN" >"$log" 2>&1 &
  CLUSTER_PID=$!
  PIDS+=("$CLUSTER_PID")
  for _ in $(seq 300); do
    grep -q '^Connect with:' "$log" && break
    kill -0 "$CLUSTER_PID" 2>/dev/null || { cat "$log" >&2; die "cluster launcher exited"; }
    sleep 0.1
  done
  grep -q '^Connect with:' "$log" || { cat "$log" >&2; die "cluster did not start in 30 s"; }
  CAIRN_HOST=$(awk '/^Connect with:/ { print $5 }' "$log")
  CAIRN_PORT=$(awk '/^Connect with:/ { print $7 }' "$log")
  CAIRN_PID=$(awk '$1 == "machine" && $2 == "1" { print $5; exit }' "$log")
  [ "$(redis-cli -h "$CAIRN_HOST" -p "$CAIRN_PORT" PING)" = "PONG" ] || die "cluster not answering"
}

# start_redis durable|memory -> sets REDIS_PORT, REDIS_PID
start_redis() {
  REDIS_PORT=$(free_port)
  local dir="$WORK/redis-$1-$REDIS_PORT"
  mkdir -p "$dir"
  local persist=(--save '' --appendonly no)
  if [ "$1" = durable ]; then persist=(--save '' --appendonly yes --appendfsync always); fi
  "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize no --dir "$dir" \
    "${persist[@]}" >"$dir.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  wait_ready "$REDIS_PORT" "$REDIS_PID" "$dir.log"
}

stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

rss_kib() { ps -o rss= -p "$1" | tr -d ' '; }

# bench PAIRING TARGET HOST PORT PIPELINE ROUND: appends rows to $RAW.
bench() {
  local pairing=$1 target=$2 host=$3 port=$4 pipeline=$5 round=$6 keyspace=$7
  local out="$WORK/out.csv"
  local keys=() suffix=""
  if [ "$keyspace" != 0 ]; then keys=(-r "$keyspace"); else suffix="/1key"; fi
  # Streams have no redis-benchmark test: "xadd" and "xrange" in TESTS run these commands on
  # random keys (stream:<n>, n < KEYSPACE), labelled XADD and XRANGE.
  local native=() t
  : >"$out"
  IFS=, read -ra all_tests <<<"$TESTS"
  for t in "${all_tests[@]}"; do
    case "${t,,}" in
      xadd|xrange) ;;
      *) native+=("$t") ;;
    esac
  done
  if [ "${#native[@]}" -gt 0 ]; then
    redis-benchmark -h "$host" -p "$port" -t "$(IFS=,; echo "${native[*]}")" "${keys[@]}" \
      -c "$CLIENTS" -n "$N" -P "$pipeline" -q --csv \
      >"$out" 2>"$WORK/bench.err" || { cat "$WORK/bench.err" >&2; die "redis-benchmark failed on $target"; }
  fi
  for t in "${all_tests[@]}"; do
    local command=()
    case "${t,,}" in
      xadd) command=(XADD "stream:__rand_int__" "*" field value) ;;
      xrange) command=(XRANGE "stream:__rand_int__" - + COUNT 10) ;;
      *) continue ;;
    esac
    redis-benchmark -h "$host" -p "$port" "${keys[@]}" -c "$CLIENTS" -n "$N" -P "$pipeline" \
      -q --csv "${command[@]}" 2>"$WORK/bench.err" |
      awk -F, -v name="\"${t^^}\"" 'BEGIN { OFS = "," } $1 != "\"test\"" { $1 = name; print }' \
      >>"$out" || { cat "$WORK/bench.err" >&2; die "redis-benchmark failed on $target"; }
  done
  # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
  # "p99_latency_ms","max_latency_ms"
  tr -d '"' <"$out" | awk -F, -v p="$pairing" -v t="$target" -v pl="$pipeline" -v r="$round" \
    -v s="$suffix" \
    '$1 != "test" && NF >= 8 { print p "," t "," pl "," r "," $1 s "," $2 "," $5 "," $7 }' >>"$RAW"
  printf '  %-7s %-6s P=%-3s round %s: %s\n' "$pairing" "$target" "$pipeline" "$round" \
    "$(tr -d '"' <"$out" | awk -F, -v s="$suffix" '$1 != "test" { printf "%s%s %s req/s  ", $1, s, $2 }')"
}

echo "pairing,target,pipeline,round,test,rps,p50_ms,p99_ms" >"$RAW"
RSS_LINES=()
echo "cairn: $CAIRN_BIN ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "redis: $("$REDIS_SERVER" --version | awk '{print $3}')   N=$N CLIENTS=$CLIENTS ROUNDS=$ROUNDS TESTS=$TESTS KEYSPACES=$KEYSPACES"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo

for pairing in $PAIRINGS; do
  case "$pairing" in
    durable) cairn_mode=always redis_mode=durable ;;
    memory) cairn_mode=none redis_mode=memory ;;
    cluster) cairn_mode=always redis_mode=durable ;;
    cluster-memory) cairn_mode=none redis_mode=memory ;;
    *) die "unknown pairing $pairing (durable|memory|cluster|cluster-memory)" ;;
  esac
  CLUSTER_PID=
  CAIRN_HOST=127.0.0.1
  if [ "${pairing#cluster}" != "$pairing" ]; then
    start_cluster "$cairn_mode"
  else
    start_cairn "$cairn_mode"
  fi
  start_redis "$redis_mode"
  sleep 1
  rss_start=$(rss_kib "$CAIRN_PID")
  for round in $(seq "$ROUNDS"); do
    for keyspace in $KEYSPACES; do
      for pipeline in $PIPELINES; do
        # Alternate which target goes first so neither always gets the warmer machine.
        if [ $((round % 2)) -eq 1 ]; then
          bench "$pairing" cairn "$CAIRN_HOST" "$CAIRN_PORT" "$pipeline" "$round" "$keyspace"
          bench "$pairing" redis 127.0.0.1 "$REDIS_PORT" "$pipeline" "$round" "$keyspace"
        else
          bench "$pairing" redis 127.0.0.1 "$REDIS_PORT" "$pipeline" "$round" "$keyspace"
          bench "$pairing" cairn "$CAIRN_HOST" "$CAIRN_PORT" "$pipeline" "$round" "$keyspace"
        fi
      done
    done
  done
  sleep 2
  rss_after=$(rss_kib "$CAIRN_PID")
  RSS_LINES+=("$pairing (cairn --durability $cairn_mode${CLUSTER_PID:+, machine 1 of 3}): idle RSS at start ${rss_start} KiB, idle after runs ${rss_after} KiB, redis after runs $(rss_kib "$REDIS_PID") KiB")
  if [ -n "$CLUSTER_PID" ]; then stop_pid "$CLUSTER_PID"; else stop_pid "$CAIRN_PID"; fi
  stop_pid "$REDIS_PID"
done

echo
"$PY" - "$RAW" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
groups = {}
for r in rows:
    key = (r["pairing"], r["pipeline"], r["test"], r["target"])
    groups.setdefault(key, []).append(r)
def med(rs, field):
    return statistics.median(float(r[field]) for r in rs)
print("%-14s %-3s %-8s | %12s %8s %8s | %12s %8s %8s | %7s %7s %7s" % (
    "pairing", "P", "test", "cairn req/s", "p50 ms", "p99 ms", "redis req/s", "p50 ms", "p99 ms",
    "rps x", "p50 x", "p99 x"))
print("-" * 128)
seen = sorted({k[:3] for k in groups}, key=lambda k: (k[0], int(k[1]), k[2]))
for pairing, pipeline, test in seen:
    c = groups.get((pairing, pipeline, test, "cairn"), [])
    r = groups.get((pairing, pipeline, test, "redis"), [])
    if not c or not r:
        continue
    cv = [med(c, f) for f in ("rps", "p50_ms", "p99_ms")]
    rv = [med(r, f) for f in ("rps", "p50_ms", "p99_ms")]
    ratio = [a / b if b else float("nan") for a, b in zip(cv, rv)]
    print("%-14s %-3s %-8s | %12.0f %8.3f %8.3f | %12.0f %8.3f %8.3f | %7.2f %7.2f %7.2f" % (
        pairing, pipeline, test, *cv, *rv, *ratio))
print("\nratios are cairn/redis: req/s higher is better for cairn; latency lower is better.")
EOF
echo
for line in "${RSS_LINES[@]}"; do echo "$line"; done
if [ -n "${OUT:-}" ]; then cp "$RAW" "$OUT"; echo "raw results: $OUT"; fi
