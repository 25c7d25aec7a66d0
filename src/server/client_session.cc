#include "server/client_session.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <limits>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/assert.h"
#include "common/clock.h"
#include "net/event_loops.h"
#include "resp/writer.h"
#include "server/command_runner.h"

namespace cairn::server {

namespace {

// Microseconds since `start`, rounded up: a command that ran at all took at least 1 us.
uint64_t elapsed_us(std::chrono::steady_clock::time_point start) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  return ns <= 0 ? 1 : static_cast<uint64_t>((ns + 999) / 1000);
}

// How much of a produced reply (a big listing) is appended to the output at a time.
constexpr size_t kProducedPageBytes = 256 * 1024;

// Whether the reply starting at `at` is an error (RESP "-" or RESP3 blob error "!").
bool is_error_reply(std::string_view reply, size_t at) {
  return at < reply.size() && (reply[at] == '-' || reply[at] == '!');
}

// Whether the reply starting at `at` is exactly one null (RESP2 null bulk or array, RESP3 null):
// the reply of a blocking command that found nothing.
bool is_null_reply(std::string_view reply, size_t at) {
  const std::string_view rest = reply.substr(std::min(at, reply.size()));
  return rest == "*-1\r\n" || rest == "$-1\r\n" || rest == "_\r\n";
}

// How often a blocked client of a cluster machine runs its command again even without a
// notification: a push this machine does not apply (it holds no replica of the key) or a
// leader change would otherwise leave it waiting until its timeout.
constexpr int64_t kBlockedRecheckIntervalMs = 100;

// The session whose commands this thread is running, so CLIENT LIST can describe the calling
// client from its live state rather than from what it published before this batch.
thread_local const ClientSession* running_session = nullptr;
}  // namespace

std::string format_client_line(const ClientLine& line) {
  // Redis counts the client struct and buffers in tot-mem; this is the same idea, approximated.
  constexpr size_t kClientOverheadBytes = 1024;
  const size_t total = line.read_buffer_bytes + line.output_bytes + kClientOverheadBytes;
  return fmt::format(
      "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db=0 sub={} psub={} ssub={} "
      "multi=-1 qbuf={} qbuf-free={} argv-mem={} multi-mem=0 rbs={} rbp={} obl=0 oll=0 omem={} "
      "tot-mem={} events={} cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}\n",
      line.id, line.address, line.local_address, line.fd, line.name, line.age_seconds,
      line.idle_seconds, line.pubsub.any() ? "P" : "N", line.pubsub.channels,
      line.pubsub.patterns, line.pubsub.shard_channels, line.query_bytes, line.query_free_bytes,
      line.query_bytes, line.read_buffer_bytes, line.read_buffer_bytes, line.output_bytes, total,
      line.output_bytes > 0 ? "rw" : "r", line.command, line.protocol, line.library_name,
      line.library_version);
}

ClientSession::ClientSession(ServerState& state, LoopStats& stats, net::Connection& connection)
    : state_(state), stats_(stats), connection_(connection) {
  session_.id = connection.id();
  session_.authenticated = state.requirepass().empty();
  session_.created_ms = connection.created_ms();
  session_.last_command_ms = session_.created_ms;
  session_.peer_address = connection.peer_address();
  session_.local_address = connection.local_address();
  session_.blocking_allowed = true;
  last_command_ms_.store(session_.created_ms, std::memory_order_relaxed);
  subscriber_ = std::make_shared<Subscriber>(connection.weak_from_this(), *this, state.pubsub());
  args_.reserve(16);
  refresh_limits();
}

void ClientSession::refresh_limits() {
  const uint64_t bulk_limit = state_.settings().proto_max_bulk_len.load(std::memory_order_relaxed);
  if (bulk_limit == parser_bulk_limit_ && session_.authenticated == parser_authenticated_) return;
  resp::ParserLimits limits;
  limits.bulk_bytes_max = bulk_limit;
  if (!session_.authenticated) {
    // Before AUTH a client may not make the server allocate much (Redis's limits).
    limits.arguments_max = std::min<size_t>(limits.arguments_max, kUnauthenticatedArgumentsMax);
    limits.bulk_bytes_max = std::min<size_t>(limits.bulk_bytes_max, kUnauthenticatedBulkBytesMax);
  }
  parser_.set_limits(limits);
  parser_bulk_limit_ = bulk_limit;
  parser_authenticated_ = session_.authenticated;
}

