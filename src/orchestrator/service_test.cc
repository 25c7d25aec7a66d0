#include "orchestrator/service.h"
#include "orchestrator/service_test_fixture.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace cairn::orchestrator {
namespace {

std::string address(topology::MachineId id) { return "127.0.0.1:" + std::to_string(7000 + id); }

class ServiceTest : public test::ServiceFixture {
 protected:
  ServiceTest() : ServiceFixture("cairn_service_test_", 1) {}

  void register_machines(Service& service, topology::MachineId first, topology::MachineId last) {
    for (auto id = first; id <= last; ++id) {
      auto reply = service.register_machine(id, address(id), "");
      ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
      EXPECT_EQ(reply->machine_id, id);
    }
  }
  // Advances the clock in tick-sized steps; `alive` machines heartbeat every 250 ms.
  void run_for(Service& service, int64_t ms, const std::vector<topology::MachineId>& alive) {
    for (int64_t t = 0; t < ms; t += 100) {
      clock_.now_ms += 100;
      if (clock_.now_ms % 250 < 100) {
        for (auto id : alive) ASSERT_TRUE(service.heartbeat(id, 0, Load{}).is_ok());
      }
      service.tick();
    }
  }
  Health health(const Service& service, topology::MachineId id) {
    State state = service.snapshot();
    return state.find_machine(id)->health;
  }
  bool has_event(const Service& service, std::string_view needle) {
    for (const auto& e : service.snapshot().events) {
      if (e.message.find(needle) != std::string::npos) return true;
    }
    return false;
  }

};

TEST_F(ServiceTest, BootstrapsOnceEnoughMachinesRegistered) {
  auto service = open();
  register_machines(*service, 1, 2);
  EXPECT_EQ(service->epoch(), 0u);
  EXPECT_TRUE(service->table_json().is_null());
  register_machines(*service, 3, 4);
  EXPECT_GE(service->epoch(), 1u);
  State state = service->snapshot();
  ASSERT_TRUE(state.table.has_value());
  ASSERT_EQ(state.table->shards.size(), 1u);
  EXPECT_EQ(state.table->shards[0].replicas.size(), 3u);
  EXPECT_NE(state.table->shards[0].leader, topology::kNoMachine);
  EXPECT_EQ(state.table->shards[0].lease_expiry_ms, 0u);
  EXPECT_TRUE(has_event(*service, "bootstrapped"));
  auto status = service->status_json();
  EXPECT_EQ(status["machines"]["total"], 4);
  EXPECT_EQ(status["bootstrapped"], true);
}

TEST_F(ServiceTest, RegisterAssignsIdsAndRejectsBadOrTakenAddresses) {
  auto service = open();
  auto reply = service->register_machine(0, address(1), "");
  ASSERT_TRUE(reply.is_ok());
  EXPECT_EQ(reply->machine_id, 1u);
  reply = service->register_machine(0, address(2), "");
  ASSERT_TRUE(reply.is_ok());
  EXPECT_EQ(reply->machine_id, 2u);
  EXPECT_EQ(service->register_machine(5, "nonsense", "").status().code(),
            StatusCode::kInvalidArgument);
  // Machine 1 is up at that address: another id may not take it.
  EXPECT_EQ(service->register_machine(9, address(1), "").status().code(), StatusCode::kBusy);
  // Registering again with the same id is fine (a restart).
  EXPECT_TRUE(service->register_machine(1, address(1), "").is_ok());
}

TEST_F(ServiceTest, HeartbeatFromAnUnknownMachineIsNotFound) {
  auto service = open();
  auto reply = service->heartbeat(42, 0, Load{});
  ASSERT_FALSE(reply.is_ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kNotFound);
}

TEST_F(ServiceTest, FailureDetectionUnderAFakeClock) {
  auto service = open();
  register_machines(*service, 1, 4);
  run_for(*service, 1000, {1, 2, 3, 4});
  EXPECT_EQ(health(*service, 4), Health::kUp);
  run_for(*service, 1600, {1, 2, 3});  // 4 silent for at least 1.5 s
  EXPECT_EQ(health(*service, 4), Health::kDown);
  EXPECT_TRUE(has_event(*service, "machine 4 down"));
  run_for(*service, 3700, {1, 2, 3});
  EXPECT_EQ(health(*service, 4), Health::kDead);
  EXPECT_TRUE(has_event(*service, "machine 4 dead"));
  EXPECT_EQ(service->status_json()["machines"]["dead"], 1);
  // It comes back: up again, and an event says so.
  auto reply = service->heartbeat(4, 0, Load{});
  ASSERT_TRUE(reply.is_ok());
  EXPECT_EQ(health(*service, 4), Health::kUp);
  EXPECT_TRUE(has_event(*service, "machine 4 up again (was dead)"));
}

TEST_F(ServiceTest, HistoryIsSampledEverySecond) {
  auto service = open();
  register_machines(*service, 1, 4);
  run_for(*service, 10'000, {1, 2, 3});  // 4 goes down then dead
  State state = service->snapshot();
  ASSERT_GE(state.history.size(), 9u);
  ASSERT_LE(state.history.size(), 11u);
  EXPECT_EQ(state.history.front().down, 0u);
  EXPECT_EQ(state.history.back().down, 1u);
  EXPECT_GT(state.average_down(), 0.0);
  EXPECT_EQ(service->history_json().size(), state.history.size());
}

TEST_F(ServiceTest, ADeadLeaderIsReplacedOnlyAfterItsLeaseAndMargin) {
  auto service = open();
  register_machines(*service, 1, 4);
  State state = service->snapshot();
  topology::MachineId leader = state.table->shards[0].leader;
  std::vector<topology::MachineId> others;
  for (topology::MachineId id = 1; id <= 4; ++id) {
    if (id != leader) others.push_back(id);
  }
  run_for(*service, 500, {1, 2, 3, 4});
  int64_t last_heard = clock_.now_ms;  // the leader heartbeats up to about here
  // Until lease_ms + margin after its last heartbeat, nobody else is named.
  while (clock_.now_ms - last_heard < settings_.lease_ms + kLeaseMarginMs - 200) {
    run_for(*service, 100, others);
    ASSERT_EQ(service->snapshot().table->shards[0].leader, leader)
        << "leader changed " << clock_.now_ms - last_heard << " ms after its last heartbeat";
  }
  run_for(*service, 1000, others);
  topology::MachineId new_leader = service->snapshot().table->shards[0].leader;
  EXPECT_NE(new_leader, leader);
  EXPECT_NE(new_leader, topology::kNoMachine);
}

TEST_F(ServiceTest, ADrainingMachineGetsNoLeaseAndIsReleased) {
  auto service = open();
  register_machines(*service, 1, 4);
  topology::MachineId leader = service->snapshot().table->shards[0].leader;
  ASSERT_TRUE(service->drain(leader).is_ok());
  auto reply = service->heartbeat(leader, 0, Load{});
  ASSERT_TRUE(reply.is_ok());
  EXPECT_EQ(reply->lease_ms, kDrainingLeaseMs);
  EXPECT_EQ(service->remove(leader).code(), StatusCode::kBusy);  // still holds a role
  run_for(*service, 4000, {1, 2, 3, 4});
  State state = service->snapshot();
  const auto& shard = state.table->shards[0];
  EXPECT_NE(shard.leader, leader);
  EXPECT_EQ(std::count(shard.replicas.begin(), shard.replicas.end(), leader), 0);
  EXPECT_TRUE(service->remove(leader).is_ok());
  EXPECT_EQ(service->snapshot().find_machine(leader), nullptr);
  EXPECT_EQ(service->drain(99).code(), StatusCode::kNotFound);
}

TEST_F(ServiceTest, StateSurvivesARestart) {
  topology::Epoch epoch = 0;
  size_t events = 0;
  {
    auto service = open();
    register_machines(*service, 1, 5);
    run_for(*service, 2000, {1, 2, 3, 4, 5});
    epoch = service->epoch();
    events = service->snapshot().events.size();
  }
  ASSERT_GE(epoch, 1u);
  clock_.now_ms += 60'000;  // the orchestrator was away for a minute
  auto service = open();
  EXPECT_EQ(service->epoch(), epoch);
  State state = service->snapshot();
  EXPECT_EQ(state.machines.size(), 5u);
  EXPECT_GT(state.events.size(), events);  // "orchestrator started" was added
  // Machines get a fresh grace period instead of being declared dead at once.
  service->tick();
  EXPECT_EQ(health(*service, 1), Health::kUp);
  EXPECT_TRUE(service->heartbeat(1, epoch, Load{}).is_ok());
}

// A decision is acknowledged only once state.json holds it. While writes fail (a full disk) a
// dead replica is not replaced and an operator's drain is refused: no new epoch reaches a
// machine, and the file still holds the epoch the machines know, so a crash then cannot issue
// that epoch again with other contents. Once writes succeed the decisions are made again.
TEST_F(ServiceTest, ADecisionIsRefusedWhileTheStateCannotBeWrittenAndMadeOnceItCan) {
  bool disk_full = false;
  int refused_writes = 0;
  settings_.save_file = [&](const std::string& path, const State& state) {
    if (!disk_full) return save_state(path, state);
    ++refused_writes;
    return Status::io_error("write state.json.tmp: No space left on device");
  };
  auto service = open();
  register_machines(*service, 1, 5);
  run_for(*service, 2000, {1, 2, 3, 4, 5});
  const topology::Epoch epoch = service->epoch();
  ASSERT_GE(epoch, 1u);
  const std::vector<topology::MachineId> replicas = service->snapshot().table->shards[0].replicas;
  const topology::MachineId victim = replicas.back();
  std::vector<topology::MachineId> alive;
  for (topology::MachineId id = 1; id <= 5; ++id) {
    if (id != victim) alive.push_back(id);
  }
  const topology::MachineId spare = [&] {
    for (topology::MachineId id : alive) {
      if (std::count(replicas.begin(), replicas.end(), id) == 0) return id;
    }
    return topology::kNoMachine;
  }();
  ASSERT_NE(spare, topology::kNoMachine);

  disk_full = true;
  Status drained = service->drain(spare);
  EXPECT_EQ(drained.code(), StatusCode::kUnavailable) << drained.to_string();
  EXPECT_NE(drained.message().find("could not store the orchestrator state"), std::string::npos)
      << drained.message();
  EXPECT_FALSE(service->snapshot().find_machine(spare)->draining);
  // The victim dies; replacing it would be a new epoch, which cannot be written.
  run_for(*service, 8000, alive);
  EXPECT_EQ(health(*service, victim), Health::kDead);
  EXPECT_EQ(service->epoch(), epoch);
  auto beat = service->heartbeat(alive[0], epoch, Load{});
  ASSERT_TRUE(beat.is_ok());
  EXPECT_EQ(beat->epoch, epoch);
  EXPECT_GT(refused_writes, 10);
  EXPECT_TRUE(has_event(*service, "cannot write the orchestrator state"));
  // A crash now finds on disk exactly what the machines were told.
  Result<State> on_disk = load_state(settings_.state_path);
  ASSERT_TRUE(on_disk.is_ok()) << on_disk.status().to_string();
  ASSERT_TRUE(on_disk->table.has_value());
  EXPECT_EQ(on_disk->table->epoch, epoch);

  disk_full = false;
  run_for(*service, 1000, alive);
  State state = service->snapshot();
  ASSERT_GT(state.table->epoch, epoch);
  const std::vector<topology::MachineId>& now = state.table->shards[0].replicas;
  EXPECT_EQ(std::count(now.begin(), now.end(), victim), 0);
  EXPECT_TRUE(has_event(*service, "written again"));
  on_disk = load_state(settings_.state_path);
  ASSERT_TRUE(on_disk.is_ok());
  EXPECT_EQ(on_disk->table->epoch, state.table->epoch);
  EXPECT_EQ(on_disk->table->shards[0].replicas, now);
  EXPECT_TRUE(service->drain(spare).is_ok());
  const State last = service->snapshot();
  service.reset();
  // Reloaded: the epoch the machines were told last, with the same contents.
  auto reloaded = open();
  EXPECT_EQ(reloaded->epoch(), last.table->epoch);
  EXPECT_EQ(reloaded->snapshot().table->shards, last.table->shards);
  EXPECT_TRUE(reloaded->snapshot().find_machine(spare)->draining);
}

// An orchestrator that cannot write its state does not start (it could decide nothing).
TEST_F(ServiceTest, AStateThatCannotBeWrittenStopsTheStart) {
  settings_.save_file = [](const std::string&, const State&) {
    return Status::io_error("open state.json.tmp: Read-only file system");
  };
  auto service = Service::open(settings_, &clock_);
  ASSERT_FALSE(service.is_ok());
  EXPECT_NE(service.status().message().find("Read-only file system"), std::string::npos)
      << service.status().to_string();
}

// The orchestrator's own stall (its tick and the heartbeats queued behind it both late) is not
// the machines' silence: nobody is declared down for it, and a machine that really stopped
// during the stall is still found dead once the detector's windows pass after it.
TEST_F(ServiceTest, ItsOwnStallIsNotCountedAsTheMachinesSilence) {
  auto service = open();
  register_machines(*service, 1, 5);
  run_for(*service, 2000, {1, 2, 3, 4, 5});
  const topology::Epoch epoch = service->epoch();
  clock_.now_ms += 8000;  // longer than --dead-after-ms: no tick, no heartbeat read
  service->tick();
  for (topology::MachineId id = 1; id <= 5; ++id) EXPECT_EQ(health(*service, id), Health::kUp);
  EXPECT_EQ(service->epoch(), epoch);
  EXPECT_TRUE(has_event(*service, "orchestrator stalled for 8000 ms"));
  // Machine 5 stopped during the stall: it is found dead after the usual windows.
  run_for(*service, 1000, {1, 2, 3, 4});
  EXPECT_EQ(health(*service, 5), Health::kUp);
  run_for(*service, 5000, {1, 2, 3, 4});
  EXPECT_EQ(health(*service, 5), Health::kDead);
  EXPECT_EQ(health(*service, 1), Health::kUp);
}

TEST_F(ServiceTest, WithoutTheStallCreditAStallKillsEveryMachine) {
  settings_.self_stall_ms = 0;
  auto service = open();
  register_machines(*service, 1, 5);
  run_for(*service, 2000, {1, 2, 3, 4, 5});
  clock_.now_ms += 8000;
  service->tick();
  for (topology::MachineId id = 1; id <= 5; ++id) EXPECT_EQ(health(*service, id), Health::kDead);
}

TEST_F(ServiceTest, ACorruptStateFileStopsTheStart) {
  { std::ofstream(settings_.state_path) << "{\"version\": 1, \"machines\": ["; }
  auto service = Service::open(settings_, &clock_);
  ASSERT_FALSE(service.is_ok());
  EXPECT_EQ(service.status().code(), StatusCode::kCorruption);
  EXPECT_NE(service.status().message().find("state.json"), std::string::npos);
}

TEST_F(ServiceTest, EventsSinceReturnsOnlyNewerOnes) {
  auto service = open();
  register_machines(*service, 1, 2);
  auto all = service->events_json(0);
  ASSERT_GE(all.size(), 3u);
  uint64_t second = all[1]["seq"];
  auto newer = service->events_json(second);
  EXPECT_EQ(newer.size(), all.size() - 2);
  EXPECT_TRUE(service->events_json(1'000'000).empty());
}

TEST(ServiceSettingsTest, RejectsInconsistentSettings) {
  ServiceSettings s;
  EXPECT_TRUE(validate_settings(s).is_ok());
  s.dead_after_ms = 1000;
  EXPECT_FALSE(validate_settings(s).is_ok());
  s = ServiceSettings{};
  s.replication_factor = 0;
  EXPECT_FALSE(validate_settings(s).is_ok());
  s = ServiceSettings{};
  s.self_stall_ms = -1;
  EXPECT_FALSE(validate_settings(s).is_ok());
  s = ServiceSettings{};
  s.lease_ms = 200;
  EXPECT_FALSE(validate_settings(s).is_ok());
}

}  // namespace
}  // namespace cairn::orchestrator

