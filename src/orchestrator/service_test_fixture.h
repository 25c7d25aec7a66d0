#pragma once
// Shared by the orchestrator service tests (service_test.cc, service_migration_test.cc): a clock
// the test moves by hand, and a fixture that opens services on a fresh state directory.

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "orchestrator/service.h"

namespace cairn::orchestrator::test {

class FakeClock final : public Clock {
 public:
  int64_t monotonic_ms() override { return now_ms; }
  int64_t wall_ms() override { return 1'700'000'000'000 + now_ms; }
  int64_t now_ms = 1'000'000;
};

// RF 3, 4 ranges per shard, 1 spare, state in dir_/state.json; `initial_shards` per suite.
class ServiceFixture : public ::testing::Test {
 protected:
  ServiceFixture(std::string prefix, uint32_t initial_shards)
      : prefix_(std::move(prefix)), initial_shards_(initial_shards) {}

  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           (prefix_ + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    settings_.replication_factor = 3;
    settings_.initial_shards = initial_shards_;
    settings_.ranges_per_shard = 4;
    settings_.min_spares = 1;
    settings_.state_path = (dir_ / "state.json").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Service> open() {
    auto service = Service::open(settings_, &clock_);
    EXPECT_TRUE(service.is_ok()) << service.status().to_string();
    return service.is_ok() ? std::move(*service) : nullptr;
  }

  FakeClock clock_;
  ServiceSettings settings_;
  std::filesystem::path dir_;

 private:
  const std::string prefix_;
  const uint32_t initial_shards_;
};

}  // namespace cairn::orchestrator::test
