#include "orchestrator/planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace cairn::orchestrator {
namespace {

using topology::Machine;
using topology::MachineId;
using topology::MachineState;
using topology::RoutingTableSpec;
using topology::Shard;
using topology::ShardId;

using Infos = std::unordered_map<MachineId, const MachineInfo*>;

const MachineInfo* find_info(const Infos& infos, MachineId id) {
  const auto it = infos.find(id);
  return it == infos.end() ? nullptr : it->second;
}

// May be given a new role.
bool usable(const MachineInfo* info) {
  return info != nullptr && info->health == Health::kUp && !info->draining;
}

// Loses every role: dead, drained, or forgotten by the orchestrator.
bool gone(const MachineInfo* info) {
  return info == nullptr || info->health == Health::kDead || info->draining;
}

// A forgotten machine has no lease the orchestrator could still be waiting for.
bool lease_over(const MachineInfo* info) { return info == nullptr || info->lease_expired; }

bool contains(const std::vector<MachineId>& ids, MachineId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

void erase_id(std::vector<MachineId>& ids, MachineId id) {
  ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
}

Result<Infos> index_infos(const std::vector<MachineInfo>& machines) {
  if (machines.size() > topology::kMachinesMax) {
    return Status::invalid_argument(fmt::format("{} machines, at most {} allowed",
                                                machines.size(), topology::kMachinesMax));
  }
  Infos infos;
  for (const MachineInfo& info : machines) {
    if (info.id == topology::kNoMachine) {
      return Status::invalid_argument("machine id 0 is reserved");
    }
    if (!infos.emplace(info.id, &info).second) {
      return Status::invalid_argument(fmt::format("machine {} is listed twice", info.id));
    }
  }
  return infos;
}

// The load of a shard for "busiest": what its voting replicas report.
double shard_load(const Shard& shard, const Infos& infos) {
  double load = 0;
  for (MachineId id : shard.replicas) {
    if (const MachineInfo* info = find_info(infos, id); info != nullptr) load += info->load;
  }
  return load;
}

// The machine ids holding a role in some shard.
std::unordered_set<MachineId> members_of(const RoutingTableSpec& table) {
  std::unordered_set<MachineId> members;
  for (const Shard& shard : table.shards) {
    members.insert(shard.replicas.begin(), shard.replicas.end());
    members.insert(shard.extras.begin(), shard.extras.end());
    members.insert(shard.joining.begin(), shard.joining.end());
  }
  return members;
}

Machine to_machine(const MachineInfo& info) {
  return Machine{info.id, info.address,
                 info.internal_address.empty() ? info.address : info.internal_address,
                 MachineState::kUp};
}

// Builds one plan; the working state of plan().
class Planner {
 public:
  Planner(const PlannerInput& input, const Infos& infos) : in_(input), infos_(infos) {
    table_ = input.table;
    rf_ = table_.replication_factor;
    for (const Machine& machine : table_.machines) {
      input_state_.emplace(machine.id, machine.state);
    }
    input_members_ = members_of(input.table);
    for (const topology::Range& range : table_.ranges) ranged_.insert(range.shard);
  }

  Result<Plan> run() {
    remove_gone_members();
    collect_free_machines();
    fill_deficits();
    fix_leaders();
    const uint32_t target = spares_target(in_.average_down, in_.settings.min_spares);
    keep_spares(target);
    create_shards();
    add_extras();
    for (MachineId id : free_) become_spare(id);  // more than X: no shard could take an extra
    rebuild_machines();

    Plan plan;
    plan.spares_target = target;
    if (actions_.empty()) {
      plan.table = in_.table;
      return plan;
    }
    std::sort(table_.shards.begin(), table_.shards.end(),
              [](const Shard& a, const Shard& b) { return a.id < b.id; });
    std::sort(table_.machines.begin(), table_.machines.end(),
              [](const Machine& a, const Machine& b) { return a.id < b.id; });
    table_.epoch = in_.table.epoch + 1;
    plan.actions = std::move(actions_);
    plan.table = std::move(table_);
    if (Status s = topology::validate(plan.table); !s.is_ok()) {
      return Status::internal("planner produced an invalid table: " + s.message());
    }
    if (Status s = check_invariants(in_, plan); !s.is_ok()) {
      return Status::internal("planner broke an invariant: " + s.message());
    }
    return plan;
  }

 private:
  void act(ActionKind kind, MachineId machine, MachineId replaced, ShardId shard,
           std::vector<MachineId> machines = {}) {
    actions_.push_back(Action{kind, machine, replaced, shard, std::move(machines)});
  }

  // Rule 1, first half: gone machines leave their shards. A gone leader whose lease may still be
  // running keeps its seat: naming another leader now could give the shard two leaders.
  void remove_gone_members() {
    for (Shard& shard : table_.shards) {
      for (MachineId id : std::vector<MachineId>(shard.replicas)) {
        const MachineInfo* info = find_info(infos_, id);
        if (!gone(info)) continue;
        if (id == shard.leader && !lease_over(info)) {
          deferred_.insert(id);
          continue;
        }
        erase_id(shard.replicas, id);
        removed_[shard.id].push_back(id);
        if (id == shard.leader) {
          shard.leader = topology::kNoMachine;
          shard.lease_expiry_ms = 0;
        }
      }
      for (MachineId id : std::vector<MachineId>(shard.joining)) {
        if (!gone(find_info(infos_, id))) continue;
        erase_id(shard.joining, id);
        removed_[shard.id].push_back(id);
      }
      for (MachineId id : std::vector<MachineId>(shard.extras)) {
        if (!gone(find_info(infos_, id))) continue;
        erase_id(shard.extras, id);
        act(ActionKind::kRemoveDead, id, 0, shard.id);
      }
    }
  }

  // Up machines with no role, idle spares first (so a plan moves as few machines as possible),
  // then by id. New machines whose address is taken by a machine staying in the table wait.
  void collect_free_machines() {
    const std::unordered_set<MachineId> members = members_of(table_);
    std::unordered_set<std::string> addresses;
    for (const Machine& machine : table_.machines) {
      const MachineInfo* info = find_info(infos_, machine.id);
      const bool dropped = (info == nullptr || info->health == Health::kDead) &&
                           deferred_.count(machine.id) == 0;
      if (dropped) continue;
      addresses.insert(machine.address);
      addresses.insert(machine.internal_address);
    }
    std::vector<MachineId> spares;
    std::vector<MachineId> others;
    for (const MachineInfo& info : in_.machines) {
      if (!usable(&info) || members.count(info.id) != 0) continue;
      const auto state = input_state_.find(info.id);
      if (state == input_state_.end()) {
        const Machine machine = to_machine(info);
        if (addresses.count(machine.address) != 0 ||
            addresses.count(machine.internal_address) != 0) {
          continue;
        }
        addresses.insert(machine.address);
        addresses.insert(machine.internal_address);
        others.push_back(info.id);
      } else if (state->second == MachineState::kSpare) {
        spares.push_back(info.id);
      } else {
        others.push_back(info.id);
      }
    }
    std::sort(spares.begin(), spares.end());
    std::sort(others.begin(), others.end());
    free_ = std::move(spares);
    free_.insert(free_.end(), others.begin(), others.end());
  }

  size_t deficit(const Shard& shard) const {
    const size_t members = shard.replicas.size() + shard.joining.size();
    return members >= rf_ ? 0 : rf_ - members;
  }

  // The next removed machine a replacement in `shard` stands for (0: the seat was empty).
  MachineId next_replaced(ShardId shard) {
    std::vector<MachineId>& removed = removed_[shard];
    size_t& used = replaced_used_[shard];
    return used < removed.size() ? removed[used++] : topology::kNoMachine;
  }

  // An up extra of a shard other than `except`, from the least loaded shard (its extras matter
  // least), or 0. The extra leaves that shard.
  MachineId reclaim_extra(ShardId except) {
    Shard* best = nullptr;
    double best_load = 0;
    MachineId best_id = topology::kNoMachine;
    for (Shard& shard : table_.shards) {
      if (shard.id == except) continue;
      MachineId candidate = topology::kNoMachine;
      for (auto it = shard.extras.rbegin(); it != shard.extras.rend(); ++it) {
        if (usable(find_info(infos_, *it))) {
          candidate = *it;
          break;
        }
      }
      if (candidate == topology::kNoMachine) continue;
      const double load = shard_load(shard, infos_);
      if (best == nullptr || load < best_load) {
        best = &shard;
        best_load = load;
        best_id = candidate;
      }
    }
    if (best != nullptr) erase_id(best->extras, best_id);
    return best_id;
  }

  // Rule 1, second half. Three passes so that a shard's own extra is never reclaimed by another
  // shard while its own shard still needs it: own extras, then free machines, then extras of
  // other shards. All of them join and do not vote yet: an extra received the writes made since
  // it became one, not what the shard held before, so it too is rebuilt (server/rebuilder.h)
  // before it votes — mostly LWW no-ops for an extra, but a quorum never counts a member that
  // may lack an acknowledged write.
  // Shards owning ranges and with the fewest members go first when machines run short.
  void fill_deficits() {
    std::vector<Shard*> order;
    for (Shard& shard : table_.shards) order.push_back(&shard);
    std::stable_sort(order.begin(), order.end(), [&](const Shard* a, const Shard* b) {
      const bool a_ranges = ranged_.count(a->id) != 0;
      const bool b_ranges = ranged_.count(b->id) != 0;
      if (a_ranges != b_ranges) return a_ranges;
      return a->replicas.size() + a->joining.size() < b->replicas.size() + b->joining.size();
    });
    for (Shard* shard : order) {
      for (MachineId id : std::vector<MachineId>(shard->extras)) {
        if (deficit(*shard) == 0) break;
        if (!usable(find_info(infos_, id))) continue;
        erase_id(shard->extras, id);
        shard->joining.push_back(id);
        act(ActionKind::kPromoteExtra, id, next_replaced(shard->id), shard->id);
      }
    }
    for (Shard* shard : order) {
      while (deficit(*shard) > 0 && !free_.empty()) {
        const MachineId id = free_.front();
        free_.erase(free_.begin());
        shard->joining.push_back(id);
        act(ActionKind::kReplaceWithSpare, id, next_replaced(shard->id), shard->id);
      }
    }
    for (Shard* shard : order) {
      while (deficit(*shard) > 0) {
        const MachineId id = reclaim_extra(shard->id);
        if (id == topology::kNoMachine) break;
        shard->joining.push_back(id);
        act(ActionKind::kReplaceWithSpare, id, next_replaced(shard->id), shard->id);
      }
    }
    for (Shard* shard : order) {
      for (MachineId replaced = next_replaced(shard->id); replaced != topology::kNoMachine;
           replaced = next_replaced(shard->id)) {
        act(ActionKind::kRemoveDead, replaced, 0, shard->id);
      }
    }
  }

  // A shard needs a leader when it has none, or when its leader is not up and can no longer be
  // acting (lease expired). The first up voting replica takes over.
  void fix_leaders() {
    for (Shard& shard : table_.shards) {
      const Shard* before = find_input_shard(shard.id);
      const MachineId old = before == nullptr ? topology::kNoMachine : before->leader;
      const MachineId current = shard.leader;
      bool needed = current == topology::kNoMachine;
      if (!needed) {
        const MachineInfo* info = find_info(infos_, current);
        needed = (info == nullptr || info->health != Health::kUp) && lease_over(info);
      }
      if (needed) {
        for (MachineId id : shard.replicas) {
          if (id != current && usable(find_info(infos_, id))) {
            shard.leader = id;
            shard.lease_expiry_ms = 0;
            break;
          }
        }
      }
      if (shard.leader != old) act(ActionKind::kChangeLeader, shard.leader, old, shard.id);
    }
  }

  const Shard* find_input_shard(ShardId id) const {
    for (const Shard& shard : in_.table.shards) {
      if (shard.id == id) return &shard;
    }
    return nullptr;
  }

  // Records that `id` is an idle spare in the new table; an action only if it was not one.
  void become_spare(MachineId id) {
    const auto state = input_state_.find(id);
    const bool was_spare = state != input_state_.end() &&
                           state->second == MachineState::kSpare && input_members_.count(id) == 0;
    if (!was_spare) act(ActionKind::kKeepSpare, id, 0, topology::kNoShard);
    spares_.push_back(id);
  }

  // Rule 2: X idle spares, taking extras back if the free machines do not reach X.
  void keep_spares(uint32_t target) {
    while (spares_.size() < target && !free_.empty()) {
      const MachineId id = free_.front();
      free_.erase(free_.begin());
      become_spare(id);
    }
    while (spares_.size() < target) {
      const MachineId id = reclaim_extra(topology::kNoShard);
      if (id == topology::kNoMachine) break;
      become_spare(id);
    }
  }

  size_t usable_extras() const {
    size_t count = 0;
    for (const Shard& shard : table_.shards) {
      for (MachineId id : shard.extras) count += usable(find_info(infos_, id)) ? 1 : 0;
    }
    return count;
  }

  // Rule 3: RF free machines (free ones first, then reclaimed extras) make a new shard. Its
  // members join; it owns no range until a migration gives it some.
  void create_shards() {
    ShardId next = 0;
    for (const Shard& shard : table_.shards) next = std::max(next, shard.id);
    while (rf_ > 0 && free_.size() + usable_extras() >= rf_ &&
           table_.shards.size() < topology::kShardsMax) {
      Shard shard;
      shard.id = ++next;
      while (shard.joining.size() < rf_ && !free_.empty()) {
        shard.joining.push_back(free_.front());
        free_.erase(free_.begin());
      }
      while (shard.joining.size() < rf_) {
        const MachineId id = reclaim_extra(topology::kNoShard);
        CAIRN_ASSERT(id != topology::kNoMachine, "usable extras were counted");
        shard.joining.push_back(id);
      }
      act(ActionKind::kCreateShard, 0, 0, shard.id, shard.joining);
      table_.shards.push_back(std::move(shard));
    }
  }

  // Rule 4: leftovers become extras of the busiest shards owning a range, one per shard per
  // round so that extras spread before any shard gets a second one.
  void add_extras() {
    std::vector<Shard*> order;
    for (Shard& shard : table_.shards) {
      if (ranged_.count(shard.id) != 0) order.push_back(&shard);
    }
    std::stable_sort(order.begin(), order.end(), [&](const Shard* a, const Shard* b) {
      const double la = shard_load(*a, infos_);
      const double lb = shard_load(*b, infos_);
      return la != lb ? la > lb : a->id < b->id;
    });
    const uint32_t max = in_.settings.extras_per_shard_max;
    for (uint32_t round = 0; round < max && !free_.empty(); ++round) {
      for (Shard* shard : order) {
        if (free_.empty()) break;
        if (shard->extras.size() > round || shard->extras.size() >= max) continue;
        const MachineId id = free_.front();
        free_.erase(free_.begin());
        shard->extras.push_back(id);
        act(ActionKind::kAddExtra, id, 0, shard->id);
      }
    }
  }

  // The machine list of the new table: states follow roles; dead and forgotten machines go.
  void rebuild_machines() {
    const std::unordered_set<MachineId> members = members_of(table_);
    const std::unordered_set<MachineId> spares(spares_.begin(), spares_.end());
    auto state_of = [&](MachineId id, const MachineInfo* info) {
      if (deferred_.count(id) != 0) {
        return info != nullptr && info->draining ? MachineState::kLeaving : MachineState::kDead;
      }
      if (info != nullptr && info->draining) return MachineState::kLeaving;
      if (spares.count(id) != 0) return MachineState::kSpare;
      for (const Shard& shard : table_.shards) {
        if (contains(shard.joining, id)) return MachineState::kJoining;
        if (contains(shard.replicas, id) || contains(shard.extras, id)) return MachineState::kUp;
      }
      // No role and not usable (down): an idle machine, not counted as one of the X spares.
      return MachineState::kSpare;
    };
    std::vector<Machine> machines;
    std::unordered_set<MachineId> listed;
    for (const Machine& machine : table_.machines) {
      const MachineInfo* info = find_info(infos_, machine.id);
      const bool dropped = (info == nullptr || info->health == Health::kDead) &&
                           deferred_.count(machine.id) == 0;
      if (dropped) {
        // A machine with a role got its action when it left its shard.
        if (input_members_.count(machine.id) == 0) {
          act(ActionKind::kRemoveDead, machine.id, 0, topology::kNoShard);
        }
        continue;
      }
      Machine kept = machine;
      kept.state = state_of(machine.id, info);
      if (info != nullptr && info->draining && members.count(machine.id) == 0 &&
          (machine.state != MachineState::kLeaving || input_members_.count(machine.id) != 0)) {
        act(ActionKind::kReleaseDrained, machine.id, 0, topology::kNoShard);
      }
      listed.insert(machine.id);
      machines.push_back(std::move(kept));
    }
    for (const MachineInfo& info : in_.machines) {
      if (listed.count(info.id) != 0) continue;
      if (members.count(info.id) == 0 && spares.count(info.id) == 0) continue;  // no role yet
      Machine machine = to_machine(info);
      machine.state = state_of(info.id, &info);
      machines.push_back(std::move(machine));
    }
    table_.machines = std::move(machines);
  }

  const PlannerInput& in_;
  const Infos& infos_;
  RoutingTableSpec table_;
  uint32_t rf_ = 0;
  std::unordered_map<MachineId, MachineState> input_state_;
  std::unordered_set<MachineId> input_members_;
  std::unordered_set<ShardId> ranged_;  // shards owning at least one range
  std::unordered_set<MachineId> deferred_;  // gone leaders waiting for their lease
  std::map<ShardId, std::vector<MachineId>> removed_;
  std::map<ShardId, size_t> replaced_used_;
  std::vector<MachineId> free_;
  std::vector<MachineId> spares_;
  std::vector<Action> actions_;
};

std::string join_ids(const std::vector<MachineId>& ids) {
  std::string out;
  for (MachineId id : ids) out += (out.empty() ? "" : ", ") + std::to_string(id);
  return out;
}

std::string replaces(MachineId replaced) {
  return replaced == topology::kNoMachine ? "fills an empty seat"
                                          : fmt::format("replaces {}", replaced);
}

}  // namespace

std::string Action::describe() const {
  switch (kind) {
    case ActionKind::kPromoteExtra:
      return fmt::format("extra {} joins shard {} as joining, to vote once rebuilt ({})", machine,
                         shard, replaces(replaced));
    case ActionKind::kReplaceWithSpare:
      return fmt::format("machine {} joins shard {} as joining ({})", machine, shard,
                         replaces(replaced));
    case ActionKind::kRemoveDead:
      if (shard == topology::kNoShard) return fmt::format("forget machine {}", machine);
      return fmt::format("remove machine {} from shard {}", machine, shard);
    case ActionKind::kKeepSpare:
      return fmt::format("machine {} is an idle spare", machine);
    case ActionKind::kCreateShard:
      return fmt::format("create shard {} from machines {} (joining)", shard, join_ids(machines));
    case ActionKind::kAddExtra:
      return fmt::format("machine {} becomes an extra replica of shard {}", machine, shard);
    case ActionKind::kReleaseDrained:
      return fmt::format("drained machine {} holds no role", machine);
    case ActionKind::kChangeLeader:
      return fmt::format("shard {} leader {} -> {}", shard, replaced, machine);
  }
  return "unknown action";
}

uint32_t spares_target(double average_down, uint32_t min_spares) {
  double wanted = 0;
  // The epsilon keeps 1.5 × (2/3) at 1 rather than 2 after rounding error.
  if (std::isfinite(average_down) && average_down > 0) {
    wanted = std::ceil(1.5 * average_down - 1e-9);
  }
  wanted = std::min(wanted, static_cast<double>(topology::kMachinesMax));
  return std::max(min_spares, static_cast<uint32_t>(wanted));
}

Result<topology::RoutingTableSpec> bootstrap(const std::vector<MachineInfo>& machines,
                                             uint32_t shards, uint32_t replication_factor,
                                             uint32_t ranges_per_shard) {
  std::vector<Machine> listed;
  for (const MachineInfo& info : machines) {
    if (usable(&info)) listed.push_back(to_machine(info));
  }
  Result<topology::RoutingTable> table = topology::RoutingTable::make_initial(
      std::move(listed), shards, replication_factor, ranges_per_shard);
  if (!table.is_ok()) return table.status();
  return table->spec();
}

Result<Plan> plan(const PlannerInput& input) {
  Result<Infos> infos = index_infos(input.machines);
  if (!infos.is_ok()) return infos.status();
  if (input.table.shards.empty()) {
    Plan empty;
    empty.table = input.table;
    empty.spares_target = spares_target(input.average_down, input.settings.min_spares);
    return empty;
  }
  if (Status s = topology::validate(input.table); !s.is_ok()) return s;
  return Planner(input, *infos).run();
}

Status check_invariants(const PlannerInput& input, const Plan& plan) {
  const RoutingTableSpec& table = plan.table;
  if (table.shards.empty()) {
    return input.table.shards.empty() ? Status::ok()
                                      : Status::internal("the plan's table has no shard");
  }
  if (Status s = topology::validate(table); !s.is_ok()) return s;
  const uint64_t epoch = input.table.epoch + (plan.changed() ? 1 : 0);
  if (table.epoch != epoch) {
    return Status::internal(fmt::format("epoch {}, expected {}", table.epoch, epoch));
  }
  if (table.ranges != input.table.ranges) return Status::internal("the planner moved ranges");
  Result<Infos> indexed = index_infos(input.machines);
  if (!indexed.is_ok()) return indexed.status();
  const Infos& infos = *indexed;

  std::unordered_map<MachineId, ShardId> role;
  bool extra_available = false;
  for (const Shard& shard : table.shards) {
    const Shard* before = nullptr;
    for (const Shard& old : input.table.shards) {
      if (old.id == shard.id) before = &old;
    }
    for (const auto* members : {&shard.replicas, &shard.extras, &shard.joining}) {
      for (MachineId id : *members) {
        if (const auto [it, fresh] = role.emplace(id, shard.id); !fresh) {
          return Status::internal(fmt::format("machine {} holds roles in shards {} and {}", id,
                                              it->second, shard.id));
        }
        const MachineInfo* info = find_info(infos, id);
        const bool waiting_leader = members == &shard.replicas && id == shard.leader &&
                                    before != nullptr && before->leader == id &&
                                    !lease_over(info);
        if (gone(info) && !waiting_leader) {
          return Status::internal(
              fmt::format("dead, drained or unknown machine {} still in shard {}", id, shard.id));
        }
        if (members == &shard.extras && usable(info)) extra_available = true;
      }
    }
    if (before != nullptr && before->leader != topology::kNoMachine &&
        shard.leader != before->leader && !lease_over(find_info(infos, before->leader))) {
      return Status::internal(fmt::format("shard {} leader moved from {} before its lease expired",
                                          shard.id, before->leader));
    }
  }
  size_t idle_spares = 0;
  for (const Machine& machine : table.machines) {
    if (role.count(machine.id) == 0 && machine.state == MachineState::kSpare &&
        usable(find_info(infos, machine.id))) {
      ++idle_spares;
    }
  }
  for (const Shard& shard : table.shards) {
    if (shard.replicas.size() + shard.joining.size() >= table.replication_factor) continue;
    if (idle_spares > 0 || extra_available) {
      return Status::internal(fmt::format(
          "shard {} has {} voting and {} joining replicas (RF {}) while a {} was available",
          shard.id, shard.replicas.size(), shard.joining.size(), table.replication_factor,
          idle_spares > 0 ? "spare" : "extra replica"));
    }
  }
  if (idle_spares < plan.spares_target && extra_available) {
    return Status::internal(fmt::format("{} idle spares, target {}, while an extra was reclaimable",
                                        idle_spares, plan.spares_target));
  }
  return Status::ok();
}

}  // namespace cairn::orchestrator
