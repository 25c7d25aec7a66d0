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
// run inline is handed to a worker. Consecutive requests of one connection run concurrently, up
// to kPipelineWindow of them (pipelining, docs/cluster.md "Pipelining"), and their replies are
// appended in request order as the oldest ones complete. Each concurrent request runs on its own
// copy of the session taken when it was admitted (its protocol, levels, authentication), so
// later connection commands (HELLO, CONSISTENCY, AUTH...) do not change a request already sent.
// A request waits (the connection is suspended, nothing after it is read) while:
//  * it names a key that a running request of this connection names (same-key order);
//  * it is exclusive and anything runs, or anything is admitted while an exclusive one runs.
//    Exclusive: commands without fixed keys (SCAN, KEYS, FLUSHALL, CLUSTER, EXEC...), blocking
//    ones, movable-key ones and WATCH; they run alone, on the connection's own session, as
//    before pipelining: they may change the session (WATCH, CLUSTER SLOTS).
// Inside MULTI every command but EXEC is only queued, on the loop (dispatch()).
//  * kPipelineWindow requests run.
// Inline requests (PING, CONSISTENCY...) run on the loop at once; their reply is queued behind
// the running ones. Pub/sub commands (SUBSCRIBE, PUBLISH...) are inline too but first wait until
// nothing runs, so subscriptions, publishes and pushed messages keep request order
// (docs/pubsub.md). Forwarded requests from another machine (CAIRN.FORWARD) are independent
// clients' commands multiplexed on one peer connection: they never wait for each other.

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "commands/command.h"
#include "coordinator/keyspace.h"
#include "net/asio.h"
#include "net/connection.h"
#include "resp/parser.h"
#include "server/pubsub.h"
#include "server/server_state.h"

namespace cairn::server {

// Redis refuses larger requests from a client that has not authenticated yet.
inline constexpr size_t kUnauthenticatedArgumentsMax = 10;
inline constexpr size_t kUnauthenticatedBulkBytesMax = 16384;

class ClientSession final : public net::Protocol {
 public:
  // `connection` owns this session; `stats` are the counters of the connection's loop.
  ClientSession(ServerState& state, LoopStats& stats, net::Connection& connection);

  // Requests of one connection running on workers at once (see the comment at the top).
  static constexpr size_t kPipelineWindow = 32;

  net::ProcessResult process(std::string_view input, std::string& output,
                             size_t output_bytes_max) override;
  void on_close() override;
  bool busy() const override { return !running_.empty(); }
  bool producing() const override { return producer_ != nullptr; }
  net::ProcessResult produce(std::string& output) override;
  void on_input_end_while_suspended() override;

  // Pub/sub (server/pubsub.h). Loop thread: appends pushed messages behind the replies of the
  // requests admitted before them, so a push never overtakes an earlier reply (a subscription's
  // confirmation in particular).
  // Returns the bytes held back behind running requests (they count towards the limits).
  size_t deliver_push(std::string_view bytes);
  int push_protocol() const { return protocol_.load(std::memory_order_relaxed); }
  Subscriber& subscriber() const { return *subscriber_; }

  // The CLIENT LIST line of this client. Any thread; the calling client itself is described from
  // its live state.
  std::string describe() const;
  // Any thread (CLIENT UNBLOCK): if this client waits in a blocking command, wakes it to answer
  // as if its timeout passed (`error` false) or with -UNBLOCKED, and returns true.
  bool unblock(bool error);
  // The CLIENT INFO line, built from `session` (the caller's own, current state).
  // Loop thread of this session.
  std::string describe_current(const commands::Session& session) const;

 private:
  // One request handed to a worker (or an inline one queued behind those), from admission until
  // its reply is appended to the output. Reused: `own_session` and `own_keyspace` keep their
  // allocations, and the keyspace (which refers to own_session's levels) lives as long as it.
  struct Request {
    std::vector<std::string> args;
    bool exclusive = false;
    std::vector<std::string> keys;  // the keys it names, for the same-key rule
    commands::Session own_session;
    std::unique_ptr<coordinator::Keyspace> own_keyspace;
    // What the worker runs with: the own ones, or the connection's for an exclusive request.
    commands::Session* session = nullptr;
    std::unique_ptr<coordinator::Keyspace>* keyspace = nullptr;
    // Filled by the worker (or at once for an inline request queued behind running ones).
    std::string reply;
    const commands::CommandSpec* spec = nullptr;
    bool done = false;
    bool close = false;
    bool counted = false;  // stats already recorded (inline requests)
    uint64_t usec = 0;
    bool failed = false;
  };
  enum class Admission { kNow, kWait };

