#include "net/peer_pool.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <queue>
#include <thread>
#include <utility>

#include "common/assert.h"
#include "net/asio.h"

// How it works. Each peer address has one connection and one strand; everything about a peer
// (socket, FIFO of outstanding requests, timers) is touched only on its strand, so any number of
// pool threads may serve different peers. A call is encoded on the caller's thread, then posted
// to the strand, appended to the output buffer and to the FIFO. Replies complete FIFO entries in
// order. A request that times out is completed at once with kTimedOut but keeps its FIFO slot:
// its reply still arrives later, in order, and is then discarded. Any connection failure
// completes every outstanding request with kUnavailable and marks the peer down for
// reconnect_backoff_ms; the next call after that connects again.
//
// An empty secret sends no CAIRN.AUTH: tools and tests may talk to a plain Redis this way.
// Addresses are numeric ("127.0.0.3:7001", "[::1]:7001"); names are not resolved, so a call
// never waits for DNS.

namespace cairn::net {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReadChunkBytes = 64 * 1024;
// The deadline heap drops entries of answered requests lazily; it is rebuilt from the live FIFO
// once it holds more than twice as many entries as the FIFO plus this slack.
constexpr size_t kDeadlineHeapSlack = 1024;

std::string unreachable(const std::string& address, const std::string& reason) {
  return "peer " + address + " is unreachable: " + reason;
}

// Parses "host:port" or "[v6]:port" with a numeric host.
bool parse_endpoint(const std::string& address, tcp::endpoint* endpoint, std::string* error) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    *error = "invalid peer address '" + address + "' (expected host:port)";
    return false;
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port_text = address.substr(colon + 1);
  uint16_t port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  error_code address_error;
  const auto ip = asio::ip::make_address(host, address_error);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      address_error) {
    *error = "invalid peer address '" + address + "' (expected a numeric host:port)";
    return false;
  }
  *endpoint = tcp::endpoint(ip, port);
  return true;
}

}  // namespace

// One peer: its connection and the requests outstanding on it. All fields except the atomics
// and the constants are used on `strand` only.
struct Peer {
  using Strand = asio::strand<asio::io_context::executor_type>;
  enum class State { kIdle, kConnecting, kConnected };

  struct Entry {
    PeerPool::Callback done;  // empty for the internal CAIRN.AUTH
    Clock::time_point deadline;
    int timeout_ms = 0;
    bool completed = false;  // timed out; its reply is still due and will be discarded
    bool auth = false;
  };
  using Deadline = std::pair<Clock::time_point, uint64_t>;  // (deadline, sequence number)

  Peer(asio::io_context& io, std::string address_in, tcp::endpoint endpoint_in)
      : address(std::move(address_in)),
        endpoint(endpoint_in),
        strand(asio::make_strand(io)),
        socket(strand),
        deadline_timer(strand),
        connect_timer(strand) {}

  const std::string address;
  const tcp::endpoint endpoint;
  Strand strand;
  tcp::socket socket;
  asio::steady_timer deadline_timer;
  asio::steady_timer connect_timer;

  State state = State::kIdle;
  uint64_t generation = 0;  // bumped per connection; handlers of older ones do nothing
  Clock::time_point down_until{};
  std::string down_reason;
  bool auth_rejection_logged = false;

  std::deque<Entry> entries;      // outstanding requests, in the order they were sent
  bool auth_outstanding = false;  // entries holds the internal CAIRN.AUTH (not a caller's)
  uint64_t front_sequence = 0;    // sequence number of entries.front()
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> deadlines;
  bool timer_armed = false;
  Clock::time_point timer_expiry{};
  uint64_t timer_token = 0;

  std::string output;  // encoded requests not yet handed to the socket
  bool write_in_flight = false;
  resp::ReplyParser parser;

  std::atomic<bool> connected{false};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> failures{0};
  std::atomic<size_t> pending{0};
};

struct PeerPool::Impl {
  explicit Impl(PeerPoolOptions options_in)
      : options(std::move(options_in)), work(asio::make_work_guard(io)) {
    if (!options.secret.empty()) resp::append_command(auth_command, {"CAIRN.AUTH", options.secret});
    if (!options.local_address.empty()) {
      error_code ec;
      local_ip = asio::ip::make_address(options.local_address, ec);
      if (ec) local_error = "invalid local address '" + options.local_address + "'";
      has_local_ip = !ec;
    }
    const size_t thread_count = std::max<size_t>(options.threads, 1);
    for (size_t i = 0; i < thread_count; ++i) threads.emplace_back([this] { io.run(); });
  }

