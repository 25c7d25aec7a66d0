// The migration state machine of the Service (docs/migration.md) under a fake clock.

#include <unistd.h>

#include <filesystem>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "orchestrator/balancer.h"
#include "orchestrator/service.h"
#include "orchestrator/service_test_fixture.h"
#include "topology/token.h"

namespace cairn::orchestrator {
namespace {

using topology::MachineId;
using topology::ShardId;

class MigrationTest : public test::ServiceFixture {
 protected:
  MigrationTest() : ServiceFixture("cairn_migration_test_", 2) {}

  // Registers machines 1..count and ticks once: 2 shards of 3 are bootstrapped from 1..6.
  std::unique_ptr<Service> cluster(MachineId count) {
    auto service = open();
    for (MachineId id = 1; id <= count; ++id) {
      EXPECT_TRUE(service->register_machine(id, "127.0.0.1:" + std::to_string(7000 + id), "")
                      .is_ok());
    }
    service->tick();
    return service;
  }
  std::vector<MachineId> members(const Service& service, ShardId id) {
    State state = service.snapshot();
    for (const auto& shard : state.table->shards) {
      if (shard.id != id) continue;
      std::vector<MachineId> out = shard.replicas;
      out.insert(out.end(), shard.extras.begin(), shard.extras.end());
      out.insert(out.end(), shard.joining.begin(), shard.joining.end());
      return out;
    }
    return {};
  }
  // The first table range owned by `shard`.
  topology::Range range_of(const Service& service, ShardId shard) {
    State state = service.snapshot();
    for (const auto& r : state.table->ranges) {
      if (r.shard == shard) return r;
    }
    return {};
  }
  Migration migration(const Service& service, uint64_t id) {
    State state = service.snapshot();
    Migration* m = state.find_migration(id);
    EXPECT_NE(m, nullptr);
    return m != nullptr ? *m : Migration{};
  }
  MigrationPhase phase(const Service& service, uint64_t id) {
    return migration(service, id).phase;
  }
  void report(Service& service, const std::vector<MachineId>& machines,
              const MigrationReport& r) {
    for (MachineId id : machines) {
      auto reply = service.heartbeat(id, 0, Load{}, topology::kNoShard, {r});
      ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
    }
  }
  // Advances the clock in 100 ms ticks; machines 1..all heartbeat every 250 ms, `reporters`
  // with `r`.
  void run_for(Service& service, int64_t ms, MachineId all, const std::vector<MachineId>& reporters,
               const MigrationReport& r) {
    for (int64_t t = 0; t < ms; t += 100) {
      clock_.now_ms += 100;
      if (clock_.now_ms % 250 < 100) {
        for (MachineId id = 1; id <= all; ++id) {
          bool reports = std::find(reporters.begin(), reporters.end(), id) != reporters.end();
          std::vector<MigrationReport> reports_of;
          if (reports) reports_of.push_back(r);
          ASSERT_TRUE(service.heartbeat(id, 0, Load{}, topology::kNoShard, reports_of).is_ok());
        }
      }
      service.tick();
    }
  }
  // A move of shard 1's first range to shard 2, driven to cutover. Returns the migration id.
  uint64_t move_to_cutover(Service& service) {
    topology::Range range = range_of(service, 1);
    auto created = service.move(range.start, std::nullopt, 2, 0);
    EXPECT_TRUE(created.is_ok()) << created.status().to_string();
    uint64_t id = created->ids.at(0);
    service.tick();
    EXPECT_EQ(phase(service, id), MigrationPhase::kStaging);
    MigrationReport r{.id = id, .staged = true, .keys = 10, .bytes = 1000};
    report(service, members(service, 2), r);
    service.tick();
    EXPECT_EQ(phase(service, id), MigrationPhase::kCatchup);
    r.ready = true;
    report(service, members(service, 2), r);
    service.tick();
    EXPECT_EQ(phase(service, id), MigrationPhase::kCutover);
    return id;
  }
  bool has_event(const Service& service, std::string_view needle) {
    for (const auto& e : service.snapshot().events) {
      if (e.message.find(needle) != std::string::npos) return true;
    }
    return false;
  }

};

TEST_F(MigrationTest, AMoveRunsThroughEveryPhase) {
  auto service = cluster(6);
  ASSERT_EQ(service->epoch(), 1u);
  topology::Range range = range_of(*service, 1);
  auto created = service->move(range.start, std::nullopt, 2, 0);
  ASSERT_TRUE(created.is_ok()) << created.status().to_string();
  const uint64_t id = created->ids.at(0);
  EXPECT_EQ(phase(*service, id), MigrationPhase::kQueued);
  service->tick();
  EXPECT_EQ(phase(*service, id), MigrationPhase::kStaging);
  EXPECT_TRUE(has_event(*service, "migration 1: staging"));

  // Every machine is told about it, with the default rate.
  auto hb = service->heartbeat(1, 0, Load{});
  ASSERT_TRUE(hb.is_ok());
  ASSERT_EQ(hb->migrations.size(), 1u);
  EXPECT_EQ(hb->migrations[0].phase, MigrationPhase::kStaging);
  EXPECT_EQ(hb->migrations[0].start, range.start);
  EXPECT_EQ(hb->migrations[0].end, range.end);
  EXPECT_EQ(hb->migrations[0].max_rate, kDefaultMigrationMaxRate);

  // Staged by only two of the three targets: still staging. Reports of non-targets count not.
  std::vector<MachineId> targets = members(*service, 2);
  ASSERT_EQ(targets.size(), 3u);
  MigrationReport r{.id = id, .staged = true, .keys = 5, .bytes = 500};
  report(*service, {targets[0], targets[1]}, r);
  report(*service, members(*service, 1), r);
  service->tick();
  EXPECT_EQ(phase(*service, id), MigrationPhase::kStaging);
  // Each target measures its own staging time; the slowest one is the migration's.
  MigrationReport slow = r;
  slow.copy_ms = 900;
  report(*service, {targets[2]}, slow);
  r.copy_ms = 300;
  report(*service, {targets[0]}, r);
  service->tick();
  EXPECT_EQ(phase(*service, id), MigrationPhase::kCatchup);
  EXPECT_EQ(service->migrations_json()[0]["copy_ms"], 900);
  r.copy_ms.reset();
  r.ready = true;
  report(*service, targets, r);
  service->tick();
  Migration m = migration(*service, id);
  EXPECT_EQ(m.phase, MigrationPhase::kCutover);
  EXPECT_EQ(m.attempt, 1u);
  State state = service->snapshot();
  EXPECT_EQ(m.driver, state.table->shards[1].leader);

  const topology::Epoch epoch = service->epoch();
  // Compare-and-swap refusals.
  auto stale = service->commit_migration(id, 1, epoch - 1);
  ASSERT_FALSE(stale.is_ok());
  EXPECT_EQ(stale.status().code(), StatusCode::kBusy);
  EXPECT_NE(stale.status().message().find("epoch"), std::string::npos);
  EXPECT_EQ(service->commit_migration(id, 2, epoch).status().code(), StatusCode::kBusy);
  EXPECT_EQ(service->commit_migration(99, 1, epoch).status().code(), StatusCode::kNotFound);

  auto table = service->commit_migration(id, 1, epoch);
  ASSERT_TRUE(table.is_ok()) << table.status().to_string();
  EXPECT_EQ((*table)["epoch"].get<uint64_t>(), epoch + 1);
  EXPECT_EQ(service->epoch(), epoch + 1);
  state = service->snapshot();
  for (const auto& r2 : state.table->ranges) {
    if (r2.start == range.start) {
      EXPECT_EQ(r2.shard, 2u);
    }
  }
  m = migration(*service, id);
  EXPECT_EQ(m.phase, MigrationPhase::kCleanup);
  EXPECT_EQ(m.commit_epoch, epoch + 1);
  EXPECT_EQ(m.sources_at_commit, members(*service, 1));
  // A second commit of the same attempt is refused: it is no longer in cutover.
  EXPECT_EQ(service->commit_migration(id, 1, epoch + 1).status().code(), StatusCode::kBusy);

  MigrationReport cleaned{.id = id, .cleaned = true};
  std::vector<MachineId> sources = m.sources_at_commit;
  report(*service, {sources[0], sources[1]}, cleaned);
  service->tick();
  EXPECT_EQ(phase(*service, id), MigrationPhase::kCleanup);
  report(*service, {sources[2]}, cleaned);
  service->tick();
  EXPECT_EQ(phase(*service, id), MigrationPhase::kDone);
  EXPECT_TRUE(service->heartbeat(1, 0, Load{})->migrations.empty());
  EXPECT_TRUE(has_event(*service, "migration 1: done"));
}

TEST_F(MigrationTest, ACutoverWithoutCommitIsAbortedAfterFiveSecondsAndRetried) {
  auto service = cluster(6);
  const uint64_t id = move_to_cutover(*service);
  const topology::Epoch epoch = service->epoch();
  MigrationReport ready{.id = id, .staged = true, .ready = true};
  run_for(*service, kCutoverTimeoutMs - 200, 6, {}, ready);
  EXPECT_EQ(phase(*service, id), MigrationPhase::kCutover);
  run_for(*service, 300, 6, {}, ready);
  Migration m = migration(*service, id);
  EXPECT_EQ(m.phase, MigrationPhase::kCatchup);
  EXPECT_NE(m.error.find("no commit"), std::string::npos);
  // The bump lifts the fences: an identical table at the next epoch.
  EXPECT_EQ(service->epoch(), epoch + 1);
  // Fresh ready reports start attempt 2; attempt 1 can no longer commit.
  report(*service, members(*service, 2), ready);
  service->tick();
  m = migration(*service, id);
  EXPECT_EQ(m.phase, MigrationPhase::kCutover);
  EXPECT_EQ(m.attempt, 2u);
  EXPECT_EQ(service->commit_migration(id, 1, epoch + 1).status().code(), StatusCode::kBusy);
  // The driver's own abort works the same way.
  ASSERT_TRUE(service->abort_migration(id, 2, "FENCE refused: TABLEBEHIND").is_ok());
  m = migration(*service, id);
  EXPECT_EQ(m.phase, MigrationPhase::kCatchup);
  EXPECT_EQ(m.error, "FENCE refused: TABLEBEHIND");
  EXPECT_EQ(service->epoch(), epoch + 2);
  EXPECT_EQ(service->abort_migration(id, 2, "again").code(), StatusCode::kBusy);
}

TEST_F(MigrationTest, FenceTimesAreRecordedOncePerAttempt) {
  auto service = cluster(6);
  const uint64_t id = move_to_cutover(*service);
  MachineId driver = migration(*service, id).driver;
  report(*service, {driver}, MigrationReport{.id = id, .fence_ms = 12});
  report(*service, {driver}, MigrationReport{.id = id, .fence_ms = 12});
  ASSERT_TRUE(service->commit_migration(id, 1, service->epoch()).is_ok());
  report(*service, {driver}, MigrationReport{.id = id, .fence_ms = 12});
  Migration m = migration(*service, id);
  EXPECT_EQ(m.fence_history, std::deque<uint64_t>{12});
  EXPECT_EQ(m.fence_ms_last, 12u);
  EXPECT_EQ(m.fence_ms_max, 12u);
}

TEST_F(MigrationTest, ARestartKeepsEveryPhase) {
  uint64_t id = 0;
  topology::Epoch epoch = 0;
  {
    auto service = cluster(6);
    id = move_to_cutover(*service);
    epoch = service->epoch();
  }
  auto service = open();
  Migration m = migration(*service, id);
  EXPECT_EQ(m.phase, MigrationPhase::kCutover);
  EXPECT_EQ(m.attempt, 1u);
  // The driver may still commit after the restart.
  ASSERT_TRUE(service->commit_migration(id, 1, epoch).is_ok());
  service.reset();
  service = open();
  m = migration(*service, id);
  EXPECT_EQ(m.phase, MigrationPhase::kCleanup);
  EXPECT_EQ(m.commit_epoch, epoch + 1);
  EXPECT_EQ(m.sources_at_commit.size(), 3u);
}

// The commit is the one ownership change: it is answered (and its table pushed by the driver)
// only once state.json holds it. Refused while the disk is full: the epoch stays, the range
// stays with the source, on disk and in memory alike; a crash then reloads the same epoch, and
// the driver's retry once the disk recovers commits the range at the epoch after it.
TEST_F(MigrationTest, ACommitThatCannotBeStoredIsRefusedAndSucceedsOnceItCan) {
  bool disk_full = false;
  settings_.save_file = [&](const std::string& path, const State& state) {
    if (disk_full) return Status::io_error("write state.json.tmp: No space left on device");
    return save_state(path, state);
  };
  auto service = cluster(6);
  const uint64_t id = move_to_cutover(*service);
  const topology::Epoch epoch = service->epoch();
  const topology::Range range = range_of(*service, 1);

  disk_full = true;
  auto refused = service->commit_migration(id, 1, epoch);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("could not store"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(service->epoch(), epoch);
  EXPECT_EQ(phase(*service, id), MigrationPhase::kCutover);
  EXPECT_EQ(range_of(*service, 1).start, range.start);
  auto beat = service->heartbeat(1, epoch, Load{});
  ASSERT_TRUE(beat.is_ok());
  EXPECT_EQ(beat->epoch, epoch);
  ASSERT_EQ(beat->migrations.size(), 1u);
  EXPECT_EQ(beat->migrations[0].phase, MigrationPhase::kCutover);
  Result<State> on_disk = load_state(settings_.state_path);
  ASSERT_TRUE(on_disk.is_ok());
  EXPECT_EQ(on_disk->table->epoch, epoch);

  disk_full = false;
  auto table = service->commit_migration(id, 1, epoch);
  ASSERT_TRUE(table.is_ok()) << table.status().to_string();
  EXPECT_EQ((*table)["epoch"].get<uint64_t>(), epoch + 1);
  service.reset();
  service = open();
  EXPECT_EQ(service->epoch(), epoch + 1);
  EXPECT_EQ(phase(*service, id), MigrationPhase::kCleanup);
}

TEST_F(MigrationTest, ARestartMidCatchupStaysInCatchup) {
  uint64_t id = 0;
  {
    auto service = cluster(6);
    auto created = service->move(range_of(*service, 1).start, std::nullopt, 2, 1234);
    ASSERT_TRUE(created.is_ok());
    id = created->ids[0];
    service->tick();
    report(*service, members(*service, 2), MigrationReport{.id = id, .staged = true});
    service->tick();
    ASSERT_EQ(phase(*service, id), MigrationPhase::kCatchup);
  }
  auto service = open();
  EXPECT_EQ(phase(*service, id), MigrationPhase::kCatchup);
  EXPECT_EQ(migration(*service, id).max_rate, 1234u);
  EXPECT_EQ(service->heartbeat(1, 0, Load{})->migrations.at(0).max_rate, 1234u);
}

TEST_F(MigrationTest, PauseHoldsTheCutoverAndCancelRules) {
  auto service = cluster(6);
  auto created = service->move(range_of(*service, 1).start, std::nullopt, 2, 0);
  ASSERT_TRUE(created.is_ok());
  const uint64_t id = created->ids[0];
  service->tick();
  ASSERT_TRUE(service->pause_migration(id).is_ok());
  EXPECT_TRUE(service->heartbeat(1, 0, Load{})->migrations.at(0).paused);
  MigrationReport ready{.id = id, .staged = true, .ready = true};
  report(*service, members(*service, 2), ready);
  service->tick();
  service->tick();
  EXPECT_EQ(phase(*service, id), MigrationPhase::kCatchup);  // paused: no cutover
  ASSERT_TRUE(service->resume_migration(id).is_ok());
  service->tick();
  EXPECT_EQ(phase(*service, id), MigrationPhase::kCutover);
  EXPECT_EQ(service->pause_migration(id).code(), StatusCode::kBusy);
  ASSERT_TRUE(service->set_migration_rate(id, 50'000'000).is_ok());
  EXPECT_EQ(service->heartbeat(1, 0, Load{})->migrations.at(0).max_rate, 50'000'000u);

  // Cancel during cutover: the commit is refused, the fences lifted by a new epoch.
  const topology::Epoch epoch = service->epoch();
  ASSERT_TRUE(service->cancel_migration(id).is_ok());
  EXPECT_EQ(phase(*service, id), MigrationPhase::kCancelled);
  EXPECT_EQ(service->epoch(), epoch + 1);
  EXPECT_EQ(service->commit_migration(id, 1, epoch).status().code(), StatusCode::kBusy);
  State state = service->snapshot();
  for (const auto& r : state.table->ranges) {
    if (r.start == migration(*service, id).start) {
      EXPECT_EQ(r.shard, 1u);
    }
  }

  // Cancel after the commit is refused.
  const uint64_t second = move_to_cutover(*service);
  ASSERT_TRUE(service->commit_migration(second, 1, service->epoch()).is_ok());
  Status refused = service->cancel_migration(second);
  EXPECT_EQ(refused.code(), StatusCode::kBusy);
  EXPECT_NE(refused.message().find("already committed"), std::string::npos);
  EXPECT_EQ(service->cancel_migration(77).code(), StatusCode::kNotFound);
}

TEST_F(MigrationTest, MoveValidation) {
  auto service = cluster(6);
  State state = service->snapshot();
  const topology::Range first = state.table->ranges[0];
  const topology::Range second = state.table->ranges[1];
  auto across = service->move(first.start + 1, second.start + 1, second.shard == 1 ? 2 : 1, 0);
  ASSERT_FALSE(across.is_ok());
  EXPECT_NE(across.status().message().find("not inside one table range"), std::string::npos);
  auto no_range = service->move(first.start + 1, std::nullopt, 2, 0);
  EXPECT_NE(no_range.status().message().find("no range starts at"), std::string::npos);
  auto same = service->move(first.start, std::nullopt, first.shard, 0);
  EXPECT_NE(same.status().message().find("already owned by shard"), std::string::npos);
  auto unknown = service->move(first.start, std::nullopt, 9, 0);
  EXPECT_EQ(unknown.status().message(), "unknown shard 9");

  // Part of a range: the table range is cut when the migration starts (epochs of their own).
  const topology::Token mid = first.start + (first.end - first.start) / 2;
  const ShardId other = first.shard == 1 ? 2 : 1;
  auto part = service->move(first.start, mid, other, 0);
  ASSERT_TRUE(part.is_ok()) << part.status().to_string();
  auto overlap = service->move(first.start, std::nullopt, other, 0);
  EXPECT_EQ(overlap.status().code(), StatusCode::kBusy);
  EXPECT_NE(overlap.status().message().find("overlaps migration"), std::string::npos);
  const topology::Epoch epoch = service->epoch();
  service->tick();
  EXPECT_EQ(phase(*service, part->ids[0]), MigrationPhase::kStaging);
  EXPECT_EQ(service->epoch(), epoch + 1);  // one cut: start was already a boundary
  state = service->snapshot();
  EXPECT_EQ(state.table->ranges[0].end, mid);
  EXPECT_EQ(state.table->ranges[1].start, mid);

  // A move touching a shard already migrating waits in the queue, and says so.
  auto waiting = service->move(second.start, std::nullopt, second.shard == 1 ? 2 : 1, 0);
  ASSERT_TRUE(waiting.is_ok());
  EXPECT_NE(waiting->message.find("already migrating"), std::string::npos);
  service->tick();
  EXPECT_EQ(phase(*service, waiting->ids[0]), MigrationPhase::kQueued);
}

TEST_F(MigrationTest, SplitValidationMessages) {
  auto service = cluster(6);  // no free machine: all six serve the two shards
  auto unknown = service->split(7, std::nullopt, 0);
  EXPECT_EQ(unknown.status().message(), "unknown shard 7");
  auto short_of_machines = service->split(1, std::nullopt, 0);
  ASSERT_FALSE(short_of_machines.is_ok());
  EXPECT_EQ(short_of_machines.status().message(),
            "split needs 3 free machines (spares or extras), 0 available");
  const topology::Range range = range_of(*service, 1);
  auto sliver = service->split(1, range.start + 5, 0);
  EXPECT_NE(sliver.status().message().find("range too small to split"), std::string::npos);
}

TEST_F(MigrationTest, SplitCreatesAShardAndMovesHalf) {
  settings_.auto_rebalance = false;
  auto service = cluster(9);  // 6 serve, 1 spare, 2 extras
  const topology::Epoch epoch = service->epoch();
  auto created = service->split(1, std::nullopt, 0);
  ASSERT_TRUE(created.is_ok()) << created.status().to_string();
  EXPECT_EQ(created->new_shard, 3u);
  EXPECT_EQ(service->epoch(), epoch + 1);
  State state = service->snapshot();
  ASSERT_EQ(state.table->shards.size(), 3u);
  EXPECT_EQ(state.table->shards[2].joining.size(), 3u);
  long double moving = 0;
  for (uint64_t id : created->ids) {
    Migration m = migration(*service, id);
    EXPECT_EQ(m.kind, "split");
    EXPECT_EQ(m.source, 1u);
    EXPECT_EQ(m.target, 3u);
    moving += static_cast<long double>(ring_fraction(m.start, m.end));
  }
  EXPECT_NEAR(static_cast<double>(moving), 0.25, 1e-9);  // half of shard 1's half
  // The new shard has no voting replica yet: the migrations wait.
  service->tick();
  EXPECT_EQ(phase(*service, created->ids[0]), MigrationPhase::kQueued);
  for (MachineId id : members(*service, 3)) {
    ASSERT_TRUE(service->heartbeat(id, 0, Load{}, 3).is_ok());
  }
  service->tick();
  EXPECT_EQ(phase(*service, created->ids[0]), MigrationPhase::kStaging);
  // One at a time per shard.
  if (created->ids.size() > 1) {
    EXPECT_EQ(phase(*service, created->ids[1]), MigrationPhase::kQueued);
  }
}

TEST_F(MigrationTest, TheBalancerFeedsANewShard) {
  auto service = cluster(10);  // planner: 2 shards, 1 spare, a new shard 3 of 3 joining
  State state = service->snapshot();
  ASSERT_EQ(state.table->shards.size(), 3u);
  for (MachineId id : members(*service, 3)) {
    ASSERT_TRUE(service->heartbeat(id, 0, Load{}, 3).is_ok());
  }
  service->tick();
  state = service->snapshot();
  long double to_three = 0;
  size_t count = 0;
  for (const auto& m : state.migrations) {
    EXPECT_EQ(m.kind, "rebalance");
    EXPECT_EQ(m.target, 3u);
    to_three += static_cast<long double>(ring_fraction(m.start, m.end));
    ++count;
  }
  EXPECT_GT(count, 0u);
  EXPECT_NEAR(static_cast<double>(to_three), 1.0 / 3, 0.01);
}

TEST_F(MigrationTest, NoAutoRebalanceQueuesNothing) {
  settings_.auto_rebalance = false;
  auto service = cluster(10);
  for (MachineId id : members(*service, 3)) {
    ASSERT_TRUE(service->heartbeat(id, 0, Load{}, 3).is_ok());
  }
  service->tick();
  EXPECT_TRUE(service->snapshot().migrations.empty());
}

// What a machine of `shard` reports: 100 ops/s in each of the shard's ranges, and `hot_ops` more
// in `hot` (when the shard owns it) over ten keys of that range.
std::vector<metrics::RangeLoadReport> ranges_load(const State& state, ShardId shard,
                                                  const topology::Range& hot, double hot_ops) {
  std::vector<metrics::RangeLoadReport> out;
  for (const auto& r : state.table->ranges) {
    if (r.shard != shard) continue;
    metrics::RangeLoadReport report;
    report.start = r.start;
    report.end = r.end;
    report.writes_per_sec = 100;
    if (r.start == hot.start) {
      report.writes_per_sec += hot_ops;
      for (int i = 0; report.top_keys.size() < 10 && i < 100'000; ++i) {
        const std::string key = "hot:" + std::to_string(i);
        if (r.contains(topology::token_of(key))) report.top_keys.push_back({key, 5000, 0});
      }
    }
    out.push_back(std::move(report));
  }
  return out;
}

TEST_F(MigrationTest, AHotShardIsSplitByLoadToTheCoolestShard) {
  settings_.hot.window_ms = 2000;
  settings_.hot.cooldown_ms = 60'000;
  auto service = cluster(7);  // 2 shards of 3 and the one spare the cluster keeps
  const topology::Range hot = range_of(*service, 1);
  for (int64_t t = 0; t < 4000; t += 100) {
    clock_.now_ms += 100;
    if (clock_.now_ms % 250 < 100) {
      const State state = service->snapshot();
      for (MachineId id = 1; id <= 7; ++id) {
        ShardId shard = topology::kNoShard;
        for (const auto& s : state.table->shards) {
          if (std::find(s.replicas.begin(), s.replicas.end(), id) != s.replicas.end()) {
            shard = s.id;
          }
        }
        auto load = shard == topology::kNoShard ? std::vector<metrics::RangeLoadReport>{}
                                                : ranges_load(state, shard, hot, 8000);
        ASSERT_TRUE(
            service->heartbeat(id, 0, Load{}, topology::kNoShard, {}, std::move(load)).is_ok());
      }
    }
    service->tick();
  }
  EXPECT_TRUE(has_event(*service, "hot shard 1: "));
  const State state = service->snapshot();
  ASSERT_EQ(state.migrations.size(), 1u);
  const Migration& m = state.migrations[0];
  EXPECT_EQ(m.kind, "hot-split");
  EXPECT_EQ(m.source, 1u);
  EXPECT_EQ(m.target, 2u);  // the spare is kept for replacements
  // One half of the hot range, cut at its keys' load median, not at its token middle.
  EXPECT_TRUE(m.start == hot.start || m.end == hot.end);
  EXPECT_FALSE(m.start == hot.start && m.end == hot.end);
  const nlohmann::json load = service->load_json(false);
  ASSERT_EQ(load["hot"]["shards"].size(), 1u);
  EXPECT_TRUE(load["hot"]["shards"][0]["hot"].get<bool>());
  EXPECT_EQ(load["hot"]["pinned"].size(), 2u);
}

TEST_F(MigrationTest, MigrationsJsonComputesRateAndEta) {
  auto service = cluster(6);
  for (MachineId id : members(*service, 1)) {
    ASSERT_TRUE(service->heartbeat(id, 0, Load{.bytes = 8'000'000}).is_ok());
  }
  auto created = service->move(range_of(*service, 1).start, std::nullopt, 2, 0);
  ASSERT_TRUE(created.is_ok());
  const uint64_t id = created->ids[0];
  service->tick();
  std::vector<MachineId> targets = members(*service, 2);
  report(*service, targets, MigrationReport{.id = id, .bytes = 0});
  clock_.now_ms += 1000;
  report(*service, targets, MigrationReport{.id = id, .keys = 7, .bytes = 500'000});
  nlohmann::json all = service->migrations_json();
  ASSERT_EQ(all.size(), 1u);
  const nlohmann::json& j = all[0];
  EXPECT_TRUE(j["active"].get<bool>());
  EXPECT_EQ(j["phase"], "staging");
  EXPECT_EQ(j["keys"], 7);
  EXPECT_EQ(j["bytes"], 500'000);
  EXPECT_DOUBLE_EQ(j["rate"].get<double>(), 500'000.0);
  // Shard 1 holds 4 equal ranges: one is a quarter of 8 MB.
  EXPECT_EQ(j["estimated_bytes"], 2'000'000);
  EXPECT_DOUBLE_EQ(j["eta_s"].get<double>(), 3.0);
}

TEST(MigrationStateTest, JsonRoundTripAndOldFilesLoad) {
  State state;
  state.next_migration_id = 3;
  Migration m;
  m.id = 2;
  m.kind = "move";
  m.start = 0x10;
  m.end = 0;
  m.source = 1;
  m.target = 2;
  m.phase = MigrationPhase::kCleanup;
  m.fence_history = {3, 4};
  m.progress.push_back(TargetProgress{.machine = 5, .staged = true, .bytes = 9});
  m.sources_at_commit = {1, 2};
  m.cleaned = {2};
  state.migrations.push_back(m);
  auto back = state_from_json(state_to_json(state));
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, state);
  EXPECT_EQ(state_to_json(state)["migrations"][0]["start"], "0x0000000000000010");

  nlohmann::json old = state_to_json(State{});
  old.erase("migrations");
  old.erase("next_migration_id");
  auto loaded = state_from_json(old);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  EXPECT_TRUE(loaded->migrations.empty());

  // Two active migrations of one range are refused.
  Migration twin = m;
  twin.id = 3;
  state.next_migration_id = 4;
  state.migrations[0].phase = MigrationPhase::kStaging;
  state.migrations.push_back(twin);
  state.migrations[1].phase = MigrationPhase::kQueued;
  EXPECT_FALSE(validate_state(state).is_ok());
}

}  // namespace
}  // namespace cairn::orchestrator