  // Serves the requests in `input` from result.consumed on, on the loop, until the input is used
  // up, the output is full, the connection must close, or a request must wait (suspend).
  void serve(std::string_view input, std::string& output, size_t output_bytes_max,
             int64_t now_ms, net::ProcessResult& result, uint64_t& commands);
  // Runs args_ on the loop, appending its reply to `output`, or queues the reply behind the
  // running requests. Returns the dispatch outcome.
  commands::DispatchOutcome run_inline(std::string& output, uint64_t& commands);
  // An error reply in request order: to `output` when nothing runs, else queued behind the
  // running requests. `close`: the connection closes once it is sent.
  void reply_error(std::string_view error, std::string& output, bool close);
  // Whether args_ (a worker request) may be handed to a worker now.
  Admission admission(const commands::CommandSpec* spec, bool& exclusive,
                      std::vector<std::string>& keys) const;
  // Hands args_ to a worker; false if the pool refused it (overload or stopping).
  bool submit(bool exclusive, std::vector<std::string>& keys);
  Request& take_request();
  // Worker thread: runs one request and posts its completion to the loop.
  void run_on_worker(std::shared_ptr<net::Connection> connection, Request& request);
  // Loop thread: a worker finished `request`; appends every completed reply at the head.
  void finish(net::Connection& connection, Request& request);
  // Loop thread: the oldest requests that are done, in order: their replies to the output.
  void deliver_completed(net::Connection& connection);
  void release(Request& request);
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
    int64_t recheck_at_ms = 0;  // BlockRequest::recheck_at_ms of the last run; 0 = none
    bool attempting = false;
    bool cancelled = false;   // the client went away during an attempt
    // CLIENT UNBLOCK during an attempt: the reply to end with if the attempt finds nothing.
    std::optional<std::string> unblocked_reply;
    std::unique_ptr<net::asio::steady_timer> timer;
    // Cluster mode: the exclusive worker request the wait belongs to; it completes (and the
    // connection's later requests go on) when the wait ends. nullptr on a single machine.
    Request* request = nullptr;
  };
  // Loop thread: the command in `args` asked to block (Session::block) with its null reply.
  // `request`: see Blocked::request.
  void begin_block(commands::BlockRequest request, std::vector<std::string> args,
                   Request* worker_request);
  // Loop thread: runs the blocked command again. REQUIRES: the waiter is attempting.
  void attempt();
  // Loop thread: an attempt's reply, and the BlockRequest::recheck_at_ms it asked for.
  void attempt_done(std::string reply, bool wrote, int64_t recheck_at_ms);
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
  // The keyspace this connection's exclusive worker requests use (a cluster session carrying
  // the connection's consistency levels); created by the runner, touched only by the worker.
  std::unique_ptr<coordinator::Keyspace> worker_keyspace_;
  // Requests admitted and not yet answered, oldest first (loop thread only).
  std::deque<Request*> running_;
  // Every Request this session made (at most kPipelineWindow + 1) and those not in running_.
  std::vector<std::unique_ptr<Request>> requests_;
  std::vector<Request*> idle_requests_;
  std::unordered_map<std::string, size_t> running_keys_;  // key → running requests naming it
  bool exclusive_running_ = false;
  bool held_ = false;       // args_ holds a parsed request that waits to be admitted
  bool suspended_ = false;  // this session suspended its connection
  // The rest of the reply of the last command run on the loop (a big listing), produced as the
  // client drains its output; the requests after it wait.
  std::shared_ptr<commands::ReplyProducer> producer_;
  std::optional<Blocked> blocked_;
  std::atomic<bool> waiting_in_block_{false};  // blocked_ is set (read by unblock())
  std::shared_ptr<Subscriber> subscriber_;
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
  PubSubCounts pubsub;  // sub= psub= ssub=, and flags=P when any
};
std::string format_client_line(const ClientLine& line);

}  // namespace cairn::server