  ~Impl() {
    stopping = true;
    std::vector<std::shared_ptr<Peer>> all;
    {
      std::lock_guard lock(mutex);
      for (auto& [address, peer] : peers) all.push_back(peer);
    }
    for (auto& peer : all) {
      asio::post(peer->strand, [this, peer] {
        if (peer->state != Peer::State::kIdle || !peer->entries.empty()) {
          fail_connection(*peer, "the peer pool is stopping");
        }
        peer->deadline_timer.cancel();
        peer->connect_timer.cancel();
      });
    }
    work.reset();
    for (auto& thread : threads) thread.join();
  }

  // Returns the peer for `address`, creating it on first use; null (and `error`) if the address
  // is not a numeric host:port.
  std::shared_ptr<Peer> find_or_create(const std::string& address, std::string* error) {
    std::lock_guard lock(mutex);
    auto it = peers.find(address);
    if (it != peers.end()) return it->second;
    tcp::endpoint endpoint;
    if (!parse_endpoint(address, &endpoint, error)) return nullptr;
    auto peer = std::make_shared<Peer>(io, address, endpoint);
    peers.emplace(address, peer);
    return peer;
  }

  void complete(Peer& peer, Callback& done, Result<resp::Value> result) {
    if (!result.is_ok()) peer.failures.fetch_add(1, std::memory_order_relaxed);
    done(std::move(result));
  }

  void handle_call(Peer& peer, std::string encoded, int timeout_ms, Callback done) {
    peer.requests.fetch_add(1, std::memory_order_relaxed);
    if (stopping) return complete(peer, done, Status::unavailable("the peer pool is stopping"));
    if (outstanding(peer) >= options.pending_requests_max) {
      return complete(
          peer, done,
          Status::busy("peer " + peer.address + " has " + std::to_string(outstanding(peer)) +
                       " outstanding requests (the limit)"));
    }
    const Clock::time_point now = Clock::now();
    if (peer.state == Peer::State::kIdle) {
      if (now < peer.down_until) {
        return complete(peer, done,
                        Status::unavailable(unreachable(peer.address, peer.down_reason)));
      }
      start_connect(peer);
      if (peer.state == Peer::State::kIdle) {
        return complete(peer, done,
                        Status::unavailable(unreachable(peer.address, peer.down_reason)));
      }
    }
    push_entry(peer, Peer::Entry{std::move(done), now + std::chrono::milliseconds(timeout_ms),
                                 timeout_ms, false, false});
    peer.output.append(encoded);
    start_write(peer);
    arm_deadline_timer(peer);
  }

  // Callers' requests in the FIFO, answered or not: what the bound and the stats count.
  static size_t outstanding(const Peer& peer) {
    return peer.entries.size() - (peer.auth_outstanding ? 1 : 0);
  }

  void push_entry(Peer& peer, Peer::Entry entry) {
    peer.deadlines.emplace(entry.deadline, peer.front_sequence + peer.entries.size());
    if (entry.auth) peer.auth_outstanding = true;
    peer.entries.push_back(std::move(entry));
    peer.pending.store(outstanding(peer), std::memory_order_relaxed);
  }

  void start_connect(Peer& peer) {
    CAIRN_ASSERT(peer.entries.empty() && peer.output.empty(), "connecting with requests queued");
    ++peer.generation;
    peer.state = Peer::State::kConnecting;
    peer.parser = resp::ReplyParser();
    if (!local_error.empty()) return fail_connection(peer, local_error);
    error_code ec;
    peer.socket.open(peer.endpoint.protocol(), ec);
    if (!ec && has_local_ip) peer.socket.bind(tcp::endpoint(local_ip, 0), ec);
    if (ec) return fail_connection(peer, "cannot bind the local socket: " + ec.message());

    const auto connect_timeout = std::chrono::milliseconds(options.connect_timeout_ms);
    if (!auth_command.empty()) {
      // The reply to CAIRN.AUTH must come within a connect timeout after the connection is up.
      push_entry(
          peer,
          Peer::Entry{
              {}, Clock::now() + 2 * connect_timeout, 2 * options.connect_timeout_ms, false, true});
      peer.output = auth_command;
    }
    const uint64_t generation = peer.generation;
    peer.connect_timer.expires_after(connect_timeout);
    peer.connect_timer.async_wait([this, &peer, generation](const error_code& error) {
      if (error || generation != peer.generation || peer.state != Peer::State::kConnecting) return;
      fail_connection(
          peer, "connect timed out after " + std::to_string(options.connect_timeout_ms) + " ms");
    });
    peer.socket.async_connect(peer.endpoint, [this, &peer, generation](const error_code& error) {
      if (generation != peer.generation) return;
      if (error) return fail_connection(peer, error.message());
      peer.connect_timer.cancel();
      peer.state = Peer::State::kConnected;
      peer.connected.store(true, std::memory_order_relaxed);
      error_code ignored;
      peer.socket.set_option(tcp::no_delay(true), ignored);
      start_read(peer);
      start_write(peer);
    });
  }

