#pragma once
// A small blocking HTTP/1.1 client for JSON APIs: the orchestrator's (used by a machine's
// OrchestratorAgent and by `cairn admin`) and etcd's v3 JSON gateway (orchestrator/etcd_client.h).
//
// Each call opens a fresh connection, sends one request, reads one response and closes: the
// callers talk to the orchestrator a few times per second at most, so a pooled connection would
// buy nothing and would add a failure mode (a half-closed idle socket).
//
// Threading: a call blocks the calling thread for at most `timeout_ms` (plus name resolution of a
// non-numeric host). Never call it from an event loop. Calls are independent; any thread.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace cairn::net {

// The largest response body accepted: a routing table is at most kTableJsonBytesMax (16 MiB).
inline constexpr size_t kHttpResponseBodyBytesMax = 32 * 1024 * 1024;

struct HttpEndpoint {
  std::string host;  // a name, an IPv4 literal or an IPv6 literal (without brackets)
  uint16_t port = 0;
};

// Parses "host:port" or "[v6]:port". invalid_argument names what is wrong.
Result<HttpEndpoint> parse_http_endpoint(std::string_view text);

struct HttpResponse {
  int status = 0;  // e.g. 200, 404
  std::string body;
};

struct HttpRequest {
  std::string method = "GET";  // GET or POST
  std::string target;          // "/v1/status"
  std::string body;            // sent with Content-Type: application/json when not empty
  std::string bearer;          // "" = no Authorization header
  // More header fields (name, value), e.g. gRPC metadata for etcd's gateway.
  std::vector<std::pair<std::string, std::string>> headers;
};

// Sends `request` to `endpoint` and returns the response, whatever its status code.
// Errors: kUnavailable "cannot reach <host:port>: <reason>" when the connection fails, the
// deadline passes or the response is malformed or larger than kHttpResponseBodyBytesMax.
Result<HttpResponse> http_call(const HttpEndpoint& endpoint, const HttpRequest& request,
                               int timeout_ms);

}  // namespace cairn::net
