#include "orchestrator/service.h"

#include <algorithm>
#include <cstdlib>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "metrics/text_format.h"
#include "orchestrator/balancer.h"

namespace cairn::orchestrator {

namespace {

using nlohmann::json;
using topology::MachineId;
using topology::MachineState;
using topology::RoutingTableSpec;
using topology::Shard;

class SystemClock final : public Clock {
 public:
  int64_t monotonic_ms() override { return cairn::monotonic_ms(); }
  int64_t wall_ms() override { return cairn::wall_clock_ms(); }
};

bool contains(const std::vector<MachineId>& ids, MachineId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// The first shard where `id` has a role and which role, for the machines view.
std::pair<topology::ShardId, std::string> role_of(const RoutingTableSpec* table, MachineId id) {
  if (table == nullptr) return {topology::kNoShard, "none"};
  for (const auto& shard : table->shards) {
    if (shard.leader == id) return {shard.id, "leader"};
    if (contains(shard.replicas, id)) return {shard.id, "replica"};
    if (contains(shard.extras, id)) return {shard.id, "extra"};
    if (contains(shard.joining, id)) return {shard.id, "joining"};
  }
  return {topology::kNoShard, "none"};
}

bool has_any_role(const RoutingTableSpec* table, MachineId id) {
  return role_of(table, id).first != topology::kNoShard;
}

Status check_address(std::string_view field, std::string_view address) {
  auto colon = address.rfind(':');
  if (address.empty() || address.size() > topology::kAddressBytesMax ||
      colon == std::string_view::npos || colon == 0 || colon + 1 == address.size()) {
    return Status::invalid_argument(fmt::format("{} \"{}\" is not host:port", field, address));
  }
  return Status::ok();
}

json machine_load_json(const Load& load) {
  return json{{"ops_per_sec", load.ops_per_sec},
              {"bytes", load.bytes},
              {"storage_bytes", load.storage_bytes},
              {"p99_us", load.p99_us}};
}

}  // namespace

Clock& system_clock() {
  static SystemClock clock;
  return clock;
}

Status validate_settings(const ServiceSettings& s) {
  if (s.replication_factor == 0 || s.replication_factor > topology::kReplicationFactorMax) {
    return Status::invalid_argument(fmt::format("--rf must be 1..{}",
                                                topology::kReplicationFactorMax));
  }
  if (s.initial_shards == 0 || s.initial_shards > topology::kShardsMax) {
    return Status::invalid_argument("--initial-shards must be at least 1");
  }
  if (s.ranges_per_shard == 0 ||
      uint64_t{s.ranges_per_shard} * s.initial_shards > topology::kRangesMax) {
    return Status::invalid_argument(fmt::format(
        "--ranges-per-shard must be at least 1 and shards x ranges at most {}",
        topology::kRangesMax));
  }
  if (s.down_after_ms <= 0 || s.dead_after_ms < s.down_after_ms) {
    return Status::invalid_argument("need 0 < --down-after-ms <= --dead-after-ms");
  }
  if (s.lease_ms <= 0 || s.heartbeat_interval_ms <= 0 || s.heartbeat_interval_ms >= s.lease_ms) {
    return Status::invalid_argument(
        "need 0 < heartbeat interval < --lease-ms (a leader must renew its lease in time)");
  }
  if (s.self_stall_ms < 0) {
    return Status::invalid_argument("--self-stall-ms must be 0 (off) or more");
  }
  if (s.migration_max_rate == 0) {
    return Status::invalid_argument("--migration-max-rate must be at least 1 byte/s");
  }
  if (std::string hot = validate_hot_settings(s.hot); !hot.empty()) {
    return Status::invalid_argument(hot);
  }
  return Status::ok();
}

Result<std::unique_ptr<Service>> Service::open(ServiceSettings settings, Clock* clock) {
  CAIRN_ASSERT(clock != nullptr, "a service needs a clock");
  Status valid = validate_settings(settings);
  if (!valid.is_ok()) return valid;
  State state;
  if (settings.store) {
    auto loaded = settings.store->load();
    if (loaded.is_ok()) {
      state = std::move(*loaded);
    } else if (loaded.status().code() != StatusCode::kNotFound) {
      return loaded.status();
    }
  } else if (!settings.state_path.empty()) {
    auto loaded = load_state(settings.state_path);
    if (loaded.is_ok()) {
      state = std::move(*loaded);
    } else if (loaded.status().code() != StatusCode::kNotFound) {
      return loaded.status();
    }
  }
  if (state.table && state.table->replication_factor != settings.replication_factor) {
    return Status::invalid_argument(fmt::format(
        "the saved cluster has replication factor {}, --rf says {}",
        state.table->replication_factor, settings.replication_factor));
  }
  // Every machine gets a fresh grace period: the orchestrator was away, not the machines.
  int64_t now = clock->monotonic_ms();
  for (auto& machine : state.machines) {
    machine.last_heartbeat_ms = now + settings.takeover_grace_ms;
    machine.drain_started_ms = now;  // a lease granted before the restart may still run
  }
  // A cutover in progress gets a fresh timeout: its driver may still commit.
  for (auto& migration : state.migrations) migration.cutover_started_ms = now;
  std::unique_ptr<Service> service(new Service(std::move(settings), clock, std::move(state)));
  {
    std::lock_guard lock(service->mu_);
    service->add_event(fmt::format(
        "orchestrator started: epoch {}, {} machines",
        service->state_.table ? service->state_.table->epoch : 0,
        service->state_.machines.size()));
    service->durable_ = service->state_;
    // An orchestrator that cannot write its state must not decide anything: refuse to start.
    if (Status saved = service->persist(true); !saved.is_ok()) {
      if (service->poisoned_) {
        return Status::unavailable(
            "the state store refused the start-up write (not the leader?)");
      }
      return saved;
    }
  }
  return service;
}

std::unique_ptr<Service> Service::view(ServiceSettings settings, Clock* clock, State state) {
  CAIRN_ASSERT(clock != nullptr, "a service needs a clock");
  settings.store.reset();
  settings.state_path.clear();
  const int64_t now = clock->monotonic_ms();
  for (auto& machine : state.machines) {
    machine.last_heartbeat_ms = now;
    machine.drain_started_ms = now;
  }
  return std::unique_ptr<Service>(new Service(std::move(settings), clock, std::move(state)));
}

bool Service::poisoned() const {
  std::lock_guard lock(mu_);
  return poisoned_;
}

Service::Service(ServiceSettings settings, Clock* clock, State state)
    : settings_(std::move(settings)),
      clock_(clock),
      state_(std::move(state)),
      hot_policy_(settings_.hot) {
  last_history_ms_ = clock_->monotonic_ms();
  last_save_ms_ = last_history_ms_;
}

void Service::add_event(std::string message) {
  spdlog::info("orchestrator: {}", message);
  state_.add_event(clock_->wall_ms(), std::move(message));
  dirty_ = true;
}

Result<RegisterReply> Service::register_machine(MachineId machine_id, std::string address,
                                                std::string internal_address) {
  if (internal_address.empty()) internal_address = address;
  Status valid = check_address("address", address);
  if (valid.is_ok()) valid = check_address("internal_address", internal_address);
  if (!valid.is_ok()) return valid;
  std::lock_guard lock(mu_);
  const RoutingTableSpec* table = state_.table ? &*state_.table : nullptr;
  // Another machine with the same address: a machine whose data dir was wiped comes back with a
  // new id. The old record is forgotten if it holds no role; otherwise the operator decides.
  for (size_t i = 0; i < state_.machines.size(); ++i) {
    const MachineRecord& other = state_.machines[i];
    if (other.id == machine_id) continue;
    bool clash = other.address == address || other.internal_address == internal_address ||
                 other.address == internal_address || other.internal_address == address;
    if (!clash) continue;
    if (has_any_role(table, other.id) || other.health == Health::kUp) {
      return Status::busy(fmt::format("address {} belongs to machine {}, which is {}; remove it "
                                      "first",
                                      address, other.id, health_name(other.health)));
    }
    add_event(fmt::format("machine {} forgotten: its address {} is now machine {}", other.id,
                          other.address, machine_id));
    state_.machines.erase(state_.machines.begin() + static_cast<ptrdiff_t>(i));
    --i;
  }
  int64_t now = clock_->monotonic_ms();
  MachineRecord* record = machine_id != topology::kNoMachine ? state_.find_machine(machine_id)
                                                              : nullptr;
  if (record == nullptr) {
    if (state_.machines.size() >= topology::kMachinesMax) {
      return Status::busy(fmt::format("the cluster already has {} machines",
                                      topology::kMachinesMax));
    }
    if (machine_id == topology::kNoMachine) {
      if (!state_.machines.empty() && state_.machines.back().id == UINT64_MAX) {
        return Status::busy("no free machine id after the largest; pass one explicitly");
      }
      machine_id = state_.machines.empty() ? 1 : state_.machines.back().id + 1;
    }
    MachineRecord fresh;
    fresh.id = machine_id;
    fresh.address = address;
    fresh.internal_address = internal_address;
    fresh.last_heartbeat_ms = now;
    auto at = std::lower_bound(
        state_.machines.begin(), state_.machines.end(), machine_id,
        [](const MachineRecord& m, MachineId id) { return m.id < id; });
    state_.machines.insert(at, std::move(fresh));
    add_event(fmt::format("machine {} registered at {}", machine_id, address));
  } else {
    if (record->address != address || record->internal_address != internal_address) {
      add_event(fmt::format("machine {} moved from {} to {}", machine_id, record->address,
                            address));
      record->address = address;
      record->internal_address = internal_address;
    }
    if (record->health != Health::kUp) {
      add_event(fmt::format("machine {} registered again (was {})", machine_id,
                            health_name(record->health)));
      record->health = Health::kUp;
    }
    record->last_heartbeat_ms = now;
  }
  reconcile();
  if (Status saved = persist(false); !saved.is_ok()) return saved;
  return RegisterReply{machine_id, state_.table ? state_.table->epoch : 0};
}

Result<HeartbeatReply> Service::heartbeat(MachineId machine_id, topology::Epoch machine_epoch,
                                          const Load& load, topology::ShardId rebuilt_shard,
                                          const std::vector<MigrationReport>& migrations,
                                          std::vector<metrics::RangeLoadReport> ranges,
                                          const ClockReport& clock,
                                          std::vector<RepairReport> repair) {
  (void)machine_epoch;  // machines behind fetch the table themselves; kept for the log below
  std::lock_guard lock(mu_);
  MachineRecord* record = state_.find_machine(machine_id);
  if (record == nullptr) return Status::not_found("unknown machine");
  record->last_heartbeat_ms = clock_->monotonic_ms();
  record->load = load;
  load_book_.report(machine_id, record->last_heartbeat_ms, std::move(ranges));
  if (clock.measured && clock.in_bound != record->clock.in_bound) {
    add_event(clock.in_bound
                  ? fmt::format("machine {}: clock back in bound (offset {} ms): it coordinates "
                                "writes again", machine_id, clock.offset_ms)
                  : fmt::format("machine {}: clock {} ms {} the orchestrator's: it refuses to "
                                "coordinate writes", machine_id, std::llabs(clock.offset_ms),
                                clock.offset_ms < 0 ? "ahead of" : "behind"));
  }
  record->clock = clock;
  record->repair = std::move(repair);
  if (record->health != Health::kUp) {
    add_event(fmt::format("machine {} up again (was {})", machine_id,
                          health_name(record->health)));
    record->health = Health::kUp;
    reconcile();
    persist_own_decisions();
  }
  if (rebuilt_shard != topology::kNoShard) promote_rebuilt(machine_id, rebuilt_shard);
  for (const auto& report : migrations) apply_report(machine_id, report);
  // Answered from the state as written: a refused write rolled back what the reports decided.
  if (dirty_) persist_own_decisions();
  record = state_.find_machine(machine_id);
  CAIRN_ASSERT(record != nullptr, "a heartbeat does not forget its machine");
  const RoutingTableSpec* table = state_.table ? &*state_.table : nullptr;
  HeartbeatReply reply{table ? table->epoch : 0,
                       std::string(topology::machine_state_name(derived_state(*record, table))),
                       record->draining ? kDrainingLeaseMs : settings_.lease_ms,
                       clock_->wall_ms(),
                       {}};
  // Running migrations first: a machine may read only the first orders of a long list, and
  // queued ones ask nothing of it yet.
  for (bool queued : {false, true}) {
    for (const auto& m : state_.migrations) {
      if (m.finished() || (m.phase == MigrationPhase::kQueued) != queued) continue;
      reply.migrations.push_back(MigrationOrder{
          m.id, m.start, m.end, m.source, m.target, m.phase, m.paused,
          m.max_rate != 0 ? m.max_rate : settings_.migration_max_rate, m.attempt, m.driver,
          m.commit_epoch});
    }
  }
  return reply;
}

void Service::promote_rebuilt(MachineId machine, topology::ShardId shard_id) {
  if (!state_.table) return;
  RoutingTableSpec next = *state_.table;
  auto shard = std::find_if(next.shards.begin(), next.shards.end(),
                            [&](const topology::Shard& s) { return s.id == shard_id; });
  // Stale or repeated reports (the machine was promoted or moved meanwhile) change nothing.
  if (shard == next.shards.end()) return;
  auto joining = std::find(shard->joining.begin(), shard->joining.end(), machine);
  if (joining == shard->joining.end()) return;
  if (shard->replicas.size() >= next.replication_factor) return;
  shard->joining.erase(joining);
  shard->replicas.push_back(machine);
  for (topology::Machine& listed : next.machines) {
    if (listed.id == machine) listed.state = MachineState::kUp;
  }
  const topology::Epoch before = state_.table->epoch;
  install(std::move(next), fmt::format("machine {} rebuilt: now a voting replica of shard {}",
                                       machine, shard_id));
  if (state_.table->epoch == before) return;  // rejected (logged by install)
  // A shard whose replicas were all joining (a new shard) gets its leader from the planner.
  reconcile();
  persist_own_decisions();
}

Status Service::drain(MachineId machine_id) {
  std::lock_guard lock(mu_);
  MachineRecord* record = state_.find_machine(machine_id);
  if (record == nullptr) return Status::not_found(fmt::format("unknown machine {}", machine_id));
  if (record->draining) return Status::ok();
  record->draining = true;
  record->drain_started_ms = clock_->monotonic_ms();
  add_event(fmt::format("machine {} draining (operator)", machine_id));
  reconcile();
  return persist(false);
}

Status Service::remove(MachineId machine_id) {
  std::lock_guard lock(mu_);
  MachineRecord* record = state_.find_machine(machine_id);
  if (record == nullptr) return Status::not_found(fmt::format("unknown machine {}", machine_id));
  const RoutingTableSpec* table = state_.table ? &*state_.table : nullptr;
  auto [shard, role] = role_of(table, machine_id);
  if (shard != topology::kNoShard) {
    return Status::busy(fmt::format("machine {} is {} of shard {}; drain it first", machine_id,
                                    role, shard));
  }
  load_book_.forget(machine_id);
  state_.machines.erase(state_.machines.begin() + (record - state_.machines.data()));
  add_event(fmt::format("machine {} removed (operator)", machine_id));
  reconcile();
  return persist(false);
}

void Service::tick() {
  std::lock_guard lock(mu_);
  if (poisoned_) return;  // its owner drops it; nothing it computes could be stored
  int64_t now = clock_->monotonic_ms();
  credit_own_stall(now);
  DetectorSettings detector{settings_.down_after_ms, settings_.dead_after_ms};
  for (const auto& change : detect_failures(state_.machines, now, detector)) {
    MachineRecord* record = state_.find_machine(change.machine);
    CAIRN_ASSERT(record != nullptr, "the detector reports registered machines only");
    record->health = change.to;
    add_event(fmt::format("machine {} {} (no heartbeat for {} ms)", change.machine,
                          health_name(change.to), change.silent_ms));
  }
  if (now - last_history_ms_ >= kHistorySampleIntervalMs) {
    last_history_ms_ = now;
    state_.add_history(clock_->wall_ms(), machines_down());
  }
  if (state_.table && now - last_load_sample_ms_ >= kHistorySampleIntervalMs) {
    last_load_sample_ms_ = now;
    load_book_.sample(*state_.table, now, clock_->wall_ms());
    run_hot_shards(now);
  }
  reconcile();
  advance_migrations();
  persist_own_decisions();
}

// Like Cassandra's failure detector refusing to convict peers after a local pause: while this
// process did not run, heartbeats queued up unread, so the machines' silence in that time says
// nothing about them. Without this, one multi-second stall declared every machine dead at once
// and emptied whole shards (seen in the migration-under-restarts recipe on an overloaded box).
void Service::credit_own_stall(int64_t now) {
  const int64_t gap = last_tick_ms_ == 0 ? 0 : now - last_tick_ms_;
  last_tick_ms_ = now;
  if (settings_.self_stall_ms <= 0 || gap <= settings_.self_stall_ms) return;
  const int64_t credit = gap - kTickIntervalMs;
  for (auto& machine : state_.machines) {
    machine.last_heartbeat_ms = std::min(now, machine.last_heartbeat_ms + credit);
  }
  add_event(fmt::format(
      "orchestrator stalled for {} ms (overloaded machine, slow disk or paused process): that "
      "time is not counted as silence of the machines",
      gap));
}

void Service::reconcile() {
  if (!state_.table) {
    maybe_bootstrap();
    return;
  }
  run_planner();
}

void Service::maybe_bootstrap() {
  std::vector<MachineInfo> ready;
  for (auto& info : planner_machines()) {
    if (info.health == Health::kUp && !info.draining) ready.push_back(std::move(info));
  }
  if (ready.size() < uint64_t{settings_.initial_shards} * settings_.replication_factor) return;
  auto first = bootstrap(ready, settings_.initial_shards, settings_.replication_factor,
                         settings_.ranges_per_shard);
  if (!first.is_ok()) {
    if (last_plan_error_ != first.status().message()) {
      last_plan_error_ = first.status().message();
      spdlog::error("orchestrator: bootstrap failed: {}", last_plan_error_);
    }
    return;
  }
  RoutingTableSpec spec = std::move(*first);
  spec.epoch = std::max<topology::Epoch>(spec.epoch, 1);
  for (auto& shard : spec.shards) shard.lease_expiry_ms = 0;  // time-enforced (service.h)
  Status valid = topology::validate(spec);
  if (!valid.is_ok()) {
    spdlog::error("orchestrator: bootstrap produced an invalid table: {}", valid.message());
    return;
  }
  state_.table = std::move(spec);
  add_event(fmt::format("bootstrapped epoch {}: {} shards x RF {} from {} machines",
                        state_.table->epoch, settings_.initial_shards,
                        settings_.replication_factor, ready.size()));
}

std::vector<MachineInfo> Service::planner_machines() const {
  int64_t now = clock_->monotonic_ms();
  int64_t expiry_ms = settings_.lease_ms + kLeaseMarginMs;
  std::vector<MachineInfo> out;
  out.reserve(state_.machines.size());
  for (const auto& m : state_.machines) {
    MachineInfo info;
    info.id = m.id;
    info.address = m.address;
    info.internal_address = m.internal_address;
    info.health = m.health;
    info.draining = m.draining;
    info.load = m.load.ops_per_sec;
    if (m.health != Health::kUp) {
      info.lease_expired = now - m.last_heartbeat_ms >= expiry_ms;
    } else if (m.draining) {
      info.lease_expired = now - m.drain_started_ms >= expiry_ms;
    }
    out.push_back(std::move(info));
  }
  return out;
}

void Service::run_planner() {
  PlannerInput input;
  input.table = *state_.table;
  input.machines = planner_machines();
  input.average_down = state_.average_down();
  input.settings.replication_factor = settings_.replication_factor;
  input.settings.min_spares = settings_.min_spares;
  input.settings.extras_per_shard_max = settings_.extras_per_shard_max;
  auto report_once = [this](const std::string& what) {
    if (last_plan_error_ == what) return;
    last_plan_error_ = what;
    spdlog::error("orchestrator: {}", what);
    add_event(what);
  };
  auto planned = plan(input);
  if (!planned.is_ok()) {
    report_once("planner failed: " + planned.status().message());
    return;
  }
  Status invariants = check_invariants(input, *planned);
  if (!invariants.is_ok()) {
    // A bug in the planner must not take the cluster down: keep the current table.
    report_once("plan rejected: " + invariants.message());
    return;
  }
  std::string reason;
  for (const auto& action : planned->actions) {
    if (!reason.empty()) reason += "; ";
    reason += action.describe();
  }
  if (!planned->changed()) return;
  install(std::move(planned->table), reason);
}

void Service::install(RoutingTableSpec next, const std::string& reason) {
  CAIRN_ASSERT(state_.table.has_value(), "install needs a current table");
  const RoutingTableSpec& current = *state_.table;
  next.epoch = current.epoch;
  if (next == current) return;
  next.epoch = current.epoch + 1;
  Status valid = topology::validate(next);
  if (!valid.is_ok()) {
    std::string what = "new table rejected: " + valid.message();
    if (last_plan_error_ != what) {
      last_plan_error_ = what;
      spdlog::error("orchestrator: {}", what);
      add_event(what);
    }
    return;
  }
  state_.table = std::move(next);
  last_plan_error_.clear();
  std::string message = fmt::format("epoch {}", state_.table->epoch);
  if (!reason.empty()) message += ": " + reason;
  add_event(std::move(message));
}

MachineState Service::derived_state(const MachineRecord& machine,
                                    const RoutingTableSpec* table) const {
  // Health is the orchestrator's live view; the table keeps a down machine's role state (the
  // planner does not bump the epoch for every blip), so health wins here.
  if (machine.health == Health::kDead) return MachineState::kDead;
  if (machine.health == Health::kDown) return MachineState::kDown;
  if (table != nullptr) {
    for (const auto& listed : table->machines) {
      if (listed.id == machine.id) return listed.state;
    }
  }
  return machine.draining ? MachineState::kLeaving : MachineState::kSpare;
}

Status Service::persist(bool force) {
  if (!settings_.store && settings_.state_path.empty()) {
    dirty_ = false;
    return Status::ok();
  }
  if (poisoned_) {
    return Status::unavailable("could not store the orchestrator state: this orchestrator "
                               "stepped down after a refused write");
  }
  const int64_t now = clock_->monotonic_ms();
  const bool history_due = now - last_save_ms_ >= kHistorySaveIntervalMs;
  if (!force && !dirty_ && !history_due) return Status::ok();
  Status saved = settings_.store       ? settings_.store->save(state_)
                 : settings_.save_file ? settings_.save_file(settings_.state_path, state_)
                                       : save_state(settings_.state_path, state_);
  last_save_ms_ = now;
  if (!saved.is_ok()) return refuse_unsaved(saved);
  durable_ = state_;
  dirty_ = false;
  if (save_failing_) {
    save_failing_ = false;
    add_event("the orchestrator state is written again: decisions resume");
    return persist(true);  // the event itself, so durable_ holds it
  }
  return Status::ok();
}

// How the event of a failing state write begins.
constexpr std::string_view kStateWriteFailed = "cannot write the orchestrator state";

// The decision is not on disk, so it must not exist: back to the state last written, keeping
// what is not a decision (heartbeat times, load, health and clock: the failure detector's live
// view, which it would otherwise report again at every tick).
Status Service::refuse_unsaved(const Status& failure) {
  // What the refused decision said it did: its last event, if it made one.
  const uint64_t written = durable_.events.empty() ? 0 : durable_.events.back().seq;
  std::string refused = "a change without an event";
  for (auto it = state_.events.rbegin(); it != state_.events.rend() && it->seq > written; ++it) {
    if (it->message.rfind(kStateWriteFailed, 0) == 0) continue;  // our own, from a refusal
    refused = it->message;
    break;
  }
  State restored = durable_;
  for (MachineRecord& machine : restored.machines) {
    if (const MachineRecord* live = state_.find_machine(machine.id)) {
      machine.last_heartbeat_ms = live->last_heartbeat_ms;
      machine.drain_started_ms = live->drain_started_ms;
      machine.load = live->load;
      machine.health = live->health;
      machine.clock = live->clock;
    }
  }
  for (Migration& migration : restored.migrations) {
    if (const Migration* live = state_.find_migration(migration.id)) {
      migration.cutover_started_ms = live->cutover_started_ms;
    }
  }
  state_ = std::move(restored);
  dirty_ = true;  // the next tick writes again, and makes its decisions again
  Status refusal = Status::unavailable(fmt::format(
      "could not store the orchestrator state ({}): refused, and retried once the write "
      "succeeds: {}",
      failure.message(), refused));
  if (settings_.store) {
    // Final (see the header comment): the owner drops this service and reloads the state.
    spdlog::error("orchestrator: cannot store the state, stepping down: {}", failure.to_string());
    poisoned_ = true;
    return refusal;
  }
  if (!save_failing_) spdlog::error("orchestrator: {}", refusal.message());
  save_failing_ = true;
  // Kept in memory (each refusal restores it) until a write succeeds and stores it.
  state_.add_event(clock_->wall_ms(),
                   fmt::format("{} ({}): every decision is refused until a write succeeds; "
                               "the last refused: {}",
                               kStateWriteFailed, failure.message(), refused));
  return refusal;
}

void Service::persist_own_decisions() {
  // A refused write was rolled back and reported by persist(); the next tick decides again.
  (void)persist(false);
}

uint32_t Service::machines_down() const {
  uint32_t down = 0;
  for (const auto& m : state_.machines) down += m.health != Health::kUp ? 1 : 0;
  return down;
}

uint32_t Service::spares_target_now() const {
  return spares_target(state_.average_down(), settings_.min_spares);
}

topology::Epoch Service::epoch() const {
  std::lock_guard lock(mu_);
  return state_.table ? state_.table->epoch : 0;
}

State Service::snapshot() const {
  std::lock_guard lock(mu_);
  return state_;
}

nlohmann::json Service::table_json() const {
  std::lock_guard lock(mu_);
  if (!state_.table) return nullptr;
  auto table = topology::RoutingTable::create(*state_.table);
  CAIRN_ASSERT(table.is_ok(), table.status().to_string());
  return table->to_json();
}

nlohmann::json Service::status_json() const {
  std::lock_guard lock(mu_);
  const RoutingTableSpec* table = state_.table ? &*state_.table : nullptr;
  uint32_t up = 0, down = 0, dead = 0, spare = 0;
  for (const auto& m : state_.machines) {
    up += m.health == Health::kUp ? 1 : 0;
    down += m.health == Health::kDown ? 1 : 0;
    dead += m.health == Health::kDead ? 1 : 0;
    spare += derived_state(m, table) == MachineState::kSpare ? 1 : 0;
  }
  return json{{"epoch", table ? table->epoch : 0},
              {"replication_factor", settings_.replication_factor},
              {"machines",
               {{"total", state_.machines.size()},
                {"up", up},
                {"down", down},
                {"dead", dead},
                {"spare", spare}}},
              {"shards", table ? table->shards.size() : 0},
              {"spares_target", spares_target_now()},
              {"average_down", state_.average_down()},
              {"bootstrapped", table != nullptr}};
}

nlohmann::json Service::machines_json() const {
  std::lock_guard lock(mu_);
  const RoutingTableSpec* table = state_.table ? &*state_.table : nullptr;
  int64_t now = clock_->monotonic_ms();
  json out = json::array();
  for (const auto& m : state_.machines) {
    auto [shard, role] = role_of(table, m.id);
    out.push_back({{"id", m.id},
                   {"address", m.address},
                   {"state", std::string(topology::machine_state_name(derived_state(m, table)))},
                   {"health", std::string(health_name(m.health))},
                   {"draining", m.draining},
                   {"shard", shard},
                   {"role", role},
                   {"load", machine_load_json(m.load)},
                   {"clock", m.clock.measured
                                 ? json{{"offset_ms", m.clock.offset_ms},
                                        {"error_ms", m.clock.error_ms},
                                        {"in_bound", m.clock.in_bound}}
                                 : json(nullptr)},
                   {"last_heartbeat_ms_ago", std::max<int64_t>(0, now - m.last_heartbeat_ms)}});
  }
  return out;
}

nlohmann::json Service::repair_json() const {
  std::lock_guard lock(mu_);
  json out = json::array();
  if (!state_.table) return out;
  const int64_t now = clock_->wall_ms();
  for (const auto& shard : state_.table->shards) {
    int64_t last_full = 0;
    uint64_t fixed = 0;
    uint64_t last_pass_fixed = 0;
    bool running = false;
    json replicas = json::array();
    for (MachineId id : shard.replicas) {
      const MachineRecord* m = state_.find_machine(id);
      const RepairReport* report = nullptr;
      if (m != nullptr) {
        for (const RepairReport& r : m->repair) {
          if (r.shard == shard.id) report = &r;
        }
      }
      if (report == nullptr) {
        replicas.push_back({{"machine", id}, {"reported", false}});
        continue;
      }
      last_full = std::max(last_full, report->last_full_ms);
      fixed += report->cells_fixed;
      last_pass_fixed += report->last_pass_fixed;
      running = running || report->running;
      replicas.push_back({{"machine", id},
                          {"reported", true},
                          {"last_full_ms", report->last_full_ms},
                          {"passes", report->passes},
                          {"complete_passes", report->complete_passes},
                          {"cells_fixed", report->cells_fixed},
                          {"last_pass_fixed", report->last_pass_fixed},
                          {"running", report->running},
                          {"progress", report->progress},
                          {"problem", report->problem}});
    }
    out.push_back({{"shard", shard.id},
                   {"last_full_ms", last_full},
                   {"last_full_age_s", last_full == 0 ? json(nullptr)
                                                      : json(std::max<int64_t>(0, now - last_full) / 1000)},
                   {"cells_fixed", fixed},
                   {"last_pass_fixed", last_pass_fixed},
                   {"running", running},
                   {"replicas", std::move(replicas)}});
  }
  return out;
}

nlohmann::json Service::shards_json() const {
  std::lock_guard lock(mu_);
  json out = json::array();
  if (!state_.table) return out;
  for (const auto& shard : state_.table->shards) {
    size_t ranges = std::count_if(state_.table->ranges.begin(), state_.table->ranges.end(),
                                  [&](const topology::Range& r) { return r.shard == shard.id; });
    double ops = 0;
    for (MachineId id : shard.replicas) {
      if (const MachineRecord* m = state_.find_machine(id)) ops += m->load.ops_per_sec;
    }
    out.push_back({{"id", shard.id},
                   {"replicas", shard.replicas},
                   {"extras", shard.extras},
                   {"joining", shard.joining},
                   {"leader", shard.leader},
                   {"ranges", ranges},
                   {"load", {{"ops_per_sec", ops}}}});
  }
  return out;
}

nlohmann::json Service::load_json(bool history) const {
  std::lock_guard lock(mu_);
  json out = load_book_.to_json(state_.table ? &*state_.table : nullptr, clock_->monotonic_ms(),
                                history);
  out["time_ms"] = clock_->wall_ms();
  out["hot"] = hot_json();
  return out;
}

std::string Service::metrics_text() const {
  std::lock_guard lock(mu_);
  metrics::PrometheusText out;
  const RoutingTableSpec* table = state_.table ? &*state_.table : nullptr;
  std::map<std::string, size_t> by_state;
  for (const char* name : {"up", "down", "dead", "joining", "spare", "leaving"}) by_state[name] = 0;
  std::map<std::string, size_t> by_health = {{"up", 0}, {"down", 0}, {"dead", 0}};
  for (const auto& m : state_.machines) {
    ++by_state[std::string(topology::machine_state_name(derived_state(m, table)))];
    ++by_health[std::string(health_name(m.health))];
  }
  out.family("cairn_machines", "gauge", "Registered machines by state in the routing table.");
  for (const auto& [name, count] : by_state) {
    out.sample("cairn_machines", {{"state", name}}, static_cast<double>(count));
  }
  out.family("cairn_machines_health", "gauge", "Registered machines by heartbeat health.");
  for (const auto& [name, count] : by_health) {
    out.sample("cairn_machines_health", {{"health", name}}, static_cast<double>(count));
  }
  out.gauge("cairn_shards", "Shards in the routing table.",
            static_cast<double>(table ? table->shards.size() : 0));
  out.gauge("cairn_ranges", "Token ranges in the routing table.",
            static_cast<double>(table ? table->ranges.size() : 0));
  out.gauge("cairn_epoch", "Epoch of the routing table.", static_cast<double>(table ? table->epoch : 0));
  out.gauge("cairn_spares_target", "Idle spares the orchestrator keeps.",
            static_cast<double>(spares_target_now()));
  size_t in_flight = 0;
  std::map<std::string, size_t> by_phase;
  for (const auto& m : state_.migrations) {
    if (!m.finished()) ++in_flight;
    ++by_phase[std::string(migration_phase_name(m.phase))];
  }
  out.gauge("cairn_migrations_in_flight", "Migrations not yet done or cancelled.",
            static_cast<double>(in_flight));
  out.family("cairn_migrations", "gauge",
             "Migrations known by phase (active ones and the last finished ones kept).");
  for (const auto& [phase, count] : by_phase) {
    out.sample("cairn_migrations", {{"phase", phase}}, static_cast<double>(count));
  }
  out.counter("cairn_events_total", "Events the orchestrator recorded.",
              static_cast<double>(state_.next_event_seq - 1));
  if (table != nullptr) {
    const std::vector<ShardLoad> loads = load_book_.current(*table, clock_->monotonic_ms());
    struct Family {
      const char* name;
      const char* help;
      double (*value)(const metrics::RangeLoadReport&);
    };
    const Family families[] = {
        {"cairn_shard_reads_per_second", "Replica reads per second of the shard (10 s window).",
         [](const metrics::RangeLoadReport& r) { return r.reads_per_sec; }},
        {"cairn_shard_writes_per_second", "Writes per second of the shard (10 s window).",
         [](const metrics::RangeLoadReport& r) { return r.writes_per_sec; }},
        {"cairn_shard_stored_bytes", "Bytes stored by the shard (largest replica).",
         [](const metrics::RangeLoadReport& r) { return static_cast<double>(r.bytes); }},
        {"cairn_shard_keys", "Keys stored by the shard (estimate, largest replica).",
         [](const metrics::RangeLoadReport& r) { return static_cast<double>(r.keys); }},
        {"cairn_shard_p99_seconds", "p99 of the shard's replica accesses (10 s window).",
         [](const metrics::RangeLoadReport& r) { return static_cast<double>(r.p99_us) / 1e6; }},
    };
    for (const Family& family : families) {
      out.family(family.name, "gauge", family.help);
      for (const ShardLoad& load : loads) {
        out.sample(family.name, {{"shard", std::to_string(load.shard)}},
                   family.value(load.total));
      }
    }
  }
  return out.text();
}

nlohmann::json Service::ring_json() const {
  std::lock_guard lock(mu_);
  json out = json::array();
  if (!state_.table) return out;
  for (const auto& range : state_.table->ranges) {
    out.push_back({{"start", topology::format_token(range.start)},
                   {"end", topology::format_token(range.end)},
                   {"shard", range.shard}});
  }
  return out;
}

nlohmann::json Service::history_json() const {
  std::lock_guard lock(mu_);
  json out = json::array();
  for (const auto& sample : state_.history) {
    out.push_back({{"time_ms", sample.time_ms}, {"down", sample.down}});
  }
  return out;
}

nlohmann::json Service::events_json(uint64_t since) const {
  std::lock_guard lock(mu_);
  json out = json::array();
  auto first = std::upper_bound(state_.events.begin(), state_.events.end(), since,
                                [](uint64_t seq, const Event& e) { return seq < e.seq; });
  for (auto it = first; it != state_.events.end() && out.size() < kEventsPageMax; ++it) {
    out.push_back({{"seq", it->seq}, {"time_ms", it->time_ms}, {"message", it->message}});
  }
  return out;
}

}  // namespace cairn::orchestrator
