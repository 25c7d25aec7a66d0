#pragma once
// WorkerPool: a fixed set of threads running jobs from one bounded FIFO queue. A cluster machine
// runs its client commands here, because they block while they wait for replicas and an event
// loop must never block (docs/formats.md "Internal protocol": other machines' requests are served
// on the loops, so a loop always answers).
//
// Invariants:
//  1. At most queue_max jobs wait; submit() beyond that refuses the job (the caller replies BUSY),
//     so overload turns into fast errors instead of unbounded memory and latency.
//  2. Every accepted job runs exactly once, even when stop() is called while it waits.
//  3. After stop() returns no job runs and submit() refuses everything.
// Thread-safe.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cairn::server {

inline constexpr size_t kWorkersMax = 256;
inline constexpr size_t kWorkerQueueMax = 4096;

class WorkerPool {
 public:
  using Job = std::function<void()>;

  // REQUIRES: 1 <= threads <= kWorkersMax, queue_max >= 1.
  WorkerPool(size_t threads, size_t queue_max);
  ~WorkerPool();  // stop()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `job`. Returns false, without running it, if the queue is full or the pool stopped.
  bool submit(Job job);
  // Lets the queued and running jobs finish, then joins the threads. Idempotent.
  // REQUIRES: not called from a worker thread.
  void stop();

  size_t threads() const { return thread_count_; }
  size_t queued() const;
  size_t busy() const { return busy_.load(std::memory_order_relaxed); }
  uint64_t completed() const { return completed_.load(std::memory_order_relaxed); }
  uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }
  // True on one of this pool's threads.
  bool in_worker_thread() const;

 private:
  void run();

  const size_t thread_count_;
  const size_t queue_max_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Job> queue_;  // guarded by mutex_
  bool stopping_ = false;  // guarded by mutex_
  std::vector<std::thread> threads_;
  std::atomic<size_t> busy_{0};
  std::atomic<uint64_t> completed_{0};
  std::atomic<uint64_t> rejected_{0};
};

}  // namespace cairn::server
