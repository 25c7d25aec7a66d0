#!/usr/bin/env bash
# Migrations while machines restart (docs/migration.md "Recipe runs").
#
#   bash scripts/migration-under-restarts.sh [path/to/cairn]            # the recipe, ~4 minutes
#   LONG=1 bash scripts/migration-under-restarts.sh [path/to/cairn]     # the long version, ~30 min
#
# 1. `cairn dev`: 2 shards x RF 3 + 1 spare; 2. preload ~126k keys at QUORUM (redis-benchmark,
# 200k random keys, 200-byte values); 3. while light QUORUM traffic runs and one machine is killed
# -9 and restarted with its data every RESTART_EVERY_S seconds, ROUNDS rounds of data movement:
# round 1 adds 3 machines (a third shard forms and ranges migrate to it), later rounds alternate
# between adding 3 more machines and moving a random range to another shard by hand; 4. when the
# migrations are done: every voting replica of every shard must store the same number of keys,
# and every key stored anywhere must read back at QUORUM through one machine of each shard.
# The recipe restarts only the six original machines; LONG=1 restarts any machine of a shard.
# Exits 0 if all holds, 1 otherwise. Every loop is bounded; the cluster is stopped at the end.
set -u
CAIRN=$(realpath "${1:-build/cairn}")
PY=/usr/bin/python3
LONG=${LONG:-0}
if [ "$LONG" = 1 ]; then
  DURATION_S=${DURATION_S:-1800}; RESTART_EVERY_S=${RESTART_EVERY_S:-3}; ROUNDS=${ROUNDS:-6}
else
  DURATION_S=${DURATION_S:-120}; RESTART_EVERY_S=${RESTART_EVERY_S:-6}; ROUNDS=${ROUNDS:-1}
fi
dir=$(mktemp -d /tmp/cairn-restarts.XXXXXX); port=$((21000 + RANDOM % 5000)); orch=$((port + 700))
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done; sleep 3
  for p in $(pgrep -f "data-dir $dir"); do kill -KILL "$p" 2>/dev/null; done
  if [ -n "${CAIRN_KEEP_TEST_DIR:-}" ]; then echo "logs kept in $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
admin() { "$CAIRN" admin --orchestrator "127.0.0.1:$orch" "$@"; }
"$CAIRN" dev --data-dir "$dir" --port "$port" --orchestrator-port "$orch" --shards 2 --rf 3 \
  --spares 1 > "$dir/dev.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do grep -q "is ready" "$dir/dev.log" && break; sleep 0.2; done
redis-benchmark -p "$port" -t set -n 200000 -r 200000 -d 200 -P 32 -c 10 -q > /dev/null 2>&1
echo "preloaded: $(redis-cli -p "$port" dbsize) keys"