  void start_write(Peer& peer) {
    if (peer.write_in_flight || peer.output.empty() || peer.state != Peer::State::kConnected) {
      return;
    }
    // The buffer is owned by the handler: a write of a closed connection may complete after a
    // new connection started writing.
    auto buffer = std::make_shared<std::string>();
    buffer->swap(peer.output);
    peer.write_in_flight = true;
    const uint64_t generation = peer.generation;
    asio::async_write(peer.socket, asio::buffer(*buffer),
                      [this, &peer, generation, buffer](const error_code& error, size_t) {
                        if (generation != peer.generation) return;
                        peer.write_in_flight = false;
                        if (error) return fail_connection(peer, "write failed: " + error.message());
                        start_write(peer);
                      });
  }

  void start_read(Peer& peer) {
    auto buffer = std::make_shared<std::vector<char>>(kReadChunkBytes);
    read_more(peer, std::move(buffer));
  }

  void read_more(Peer& peer, std::shared_ptr<std::vector<char>> buffer) {
    const uint64_t generation = peer.generation;
    peer.socket.async_read_some(
        asio::buffer(*buffer),
        [this, &peer, generation, buffer](const error_code& error, size_t bytes) mutable {
          if (generation != peer.generation) return;
          if (error) {
            return fail_connection(peer, error == asio::error::eof
                                             ? std::string("connection closed by the peer")
                                             : "read failed: " + error.message());
          }
          if (!on_bytes(peer, std::string_view(buffer->data(), bytes))) return;
          read_more(peer, std::move(buffer));
        });
  }

  // Completes the requests whose replies are in `input`. False if the connection failed.
  bool on_bytes(Peer& peer, std::string_view input) {
    while (!input.empty()) {
      resp::Value value;
      const resp::ParseOutcome outcome = peer.parser.parse(input, value);
      if (outcome.state == resp::ParseState::kError) {
        fail_connection(peer, "unreadable reply: " + outcome.error);
        return false;
      }
      if (outcome.state == resp::ParseState::kNeedMore) break;
      input.remove_prefix(outcome.consumed);
      if (peer.entries.empty()) {
        fail_connection(peer, "a reply came without a request");
        return false;
      }
      Peer::Entry entry = std::move(peer.entries.front());
      peer.entries.pop_front();
      ++peer.front_sequence;
      if (entry.auth) peer.auth_outstanding = false;
      peer.pending.store(outstanding(peer), std::memory_order_relaxed);
      if (entry.auth) {
        if (value.is_error()) {
          if (!peer.auth_rejection_logged) {
            spdlog::warn("peer {} rejected our CAIRN.AUTH: {}", peer.address, value.str);
            peer.auth_rejection_logged = true;
          }
          fail_connection(peer, "authentication rejected: " + value.str);
          return false;
        }
        peer.auth_rejection_logged = false;
        continue;
      }
      if (entry.completed) continue;  // it timed out; this is its late reply
      complete(peer, entry.done, std::move(value));
    }
    return true;
  }

  void arm_deadline_timer(Peer& peer) {
    drop_answered_deadlines(peer);
    if (peer.deadlines.empty()) return;
    const Clock::time_point next = peer.deadlines.top().first;
    if (peer.timer_armed && peer.timer_expiry <= next) return;
    peer.timer_armed = true;
    peer.timer_expiry = next;
    const uint64_t token = ++peer.timer_token;
    peer.deadline_timer.expires_at(next);
    peer.deadline_timer.async_wait([this, &peer, token](const error_code& error) {
      if (error || token != peer.timer_token) return;
      peer.timer_armed = false;
      on_deadline(peer);
    });
  }

  // The entry for `sequence`, or null if it was answered or completed already.
  Peer::Entry* live_entry(Peer& peer, uint64_t sequence) {
    if (sequence < peer.front_sequence) return nullptr;
    Peer::Entry& entry = peer.entries[sequence - peer.front_sequence];
    return entry.completed ? nullptr : &entry;
  }

  void drop_answered_deadlines(Peer& peer) {
    while (!peer.deadlines.empty() && live_entry(peer, peer.deadlines.top().second) == nullptr) {
      peer.deadlines.pop();
    }
    if (peer.deadlines.size() <= 2 * peer.entries.size() + kDeadlineHeapSlack) return;
    decltype(peer.deadlines) rebuilt;
    for (size_t i = 0; i < peer.entries.size(); ++i) {
      const Peer::Entry& entry = peer.entries[i];
      if (!entry.completed) rebuilt.emplace(entry.deadline, peer.front_sequence + i);
    }
    peer.deadlines.swap(rebuilt);
  }

