// A seeded simulation of the orchestrator's decision loop in one process: a simulated clock, no
// sockets. Machines arrive, crash, come back, drain, get forgotten and change load over simulated
// days; a failure detector turns missing heartbeats into down/dead and expired leases, a history
// gives the average number of machines down, and the planner runs after every step. After every
// step: the planner's invariants, the fixpoint property, and the spare rule. Joining replicas are
// promoted to voting after a while, standing in for the rebuild that copies their data.
//
// A failing seed is printed; CAIRN_SIM_SEED=<seed> replays exactly that seed alone.

#include <gtest/gtest.h>

#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "orchestrator/planner.h"

namespace cairn::orchestrator {
namespace {

using topology::MachineId;
using topology::RoutingTableSpec;

constexpr uint64_t kDownAfterMs = 1500;
constexpr uint64_t kDeadAfterMs = 5000;
constexpr uint64_t kLeaseMs = 2000 + 500;  // lease + margin
constexpr uint64_t kJoinMs = 60'000;      // how long "streaming the data" takes here
constexpr size_t kMachinesMax = 60;
constexpr size_t kHistoryMax = 1000;

struct SimMachine {
  MachineId id = 0;
  bool alive = true;
  bool draining = false;
  uint64_t last_heartbeat_ms = 0;
  uint64_t drain_started_ms = 0;
  double load = 0;
};

class Simulation {
 public:
  explicit Simulation(uint64_t seed) : rng_(seed) {
    settings_.replication_factor = 3;
    settings_.min_spares = 1 + rng_() % 2;
    settings_.extras_per_shard_max = 1 + rng_() % 2;
    for (int i = 0; i < 7; ++i) arrive();
  }

  // Runs `steps` steps; returns the first problem, or nothing.
  std::optional<std::string> run(int steps) {
    for (step_ = 0; step_ < steps; ++step_) {
      advance();
      event();
      for (SimMachine& m : machines_) {
        if (m.alive) m.last_heartbeat_ms = now_ms_;
      }
      sample_history();
      if (table_.shards.empty()) {
        if (std::optional<std::string> problem = try_bootstrap(); problem) return problem;
        continue;
      }
      complete_joins();
      if (std::optional<std::string> problem = plan_step(); problem) return problem;
    }
    return std::nullopt;
  }

  uint64_t now_ms() const { return now_ms_; }
  const std::map<ActionKind, size_t>& action_counts() const { return action_counts_; }
  uint64_t epoch() const { return table_.epoch; }

 private:
  std::string where() const {
    return "step " + std::to_string(step_) + " at " + std::to_string(now_ms_) + " ms: ";
  }

  void advance() {
    const uint64_t roll = rng_() % 10;
    if (roll == 0) {
      now_ms_ += 60'000 + rng_() % (30 * 60'000);  // a quiet while
    } else {
      now_ms_ += 100 + rng_() % 8'000;  // often inside the detector's windows
    }
  }

  void arrive() {
    if (machines_.size() >= kMachinesMax) return;
    SimMachine m;
    m.id = next_id_++;
    m.last_heartbeat_ms = now_ms_;
    m.load = static_cast<double>(rng_() % 1000);
    machines_.push_back(m);
  }

  SimMachine* pick(bool alive) {
    std::vector<SimMachine*> candidates;
    for (SimMachine& m : machines_) {
      if (m.alive == alive) candidates.push_back(&m);
    }
    return candidates.empty() ? nullptr : candidates[rng_() % candidates.size()];
  }

  void event() {
    const uint64_t roll = rng_() % 100;
    if (roll < 14) {
      arrive();
    } else if (roll < 34) {
      if (SimMachine* m = pick(true)) m->alive = false;  // crash (kill -9)
    } else if (roll < 50) {
      if (SimMachine* m = pick(false)) m->alive = true;  // comes back, same id
    } else if (roll < 70) {
      if (SimMachine* m = pick(true)) m->load = static_cast<double>(rng_() % 5000);
    } else if (roll < 72) {
      if (SimMachine* m = pick(true); m != nullptr && !m->draining) {
        m->draining = true;
        m->drain_started_ms = now_ms_;
      }
    } else if (roll < 78) {
      // `cairn admin remove` of a dead or drained machine.
      for (size_t i = 0; i < machines_.size(); ++i) {
        const SimMachine& m = machines_[i];
        const bool dead = !m.alive && now_ms_ - m.last_heartbeat_ms >= kDeadAfterMs;
        const bool drained = m.draining && now_ms_ - m.drain_started_ms >= kLeaseMs;
        if (dead || drained) {
          machines_.erase(machines_.begin() + static_cast<std::ptrdiff_t>(i));
          break;
        }
      }
    }
  }

