#include "orchestrator/planner.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace cairn::orchestrator {
namespace {

using topology::MachineId;
using topology::MachineState;
using topology::RoutingTableSpec;
using topology::Shard;

MachineInfo machine(MachineId id, double load = 0) {
  MachineInfo info;
  info.id = id;
  info.address = "127.0.0.1:" + std::to_string(7000 + id);
  info.load = load;
  return info;
}

std::vector<MachineInfo> machines(MachineId count) {
  std::vector<MachineInfo> out;
  for (MachineId id = 1; id <= count; ++id) out.push_back(machine(id));
  return out;
}

MachineInfo& info_of(PlannerInput& input, MachineId id) {
  for (MachineInfo& info : input.machines) {
    if (info.id == id) return info;
  }
  input.machines.push_back(machine(id));
  return input.machines.back();
}

void kill(PlannerInput& input, MachineId id, bool lease_expired = true) {
  info_of(input, id).health = Health::kDead;
  info_of(input, id).lease_expired = lease_expired;
}

const Shard& shard_of(const RoutingTableSpec& table, topology::ShardId id) {
  for (const Shard& shard : table.shards) {
    if (shard.id == id) return shard;
  }
  ADD_FAILURE() << "no shard " << id;
  return table.shards.front();
}

MachineState state_of(const RoutingTableSpec& table, MachineId id) {
  for (const topology::Machine& m : table.machines) {
    if (m.id == id) return m.state;
  }
  ADD_FAILURE() << "machine " << id << " is not in the table";
  return MachineState::kDead;
}

bool listed(const RoutingTableSpec& table, MachineId id) {
  for (const topology::Machine& m : table.machines) {
    if (m.id == id) return true;
  }
  return false;
}

// `shards` × RF 3 on machines 1..3·shards with 2 ranges each, then `extra_machines` more
// registered (not yet in the table). min_spares 1, one extra per shard at most.
PlannerInput cluster(uint32_t shards, MachineId extra_machines = 0) {
  PlannerInput input;
  input.machines = machines(MachineId{shards} * 3);
  Result<RoutingTableSpec> table = bootstrap(input.machines, shards, 3, 2);
  EXPECT_TRUE(table.is_ok()) << table.status().to_string();
  input.table = *table;
  for (MachineId i = 1; i <= extra_machines; ++i) {
    input.machines.push_back(machine(MachineId{shards} * 3 + i));
  }
  return input;
}

// Plans, checks the invariants, and that planning again from the result changes nothing.
Plan plan_ok(const PlannerInput& input) {
  Result<Plan> result = plan(input);
  EXPECT_TRUE(result.is_ok()) << result.status().to_string();
  if (!result.is_ok()) return Plan{};
  Status invariants = check_invariants(input, *result);
  EXPECT_TRUE(invariants.is_ok()) << invariants.to_string();
  EXPECT_EQ(result->table.epoch, input.table.epoch + (result->changed() ? 1 : 0));
  PlannerInput again = input;
  again.table = result->table;
  Result<Plan> second = plan(again);
  EXPECT_TRUE(second.is_ok()) << second.status().to_string();
  if (second.is_ok()) {
    for (const Action& action : second->actions) {
      ADD_FAILURE() << "not a fixpoint, second plan: " << action.describe();
    }
  }
  return std::move(result).value();
}

std::vector<std::string> described(const Plan& plan) {
  std::vector<std::string> out;
  for (const Action& action : plan.actions) out.push_back(action.describe());
  return out;
}

// With one more bootstrap, the first plan after it keeps machine 10 as spare.
PlannerInput with_spare(uint32_t shards) {
  PlannerInput input = cluster(shards, 1);
  input.table = plan_ok(input).table;
  return input;
}

struct Case {
  std::string name;
  std::function<PlannerInput()> setup;
  std::vector<std::string> actions;
  std::function<void(const Plan&)> more = [](const Plan&) {};
};

TEST(Planner, EveryRule) {
  const std::vector<Case> cases = {
      {"nothing to do: same table, same epoch", [] { return cluster(3); }, {}},
      {"worked example: 3 shards RF 3, 3 new machines -> 1 spare, 2 extras of the busiest",
       [] {
         PlannerInput input = cluster(3, 3);
         info_of(input, 4).load = 500;  // shard 2 busiest, then shard 3, then shard 1
         info_of(input, 7).load = 100;
         return input;
       },
       {"machine 10 is an idle spare", "machine 11 becomes an extra replica of shard 2",
        "machine 12 becomes an extra replica of shard 3"},
       [](const Plan& plan) {
         EXPECT_EQ(state_of(plan.table, 10), MachineState::kSpare);
         EXPECT_EQ(state_of(plan.table, 11), MachineState::kUp);
         EXPECT_EQ(plan.spares_target, 1u);
       }},
      {"worked example with a spare already: 3 new machines -> a new shard, joining",
       [] {
         PlannerInput input = with_spare(3);
         for (MachineId id = 11; id <= 13; ++id) input.machines.push_back(machine(id));
         return input;
       },
       {"create shard 4 from machines 11, 12, 13 (joining)"},
       [](const Plan& plan) {
         const Shard& shard = shard_of(plan.table, 4);
         EXPECT_TRUE(shard.replicas.empty());
         EXPECT_EQ(shard.joining, (std::vector<MachineId>{11, 12, 13}));
         EXPECT_EQ(shard.leader, topology::kNoMachine);
         EXPECT_EQ(state_of(plan.table, 12), MachineState::kJoining);
       }},
      {"a new shard reclaims extras when free machines alone are short",
       [] {
         PlannerInput input = cluster(3, 3);  // 10 spare, 11 and 12 extras of shards 1, 2
         input.table = plan_ok(input).table;
         input.machines.push_back(machine(13));
         return input;
       },
       {"create shard 4 from machines 13, 11, 12 (joining)"}},
      {"rule 1: a dead voting replica is replaced by the shard's extra, which joins and votes "
       "only once rebuilt (it lacks what was written before it became an extra)",
       [] {
         PlannerInput input = cluster(3, 3);
         input.table = plan_ok(input).table;  // extras: 11 in shard 1, 12 in shard 2
         kill(input, 2);
         return input;
       },
       {"extra 11 joins shard 1 as joining, to vote once rebuilt (replaces 2)"},
       [](const Plan& plan) {
         EXPECT_EQ(shard_of(plan.table, 1).replicas, (std::vector<MachineId>{1, 3}));
         EXPECT_EQ(shard_of(plan.table, 1).joining, (std::vector<MachineId>{11}));
         EXPECT_FALSE(listed(plan.table, 2));  // dead machines leave the table
       }},
      {"rule 1: without an extra, a spare joins (does not vote) and the spare is not restored "
       "from nowhere",
       [] {
         PlannerInput input = with_spare(3);
         kill(input, 5);
         return input;
       },
       {"machine 10 joins shard 2 as joining (replaces 5)"},
       [](const Plan& plan) {
         EXPECT_EQ(shard_of(plan.table, 2).replicas, (std::vector<MachineId>{4, 6}));
         EXPECT_EQ(shard_of(plan.table, 2).joining, (std::vector<MachineId>{10}));
         EXPECT_EQ(state_of(plan.table, 10), MachineState::kJoining);
       }},
      {"rule 1: no spare, an extra of another shard is reclaimed",
       [] {
         PlannerInput input = cluster(3, 3);
         input.table = plan_ok(input).table;  // 10 spare, extras 11 (shard 1), 12 (shard 2)
         kill(input, 7);                      // shard 3 has no extra
         kill(input, 8);
         return input;
       },
       {"machine 10 joins shard 3 as joining (replaces 7)",
        "machine 11 joins shard 3 as joining (replaces 8)", "shard 3 leader 7 -> 9",
        "machine 12 is an idle spare"}},
      {"rule 1: nothing available -> the dead replica is removed, shard below RF",
       [] {
         PlannerInput input = cluster(2);
         kill(input, 2);
         return input;
       },
       {"remove machine 2 from shard 1"},
       [](const Plan& plan) {
         EXPECT_EQ(shard_of(plan.table, 1).replicas, (std::vector<MachineId>{1, 3}));
       }},
      {"a machine arriving later fills the empty seat",
       [] {
         PlannerInput input = cluster(2);
         kill(input, 2);
         input.table = plan_ok(input).table;
         input.machines.push_back(machine(7));
         return input;
       },
       {"machine 7 joins shard 1 as joining (fills an empty seat)"}},
      {"failures during an addition: replacements first, then the spare, then extras",
       [] {
         PlannerInput input = cluster(3, 3);
         kill(input, 1);  // shard 1's leader, lease expired
         return input;
       },
       {"machine 10 joins shard 1 as joining (replaces 1)", "shard 1 leader 1 -> 2",
        "machine 11 is an idle spare", "machine 12 becomes an extra replica of shard 1"}},
      {"a dead joining replica is replaced too",
       [] {
         PlannerInput input = with_spare(2);
         kill(input, 1);
         input.table = plan_ok(input).table;  // 7 joining in shard 1
         kill(input, 7);
         input.machines.push_back(machine(8));
         return input;
       },
       {"machine 8 joins shard 1 as joining (replaces 7)"}},
      {"a dead leader keeps its seat until its lease expired",
       [] {
         PlannerInput input = with_spare(2);
         kill(input, 1, /*lease_expired=*/false);
         return input;
       },
       {}},
      {"a down leader with an expired lease hands over, and stays a voting replica",
       [] {
         PlannerInput input = cluster(2);
         info_of(input, 4).health = Health::kDown;
         info_of(input, 4).lease_expired = true;
         info_of(input, 5).health = Health::kDown;
         return input;
       },
       {"shard 2 leader 4 -> 6"},
       [](const Plan& plan) {
         EXPECT_EQ(shard_of(plan.table, 2).replicas, (std::vector<MachineId>{4, 5, 6}));
       }},
      {"a down leader whose lease runs keeps leading",
       [] {
         PlannerInput input = cluster(2);
         info_of(input, 4).health = Health::kDown;
         return input;
       },
       {}},
      {"no up voting replica: the shard is left without a leader",
       [] {
         PlannerInput input = cluster(1);
         info_of(input, 2).health = Health::kDown;
         info_of(input, 3).health = Health::kDown;
         kill(input, 1);
         return input;
       },
       {"remove machine 1 from shard 1", "shard 1 leader 1 -> 0"},
       [](const Plan& plan) {
         EXPECT_EQ(shard_of(plan.table, 1).leader, topology::kNoMachine);
       }},
      {"rule 2: the spare target follows 1.5 x average down",
       [] {
         PlannerInput input = cluster(2, 4);
         input.average_down = 1.4;  // ceil(2.1) = 3
         return input;
       },
       {"machine 7 is an idle spare", "machine 8 is an idle spare", "machine 9 is an idle spare",
        "machine 10 becomes an extra replica of shard 1"},
       [](const Plan& plan) { EXPECT_EQ(plan.spares_target, 3u); }},
      {"rule 2: extras are reclaimed to restore the spares",
       [] {
         PlannerInput input = cluster(3, 3);
         input.table = plan_ok(input).table;
         input.average_down = 2;  // 3 spares wanted
         return input;
       },
       {"machine 11 is an idle spare", "machine 12 is an idle spare"}},
      {"rule 4: extras are capped per shard; the rest stay spares",
       [] {
         PlannerInput input = cluster(1, 3);
         return input;
       },
       {"machine 4 is an idle spare", "machine 5 becomes an extra replica of shard 1",
        "machine 6 is an idle spare"}},
      {"rule 4: extras go to shards owning ranges only",
       [] {
         PlannerInput input = with_spare(3);
         for (MachineId id = 11; id <= 14; ++id) input.machines.push_back(machine(id));
         return input;
       },
       {"create shard 4 from machines 11, 12, 13 (joining)",
        "machine 14 becomes an extra replica of shard 1"}},
      {"a dead spare is forgotten and replaced",
       [] {
         PlannerInput input = with_spare(2);
         kill(input, 7);
         input.machines.push_back(machine(8));
         return input;
       },
       {"machine 8 is an idle spare", "forget machine 7"}},
      {"a returning dead machine is a free machine again",
       [] {
         PlannerInput input = with_spare(2);
         kill(input, 2);
         input.table = plan_ok(input).table;
         info_of(input, 2).health = Health::kUp;
         return input;
       },
       {"machine 2 is an idle spare"}},
      {"draining: the extra is released, the voter replaced, the spare released",
       [] {
         PlannerInput input = cluster(2, 2);
         input.table = plan_ok(input).table;  // 7 spare, 8 extra of shard 1
         info_of(input, 8).draining = true;
         info_of(input, 7).draining = true;
         info_of(input, 5).draining = true;
         input.machines.push_back(machine(9));
         input.machines.push_back(machine(10));
         return input;
       },
       {"remove machine 8 from shard 1", "machine 9 joins shard 2 as joining (replaces 5)",
        "machine 10 is an idle spare", "drained machine 5 holds no role",
        "drained machine 7 holds no role", "drained machine 8 holds no role"},
       [](const Plan& plan) {
         EXPECT_EQ(state_of(plan.table, 5), MachineState::kLeaving);
         EXPECT_EQ(state_of(plan.table, 8), MachineState::kLeaving);
       }},
      {"a forgotten (removed) machine leaves its shard",
       [] {
         PlannerInput input = with_spare(2);
         std::erase_if(input.machines, [](const MachineInfo& m) { return m.id == 6; });
         return input;
       },
       {"machine 7 joins shard 2 as joining (replaces 6)"}},
      {"down machines get no new role",
       [] {
         PlannerInput input = cluster(2, 2);
         info_of(input, 7).health = Health::kDown;
         return input;
       },
       {"machine 8 is an idle spare"},
       [](const Plan& plan) { EXPECT_FALSE(listed(plan.table, 7)); }},
      {"a new machine reusing a listed address waits",
       [] {
         PlannerInput input = cluster(2, 1);
         MachineInfo twin = machine(9);
         twin.address = input.table.machines[0].address;
         input.machines.push_back(twin);
         return input;
       },
       {"machine 7 is an idle spare"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const PlannerInput input = c.setup();
    const Plan plan = plan_ok(input);
    EXPECT_EQ(described(plan), c.actions);
    c.more(plan);
  }
}

TEST(Planner, SparesTarget) {
  EXPECT_EQ(spares_target(0, 1), 1u);
  EXPECT_EQ(spares_target(0, 0), 0u);
  EXPECT_EQ(spares_target(2.0 / 3.0, 0), 1u);  // 1.5 × 2/3 is 1, not 2 after rounding
  EXPECT_EQ(spares_target(0.1, 0), 1u);
  EXPECT_EQ(spares_target(2, 1), 3u);
  EXPECT_EQ(spares_target(1.4, 5), 5u);
  EXPECT_EQ(spares_target(-3, 1), 1u);
  EXPECT_EQ(spares_target(1e300, 1), topology::kMachinesMax);
}

TEST(Planner, Bootstrap) {
  std::vector<MachineInfo> infos = machines(8);
  infos[1].health = Health::kDown;  // skipped
  infos[7].internal_address = "127.0.0.1:17008";
  Result<RoutingTableSpec> table = bootstrap(infos, 2, 3, 4);
  ASSERT_TRUE(table.is_ok()) << table.status().to_string();
  EXPECT_EQ(table->epoch, 1u);
  EXPECT_EQ(table->ranges.size(), 8u);
  EXPECT_EQ(shard_of(*table, 1).replicas, (std::vector<MachineId>{1, 3, 4}));
  EXPECT_EQ(shard_of(*table, 2).replicas, (std::vector<MachineId>{5, 6, 7}));
  EXPECT_EQ(state_of(*table, 8), MachineState::kSpare);
  EXPECT_EQ(table->machines.back().internal_address, "127.0.0.1:17008");
  EXPECT_FALSE(bootstrap(machines(5), 2, 3, 4).is_ok());
}

TEST(Planner, EmptyTableIsTheBootstrapsJob) {
  PlannerInput input;
  input.machines = machines(3);
  Result<Plan> result = plan(input);
  ASSERT_TRUE(result.is_ok());
  EXPECT_FALSE(result->changed());
}

TEST(Planner, RejectsBadInput) {
  PlannerInput input = cluster(1);
  input.machines.push_back(machine(1));
  EXPECT_EQ(plan(input).status().code(), StatusCode::kInvalidArgument);
  input = cluster(1);
  input.table.shards[0].replicas.push_back(42);
  EXPECT_EQ(plan(input).status().code(), StatusCode::kInvalidArgument);
}

TEST(Planner, CheckInvariantsNamesViolations) {
  PlannerInput input = with_spare(2);
  kill(input, 2);
  const Plan good = plan_ok(input);
  struct Tamper {
    std::string message;
    std::function<void(Plan&)> edit;
  };
  const std::vector<Tamper> tampers = {
      {"still in shard",
       [](Plan& p) {
         p.table.shards[0].joining = {2};
         p.table.machines.push_back(
             topology::Machine{2, "127.0.0.1:7002", "127.0.0.1:7002", MachineState::kJoining});
       }},
      {"holds roles in shards", [](Plan& p) { p.table.shards[1].extras = {1}; }},
      {"while a spare was available",
       [](Plan& p) {
         p.table.shards[0].joining.clear();
         p.table.machines.back().state = MachineState::kSpare;
       }},
      {"epoch", [](Plan& p) { ++p.table.epoch; }},
      {"moved ranges", [](Plan& p) { p.table.ranges[0].shard = 2; }},
      {"before its lease expired",
       [&](Plan& p) {
         p.table.shards[1].leader = 5;
       }},
  };
  for (const Tamper& t : tampers) {
    SCOPED_TRACE(t.message);
    Plan bad = good;
    t.edit(bad);
    const Status status = check_invariants(input, bad);
    EXPECT_FALSE(status.is_ok());
    EXPECT_NE(status.message().find(t.message), std::string::npos) << status.message();
  }
}

TEST(Planner, ActionsDescribeThemselves) {
  EXPECT_EQ((Action{ActionKind::kReleaseDrained, 4, 0, 0, {}}).describe(),
            "drained machine 4 holds no role");
  EXPECT_EQ((Action{ActionKind::kChangeLeader, 5, 4, 2, {}}).describe(), "shard 2 leader 4 -> 5");
}

}  // namespace
}  // namespace cairn::orchestrator
