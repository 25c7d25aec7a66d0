#pragma once
// Event loops: one io_context per thread (docs/cluster.md). Connections are spread over the
// loops round-robin and then live on one loop for their whole life, so a connection's state is
// only ever touched by its loop's thread and needs no lock.
//
// Group commit (docs/formats.md): a connection that served a write asks its loop for a flush instead
// of writing its replies. The loop posts one flush task per iteration; it runs after every read
// completion of that iteration, calls `sync` once, and then starts the writes of all connections
// that were waiting. So all writes of one iteration share one fsync, and no reply of a write
// leaves before its WAL record is durable.
//
// Invariants:
//  1. A connection is in exactly one loop's table from start() until it is closed.
//  2. At most one flush task per loop is queued at any time.
//  3. Every method of EventLoop is called on its own thread, except context() and index().

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "net/asio.h"

namespace cairn::net {

class Connection;

inline constexpr size_t kLoopThreadsMax = 64;
inline constexpr int64_t kCronIntervalMs = 1000;

struct EventLoopsOptions {
  size_t threads = 1;  // 1..kLoopThreadsMax
  // Makes the writes served so far durable. Set: replies of writes wait for it (group commit).
  // Empty: replies of writes leave at once (durability batch or none). Called on loop threads,
  // possibly concurrently, so it must be thread-safe (storage::Engine::sync is).
  std::function<Status()> sync;
  // Idle clients are closed after this many milliseconds (0 = never). Read once a second; the
  // owner keeps it alive longer than the loops and may change it at any time (CONFIG SET timeout).
  const std::atomic<int64_t>* idle_timeout_ms = nullptr;
};

class EventLoop {
 public:
  EventLoop(size_t index, const EventLoopsOptions& options);
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Any thread.
  asio::io_context& context() { return context_; }
  size_t index() const { return index_; }
  bool group_commit() const { return static_cast<bool>(options_.sync); }

  // Loop thread only.
  void add(std::shared_ptr<Connection> connection);
  void remove(uint64_t connection_id);
  // Queues `connection` for the next flush (REQUIRES: not queued already).
  void request_flush(std::shared_ptr<Connection> connection);
  size_t connection_count() const { return connections_.size(); }
  uint64_t syncs() const { return syncs_.load(std::memory_order_relaxed); }

 private:
  friend class EventLoops;
  void run();
  void schedule_cron();
  void on_cron();
  void flush();
  void close_all();

  const size_t index_;
  const EventLoopsOptions& options_;
  asio::io_context context_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  asio::steady_timer cron_;
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> connections_;
  // Connections waiting for the next sync; swapped with flush_batch_ so both keep capacity.
  std::vector<std::shared_ptr<Connection>> flush_pending_;
  std::vector<std::shared_ptr<Connection>> flush_batch_;
  bool flush_posted_ = false;
  // Flush deferral (see flush()): how many times the current flush re-polled, and how many
  // connections were waiting at the last look.
  static constexpr int kFlushDeferralsMax = 4;
  int flush_deferrals_ = 0;
  size_t flush_pending_seen_ = 0;
  bool stopping_ = false;
  std::atomic<uint64_t> syncs_{0};
  std::thread thread_;
};

class EventLoops {
 public:
  explicit EventLoops(EventLoopsOptions options);
  ~EventLoops();
  EventLoops(const EventLoops&) = delete;
  EventLoops& operator=(const EventLoops&) = delete;

  // Starts one thread per loop.
  void start();
  // Closes every connection, lets each loop finish its queued work and joins the threads.
  // Idempotent. REQUIRES: not called from a loop thread.
  void stop();

  size_t size() const { return loops_.size(); }
  EventLoop& loop(size_t index) { return *loops_[index]; }
  // The loop for the next new connection (round-robin). Thread-safe.
  EventLoop& next();
  // True between start() and stop().
  bool running() const { return started_ && !stopped_; }
  // True when the calling thread is one of the loop threads.
  bool in_loop_thread() const;

 private:
  EventLoopsOptions options_;
  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::atomic<size_t> next_{0};
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace cairn::net
