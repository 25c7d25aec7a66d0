#pragma once
// A small HTTP/1.1 server (Boost.Beast) carrying the ApiRouter: JSON request and response bodies,
// keep-alive, bounded request size (kRequestBytesMax), bounded connections (kConnectionsMax),
// idle and read timeouts. It runs on the io_context it is given; `cairn orchestrator` runs that
// context on a single thread, so handlers never run concurrently.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "net/asio.h"
#include "orchestrator/api.h"

namespace cairn::orchestrator {

inline constexpr size_t kRequestBytesMax = 1024 * 1024;
inline constexpr size_t kConnectionsMax = 256;
inline constexpr int64_t kHttpIdleTimeoutMs = 30000;

using HttpHandler = std::function<ApiResponse(const ApiRequest&)>;

class HttpServer {
 public:
  // Binds and listens on bind:port (port 0: an ephemeral port, see port()) and starts
  // accepting on `io` (which must outlive the server and be run by the caller).
  static Result<std::unique_ptr<HttpServer>> start(net::asio::io_context& io,
                                                   const std::string& bind, uint16_t port,
                                                   HttpHandler handler);
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

}  // namespace cairn::orchestrator