# Ports of the machines a restart may hit: the six originals, or (LONG) every machine in a shard.
victims() {
  if [ "$LONG" != 1 ]; then seq "$port" $((port + 5)); return; fi
  admin --json machines 2>/dev/null | $PY -c '
import json, sys
ms = json.load(sys.stdin); ms = ms.get("machines", ms) if isinstance(ms, dict) else ms
for m in ms:
    if m.get("shard") and m.get("state") == "up": print(str(m["address"]).rsplit(":", 1)[1])'
}
restart() { # kill -9 the machine on port $1 and start it again with the same command line
  local pid; pid=$(ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
  [ -n "$pid" ] || return
  mapfile -d '' argv < /proc/"$pid"/cmdline; local cwd; cwd=$(readlink /proc/"$pid"/cwd)
  kill -KILL "$pid"; sleep 0.5
  ( cd "$cwd" && exec setsid "${argv[@]}" ) >> "$dir/restarted.log" 2>&1 < /dev/null &
  echo "$(date +%T) restarted :$1"
}
next_machine=7
add_machines() { # three new machines: the balancer forms a shard and moves ranges to it
  for _ in 1 2 3; do
    local j=$next_machine; next_machine=$((next_machine + 1))
    ( exec setsid "$CAIRN" server --cluster-secret "$(cat "$dir/secret")" \
        --orchestrator "127.0.0.1:$orch" --port $((port + j)) --data-dir "$dir/m$j" ) \
      >> "$dir/new$j.log" 2>&1 < /dev/null &
  done
  echo "$(date +%T) added 3 machines"
}
move_random_range() { # a range of the table to another shard, by hand
  local args
  args=$(curl -s "http://127.0.0.1:$orch/v1/table" | $PY -c '
import json, random, sys
t = json.load(sys.stdin); t = t.get("table", t)
ranges = t["ranges"]; shards = sorted({r["shard"] for r in ranges})
if len(shards) > 1:
    r = random.choice(ranges); print(r["start"], random.choice([s for s in shards if s != r["shard"]]))')
  [ -n "$args" ] || return
  set -- $args
  admin --cluster-secret "$(cat "$dir/secret")" move "$1" --to "$2" > /dev/null 2>&1 && echo "$(date +%T) moving range $1 to shard $2"
}
active() {
  admin --json migrations 2>/dev/null |
    grep -qE '"phase": *"(queued|staging|catchup|cutover|cleanup)"'
}

redis-benchmark -p "$port" -t set,get -n 100000000 -r 1000 -c 4 -q > /dev/null 2>&1 &
traffic=$!
start=$(date +%s); end=$((start + DURATION_S)); round=0; next_round_at=$((start + 15))
while [ "$(date +%s)" -lt "$end" ]; do
  sleep "$RESTART_EVERY_S"
  if [ "$round" -lt "$ROUNDS" ] && [ "$(date +%s)" -ge "$next_round_at" ] && ! active; then
    round=$((round + 1))
    if [ "$round" = 1 ] || [ $((round % 2)) = 1 ]; then add_machines; else move_random_range; fi
    next_round_at=$(( $(date +%s) + DURATION_S / (ROUNDS + 1) ))
  fi
  mapfile -t ports < <(victims)
  [ "${#ports[@]}" -gt 0 ] && restart "${ports[RANDOM % ${#ports[@]}]}"
done
kill "$traffic" 2>/dev/null
for _ in $(seq 1 300); do active || break; sleep 1; done
admin migrations | tail -15
admin machines
admin --json machines > "$dir/machines.json"
$PY - "$dir/machines.json" <<'P'
import json, sys, time
import redis
machines = json.load(open(sys.argv[1]))
machines = machines.get("machines", machines) if isinstance(machines, dict) else machines
def counts():
    by_shard = {}
    for m in machines:
        if not m.get("shard") or m.get("state") != "up": continue
        port = int(str(m["address"]).rsplit(":", 1)[1])
        info = redis.Redis(port=port, socket_timeout=10).info("keyspace")
        by_shard.setdefault(m["shard"], {})[port] = info.get("db0", {}).get("keys", 0)
    return by_shard
# Writes a replica missed while it was down reach it by hinted handoff: give that time to finish.
deadline = time.time() + 30
by_shard = counts()
while time.time() < deadline and any(len(set(c.values())) > 1 for c in by_shard.values()):
    time.sleep(2); by_shard = counts()
bad = 0
for shard, c in sorted(by_shard.items()):
    same = len(set(c.values())) == 1
    print(f"shard {shard}: keys stored per replica {c}{'' if same else '  <- replicas differ'}")
    bad += 0 if same else 1
keys = set()
for c in by_shard.values():
    for p in c:
        keys.update(redis.Redis(port=p, socket_timeout=30).scan_iter(count=5000))
keys = sorted(keys)
for shard, c in sorted(by_shard.items()):
    p = sorted(c)[0]; r = redis.Redis(port=p, socket_timeout=30); nil = 0
    for i in range(0, len(keys), 1000):
        pl = r.pipeline(transaction=False)
        for k in keys[i:i + 1000]: pl.get(k)
        nil += sum(1 for v in pl.execute() if v is None)
    print(f"QUORUM GET through {p}: {nil} of {len(keys)} keys read as nil")
    bad += nil
sys.exit(1 if bad else 0)
P
rc=$?
if [ $rc = 0 ]; then
  echo "ok: replicas of each shard agree and every key reads back"
else
  echo "FAILED: replicas of a shard disagree or acknowledged keys read as nil at QUORUM"
fi
exit $rc
