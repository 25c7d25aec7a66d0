#pragma once
// The TCP listener: accepts on the first loop and hands each new socket to the next loop
// (round-robin), already bound to that loop's io_context.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "net/asio.h"
#include "net/event_loops.h"

namespace cairn::net {

inline constexpr int kListenBacklog = 511;  // as redis-server's tcp-backlog
inline constexpr int64_t kAcceptRetryMs = 100;

class Listener {
 public:
  // Called on the accepting loop's thread with a socket of `loop`. The callee owns the socket.
  using AcceptFn = std::function<void(tcp::socket socket, EventLoop& loop)>;

  // Binds and listens on `bind_address`:`port` (port 0 picks a free port). The address is an
  // IPv4 or IPv6 literal, "*" meaning every IPv4 address. Accepting starts with start().
  static Result<std::unique_ptr<Listener>> open(EventLoops& loops, std::string_view bind_address,
                                                uint16_t port, AcceptFn on_accept);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  uint16_t port() const { return port_; }
  // Any thread.
  void start();
  // Stops accepting and closes the listening socket, waiting for the accepting loop to do it.
  // REQUIRES: not called from a loop thread; called before the loops stop. Idempotent.
  void stop();

 private:
  Listener(EventLoops& loops, tcp::acceptor acceptor, AcceptFn on_accept);
  void accept_next();
  void on_accept(const error_code& error, tcp::socket socket, EventLoop& target);
  void close_acceptor();

  EventLoops& loops_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  AcceptFn on_accept_;
  uint16_t port_ = 0;
  bool stopped_ = false;  // accepting loop's thread only
  bool stop_requested_ = false;
};

}  // namespace cairn::net
