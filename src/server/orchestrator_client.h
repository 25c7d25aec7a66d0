#pragma once
// The machine's and the admin's way to the orchestrator that leads (docs/orchestrator-ha.md):
// a list of orchestrator addresses (--orchestrator a,b,c), of which one leads and the others
// answer changes with 307 {"leader": "host:port"} or, while no leader is known, 503.
//
// Invariants:
//  1. A call tries each listed address at most once and follows at most kRedirectsMax
//     redirects, so it blocks for at most (addresses + kRedirectsMax) x timeout_ms.
//  2. The address that last answered (or was named leader) is tried first by the next call, so
//     while the leader stays, every call costs one request.
//  3. With one address (the file store's single orchestrator) a call is exactly one http_call.
//
// Threading: call() from any thread; the remembered leader is under a mutex.

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "net/http_client.h"

namespace cairn::server {

inline constexpr size_t kOrchestratorsMax = 16;
inline constexpr int kRedirectsMax = 2;

// "host:port[,host:port...]" → 1..kOrchestratorsMax endpoints; invalid_argument names the bad one.
Result<std::vector<net::HttpEndpoint>> parse_orchestrator_list(std::string_view list);

class OrchestratorClient {
 public:
  // REQUIRES: !endpoints.empty().
  explicit OrchestratorClient(std::vector<net::HttpEndpoint> endpoints);

  // Sends `request` to the leader as the invariants say. Returns the first answer that is
  // neither a redirect nor a 503, else the last failure (an unavailable status, or the last
  // 307/503 answer).
  Result<net::HttpResponse> call(const net::HttpRequest& request, int timeout_ms) const;

  // "host:port" of the orchestrator the next call tries first (for logs).
  std::string current() const;

 private:
  const std::vector<net::HttpEndpoint> endpoints_;
  mutable std::mutex mu_;
  mutable std::optional<net::HttpEndpoint> leader_;  // learned from a redirect or an answer
  mutable size_t next_ = 0;                          // the listed address to try next
};

}  // namespace cairn::server
