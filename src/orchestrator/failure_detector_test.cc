#include "orchestrator/failure_detector.h"

#include <gtest/gtest.h>

namespace cairn::orchestrator {
namespace {

MachineRecord machine(topology::MachineId id, int64_t last_heartbeat_ms, Health health) {
  MachineRecord m;
  m.id = id;
  m.address = "127.0.0.1:" + std::to_string(7000 + id);
  m.last_heartbeat_ms = last_heartbeat_ms;
  m.health = health;
  return m;
}

TEST(FailureDetector, DownAfterThenDeadAfter) {
  DetectorSettings settings{1500, 5000};
  std::vector<MachineRecord> machines = {machine(1, 10'000, Health::kUp)};
  EXPECT_TRUE(detect_failures(machines, 10'000, settings).empty());
  EXPECT_TRUE(detect_failures(machines, 11'499, settings).empty());
  auto changes = detect_failures(machines, 11'500, settings);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].machine, 1u);
  EXPECT_EQ(changes[0].from, Health::kUp);
  EXPECT_EQ(changes[0].to, Health::kDown);
  EXPECT_EQ(changes[0].silent_ms, 1500);

  machines[0].health = Health::kDown;
  EXPECT_TRUE(detect_failures(machines, 14'999, settings).empty());
  changes = detect_failures(machines, 15'000, settings);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].from, Health::kDown);
  EXPECT_EQ(changes[0].to, Health::kDead);
  machines[0].health = Health::kDead;
  EXPECT_TRUE(detect_failures(machines, 99'000, settings).empty());
}

TEST(FailureDetector, AnUpMachineSilentPastDeadGoesStraightToDead) {
  DetectorSettings settings{1500, 5000};
  auto changes = detect_failures({machine(7, 0, Health::kUp)}, 6000, settings);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].to, Health::kDead);
}

TEST(FailureDetector, OnlyWorsensAndToleratesHeartbeatsFromTheFuture) {
  DetectorSettings settings{1500, 5000};
  // A down machine with a fresh heartbeat is not the detector's business (Service marks it up).
  std::vector<MachineRecord> machines = {machine(1, 1000, Health::kDown),
                                         machine(2, 2000, Health::kUp),
                                         machine(3, 900, Health::kUp)};
  auto changes = detect_failures(machines, 1000, settings);
  EXPECT_TRUE(changes.empty());
  changes = detect_failures(machines, 2400, settings);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].machine, 3u);
}

}  // namespace
}  // namespace cairn::orchestrator
