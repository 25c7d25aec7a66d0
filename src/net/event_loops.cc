#include "net/event_loops.h"

#include <spdlog/spdlog.h>

#include "common/assert.h"
#include "common/clock.h"
#include "net/connection.h"

namespace cairn::net {

namespace {
// Which loop the current thread runs (nullptr outside loop threads).
thread_local const EventLoop* current_loop = nullptr;
}  // namespace

// A concurrency hint of 1 tells Asio that one thread runs the context, so it skips locking.
EventLoop::EventLoop(size_t index, const EventLoopsOptions& options)
    : index_(index), options_(options), context_(1), work_(context_.get_executor()),
      cron_(context_) {}

void EventLoop::add(std::shared_ptr<Connection> connection) {
  const uint64_t id = connection->id();
  const bool inserted = connections_.emplace(id, std::move(connection)).second;
  CAIRN_ASSERT(inserted, "connection ids are unique");
}

void EventLoop::remove(uint64_t connection_id) { connections_.erase(connection_id); }

void EventLoop::request_flush(std::shared_ptr<Connection> connection) {
  flush_pending_.push_back(std::move(connection));
  if (flush_posted_) return;
  flush_posted_ = true;
  // Posted work runs after the completions already queued, i.e. after every read of this
  // iteration: that is what lets one sync serve all of them.
  asio::post(context_, [this] { flush(); });
}

void EventLoop::flush() {
  // While the previous poll brought more writers, poll once more before syncing: posting again
  // puts this flush behind the reactor's next (non-blocking) poll, so every client whose request
  // is already on the socket joins this fsync, as Redis's beforeSleep does. Bounded, so a steady
  // stream of writers cannot postpone the sync for long.
  if (flush_deferrals_ < kFlushDeferralsMax && flush_pending_.size() > flush_pending_seen_) {
    flush_pending_seen_ = flush_pending_.size();
    ++flush_deferrals_;
    asio::post(context_, [this] { flush(); });
    return;
  }
  flush_deferrals_ = 0;
  flush_pending_seen_ = 0;
  flush_posted_ = false;
  flush_batch_.swap(flush_pending_);
  const Status status = options_.sync();
  syncs_.fetch_add(1, std::memory_order_relaxed);
  if (!status.is_ok()) {
    // The writes may not be durable, so their replies must not claim they are: the clients see
    // their connection drop, which they must treat as "outcome unknown".
    spdlog::error("WAL sync failed, closing {} waiting clients: {}", flush_batch_.size(),
                  status.to_string());
  }
  for (auto& connection : flush_batch_) connection->on_synced(status.is_ok());
  flush_batch_.clear();
}

void EventLoop::run() {
  current_loop = this;
  schedule_cron();
  context_.run();
  current_loop = nullptr;
}

void EventLoop::schedule_cron() {
  cron_.expires_after(std::chrono::milliseconds(kCronIntervalMs));
  cron_.async_wait([this](const error_code& error) {
    if (!error && !stopping_) on_cron();
  });
}

void EventLoop::on_cron() {
  const int64_t timeout_ms =
      options_.idle_timeout_ms ? options_.idle_timeout_ms->load(std::memory_order_relaxed) : 0;
  if (timeout_ms > 0) {
    const int64_t now = monotonic_ms();
    // close_if_idle() may erase from connections_, so walk a copy of the candidates.
    std::vector<std::shared_ptr<Connection>> idle;
    for (auto& [id, connection] : connections_) {
      if (now - connection->last_active_ms() > timeout_ms) idle.push_back(connection);
    }
    for (auto& connection : idle) connection->close_if_idle(now, timeout_ms);
  }
  schedule_cron();
}

void EventLoop::close_all() {
  stopping_ = true;
  cron_.cancel();
  std::vector<std::shared_ptr<Connection>> all;
  all.reserve(connections_.size());
  for (auto& [id, connection] : connections_) all.push_back(connection);
  for (auto& connection : all) connection->close();
  CAIRN_ASSERT(connections_.empty(), "close() removes the connection from its loop");
  work_.reset();
}

EventLoops::EventLoops(EventLoopsOptions options) : options_(std::move(options)) {
  CAIRN_ASSERT(options_.threads >= 1 && options_.threads <= kLoopThreadsMax,
               "loop thread count out of range");
  loops_.reserve(options_.threads);
  for (size_t i = 0; i < options_.threads; ++i) {
    loops_.push_back(std::make_unique<EventLoop>(i, options_));
  }
}

EventLoops::~EventLoops() { stop(); }

void EventLoops::start() {
  CAIRN_ASSERT(!started_, "start() is called once");
  started_ = true;
  for (auto& loop : loops_) {
    EventLoop* raw = loop.get();
    raw->thread_ = std::thread([raw] { raw->run(); });
  }
}

void EventLoops::stop() {
  if (stopped_) return;
  stopped_ = true;
  CAIRN_ASSERT(!in_loop_thread(), "stop() would join the calling loop");
  for (auto& loop : loops_) {
    EventLoop* raw = loop.get();
    if (started_) {
      asio::post(raw->context_, [raw] { raw->close_all(); });
    } else {
      raw->close_all();
    }
  }
  for (auto& loop : loops_) {
    if (loop->thread_.joinable()) loop->thread_.join();
  }
}

EventLoop& EventLoops::next() {
  const size_t n = next_.fetch_add(1, std::memory_order_relaxed);
  return *loops_[n % loops_.size()];
}

bool EventLoops::in_loop_thread() const {
  for (const auto& loop : loops_) {
    if (current_loop == loop.get()) return true;
  }
  return false;
}

}  // namespace cairn::net