  Health health(const SimMachine& m) const {
    const uint64_t silent = now_ms_ - m.last_heartbeat_ms;
    if (silent >= kDeadAfterMs) return Health::kDead;
    return silent >= kDownAfterMs ? Health::kDown : Health::kUp;
  }

  std::vector<MachineInfo> infos() const {
    std::vector<MachineInfo> out;
    for (const SimMachine& m : machines_) {
      MachineInfo info;
      info.id = m.id;
      info.address = "10.0.0.1:" + std::to_string(7000 + m.id);
      info.health = health(m);
      info.draining = m.draining;
      info.load = m.load;
      info.lease_expired = now_ms_ - m.last_heartbeat_ms >= kLeaseMs ||
                           (m.draining && now_ms_ - m.drain_started_ms >= kLeaseMs);
      out.push_back(info);
    }
    return out;
  }

  void sample_history() {
    size_t down = 0;
    for (const SimMachine& m : machines_) down += health(m) != Health::kUp ? 1 : 0;
    history_.push_back(down);
    history_sum_ += down;
    if (history_.size() > kHistoryMax) {
      history_sum_ -= history_.front();
      history_.pop_front();
    }
  }

  double average_down() const {
    return history_.empty() ? 0 : static_cast<double>(history_sum_) / history_.size();
  }

  std::optional<std::string> try_bootstrap() {
    const std::vector<MachineInfo> all = infos();
    size_t up = 0;
    for (const MachineInfo& info : all) up += info.health == Health::kUp && !info.draining;
    if (up < 6) return std::nullopt;
    Result<RoutingTableSpec> table = bootstrap(all, 2, 3, 4);
    if (!table.is_ok()) return where() + "bootstrap failed: " + table.status().to_string();
    table_ = *table;
    return std::nullopt;
  }

  // The migration issue's job, simulated: a joining replica that has been up for kJoinMs has
  // its data and becomes a voting replica.
  void complete_joins() {
    bool changed = false;
    for (topology::Shard& shard : table_.shards) {
      for (MachineId id : std::vector<MachineId>(shard.joining)) {
        const auto since = joining_since_.emplace(id, now_ms_).first->second;
        const SimMachine* m = find(id);
        if (m == nullptr || health(*m) != Health::kUp || now_ms_ - since < kJoinMs) continue;
        if (shard.replicas.size() >= table_.replication_factor) continue;
        std::erase(shard.joining, id);
        shard.replicas.push_back(id);
        joining_since_.erase(id);
        for (topology::Machine& machine : table_.machines) {
          if (machine.id == id) machine.state = topology::MachineState::kUp;
        }
        changed = true;
      }
    }
    if (changed) ++table_.epoch;
  }

  const SimMachine* find(MachineId id) const {
    for (const SimMachine& m : machines_) {
      if (m.id == id) return &m;
    }
    return nullptr;
  }

  std::optional<std::string> plan_step() {
    PlannerInput input;
    input.table = table_;
    input.machines = infos();
    input.average_down = average_down();
    input.settings = settings_;
    Result<Plan> result = plan(input);
    if (!result.is_ok()) return where() + "plan failed: " + result.status().to_string();
    if (Status s = check_invariants(input, *result); !s.is_ok()) {
      return where() + "invariant: " + s.message();
    }
    PlannerInput again = input;
    again.table = result->table;
    Result<Plan> second = plan(again);
    if (!second.is_ok()) return where() + "second plan failed: " + second.status().to_string();
    if (second->changed()) {
      return where() + "not a fixpoint: " + second->actions.front().describe();
    }
    if (std::optional<std::string> problem = check_spares(input, *result); problem) {
      return where() + *problem;
    }
    for (const Action& action : result->actions) ++action_counts_[action.kind];
    table_ = result->table;
    return std::nullopt;
  }