  void on_deadline(Peer& peer) {
    const Clock::time_point now = Clock::now();
    std::vector<std::pair<Callback, int>> expired;
    while (!peer.deadlines.empty() && peer.deadlines.top().first <= now) {
      const uint64_t sequence = peer.deadlines.top().second;
      peer.deadlines.pop();
      Peer::Entry* entry = live_entry(peer, sequence);
      if (entry == nullptr) continue;
      if (entry->auth) {
        fail_connection(peer, "no reply to CAIRN.AUTH");
        break;  // every request was completed
      }
      entry->completed = true;
      expired.emplace_back(std::move(entry->done), entry->timeout_ms);
    }
    arm_deadline_timer(peer);
    for (auto& [done, timeout_ms] : expired) {
      complete(peer, done,
               Status::timed_out("peer " + peer.address + " did not answer within " +
                                 std::to_string(timeout_ms) + " ms"));
    }
  }

  // Closes the connection, completes every outstanding request with kUnavailable and fails calls
  // fast until the backoff passed.
  void fail_connection(Peer& peer, const std::string& reason) {
    ++peer.generation;
    peer.state = Peer::State::kIdle;
    peer.connected.store(false, std::memory_order_relaxed);
    error_code ignored;
    peer.socket.close(ignored);
    peer.connect_timer.cancel();
    peer.down_until = Clock::now() + std::chrono::milliseconds(options.reconnect_backoff_ms);
    peer.down_reason = reason;
    spdlog::debug("peer {} down for {} ms: {}", peer.address, options.reconnect_backoff_ms, reason);

    std::deque<Peer::Entry> entries;
    entries.swap(peer.entries);
    peer.front_sequence = 0;
    peer.auth_outstanding = false;
    peer.deadlines = {};
    peer.pending.store(0, std::memory_order_relaxed);
    peer.output.clear();
    peer.write_in_flight = false;
    peer.parser = resp::ReplyParser();
    // Callbacks run last, with the peer in a consistent state (they may call() again, which
    // posts and so never re-enters this function).
    const std::string message = unreachable(peer.address, reason);
    for (Peer::Entry& entry : entries) {
      if (entry.completed || entry.auth) continue;
      complete(peer, entry.done, Status::unavailable(message));
    }
  }

  PeerPoolOptions options;
  std::string auth_command;  // encoded CAIRN.AUTH, empty without a secret
  bool has_local_ip = false;
  asio::ip::address local_ip;
  std::string local_error;  // a bad local_address fails every connection with this
  std::atomic<bool> stopping{false};

  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  mutable std::mutex mutex;  // guards `peers` (the map, not the peers)
  std::map<std::string, std::shared_ptr<Peer>> peers;
  std::vector<std::thread> threads;
};

PeerPool::PeerPool(PeerPoolOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

PeerPool::~PeerPool() = default;

void PeerPool::call(const std::string& address, std::vector<std::string> args, int timeout_ms,
                    Callback done) {
  std::string error;
  std::shared_ptr<Peer> peer = impl_->find_or_create(address, &error);
  if (peer == nullptr) {
    // Still completed on a pool thread, as every other outcome.
    asio::post(impl_->io, [done = std::move(done), error = std::move(error)] {
      done(Status::invalid_argument(error));
    });
    return;
  }
  std::string encoded;
  resp::append_command(encoded, args);
  asio::post(peer->strand, [impl = impl_.get(), peer, encoded = std::move(encoded), timeout_ms,
                            done = std::move(done)]() mutable {
    impl->handle_call(*peer, std::move(encoded), timeout_ms, std::move(done));
  });
}

Result<resp::Value> PeerPool::call_sync(const std::string& address, std::vector<std::string> args,
                                        int timeout_ms) {
  CAIRN_ASSERT(!impl_->io.get_executor().running_in_this_thread(),
               "PeerPool::call_sync on a pool thread would wait for itself");
  auto promise = std::make_shared<std::promise<Result<resp::Value>>>();
  std::future<Result<resp::Value>> future = promise->get_future();
  call(address, std::move(args), timeout_ms,
       [promise](Result<resp::Value> result) { promise->set_value(std::move(result)); });
  return future.get();
}

std::vector<PeerStats> PeerPool::stats() const {
  std::vector<PeerStats> result;
  std::lock_guard lock(impl_->mutex);
  for (const auto& [address, peer] : impl_->peers) {
    result.push_back(PeerStats{address, peer->connected.load(std::memory_order_relaxed),
                               peer->requests.load(std::memory_order_relaxed),
                               peer->failures.load(std::memory_order_relaxed),
                               peer->pending.load(std::memory_order_relaxed)});
  }
  return result;
}

}  // namespace cairn::net
