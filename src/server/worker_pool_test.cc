#include "server/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

namespace cairn::server {
namespace {

TEST(WorkerPoolTest, RunsEveryAcceptedJobOnAWorker) {
  WorkerPool pool(3, 1000);
  std::atomic<int> ran{0};
  std::atomic<bool> off_worker{false};
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(pool.submit([&] {
      if (!pool.in_worker_thread()) off_worker = true;
      ran.fetch_add(1);
    }));
  }
  EXPECT_FALSE(pool.in_worker_thread());
  pool.stop();  // drains the queue first
  EXPECT_EQ(ran.load(), 500);
  EXPECT_FALSE(off_worker.load());
  EXPECT_EQ(pool.completed(), 500u);
  EXPECT_EQ(pool.threads(), 3u);
}

TEST(WorkerPoolTest, FullQueueAndStoppedPoolRefuseJobs) {
  WorkerPool pool(1, 2);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  // The only worker blocks, so the queue fills up: two more jobs wait, the third is refused.
  ASSERT_TRUE(pool.submit([&] {
    started.set_value();
    released.wait();
  }));
  started.get_future().wait();
  std::atomic<int> ran{0};
  EXPECT_TRUE(pool.submit([&] { ran.fetch_add(1); }));
  EXPECT_TRUE(pool.submit([&] { ran.fetch_add(1); }));
  EXPECT_FALSE(pool.submit([&] { ran.fetch_add(1); }));
  EXPECT_EQ(pool.rejected(), 1u);
  EXPECT_EQ(pool.queued(), 2u);
  EXPECT_EQ(pool.busy(), 1u);
  release.set_value();
  pool.stop();
  EXPECT_EQ(ran.load(), 2);
  EXPECT_FALSE(pool.submit([] {}));
  pool.stop();  // idempotent
}

}  // namespace
}  // namespace cairn::server
