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
      "id={} addr={} laddr={} fd={} name={} age={} idle={} flags=N db=0 sub=0 psub=0 ssub=0 "
      "multi=-1 qbuf={} qbuf-free={} argv-mem={} multi-mem=0 rbs={} rbp={} obl=0 oll=0 omem={} "
      "tot-mem={} events={} cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}\n",
      line.id, line.address, line.local_address, line.fd, line.name, line.age_seconds,
      line.idle_seconds, line.query_bytes, line.query_free_bytes, line.query_bytes,
      line.read_buffer_bytes, line.read_buffer_bytes, line.output_bytes, total,
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
  while (serve(input, output, output_bytes_max, now_ms, result, commands)) {
    // Publish before the hand-off: from then on the worker owns the session.
    if (commands > 0) stats_.add_commands(commands);
    commands = 0;
    publish(now_ms);
    if (submit()) {
      result.suspend = true;
      stats_.add_net(result.consumed, output.size() - output_start);
      return result;
    }
    // Overload is a fast, retryable error for this request; the following ones are still served.
    resp::ReplyWriter(&output, session_.protocol).error("BUSY server overloaded, try again");
  }
  // Bytes after a request that closes the connection are dropped, as Redis does.
  if (result.close) result.consumed = input.size();
  if (commands > 0) stats_.add_commands(commands);
  stats_.add_net(result.consumed, output.size() - output_start);
  publish(commands > 0 ? now_ms : 0);
  return result;
}

bool ClientSession::serve(std::string_view input, std::string& output, size_t output_bytes_max,
                          int64_t now_ms, net::ProcessResult& result, uint64_t& commands) {
  const uint64_t query_limit =
      state_.settings().client_query_buffer_limit.load(std::memory_order_relaxed);
  CommandRunner* runner = state_.runner();
  resp::ReplyWriter writer(&output, session_.protocol);
  commands::CommandContext context{args_, writer, session_, state_.keyspace(), state_,
                                   state_.replica()};
  bool hand_off = false;
  running_session = this;
  while (result.consumed < input.size() && output.size() < output_bytes_max) {
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
      writer.error("ERR " + unauthenticated_error(input, result.consumed, parsed.error));
      result.close = true;
      break;
    }
    partial_bytes_ = 0;
    if (args_.empty()) continue;  // an empty inline line, which Redis ignores
    session_.last_command_ms = now_ms;
    if (runner != nullptr && !runs_inline(args_[0], state_.table().find(args_[0]))) {
      hand_off = true;
      break;
    }
    writer.set_protocol(session_.protocol);
    const size_t reply_start = output.size();
    const auto started = std::chrono::steady_clock::now();
    notifications_before_ = state_.blocked_clients().notifications();
    const commands::DispatchOutcome outcome = commands::dispatch(state_.table(), context);
    if (session_.block) {
      commands::BlockRequest request = std::move(*session_.block);
      session_.block.reset();
      // A client that finished sending (nc, a closed socket) gets the null reply at once.
      if (is_null_reply(output, reply_start) && !connection_.input_ended()) {
        // Nothing to pop: the reply waits, and so do the requests after it.
        output.resize(reply_start);
        begin_block(std::move(request), args_);
        result.suspend = true;
        break;
      }
    }
    const uint64_t usec = elapsed_us(started);
    ++commands;
    stats_.record_command(state_.command_index(outcome.spec), usec,
                          is_error_reply(output, reply_start));
    state_.after_command(args_, usec, session_);
    result.wrote |= outcome.wrote;
    if (outcome.spec != nullptr) last_spec_.store(outcome.spec, std::memory_order_relaxed);
    if (session_.authenticated != parser_authenticated_) refresh_limits();
    if (session_.close_after_reply) {
      result.close = true;
      break;
    }
  }
  running_session = nullptr;
  return hand_off;
}

bool ClientSession::submit() {
  CommandRunner* runner = state_.runner();
  CAIRN_ASSERT(runner != nullptr, "only a server with a runner hands requests off");
  std::vector<std::string> args;
  args.swap(args_);
  args_.reserve(16);
  // The job holds the connection: it (and this session, which it owns) outlives the job even if
  // the client goes away meanwhile; the loop then drops the reply (Connection::resume).
  return runner->pool().submit(
      [this, connection = connection_.shared_from_this(), args = std::move(args)]() mutable {
        run_on_worker(std::move(connection), args);
      });
}

