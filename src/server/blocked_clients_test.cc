// BlockedClients: first blocked first served, a waiter keeps its place after an attempt that
// found nothing, and a push during an attempt is never missed.
#include "server/blocked_clients.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cairn::server {
namespace {

struct Woken {
  std::vector<int> order;
  BlockedClients::Wake wake(int who) {
    return [this, who] { order.push_back(who); };
  }
};

TEST(BlockedClients, FirstBlockedIsWokenFirstAndKeepsItsPlace) {
  BlockedClients blocked;
  Woken woken;
  bool missed = true;
  const uint64_t first = blocked.add({"q"}, woken.wake(1), blocked.notifications(), missed);
  EXPECT_FALSE(missed);
  const uint64_t second = blocked.add({"other", "q"}, woken.wake(2), blocked.notifications(),
                                      missed);
  blocked.notify("q");
  EXPECT_EQ(woken.order, std::vector<int>({1}));
  // The first found nothing (someone else popped): back in its place, ahead of the second.
  EXPECT_TRUE(blocked.rearm(first));
  blocked.notify("q");
  EXPECT_EQ(woken.order, std::vector<int>({1, 1}));
  blocked.remove(first);  // served
  blocked.notify("q");
  EXPECT_EQ(woken.order, std::vector<int>({1, 1, 2}));
  blocked.remove(second);
  EXPECT_EQ(blocked.size(), 0u);
  blocked.notify("q");  // nobody waits: nothing happens
  EXPECT_EQ(woken.order.size(), 3u);
}

TEST(BlockedClients, APushDuringAnAttemptIsNotMissed) {
  BlockedClients blocked;
  Woken woken;
  bool missed = false;
  const uint64_t waiter = blocked.add({"q"}, woken.wake(1), blocked.notifications(), missed);
  ASSERT_TRUE(blocked.take(waiter));  // a timer starts an attempt
  EXPECT_FALSE(blocked.take(waiter));  // one attempt at a time
  blocked.notify("q");                 // a push lands while the attempt runs
  EXPECT_TRUE(woken.order.empty());    // not woken twice...
  EXPECT_FALSE(blocked.rearm(waiter));  // ...but told to attempt again
  EXPECT_TRUE(blocked.rearm(waiter));
  blocked.remove(waiter);
}

TEST(BlockedClients, ANotificationBeforeQueueingIsReported) {
  BlockedClients blocked;
  Woken woken;
  const uint64_t before = blocked.notifications();
  blocked.notify("q");  // the push came after the first attempt looked, before add()
  bool missed = false;
  const uint64_t waiter = blocked.add({"q"}, woken.wake(1), before, missed);
  EXPECT_TRUE(missed);
  blocked.remove(waiter);
}

TEST(BlockedClients, NotifyAllWakesEveryWaitingWaiterInOrder) {
  BlockedClients blocked;
  Woken woken;
  bool missed = false;
  const uint64_t a = blocked.add({"x"}, woken.wake(1), blocked.notifications(), missed);
  const uint64_t b = blocked.add({"y"}, woken.wake(2), blocked.notifications(), missed);
  const uint64_t c = blocked.add({"x", "z"}, woken.wake(3), blocked.notifications(), missed);
  ASSERT_TRUE(blocked.take(b));  // b's attempt is in flight: not woken again...
  blocked.notify_all();
  EXPECT_EQ(woken.order, std::vector<int>({1, 3}));
  EXPECT_FALSE(blocked.rearm(b));  // ...but told to attempt again
  EXPECT_TRUE(blocked.rearm(a));
  EXPECT_TRUE(blocked.rearm(c));
  for (const uint64_t waiter : {a, b, c}) blocked.remove(waiter);
  EXPECT_EQ(blocked.size(), 0u);
}

TEST(BlockedClients, OnlyTheFirstWaiterOfAQueueRechecks) {
  BlockedClients blocked;
  Woken woken;
  bool missed = false;
  const uint64_t first = blocked.add({"q"}, woken.wake(1), blocked.notifications(), missed,
                                     "list");
  const uint64_t second = blocked.add({"q"}, woken.wake(2), blocked.notifications(), missed,
                                      "list");
  const uint64_t two_keys = blocked.add({"q", "r"}, woken.wake(3), blocked.notifications(),
                                        missed, "list");
  const uint64_t other_group = blocked.add({"q"}, woken.wake(4), blocked.notifications(),
                                           missed, "group g2");
  const uint64_t alone = blocked.add({"q"}, woken.wake(5), blocked.notifications(), missed);
  using Recheck = BlockedClients::Recheck;
  EXPECT_EQ(blocked.take_for_recheck(second), Recheck::kLater);
  EXPECT_EQ(blocked.take_for_recheck(two_keys), Recheck::kTaken);  // first on "r"
  EXPECT_EQ(blocked.take_for_recheck(other_group), Recheck::kTaken);
  EXPECT_EQ(blocked.take_for_recheck(alone), Recheck::kTaken);  // no queue: on its own
  EXPECT_EQ(blocked.take_for_recheck(first), Recheck::kTaken);
  EXPECT_EQ(blocked.take_for_recheck(first), Recheck::kNotWaiting);  // in flight
  // Still behind the first while its attempt runs; once it leaves, the second is first.
  EXPECT_EQ(blocked.take_for_recheck(second), Recheck::kLater);
  blocked.remove(first);
  EXPECT_EQ(blocked.take_for_recheck(second), Recheck::kTaken);
  for (const uint64_t waiter : {second, two_keys, other_group, alone}) blocked.remove(waiter);
  EXPECT_TRUE(woken.order.empty());  // rechecks wake nobody: the caller attempts
}

TEST(BlockedClients, AKeyNamedTwiceIsQueuedOnce) {
  BlockedClients blocked;
  Woken woken;
  bool missed = false;
  const uint64_t waiter =
      blocked.add({"k", "k", "j", "k"}, woken.wake(1), blocked.notifications(), missed, "list");
  EXPECT_EQ(blocked.take_for_recheck(waiter), BlockedClients::Recheck::kTaken);
  EXPECT_TRUE(blocked.rearm(waiter));
  blocked.notify("k");
  EXPECT_EQ(woken.order, std::vector<int>({1}));
  blocked.remove(waiter);
  EXPECT_EQ(blocked.size(), 0u);
  blocked.notify("k");
  EXPECT_EQ(woken.order.size(), 1u);
}

}  // namespace
}  // namespace cairn::server
