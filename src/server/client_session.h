#pragma once
// The RESP client session: what a client connection's bytes mean (docs/cluster.md). It parses
// every complete request in the buffered bytes, dispatches them in order through the command
// table and appends the replies (pipelining). It enforces the protocol limits of redis-server:
// proto-max-bulk-len (in the parser) and client-query-buffer-limit (here).
//
// Threading: process() and on_close() run on the connection's loop thread. describe() runs on
// any thread and reads only the state published at the end of each process() call.
//
// Worker commands (a server with a CommandRunner, i.e. a cluster machine): a request that does not
// run inline is handed to a worker and the connection is suspended; the worker owns the session
// until it posts the reply back to the loop (finish()), which resumes the connection. So exactly
// one command per connection is in flight and replies keep the order of the requests. The state
// other threads read is published before the hand-off, never while a worker runs.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "commands/command.h"
#include "coordinator/keyspace.h"
#include "net/asio.h"
#include "net/connection.h"
#include "resp/parser.h"
#include "server/server_state.h"

namespace cairn::server {

// Redis refuses larger requests from a client that has not authenticated yet.
inline constexpr size_t kUnauthenticatedArgumentsMax = 10;
inline constexpr size_t kUnauthenticatedBulkBytesMax = 16384;

class ClientSession final : public net::Protocol {
 public:
  // `connection` owns this session; `stats` are the counters of the connection's loop.
  ClientSession(ServerState& state, LoopStats& stats, net::Connection& connection);

  net::ProcessResult process(std::string_view input, std::string& output,
                             size_t output_bytes_max) override;
  void on_close() override;
  void on_input_end_while_suspended() override;

  // The CLIENT LIST line of this client. Any thread; the calling client itself is described from
  // its live state.
  std::string describe() const;
  // The CLIENT INFO line, built from `session` (the caller's own, current state).
  // Loop thread of this session.
  std::string describe_current(const commands::Session& session) const;

 private:
  // What a worker hands back to the loop.
  struct WorkerReply {
    std::string bytes;
    const commands::CommandSpec* spec = nullptr;
    bool close = false;
    uint64_t usec = 0;    // how long the command ran on the worker
    bool failed = false;  // the reply is an error
  };

  // Serves the requests in `input` from result.consumed on, on the loop, until the input is used
  // up, the output is full, the connection must close, or a request must run on a worker: then
  // it returns true with that request in args_ (consumed).
  bool serve(std::string_view input, std::string& output, size_t output_bytes_max,
             int64_t now_ms, net::ProcessResult& result, uint64_t& commands);
  // Queues args_ on the runner's pool; false if the pool refused it (overload or stopping).
  bool submit();
  // Worker thread: runs one command and posts its reply to the loop.
  void run_on_worker(std::shared_ptr<net::Connection> connection, std::vector<std::string>& args);
  // Loop thread: the worker's reply arrived.
  void finish(net::Connection& connection, const WorkerReply& reply);
  void refresh_limits();

  // ---- Blocking commands (docs/protocol.md "Blocking commands") ----
  // A client in BLPOP... whose first attempt found nothing: its connection stays suspended, its
  // waiter is queued in ServerState::blocked_clients(), and each wake runs the command again
  // (on the loop, or on a worker in cluster mode) until it is served or its deadline passes.
  // Loop thread, except that a worker running an attempt reads `args`.
  struct Blocked {
    uint64_t sequence = 0;
    std::vector<std::string> args;
    std::vector<std::string> keys;
    int64_t deadline_ms = 0;  // Unix ms; 0 = never
    bool attempting = false;
    bool cancelled = false;   // the client went away during an attempt
    std::unique_ptr<net::asio::steady_timer> timer;
  };
  // Loop thread: the command in `args` asked to block (Session::block) with its null reply.
  void begin_block(commands::BlockRequest request, std::vector<std::string> args);
  // Loop thread: runs the blocked command again. REQUIRES: the waiter is attempting.
  void attempt();
  // Loop thread: an attempt's reply.
  void attempt_done(std::string reply, bool wrote);
  // Loop thread: leaves the blocked state with `reply`.
  void end_block(std::string_view reply, bool wrote, bool close);
  // Loop thread: (re)starts the timer of the deadline and, in cluster mode, of the periodic
  // re-check that covers pushes this machine does not apply (it is no replica of the key, or
  // the key's leader changed).
  void arm_block_timer();
  std::string null_reply() const;
  // The error text for a parser error; turns the length errors that the unauthenticated limits
  // caused into Redis's "unauthenticated ..." texts. `consumed` is where the parser stopped.
  std::string unauthenticated_error(std::string_view input, size_t consumed,
                                    const std::string& error) const;
  void publish(int64_t now_ms);

  ServerState& state_;
  LoopStats& stats_;
  net::Connection& connection_;
  commands::Session session_;
  resp::RequestParser parser_;
  std::vector<std::string> args_;   // reused by every request: no allocation per command
  // The keyspace this connection's worker commands use (a cluster session carrying the
  // connection's consistency levels); created by the runner, touched only by the worker.
  std::unique_ptr<coordinator::Keyspace> worker_keyspace_;
  std::optional<Blocked> blocked_;
  uint64_t notifications_before_ = 0;  // BlockedClients::notifications() before the command
  size_t partial_bytes_ = 0;        // bytes of the unfinished request held by the parser
  uint64_t parser_bulk_limit_ = 0;  // the proto-max-bulk-len the parser was given
  bool parser_authenticated_ = false;  // whether the parser has the authenticated limits

  // Published for other threads at the end of each process() call.
  std::atomic<int64_t> last_command_ms_{0};
  std::atomic<const commands::CommandSpec*> last_spec_{nullptr};
  std::atomic<int> protocol_{2};
  std::atomic<size_t> query_bytes_{0};
  mutable std::mutex names_mutex_;
  // Written by the loop thread under names_mutex_, so that thread may read them without it.
  std::string name_;
  std::string library_name_;
  std::string library_version_;
};

// Fields of one CLIENT LIST line (Redis 7.0 layout plus 7.2's lib-name / lib-ver).
struct ClientLine {
  uint64_t id = 0;
  std::string_view address;
  std::string_view local_address;
  int fd = -1;
  std::string_view name;
  int64_t age_seconds = 0;
  int64_t idle_seconds = 0;
  size_t query_bytes = 0;
  size_t query_free_bytes = 0;
  size_t read_buffer_bytes = 0;
  size_t output_bytes = 0;
  std::string_view command = "NULL";
  int protocol = 2;
  std::string_view library_name;
  std::string_view library_version;
};
std::string format_client_line(const ClientLine& line);

}  // namespace cairn::server
