#!/usr/bin/env bash
# The long fault test (10 minutes by default; CAIRN_FAULT_LONG_SECONDS overrides): 2 shards x
# RF 3, six client threads, the nemesis cycling kill -9 / SIGSTOP / iptables partitions of one
# machine at a time. Needs root for iptables (partitions are skipped with a message otherwise).
# Record the RESULT line in docs/fault-testing.md ("Last results").
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${CAIRN_FAULT_LONG_SECONDS:-600}"
log="${TMPDIR:-/tmp}/cairn-fault-long-$(date +%Y%m%d-%H%M%S).log"
echo "long fault test: ${seconds}s, log in ${log}"
/usr/bin/python3 tests/fault/workload.py --seconds "${seconds}" --shards 2 --rf 3 --clients 6 \
  "$@" 2>&1 | tee "${log}"
exit "${PIPESTATUS[0]}"