namespace cairn::orchestrator {
namespace {

// A spare replacing a dead replica joins as joining; its heartbeat reporting the shard rebuilt
// makes it a voting replica in a new epoch; a repeated or wrong report changes nothing.
TEST_F(ServiceTest, RebuiltSparePromotedToVotingReplica) {
  settings_.down_after_ms = 500;
  settings_.dead_after_ms = 1000;
  auto service = open();
  register_machines(*service, 1, 4);
  const topology::Shard first = service->snapshot().table->shards[0];
  // A non-leader replica dies; the spare (4) replaces it as joining.
  topology::MachineId dead = first.replicas[0] == first.leader ? first.replicas[1]
                                                               : first.replicas[0];
  std::vector<topology::MachineId> alive;
  for (topology::MachineId id = 1; id <= 4; ++id) {
    if (id != dead) alive.push_back(id);
  }
  run_for(*service, 3000, alive);
  topology::Shard shard = service->snapshot().table->shards[0];
  ASSERT_EQ(shard.joining, std::vector<topology::MachineId>{4});
  ASSERT_EQ(shard.replicas.size(), 2u);
  const topology::Epoch before = service->epoch();
  // A report about another shard is ignored.
  ASSERT_TRUE(service->heartbeat(4, before, Load{}, shard.id + 7).is_ok());
  EXPECT_EQ(service->epoch(), before);
  auto reply = service->heartbeat(4, before, Load{}, shard.id);
  ASSERT_TRUE(reply.is_ok());
  EXPECT_EQ(service->epoch(), before + 1);
  EXPECT_EQ(reply->epoch, before + 1);
  EXPECT_EQ(reply->state, "up");
  shard = service->snapshot().table->shards[0];
  EXPECT_TRUE(shard.joining.empty());
  EXPECT_EQ(shard.replicas.size(), 3u);
  EXPECT_NE(std::find(shard.replicas.begin(), shard.replicas.end(), 4u), shard.replicas.end());
  EXPECT_TRUE(has_event(*service, "machine 4 rebuilt: now a voting replica of shard"));
  // Repeated: nothing changes.
  ASSERT_TRUE(service->heartbeat(4, before + 1, Load{}, shard.id).is_ok());
  EXPECT_EQ(service->epoch(), before + 1);
}

}  // namespace
}  // namespace cairn::orchestrator
