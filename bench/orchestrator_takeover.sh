#!/usr/bin/env bash
# Takeover after kill -9 of the leading orchestrator (docs/orchestrator-ha.md): 3 orchestrators
# on a 1-member local etcd (heartbeat 50 ms, election 500 ms, 1 s leader lease), 1 shard x RF 3
# + 1 spare. Kills the leader KILLS times (default 20) and prints p50/max of kill -> another
# leads and kill -> another answers a heartbeat. Everything on loopback; bounded by pytest's
# own waits (about 8 s per kill).
set -euo pipefail
cd "$(dirname "$0")/.."
export CAIRN_HA_KILLS="${KILLS:-20}"
exec /usr/bin/python3 -m pytest -q -s -p no:cacheprovider \
  tests/integration/orchestrator/test_orchestrator_ha.py \
  -k test_leader_killed_another_takes_over_without_split_brain
