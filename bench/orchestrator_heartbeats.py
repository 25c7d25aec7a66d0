"""Heartbeat load on the leading orchestrator with the state in etcd (docs/orchestrator-ha.md).

Starts a 1-member etcd and 2 `cairn orchestrator --etcd` (loopback only), registers MACHINES
simulated machines (default 200; they exist only as HTTP calls, no `cairn server`), then sends
each one's heartbeat every 250 ms for SECONDS (default 30) from a few threads with keep-alive
connections, and reports: heartbeats sent/answered per second, answer latency p50/p99/max, and
whether the leader ever declared a heartbeating machine down (a missed detection).

    /usr/bin/python3 bench/orchestrator_heartbeats.py [MACHINES] [SECONDS]

Bounded: SECONDS of load plus start-up (at most ~60 s) and shutdown.
"""

import http.client
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration", "orchestrator"))

from ha_cluster import SECRET, HaCluster  # noqa: E402

MACHINES = int(sys.argv[1]) if len(sys.argv) > 1 else 200
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
THREADS = 8
INTERVAL_S = 0.25


def post(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json",
                                                  "Authorization": "Bearer " + SECRET})
    resp = conn.getresponse()
    return resp.status, resp.read()


def main():
    # The simulated machines never copy data, so they are kept as spares (--min-spares): in a
    # shard they would stay joining and the planner would churn epochs around them.
    h = HaCluster(orchestrators=2, etcd_members=1, shards=1, rf=3, spares=MACHINES,
                  down_after_ms=1500, dead_after_ms=5000,
                  orchestrator_args=("--no-auto-rebalance",))
    try:
        h.start(machines=False)
        leader = h.wait_leader()
        port = h.orchestrator_ports[leader]
        latencies, failures, registered = [], [0], []
        lock = threading.Lock()
        end = time.monotonic() + SECONDS

        def worker(indexes):
            # Each simulated machine heartbeats from the round after it registered, as a real
            # one does: registering all first would leave the first ones silent for seconds.
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            mine = []
            next_at = time.monotonic()
            while time.monotonic() < end:
                if indexes:
                    i = indexes.pop(0)
                    status, body = post(c, "/v1/register",
                                        {"machine_id": 0, "address": "127.0.0.1:%d" % (40000 + i)})
                    assert status == 200, (status, body)
                    mine.append(json.loads(body)["machine_id"])
                    with lock:
                        registered.append(mine[-1])
                for machine in mine:
                    t0 = time.monotonic()
                    try:
                        status, _ = post(c, "/v1/heartbeat", {"machine_id": machine, "epoch": 0})
                    except (OSError, http.client.HTTPException):
                        status = 0
                        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    with lock:
                        latencies.append(time.monotonic() - t0)
                        if status != 200:
                            failures[0] += 1
                next_at += INTERVAL_S
                time.sleep(max(0, next_at - time.monotonic()))

        threads = [threading.Thread(target=worker, args=(list(range(MACHINES))[i::THREADS],))
                   for i in range(THREADS)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        status = h.status(leader)
        events = json.loads(json.dumps(h.api(leader, "/v1/events")[1]))
        downs = [e for e in (events if isinstance(events, list) else events.get("events", []))
                 if " down " in " %s " % e.get("message", "") or "dead (no heartbeat" in
                 e.get("message", "")]
        latencies.sort()
        n = len(latencies)
        print("machines %d, %.1f s: %d heartbeats (%.0f/s, wanted %.0f/s), %d not answered 200"
              % (MACHINES, elapsed, n, n / elapsed, MACHINES / INTERVAL_S, failures[0]))
        print("latency p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
            1000 * latencies[n // 2], 1000 * latencies[int(n * 0.99)], 1000 * latencies[-1]))
        print("leader still leads: %s; machines up %d / %d; down/dead events: %d" % (
            status["orchestrators"]["role"] == "leader", status["machines"]["up"],
            status["machines"]["total"], len(downs)))
        for e in downs[:5]:
            print("  ", e.get("message"))
    finally:
        h.close()


if __name__ == "__main__":
    main()
