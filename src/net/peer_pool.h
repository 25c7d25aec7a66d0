#pragma once
// PeerPool: persistent, pipelined, authenticated RESP connections from this machine to the
// other machines of the cluster (docs/architecture.md "peer connection pools"; the messages are in
// docs/formats.md "Internal protocol").
//
// Threading: the pool runs its own io_context on its own thread(s). call() may be called from
// any thread; `done` runs on a pool thread and must not block.
//
// Invariants:
//  1. Every call() completes exactly once: with the reply (which may be a RESP error reply, a
//     normal outcome), or with a non-ok Status: kTimedOut (no reply within timeout_ms),
//     kUnavailable (cannot connect, or the peer is marked down after a recent failure — calls
//     fail fast until the next reconnect attempt), kBusy (the per-peer queue is full).
//  2. Replies are matched to requests in order (RESP pipelining on one connection).
//  3. A new connection first sends `CAIRN.AUTH <secret>`; a peer that rejects it is treated as
//     unavailable and logged once.
//  4. Outgoing connections are bound to `local_address` before connecting, so a test can cut a
//     machine off with iptables rules on its own 127.0.0.x address.
//  5. Bounded: at most pending_requests_max outstanding requests per peer; reconnects back off
//     (reconnect_backoff_ms) after a failure.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "resp/reply_parser.h"

namespace cairn::net {

struct PeerPoolOptions {
  std::string local_address;          // IP to bind outgoing sockets to ("" = any)
  std::string secret;                 // the cluster secret ("" = no CAIRN.AUTH, e.g. plain Redis)
  int connect_timeout_ms = 500;
  int reconnect_backoff_ms = 200;     // after a failure, calls fail fast for this long
  size_t pending_requests_max = 100'000;
  size_t threads = 1;
};

struct PeerStats {
  std::string address;
  bool connected = false;
  uint64_t requests = 0;
  uint64_t failures = 0;
  size_t pending = 0;
};

class PeerPool {
 public:
  using Callback = std::function<void(Result<resp::Value>)>;

  explicit PeerPool(PeerPoolOptions options);
  ~PeerPool();  // stops the threads; pending calls complete with kUnavailable
  PeerPool(const PeerPool&) = delete;
  PeerPool& operator=(const PeerPool&) = delete;

  // Sends `args` to the machine at `address` ("host:port", numeric host; an address that does not
  // parse completes with kInvalidArgument). Thread-safe.
  void call(const std::string& address, std::vector<std::string> args, int timeout_ms,
            Callback done);

  // Blocking convenience for tools and tests: waits for the reply. REQUIRES: not on a pool thread.
  Result<resp::Value> call_sync(const std::string& address, std::vector<std::string> args,
                                int timeout_ms);

  std::vector<PeerStats> stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::net
