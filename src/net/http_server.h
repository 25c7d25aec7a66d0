#pragma once
// A small HTTP/1.1 server (Boost.Beast): the orchestrator's API (orchestrator/api.h) and a
// machine's /metrics listener. Keep-alive, bounded request size (kRequestBytesMax), bounded
// connections (kConnectionsMax), idle and read timeouts. It runs on the io_context it is given;
// both users run that context on a single thread, so handlers never run concurrently.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "net/asio.h"

namespace cairn::net {

struct ServedRequest {
  std::string method;         // "GET", "POST", ...
  std::string target;         // path and query, e.g. "/v1/events?since=3"
  std::string authorization;  // the Authorization header, verbatim ("" if absent)
  std::string body;
};

struct ServedResponse {
  int status = 200;
  std::string body;  // JSON text, HTML or the Prometheus text format
  std::string content_type = "application/json";
  std::string location;  // sent as the Location header when not empty (a follower's 307)
};

inline constexpr size_t kRequestBytesMax = 1024 * 1024;
inline constexpr size_t kConnectionsMax = 256;
inline constexpr int64_t kHttpIdleTimeoutMs = 30000;

using HttpHandler = std::function<ServedResponse(const ServedRequest&)>;

class HttpServer {
 public:
  // Binds and listens on bind:port (port 0: an ephemeral port, see port()) and starts
  // accepting on `io` (which must outlive the server and be run by the caller).
  // `name` is sent as the Server header.
  static Result<std::unique_ptr<HttpServer>> start(asio::io_context& io, const std::string& bind,
                                                   uint16_t port, HttpHandler handler,
                                                   std::string name = "cairn");
  ~HttpServer();
  uint16_t port() const { return port_; }
  // Stops accepting and closes the listener. Open connections end at their next timeout or
  // when the io_context stops. Call from the io thread or after it has stopped.
  void close();

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  struct Shared;  // listener and handler, shared with the connection coroutines (opaque)

 private:
  explicit HttpServer(std::shared_ptr<Shared> shared, uint16_t port)
      : shared_(std::move(shared)), port_(port) {}
  std::shared_ptr<Shared> shared_;
  uint16_t port_ = 0;
};

}  // namespace cairn::net