void ClientSession::run_on_worker(std::shared_ptr<net::Connection> connection,
                                  std::vector<std::string>& args) {
  WorkerReply reply;
  running_session = this;
  const auto started = std::chrono::steady_clock::now();
  notifications_before_ = state_.blocked_clients().notifications();
  const commands::DispatchOutcome outcome =
      state_.runner()->run(args, session_, worker_keyspace_, reply.bytes);
  if (session_.block) {
    commands::BlockRequest request = std::move(*session_.block);
    session_.block.reset();
    if (is_null_reply(reply.bytes, 0)) {
      running_session = nullptr;
      net::EventLoop& loop = connection->loop();
      net::asio::post(loop.context(), [this, connection = std::move(connection),
                                       request = std::move(request), args = std::move(args)]() mutable {
        if (!connection->closed()) begin_block(std::move(request), std::move(args));
      });
      return;
    }
  }
  reply.usec = elapsed_us(started);
  running_session = nullptr;
  reply.failed = is_error_reply(reply.bytes, 0);
  state_.after_command(args, reply.usec, session_);
  reply.spec = outcome.spec;
  reply.close = session_.close_after_reply;
  if (outcome.wrote) {
    // Group commit happens inside the engine: concurrent workers share one WAL sync.
    const Status synced = state_.sync_writes();
    if (!synced.is_ok()) {
      // The write may not be durable, so its acknowledgement must not leave: close instead, as
      // a loop does when its flush fails.
      spdlog::error("WAL sync failed, closing client id={}: {}", session_.id,
                    synced.to_string());
      reply.bytes.clear();
      reply.close = true;
    }
  }
  net::EventLoop& loop = connection->loop();
  net::asio::post(loop.context(),
                  [this, connection = std::move(connection), reply = std::move(reply)] {
                    finish(*connection, reply);
                  });
}

void ClientSession::finish(net::Connection& connection, const WorkerReply& reply) {
  stats_.add_commands(1);
  stats_.record_command(state_.command_index(reply.spec), reply.usec, reply.failed);
  stats_.add_net(0, reply.bytes.size());
  if (reply.spec != nullptr) last_spec_.store(reply.spec, std::memory_order_relaxed);
  if (session_.authenticated != parser_authenticated_) refresh_limits();
  publish(0);
  connection.resume(reply.bytes, false, reply.close);
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

void ClientSession::begin_block(commands::BlockRequest request, std::vector<std::string> args) {
  CAIRN_ASSERT(!blocked_, "one blocking command at a time per connection");
  if (connection_.input_ended()) {
    // The client went away while the first attempt ran on a worker: nobody waits.
    connection_.resume("", false, true);
    return;
  }
  Blocked& blocked = blocked_.emplace();
  blocked.args = std::move(args);
  blocked.keys = request.keys;
  blocked.deadline_ms = request.deadline_ms;
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
  blocked.sequence =
      state_.blocked_clients().add(std::move(request.keys), wake, notifications_before_, missed);
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
    const commands::DispatchOutcome outcome = commands::dispatch(state_.table(), context);
    running_session = nullptr;
    session_.block.reset();
    attempt_done(std::move(reply), outcome.wrote);
    return;
  }
  // The worker gets its own copy of the request: the loop may drop blocked_ (a close) meanwhile.
  const bool queued = runner->pool().submit([this, connection = connection_.shared_from_this(),
                                             args = blocked.args]() mutable {
    std::string reply;
    running_session = this;
    const commands::DispatchOutcome outcome =
        state_.runner()->run(args, session_, worker_keyspace_, reply);
    running_session = nullptr;
    session_.block.reset();
    bool wrote = outcome.wrote;
    if (wrote && !state_.sync_writes().is_ok()) {
      // Not durable: the element must not be reported as popped; the client is closed.
      reply.clear();
      wrote = false;
      session_.close_after_reply = true;
    }
    net::asio::post(connection->loop().context(),
                    [this, connection, reply = std::move(reply), wrote]() mutable {
                      attempt_done(std::move(reply), wrote);
                    });
  });
  if (!queued) attempt_done(null_reply(), false);  // overloaded: as if nothing was there
}

void ClientSession::attempt_done(std::string reply, bool wrote) {
  if (!blocked_) return;  // the connection closed meanwhile; the reply is lost (documented)
  Blocked& blocked = *blocked_;
  blocked.attempting = false;
  const bool nothing = reply.empty() || is_null_reply(reply, 0);
  const bool expired = blocked.deadline_ms != 0 && wall_clock_ms() >= blocked.deadline_ms;
  if (nothing && !expired && !blocked.cancelled && !session_.close_after_reply) {
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
    end_block(blocked.cancelled ? std::string() : null_reply(), false, blocked.cancelled);
    return;
  }
  // Served (or an error): the next waiter of these keys may find more.
  const std::vector<std::string> keys = blocked.keys;
  end_block(reply, wrote, session_.close_after_reply);
  for (const std::string& key : keys) state_.blocked_clients().notify(key);
}

void ClientSession::end_block(std::string_view reply, bool wrote, bool close) {
  state_.blocked_clients().remove(blocked_->sequence);
  blocked_.reset();
  stats_.add_commands(1);
  stats_.add_net(0, reply.size());
  connection_.resume(reply, wrote, close);
}

void ClientSession::arm_block_timer() {
  Blocked& blocked = *blocked_;
  const bool recheck = state_.runner() != nullptr;
  if (blocked.deadline_ms == 0 && !recheck) return;
  const int64_t now = wall_clock_ms();
  int64_t wait_ms = blocked.deadline_ms == 0 ? kBlockedRecheckIntervalMs
                                             : std::max<int64_t>(blocked.deadline_ms - now, 0);
  if (recheck) wait_ms = std::min(wait_ms, kBlockedRecheckIntervalMs);
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
    if (!state_.blocked_clients().take(sequence)) return;
    if (blocked_->deadline_ms != 0 && wall_clock_ms() >= blocked_->deadline_ms) {
      end_block(null_reply(), false, false);
      return;
    }
    attempt();
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

void ClientSession::on_close() {
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
  return format_client_line(line);
}

}  // namespace cairn::server
