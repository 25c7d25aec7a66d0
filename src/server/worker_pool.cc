#include "server/worker_pool.h"

#include "common/assert.h"

namespace cairn::server {

namespace {
// The pool whose job this thread is running, for in_worker_thread().
thread_local const WorkerPool* current_pool = nullptr;
}  // namespace

WorkerPool::WorkerPool(size_t threads, size_t queue_max)
    : thread_count_(threads), queue_max_(queue_max) {
  CAIRN_ASSERT(threads >= 1 && threads <= kWorkersMax, "worker threads out of range");
  CAIRN_ASSERT(queue_max >= 1, "a worker queue holds at least one job");
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

WorkerPool::~WorkerPool() { stop(); }

bool WorkerPool::submit(Job job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= queue_max_) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queue_.push_back(std::move(job));
  }
  ready_.notify_one();
  return true;
}

void WorkerPool::stop() {
  CAIRN_ASSERT(!in_worker_thread(), "a worker cannot wait for its own pool to stop");
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  ready_.notify_all();
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  std::lock_guard lock(mutex_);
  threads_.clear();
}

size_t WorkerPool::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

bool WorkerPool::in_worker_thread() const { return current_pool == this; }

void WorkerPool::run() {
  current_pool = this;
  while (true) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      // Drain before exiting: an accepted job always runs (invariant 2).
      if (queue_.empty()) break;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    busy_.fetch_add(1, std::memory_order_relaxed);
    job();
    busy_.fetch_sub(1, std::memory_order_relaxed);
    completed_.fetch_add(1, std::memory_order_relaxed);
  }
  current_pool = nullptr;
}

}  // namespace cairn::server