namespace {

// Redis's string2ll: an optional '-', then digits without a leading zero, fitting in 64 bits.
bool parse_strict_integer(std::string_view text, int64_t& value) {
  if (text.empty() || text.size() > 20) return false;
  const bool negative = text[0] == '-';
  const std::string_view digits = negative ? text.substr(1) : text;
  if (digits.empty() || (digits[0] == '0' && digits.size() > 1)) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

std::string ClientSession::unauthenticated_error(std::string_view input, size_t consumed,
                                                 const std::string& error) const {
  const bool multibulk = error == "Protocol error: invalid multibulk length";
  const bool bulk = error == "Protocol error: invalid bulk length";
  if (parser_authenticated_ || (!multibulk && !bulk)) return error;
  // The parser was given the unauthenticated limits, so "invalid" may mean "over those limits".
  // Redis says "unauthenticated" only for a well-formed length: read the header line back from
  // where the parser stopped (it ends with '\r' and one more byte).
  if (consumed < 3) return error;
  const size_t line_end = consumed - 2;
  size_t start = line_end;
  while (start > 0 && input[start - 1] != '*' && input[start - 1] != '$' &&
         line_end - start < 21) {
    --start;
  }
  int64_t length = 0;
  if (start == 0 || !parse_strict_integer(input.substr(start, line_end - start), length)) {
    // Not found in this read (the header began in an earlier one): the limits are the likelier
    // cause, since a malformed length from a real client is rare.
    return start == 0 ? (multibulk ? "Protocol error: unauthenticated multibulk length"
                                   : "Protocol error: unauthenticated bulk length")
                      : error;
  }
  if (multibulk) {
    return length <= std::numeric_limits<int32_t>::max()
               ? "Protocol error: unauthenticated multibulk length"
               : error;
  }
  return length >= 0 && static_cast<uint64_t>(length) <= parser_bulk_limit_
             ? "Protocol error: unauthenticated bulk length"
             : error;
}

net::ProcessResult ClientSession::process(std::string_view input, std::string& output,
                                          size_t output_bytes_max) {
  refresh_limits();
  const int64_t now_ms = wall_clock_ms();
  const size_t output_start = output.size();
  net::ProcessResult result;
  uint64_t commands = 0;
  serve(input, output, output_bytes_max, now_ms, result, commands);
  // Bytes after a request that closes the connection are dropped, as Redis does.
  if (result.close) result.consumed = input.size();
  if (commands > 0) stats_.add_commands(commands);
  stats_.add_net(result.consumed, output.size() - output_start);
  publish(commands > 0 ? now_ms : 0);
  return result;
}

void ClientSession::serve(std::string_view input, std::string& output, size_t output_bytes_max,
                          int64_t now_ms, net::ProcessResult& result, uint64_t& commands) {
  const uint64_t query_limit =
      state_.settings().client_query_buffer_limit.load(std::memory_order_relaxed);
  CommandRunner* runner = state_.runner();
  std::vector<std::string> keys;
  running_session = this;
  while (output.size() < output_bytes_max) {
    if (!held_) {
      if (result.consumed >= input.size()) break;
      if (running_.size() >= kPipelineWindow) {
        // The window is full: what follows waits until the oldest request completes.
        suspended_ = result.suspend = true;
        break;
      }
      const resp::ParseOutcome parsed = parser_.parse(input.substr(result.consumed), args_);
      CAIRN_ASSERT(parsed.consumed > 0 || parsed.state != resp::ParseState::kComplete,
                   "a complete request consumes bytes");
      result.consumed += parsed.consumed;
      if (parsed.state == resp::ParseState::kNeedMore) {
        partial_bytes_ += parsed.consumed;
        if (partial_bytes_ > query_limit) {
          // As redis-server: no reply, the client is closed and the event logged.
          spdlog::warn("closing client id={} addr={} that reached the max query buffer length",
                       session_.id, session_.peer_address);
          result.close = true;
        }
        break;
      }
      if (parsed.state == resp::ParseState::kError) {
        reply_error("ERR " + unauthenticated_error(input, result.consumed, parsed.error), output,
                    /*close=*/true);
        result.close = true;
        break;
      }
      partial_bytes_ = 0;
      if (args_.empty()) continue;  // an empty inline line, which Redis ignores
      session_.last_command_ms = now_ms;
    }
    const commands::CommandSpec* spec = state_.table().find(args_[0]);
    // Inside MULTI, commands are only queued (dispatch() does it, on the loop); EXEC runs them.
    const bool queued = session_.in_multi && (spec == nullptr || spec->name != "exec");
    if (runner == nullptr || queued || runs_inline(args_[0], spec)) {
      // While an exclusive request runs it owns the session: everything waits for it. Pub/sub
      // commands wait for every earlier request, so pushes and publishes keep request order.
      if (exclusive_running_ || (spec != nullptr && (spec->flags & commands::kPubSub) != 0 &&
                                 !running_.empty())) {
        held_ = suspended_ = result.suspend = true;
        break;
      }
      held_ = false;
      const bool direct = running_.empty();  // the reply goes straight to the output
      const size_t reply_start = output.size();
      notifications_before_ = state_.blocked_clients().notifications();
      const commands::DispatchOutcome outcome = run_inline(output, commands);
      if (session_.block) {
        commands::BlockRequest block = std::move(*session_.block);
        session_.block.reset();
        // A client that finished sending (nc, a closed socket) gets the null reply at once.
        if (direct && is_null_reply(output, reply_start) && !connection_.input_ended()) {
          // Nothing to pop: the reply waits, and so do the requests after it.
          output.resize(reply_start);
          begin_block(std::move(block), args_, nullptr);
          suspended_ = result.suspend = true;
          break;
        }
      }
      result.wrote |= outcome.wrote;
      if (session_.authenticated != parser_authenticated_) refresh_limits();
      if (session_.close_after_reply) {
        result.close = true;
        break;
      }
      if (session_.reply_producer) {
        // The rest of this reply is produced as the output drains (produce()); what follows
        // waits for it.
        producer_ = std::move(session_.reply_producer);
        result.suspend = true;
        break;
      }
      continue;
    }
    bool exclusive = false;
    if (admission(spec, exclusive, keys) == Admission::kWait) {
      held_ = suspended_ = result.suspend = true;
      break;
    }
    held_ = false;
    // Publish before the hand-off: an exclusive request's worker owns the session meanwhile.
    if (commands > 0) stats_.add_commands(commands);
    commands = 0;
    publish(now_ms);
    if (!submit(exclusive, keys)) {
      // Overload is a fast, retryable error for this request; the following ones are still
      // served.
      reply_error("BUSY server overloaded, try again", output, /*close=*/false);
    }
  }
  running_session = nullptr;
}

net::ProcessResult ClientSession::produce(std::string& output) {
  CAIRN_ASSERT(producer_ != nullptr, "produce() runs only while a reply is being produced");
  net::ProcessResult result;
  const size_t before = output.size();
  resp::ReplyWriter writer(&output, session_.protocol);
  Result<bool> more = producer_->produce(writer, kProducedPageBytes);
  stats_.add_net(0, output.size() - before);
  if (!more.is_ok()) {
    // Part of the reply is out already: it cannot end in an error reply.
    spdlog::error("closing client id={}: its reply could not be finished: {}", session_.id,
                  more.status().to_string());
    producer_.reset();
    result.close = true;
    return result;
  }
  if (!*more) producer_.reset();
  result.suspend = producer_ != nullptr;
  return result;
}

void ClientSession::reply_error(std::string_view error, std::string& output, bool close) {
  if (running_.empty()) {
    resp::ReplyWriter(&output, session_.protocol).error(error);
    return;
  }
  Request& request = take_request();
  resp::ReplyWriter(&request.reply, session_.protocol).error(error);
  request.done = request.counted = true;
  request.close = close;
  running_.push_back(&request);
}

commands::DispatchOutcome ClientSession::run_inline(std::string& output, uint64_t& commands) {
  // With requests running, this reply goes behind theirs.
  Request* queued = running_.empty() ? nullptr : &take_request();
  std::string& out = queued != nullptr ? queued->reply : output;
  resp::ReplyWriter writer(&out, session_.protocol);
  commands::CommandContext context{args_, writer, session_, state_.keyspace(), state_,
                                   state_.replica()};
  const size_t reply_start = out.size();
  const auto started = std::chrono::steady_clock::now();
  // A reply that goes straight to the output may be produced page by page.
  session_.reply_producer_allowed = queued == nullptr;
  const commands::DispatchOutcome outcome = commands::dispatch(state_.table(), context);
  session_.reply_producer_allowed = false;
  const uint64_t usec = elapsed_us(started);
  ++commands;
  stats_.record_command(state_.command_index(outcome.spec), usec,
                        is_error_reply(out, reply_start));
  state_.after_command(args_, usec, session_);
  if (outcome.spec != nullptr) last_spec_.store(outcome.spec, std::memory_order_relaxed);
  if (queued != nullptr) {
    queued->done = queued->counted = true;
    queued->close = session_.close_after_reply;
    running_.push_back(queued);
  }
  return outcome;
}

ClientSession::Admission ClientSession::admission(const commands::CommandSpec* spec,
                                                   bool& exclusive,
                                                   std::vector<std::string>& keys) const {
  keys.clear();
  if (exclusive_running_) return Admission::kWait;
  // A forwarded request is another machine's client command: independent of its neighbours.
  const bool forward = spec == nullptr;
  // WATCH changes the connection's own state: it runs alone, as EXEC does.
  const bool keyed = spec != nullptr && (spec->first_key > 0 || spec->numkeys_index > 0) &&
                     spec->group != "transactions" &&
                     (spec->flags & (commands::kBlocking | commands::kAdmin |
                                     commands::kPubSub)) == 0 &&
                     ((spec->flags & commands::kMovableKeys) == 0 || spec->numkeys_index > 0) &&
                     spec->subcommands.empty();
  exclusive = !forward && !keyed;
  if (exclusive) return running_.empty() ? Admission::kNow : Admission::kWait;
  // A pipelining connection with requests running waits rather than fill the shared queue:
  // the queue's bound is what turns overload into BUSY errors for everyone.
  if (!running_.empty() &&
      state_.runner()->pool().queued() >= kWorkerQueueMax / 2) {
    return Admission::kWait;
  }
  if (keyed) {
    for (const size_t index : commands::key_indexes(*spec, args_)) keys.push_back(args_[index]);
    for (const std::string& key : keys) {
      if (running_keys_.contains(key)) return Admission::kWait;
    }
  }
  return Admission::kNow;
}

ClientSession::Request& ClientSession::take_request() {
  if (idle_requests_.empty()) {
    // Held by pointer: a Request stays at one address, since its keyspace refers to its session.
    return *requests_.emplace_back(std::make_unique<Request>());
  }
  Request* request = idle_requests_.back();
  idle_requests_.pop_back();
  return *request;
}

bool ClientSession::submit(bool exclusive, std::vector<std::string>& keys) {
  CommandRunner* runner = state_.runner();
  CAIRN_ASSERT(runner != nullptr, "only a server with a runner hands requests off");
  Request& request = take_request();
  request.args.swap(args_);
  args_.clear();
  request.exclusive = exclusive;
  request.keys.swap(keys);
  if (exclusive) {
    request.session = &session_;
    request.keyspace = &worker_keyspace_;
  } else {
    request.own_session = session_;
    request.session = &request.own_session;
    request.keyspace = &request.own_keyspace;
  }
  // The job holds the connection: it (and this session, which it owns) outlives the job even if
  // the client goes away meanwhile; the loop then drops the reply (Connection::deliver).
  const bool accepted = runner->pool().submit(
      [this, connection = connection_.shared_from_this(), &request]() mutable {
        run_on_worker(std::move(connection), request);
      });
  if (!accepted) {
    args_.swap(request.args);
    release(request);
    return false;
  }
  for (const std::string& key : request.keys) ++running_keys_[key];
  exclusive_running_ = exclusive;
  running_.push_back(&request);
  return true;
}

void ClientSession::run_on_worker(std::shared_ptr<net::Connection> connection, Request& request) {
  if (request.exclusive) running_session = this;
  commands::Session& session = *request.session;
  const auto started = std::chrono::steady_clock::now();
  // Only an exclusive request may block (blocking commands run alone).
  if (request.exclusive) notifications_before_ = state_.blocked_clients().notifications();
  const commands::DispatchOutcome outcome =
      state_.runner()->run(request.args, session, *request.keyspace, request.reply);
  if (session.block) {
    commands::BlockRequest block = std::move(*session.block);
    session.block.reset();
    if (is_null_reply(request.reply, 0)) {
      // Nothing to pop yet: the request stays running (everything after it waits) until the
      // wait ends (end_block).
      running_session = nullptr;
      request.reply.clear();
      request.spec = outcome.spec;
      net::EventLoop& loop = connection->loop();
      net::asio::post(loop.context(), [this, connection = std::move(connection),
                                       block = std::move(block), &request]() mutable {
        if (!connection->closed()) begin_block(std::move(block), request.args, &request);
      });
      return;
    }
  }
  request.usec = elapsed_us(started);
  running_session = nullptr;
  request.failed = is_error_reply(request.reply, 0);
  state_.after_command(request.args, request.usec, session);
  request.spec = outcome.spec;
  request.close = session.close_after_reply;
  if (outcome.wrote) {
    // Group commit happens inside the engine: concurrent workers share one WAL sync.
    const Status synced = state_.sync_writes();
    if (!synced.is_ok()) {
      // The write may not be durable, so its acknowledgement must not leave: close instead, as
      // a loop does when its flush fails.
      spdlog::error("WAL sync failed, closing client id={}: {}", session_.id,
                    synced.to_string());
      request.reply.clear();
      request.close = true;
    }
  }
  net::EventLoop& loop = connection->loop();
  net::asio::post(loop.context(), [this, connection = std::move(connection), &request] {
    finish(*connection, request);
  });
}

void ClientSession::finish(net::Connection& connection, Request& request) {
  request.done = true;
  if (request.exclusive) exclusive_running_ = false;
  for (const std::string& key : request.keys) {
    const auto it = running_keys_.find(key);
    if (it != running_keys_.end() && --it->second == 0) running_keys_.erase(it);
  }
  if (request.spec != nullptr) last_spec_.store(request.spec, std::memory_order_relaxed);
  if (session_.authenticated != parser_authenticated_) refresh_limits();
  deliver_completed(connection);
}

void ClientSession::deliver_completed(net::Connection& connection) {
  uint64_t commands = 0;
  uint64_t bytes = 0;
  while (!running_.empty() && running_.front()->done) {
    Request& request = *running_.front();
    running_.pop_front();
    if (!request.counted) {
      ++commands;
      stats_.record_command(state_.command_index(request.spec), request.usec, request.failed);
    }
    bytes += request.reply.size();
    const bool close = request.close;
    connection.deliver(request.reply, false, close, false);
    release(request);
    if (close) break;
  }
  if (commands > 0) stats_.add_commands(commands);
  stats_.add_net(0, bytes);
  publish(0);
  if (!suspended_ || running_.size() >= kPipelineWindow) return;
  // The input after a full window, or a request held back, may go now.
  suspended_ = false;
  if (!held_) {
    connection.deliver({}, false, false, true);
    return;
  }
  // The held request was consumed from the input already: serve it here (serve() starts with
  // it), then let the connection process what follows unless it must wait again.
  std::string output;
  net::ProcessResult result;
  uint64_t served = 0;
  serve({}, output, net::Connection::kOutputBytesMax, wall_clock_ms(), result, served);
  if (served > 0) stats_.add_commands(served);
  stats_.add_net(0, output.size());
  publish(0);
  connection.deliver(output, result.wrote, result.close, !result.suspend);
}

void ClientSession::release(Request& request) {
  request.args.clear();
  request.keys.clear();
  request.reply.clear();
  request.spec = nullptr;
  request.done = request.close = request.counted = request.failed = request.exclusive = false;
  request.usec = 0;
  idle_requests_.push_back(&request);
}

void ClientSession::publish(int64_t now_ms) {
  if (now_ms != 0) last_command_ms_.store(now_ms, std::memory_order_relaxed);
  protocol_.store(session_.protocol, std::memory_order_relaxed);
  query_bytes_.store(partial_bytes_, std::memory_order_relaxed);
  // Names change rarely (CLIENT SETNAME / SETINFO): compare without the lock, copy with it.
  if (session_.name != name_ || session_.library_name != library_name_ ||
      session_.library_version != library_version_) {
    std::lock_guard lock(names_mutex_);
    name_ = session_.name;
    library_name_ = session_.library_name;
    library_version_ = session_.library_version;
  }
}

void ClientSession::begin_block(commands::BlockRequest request, std::vector<std::string> args,
                                Request* worker_request) {
  CAIRN_ASSERT(!blocked_, "one blocking command at a time per connection");
  Blocked& blocked = blocked_.emplace();
  blocked.request = worker_request;
  if (connection_.input_ended()) {
    // The client went away while the first attempt ran on a worker: nobody waits.
    end_block("", false, true);
    return;
  }
  blocked.args = std::move(args);
  blocked.keys = request.keys;
  blocked.deadline_ms = request.deadline_ms;
  blocked.recheck_at_ms = request.recheck_at_ms;
  waiting_in_block_.store(true, std::memory_order_release);
  // CLIENT LIST names the command a client waits in, as Redis does (a worker request's command
  // is otherwise recorded only when it completes).
  if (worker_request != nullptr && worker_request->spec != nullptr) {
    last_spec_.store(worker_request->spec, std::memory_order_relaxed);
  }
  // The wake runs on whichever thread applied the push: it only posts to this loop. The weak
  // pointer lets a closed connection go; the session lives as long as its connection.
  std::weak_ptr<net::Connection> weak = connection_.shared_from_this();
  auto wake = [this, weak] {
    if (std::shared_ptr<net::Connection> connection = weak.lock()) {
      net::asio::post(connection->loop().context(), [this, connection] {
        if (!connection->closed()) attempt();
      });
    }
  };
  bool missed = false;
  blocked.sequence = state_.blocked_clients().add(std::move(request.keys), wake,
                                                  notifications_before_, missed,
                                                  std::move(request.queue));
  arm_block_timer();
  if (missed && state_.blocked_clients().take(blocked.sequence)) {
    // Posted: the connection is not suspended yet while process() runs.
    net::asio::post(connection_.loop().context(),
                    [this, connection = connection_.shared_from_this()] {
                      if (!connection->closed()) attempt();
                    });
  }
}

void ClientSession::attempt() {
  if (!blocked_) return;
  Blocked& blocked = *blocked_;
  CAIRN_ASSERT(!blocked.attempting, "one attempt at a time");
  blocked.attempting = true;
  CommandRunner* runner = state_.runner();
  if (runner == nullptr) {
    std::vector<std::string> args = blocked.args;
    std::string reply;
    resp::ReplyWriter writer(&reply, session_.protocol);
    commands::CommandContext context{args, writer, session_, state_.keyspace(), state_,
                                     state_.replica()};
    running_session = this;
    session_.block_retry = true;
    const commands::DispatchOutcome outcome = commands::dispatch(state_.table(), context);
    session_.block_retry = false;
    running_session = nullptr;
    const int64_t recheck_at = session_.block ? session_.block->recheck_at_ms : 0;
    session_.block.reset();
    attempt_done(std::move(reply), outcome.wrote, recheck_at);
    return;
  }
  // The worker gets its own copy of the request: the loop may drop blocked_ (a close) meanwhile.
  const bool queued = runner->pool().submit([this, connection = connection_.shared_from_this(),
                                             args = blocked.args]() mutable {
    std::string reply;
    running_session = this;
    session_.block_retry = true;
    const commands::DispatchOutcome outcome =
        state_.runner()->run(args, session_, worker_keyspace_, reply);
    session_.block_retry = false;
    running_session = nullptr;
    const int64_t recheck_at = session_.block ? session_.block->recheck_at_ms : 0;
    session_.block.reset();
    bool wrote = outcome.wrote;
    if (wrote && !state_.sync_writes().is_ok()) {
      // Not durable: the element must not be reported as popped; the client is closed.
      reply.clear();
      wrote = false;
      session_.close_after_reply = true;
    }
    net::asio::post(connection->loop().context(),
                    [this, connection, reply = std::move(reply), wrote, recheck_at]() mutable {
                      attempt_done(std::move(reply), wrote, recheck_at);
                    });
  });
  if (!queued) attempt_done(null_reply(), false, blocked.recheck_at_ms);  // as if nothing there
}

void ClientSession::attempt_done(std::string reply, bool wrote, int64_t recheck_at_ms) {
  if (!blocked_) return;  // the connection closed meanwhile; the reply is lost (documented)
  Blocked& blocked = *blocked_;
  blocked.attempting = false;
  blocked.recheck_at_ms = recheck_at_ms;
  const bool nothing = reply.empty() || is_null_reply(reply, 0);
  const bool expired = blocked.deadline_ms != 0 && wall_clock_ms() >= blocked.deadline_ms;
  if (nothing && !expired && !blocked.cancelled && !blocked.unblocked_reply &&
      !session_.close_after_reply) {
    if (state_.blocked_clients().rearm(blocked.sequence)) {
      arm_block_timer();
      return;
    }
    // A push arrived during the attempt: try again, from the loop (no recursion).
    net::asio::post(connection_.loop().context(),
                    [this, connection = connection_.shared_from_this()] {
                      if (!connection->closed()) attempt();
                    });
    return;
  }
  if (nothing) {
    end_block(blocked.cancelled         ? std::string()
              : blocked.unblocked_reply ? *blocked.unblocked_reply
                                        : null_reply(),
              false, blocked.cancelled);
    return;
  }
  // Served (or an error): the next waiter of these keys may find more.
  const std::vector<std::string> keys = blocked.keys;
  end_block(reply, wrote, session_.close_after_reply);
  for (const std::string& key : keys) state_.blocked_clients().notify(key);
}

void ClientSession::end_block(std::string_view reply, bool wrote, bool close) {
  waiting_in_block_.store(false, std::memory_order_release);
  if (blocked_->sequence != 0) state_.blocked_clients().remove(blocked_->sequence);
  Request* request = blocked_->request;
  blocked_.reset();
  if (request != nullptr) {
    // The exclusive request completes with this reply (the attempt synced its writes); the
    // requests after it go on.
    request->reply.assign(reply);
    request->close = request->close || close;
    finish(connection_, *request);
    return;
  }
  stats_.add_net(0, reply.size());
  suspended_ = false;
  connection_.deliver(reply, wrote, close, true);
}

void ClientSession::arm_block_timer() {
  Blocked& blocked = *blocked_;
  const bool recheck = state_.runner() != nullptr;
  if (blocked.deadline_ms == 0 && !recheck && blocked.recheck_at_ms == 0) return;
  const int64_t now = wall_clock_ms();
  int64_t wait_ms = blocked.deadline_ms == 0 ? kBlockedRecheckIntervalMs
                                             : std::max<int64_t>(blocked.deadline_ms - now, 0);
  if (recheck) wait_ms = std::min(wait_ms, kBlockedRecheckIntervalMs);
  if (blocked.recheck_at_ms != 0) {
    wait_ms = std::min(wait_ms, std::max<int64_t>(blocked.recheck_at_ms - now, 0));
  }
  if (!blocked.timer) {
    blocked.timer = std::make_unique<net::asio::steady_timer>(connection_.loop().context());
  }
  blocked.timer->expires_after(std::chrono::milliseconds(wait_ms));
  const uint64_t sequence = blocked.sequence;
  blocked.timer->async_wait([this, sequence, weak = std::weak_ptr<net::Connection>(
                                                 connection_.shared_from_this())](
                                const boost::system::error_code& error) {
    std::shared_ptr<net::Connection> connection = weak.lock();
    if (error || !connection || connection->closed()) return;
    if (!blocked_ || blocked_->sequence != sequence) return;
    // An attempt in flight re-arms the timer when it ends.
    if (blocked_->deadline_ms != 0 && wall_clock_ms() >= blocked_->deadline_ms) {
      if (state_.blocked_clients().take(sequence)) end_block(null_reply(), false, false);
      return;
    }
    if (blocked_->recheck_at_ms != 0 && wall_clock_ms() >= blocked_->recheck_at_ms) {
      // A key of the waiter expired: it runs again whatever its place (it asked for it).
      blocked_->recheck_at_ms = 0;
      if (state_.blocked_clients().take(sequence)) attempt();
      return;
    }
    switch (state_.blocked_clients().take_for_recheck(sequence)) {
      case BlockedClients::Recheck::kNotWaiting:
        return;
      case BlockedClients::Recheck::kLater:
        arm_block_timer();  // an earlier waiter of its queue retries for it
        return;
      case BlockedClients::Recheck::kTaken:
        attempt();
        return;
    }
  });
}

std::string ClientSession::null_reply() const {
  std::string reply;
  resp::ReplyWriter writer(&reply, session_.protocol);
  writer.null_array();
  return reply;
}

void ClientSession::on_input_end_while_suspended() {
  if (!blocked_) return;
  if (blocked_->attempting) {
    blocked_->cancelled = true;
    return;
  }
  if (state_.blocked_clients().take(blocked_->sequence)) end_block("", false, true);
}

bool ClientSession::unblock(bool error) {
  if (!waiting_in_block_.load(std::memory_order_acquire)) return false;
  net::asio::post(connection_.loop().context(),
                  [this, error, connection = connection_.shared_from_this()] {
                    if (connection->closed() || !blocked_) return;
                    std::string reply = error
                                            ? std::string("-UNBLOCKED client unblocked via "
                                                          "CLIENT UNBLOCK\r\n")
                                            : null_reply();
                    if (blocked_->attempting) {
                      blocked_->unblocked_reply = std::move(reply);  // attempt_done ends it
                      return;
                    }
                    if (state_.blocked_clients().take(blocked_->sequence)) {
                      end_block(reply, false, false);
                    }
                  });
  return true;
}

size_t ClientSession::deliver_push(std::string_view bytes) {
  stats_.add_net(0, bytes.size());
  if (running_.empty()) {
    connection_.deliver(bytes, false, false, false);
    return 0;
  }
  // Behind the running requests: appended to the last queued reply when it is complete already.
  Request* last = running_.back();
  if (!last->done) {
    last = &take_request();
    last->done = last->counted = true;
    running_.push_back(last);
  }
  last->reply.append(bytes);
  return last->reply.size();
}

void ClientSession::on_close() {
  waiting_in_block_.store(false, std::memory_order_release);
  state_.pubsub().remove_all(*subscriber_);
  state_.tracking().forget(session_.id);
  if (blocked_) {
    state_.blocked_clients().remove(blocked_->sequence);
    blocked_.reset();
  }
  state_.unregister_client(session_.id);
  state_.client_closed();
}

std::string ClientSession::describe() const {
  if (running_session == this) return describe_current(session_);
  const int64_t now = wall_clock_ms();
  const auto* spec = last_spec_.load(std::memory_order_relaxed);
  ClientLine line;
  line.id = session_.id;
  line.address = connection_.peer_address();
  line.local_address = connection_.local_address();
  line.fd = connection_.fd();
  line.age_seconds = (now - connection_.created_ms()) / 1000;
  line.idle_seconds = (now - last_command_ms_.load(std::memory_order_relaxed)) / 1000;
  line.query_bytes = query_bytes_.load(std::memory_order_relaxed) +
                     connection_.input_unconsumed_bytes();
  line.read_buffer_bytes = connection_.input_buffer_bytes();
  line.query_free_bytes = line.read_buffer_bytes - connection_.input_unconsumed_bytes();
  line.output_bytes = connection_.output_bytes();
  if (spec != nullptr) line.command = spec->name;
  line.protocol = protocol_.load(std::memory_order_relaxed);
  line.pubsub = state_.pubsub().counts(*subscriber_);
  std::lock_guard lock(names_mutex_);
  line.name = name_;
  line.library_name = library_name_;
  line.library_version = library_version_;
  return format_client_line(line);
}

std::string ClientSession::describe_current(const commands::Session& session) const {
  const int64_t now = wall_clock_ms();
  ClientLine line;
  line.id = session.id;
  line.address = session.peer_address;
  line.local_address = session.local_address;
  line.fd = connection_.fd();
  line.name = session.name;
  line.age_seconds = (now - session.created_ms) / 1000;
  line.idle_seconds = (now - session.last_command_ms) / 1000;
  line.query_bytes = partial_bytes_;
  line.read_buffer_bytes = connection_.input_buffer_bytes();
  line.query_free_bytes = line.read_buffer_bytes;
  line.output_bytes = connection_.output_bytes();
  // The command being served is the one asking (CLIENT INFO), unless dispatch recorded another.
  line.command = session.last_command.empty() ? std::string_view("client|info")
                                              : std::string_view(session.last_command);
  line.protocol = session.protocol;
  line.library_name = session.library_name;
  line.library_version = session.library_version;
  line.pubsub = state_.pubsub().counts(*subscriber_);
  return format_client_line(line);
}

}  // namespace cairn::server
