#pragma once
// The orchestrator's HTTP JSON API (notes/orch.md), as a pure request router over a Service:
// no sockets here, so tests call it with fake requests. http_server.h carries it over HTTP.
//
//   POST /v1/register   {"machine_id": n, "address": "h:p"[, "internal_address": "h:p"]}
//                       → {"machine_id", "epoch", "heartbeat_interval_ms"}
//   POST /v1/heartbeat  {"machine_id", "epoch", "load": {..., "ranges": [...]}}
//                       → {"epoch", "state", "lease_ms"} ("ranges": metrics/range_load.h)
//                       (404 {"error": "unknown machine"}: register again)
//   GET  /v1/table /v1/status /v1/machines /v1/shards /v1/ring /v1/history /v1/events?since=N
//   GET  /v1/load[?history=1] (load per shard and range, load_book.h), /metrics (Prometheus)
//   POST /v1/machines/{id}/drain, /v1/machines/{id}/remove → {"ok": true}
//   Migrations (docs/migration.md):
//   GET  /v1/migrations → [migration with "active", "keys", "bytes", "lag", "rate" (bytes/s),
//                          "estimated_bytes", "eta_s" (null when unknown), ...]
//   POST /v1/migrations {"kind": "split", "shard": n[, "at": "0x..."]} |
//                       {"kind": "move", "start": "0x..."[, "end": "0x..."], "to": n}
//                       (optional "max_rate") → 201 {"migrations": [ids], "message"[, "new_shard"]}
//   POST /v1/migrations/{id}/pause|resume|cancel, /rate {"max_rate": n} → {"ok": true}
//   POST /v1/migrations/{id}/commit {"attempt", "epoch"} → {"table": ...} (409: refused)
//   POST /v1/migrations/{id}/abort {"attempt", "error"} → {"ok": true}
//   The heartbeat takes "migrations": [{"id", "staged", "ready", "keys", "bytes", "lag",
//   "cleaned", "fence_ms", "copy_ms"}] and answers "migrations": [{"id", "start", "end", "source",
//   "target", "phase", "paused", "max_rate", "attempt", "driver", "commit_epoch"}].
// Every POST needs "Authorization: Bearer <cluster secret>" (401 otherwise); GETs are open.
// Errors are {"error": "..."} with 400 (bad request), 401, 404, 405, 409 (conflict), 503 (this
// orchestrator stopped leading: ask another; docs/orchestrator-ha.md).
// With several orchestrators (etcd), a follower answers GETs from the stored state and POSTs
// with 307 {"error": "not the leader", "leader": "host:port"} (Location: the same path on the
// leader), or 503 {"error": "no leader", "leader": ""} while none is known.

#include <string>

#include "net/http_server.h"
#include "orchestrator/service.h"

namespace cairn::orchestrator {

using ApiRequest = net::ServedRequest;
using ApiResponse = net::ServedResponse;

class ApiRouter {
 public:
  // `service` must outlive the router. An empty secret refuses every POST (never "open").
  ApiRouter(Service* service, std::string cluster_secret);

  // Thread-safe (the service is).
  ApiResponse handle(const ApiRequest& request) const;

 private:
  ApiResponse route(const ApiRequest& request) const;
  bool authorized(const ApiRequest& request) const;
  ApiResponse handle_register(const std::string& body) const;
  ApiResponse handle_heartbeat(const std::string& body) const;
  ApiResponse handle_machine_action(std::string_view rest) const;
  ApiResponse handle_create_migration(const std::string& body) const;
  ApiResponse handle_migration_action(std::string_view rest, const std::string& body) const;

  Service* const service_;
  const std::string expected_authorization_;
};

}  // namespace cairn::orchestrator