  // The spare rule: X = max(min, ceil(1.5 × average down)) idle spares whenever machines allow;
  // fewer only when no extra is left to reclaim; more only when no shard can take an extra and
  // the spares beyond X cannot form a shard.
  std::optional<std::string> check_spares(const PlannerInput& input, const Plan& plan) const {
    const uint32_t target = spares_target(input.average_down, settings_.min_spares);
    if (plan.spares_target != target) return "wrong spares target";
    std::map<MachineId, const MachineInfo*> info;
    for (const MachineInfo& m : input.machines) info[m.id] = &m;
    auto usable = [&](MachineId id) {
      const auto it = info.find(id);
      return it != info.end() && it->second->health == Health::kUp && !it->second->draining;
    };
    size_t spares = 0;
    for (const topology::Machine& m : plan.table.machines) {
      spares += m.state == topology::MachineState::kSpare && usable(m.id) ? 1 : 0;
    }
    size_t extras = 0;
    bool room = false;
    for (const topology::Shard& shard : plan.table.shards) {
      for (MachineId id : shard.extras) extras += usable(id) ? 1 : 0;
      bool ranged = false;
      for (const topology::Range& r : plan.table.ranges) ranged = ranged || r.shard == shard.id;
      room = room || (ranged && shard.extras.size() < settings_.extras_per_shard_max);
    }
    if (spares < target && extras > 0) {
      return std::to_string(spares) + " spares below target " + std::to_string(target) +
             " with extras to reclaim";
    }
    if (spares > target && (room || spares - target + extras >= 3)) {
      return std::to_string(spares) + " spares above target " + std::to_string(target) +
             " while they could be used";
    }
    return std::nullopt;
  }

  std::mt19937_64 rng_;
  PlannerSettings settings_;
  std::vector<SimMachine> machines_;
  MachineId next_id_ = 1;
  uint64_t now_ms_ = 0;
  int step_ = 0;
  std::deque<size_t> history_;
  size_t history_sum_ = 0;
  RoutingTableSpec table_;
  std::map<MachineId, uint64_t> joining_since_;
  std::map<ActionKind, size_t> action_counts_;
};

TEST(Simulation, RandomClustersKeepThePlannerInvariants) {
  constexpr int kSteps = 1500;
  std::vector<uint64_t> seeds;
  if (const char* env = std::getenv("CAIRN_SIM_SEED"); env != nullptr && *env != '\0') {
    seeds.push_back(std::strtoull(env, nullptr, 10));
  } else {
    for (uint64_t seed = 1; seed <= 20; ++seed) seeds.push_back(seed);
  }
  uint64_t simulated_ms = 0;
  std::map<ActionKind, size_t> counts;
  for (uint64_t seed : seeds) {
    Simulation sim(seed);
    if (std::optional<std::string> problem = sim.run(kSteps); problem) {
      ADD_FAILURE() << "seed " << seed << ": " << *problem
                    << "\nreplay with CAIRN_SIM_SEED=" << seed;
      continue;
    }
    simulated_ms += sim.now_ms();
    for (const auto& [kind, count] : sim.action_counts()) counts[kind] += count;
    EXPECT_GT(sim.epoch(), 1u) << "seed " << seed << " never changed the table";
  }
  // Sanity: the runs cover simulated days, not minutes.
  EXPECT_GT(simulated_ms, uint64_t{24} * 3600 * 1000 * seeds.size());
  if (seeds.size() > 1) {
    // Every rule of the protocol was exercised.
    for (ActionKind kind : {ActionKind::kPromoteExtra, ActionKind::kReplaceWithSpare,
                            ActionKind::kRemoveDead, ActionKind::kKeepSpare,
                            ActionKind::kCreateShard, ActionKind::kAddExtra,
                            ActionKind::kReleaseDrained, ActionKind::kChangeLeader}) {
      EXPECT_GT(counts[kind], 0u) << "action kind " << static_cast<int>(kind) << " never planned";
    }
  }
}

}  // namespace
}  // namespace cairn::orchestrator
