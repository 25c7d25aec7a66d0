#include "orchestrator/state.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace cairn::orchestrator {
namespace {

class StateFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cairn_state_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "state.json").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write_file(const std::string& text) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << text;
  }

  std::filesystem::path dir_;
  std::string path_;
};

State sample_state() {
  State state;
  for (topology::MachineId id = 1; id <= 4; ++id) {
    MachineRecord m;
    m.id = id;
    m.address = "127.0.0.1:" + std::to_string(7000 + id);
    m.internal_address = m.address;
    m.health = id == 4 ? Health::kDead : Health::kUp;
    m.draining = id == 3;
    m.load = Load{12.5 * static_cast<double>(id), 100 * id, 1000 * id, 250};
    state.machines.push_back(m);
  }
  topology::RoutingTableSpec table;
  table.epoch = 3;
  table.replication_factor = 3;
  for (const auto& m : state.machines) {
    table.machines.push_back(topology::Machine{m.id, m.address, m.internal_address,
                                               m.id == 4 ? topology::MachineState::kDead
                                                         : topology::MachineState::kUp});
  }
  table.shards.push_back(topology::Shard{1, {1, 2, 3}, {}, {}, 1, 0});
  table.ranges.push_back(topology::Range{0, 0, 1});
  state.table = table;
  state.add_event(1000, "machine 1 registered");
  state.add_event(2000, "bootstrapped");
  state.add_history(1000, 0);
  state.add_history(2000, 1);
  return state;
}

TEST_F(StateFileTest, SaveThenLoadGivesTheSameState) {
  State state = sample_state();
  ASSERT_TRUE(save_state(path_, state).is_ok());
  auto loaded = load_state(path_);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  EXPECT_EQ(*loaded, state);
  EXPECT_EQ(loaded->next_event_seq, 3u);
  EXPECT_DOUBLE_EQ(loaded->average_down(), 0.5);
}

TEST_F(StateFileTest, SaveReplacesAtomicallyAndLeavesNoTemporaryFile) {
  State state = sample_state();
  ASSERT_TRUE(save_state(path_, state).is_ok());
  state.add_event(3000, "another change");
  ASSERT_TRUE(save_state(path_, state).is_ok());
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 1u);
  auto loaded = load_state(path_);
  ASSERT_TRUE(loaded.is_ok());
  EXPECT_EQ(loaded->events.back().message, "another change");
}

TEST_F(StateFileTest, AStaleTemporaryFileFromACrashIsIgnoredAndOverwritten) {
  ASSERT_TRUE(save_state(path_, sample_state()).is_ok());
  { std::ofstream(path_ + ".tmp") << "{half written"; }
  auto loaded = load_state(path_);
  ASSERT_TRUE(loaded.is_ok());
  ASSERT_TRUE(save_state(path_, *loaded).is_ok());
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
}

TEST_F(StateFileTest, MissingFileIsNotFound) {
  auto loaded = load_state(path_);
  ASSERT_FALSE(loaded.is_ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kNotFound);
}

TEST_F(StateFileTest, TruncatedFileIsACorruptionNamingTheFile) {
  ASSERT_TRUE(save_state(path_, sample_state()).is_ok());
  auto size = std::filesystem::file_size(path_);
  std::filesystem::resize_file(path_, size / 2);
  auto loaded = load_state(path_);
  ASSERT_FALSE(loaded.is_ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kCorruption);
  EXPECT_NE(loaded.status().message().find(path_), std::string::npos);
  EXPECT_NE(loaded.status().message().find("not valid JSON"), std::string::npos);
}

TEST_F(StateFileTest, WellFormedButInvalidStateIsACorruptionNamingTheProblem) {
  State state = sample_state();
  nlohmann::json j = state_to_json(state);
  j["machines"][1]["health"] = "sleepy";
  write_file(j.dump());
  auto loaded = load_state(path_);
  ASSERT_FALSE(loaded.is_ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kCorruption);
  EXPECT_NE(loaded.status().message().find("machines[1]"), std::string::npos)
      << loaded.status().message();

  // A shard naming a machine the orchestrator does not know.
  j = state_to_json(state);
  j["machines"].erase(1);
  write_file(j.dump());
  loaded = load_state(path_);
  ASSERT_FALSE(loaded.is_ok());
  EXPECT_NE(loaded.status().message().find("not registered"), std::string::npos)
      << loaded.status().message();

  // Wrong types and negative numbers are values, not exceptions.
  j = state_to_json(state);
  j["machines"][0]["id"] = -1;
  write_file(j.dump());
  EXPECT_FALSE(load_state(path_).is_ok());
  j = state_to_json(state);
  j["version"] = 99;
  write_file(j.dump());
  loaded = load_state(path_);
  ASSERT_FALSE(loaded.is_ok());
  EXPECT_NE(loaded.status().message().find("version"), std::string::npos);
  write_file("[]");
  EXPECT_EQ(load_state(path_).status().code(), StatusCode::kCorruption);
}

TEST_F(StateFileTest, SaveIntoAMissingDirectoryFails) {
  auto status = save_state((dir_ / "nope" / "state.json").string(), sample_state());
  ASSERT_FALSE(status.is_ok());
  EXPECT_EQ(status.code(), StatusCode::kIoError);
}

TEST(State, EventsAndHistoryAreBounded) {
  State state;
  for (size_t i = 0; i < kEventsMax + 5; ++i) state.add_event(static_cast<int64_t>(i), "e");
  for (size_t i = 0; i < kHistoryMax + 5; ++i) state.add_history(static_cast<int64_t>(i), 2);
  EXPECT_EQ(state.events.size(), kEventsMax);
  EXPECT_EQ(state.events.front().seq, 6u);
  EXPECT_EQ(state.history.size(), kHistoryMax);
  EXPECT_DOUBLE_EQ(state.average_down(), 2.0);
  state.add_event(0, std::string(kEventMessageBytesMax * 2, 'x'));
  EXPECT_EQ(state.events.back().message.size(), kEventMessageBytesMax);
}

TEST(State, FindMachineUsesTheSortedIds) {
  State state = sample_state();
  ASSERT_NE(state.find_machine(3), nullptr);
  EXPECT_EQ(state.find_machine(3)->address, "127.0.0.1:7003");
  EXPECT_EQ(state.find_machine(9), nullptr);
}

}  // namespace
}  // namespace cairn::orchestrator
