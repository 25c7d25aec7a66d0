// The migration half of the Service (service.h, docs/migration.md): the phase machine run by
// tick(), machine reports, the driver's commit/abort, operator split/move/pause/resume/cancel/
// rate, and the balancer hook. Kept apart from service.cc, which handles membership.

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "orchestrator/balancer.h"
#include "orchestrator/service.h"
#include "topology/token_range.h"

namespace cairn::orchestrator {

namespace {

using nlohmann::json;
using topology::MachineId;
using topology::RoutingTableSpec;
using topology::ShardId;
using topology::Token;

using Wide = topology::TokenWidth;
constexpr Wide kRing = topology::kRingTokens;
constexpr auto span = topology::token_span;

const topology::Shard* find_shard(const RoutingTableSpec& table, ShardId id) {
  for (const auto& shard : table.shards) {
    if (shard.id == id) return &shard;
  }
  return nullptr;
}

// Index of the range holding `token` (ranges cover the ring, invariant 3).
size_t range_index(const RoutingTableSpec& table, Token token) {
  auto it = std::upper_bound(table.ranges.begin(), table.ranges.end(), token,
                             [](Token t, const topology::Range& r) { return t < r.start; });
  CAIRN_ASSERT(it != table.ranges.begin(), "the first range starts at token 0");
  return static_cast<size_t>(it - table.ranges.begin()) - 1;
}

// [start, end) lies inside `range` (end 0 = 2^64 for both).
bool inside(const topology::Range& range, Token start, Token end) {
  return topology::before_end(start, end) &&
         topology::range_covers(range.start, range.end, start, end);
}

std::vector<MachineId> members(const topology::Shard& shard) {
  std::vector<MachineId> out = shard.replicas;
  out.insert(out.end(), shard.extras.begin(), shard.extras.end());
  out.insert(out.end(), shard.joining.begin(), shard.joining.end());
  return out;
}

bool contains(const std::vector<MachineId>& ids, MachineId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

bool running(MigrationPhase phase) {
  return phase != MigrationPhase::kQueued && phase != MigrationPhase::kDone &&
         phase != MigrationPhase::kCancelled;
}

}  // namespace

std::vector<MachineId> Service::target_machines(const Migration& m) const {
  if (!state_.table) return {};
  const topology::Shard* shard = find_shard(*state_.table, m.target);
  return shard != nullptr ? members(*shard) : std::vector<MachineId>{};
}

const Migration* Service::shard_busy(const Migration& m) const {
  for (const auto& other : state_.migrations) {
    if (other.id == m.id || !running(other.phase)) continue;
    if (other.source == m.source || other.source == m.target || other.target == m.source ||
        other.target == m.target) {
      return &other;
    }
  }
  return nullptr;
}

void Service::set_phase(Migration& m, MigrationPhase phase, const std::string& detail) {
  m.phase = phase;
  m.phase_started_ms = clock_->wall_ms();
  m.updated_ms = m.phase_started_ms;
  std::string message = fmt::format("migration {}: {} {} shard {} → shard {}", m.id,
                                    migration_phase_name(phase), m.range_text(), m.source,
                                    m.target);
  if (!detail.empty()) message += " (" + detail + ")";
  add_event(std::move(message));
}

void Service::bump_epoch(const std::string& reason) {
  CAIRN_ASSERT(state_.table.has_value(), "a migration runs on a table");
  state_.table->epoch += 1;
  add_event(fmt::format("epoch {}: {}", state_.table->epoch, reason));
}

void Service::abort_attempt(Migration& m, const std::string& error) {
  m.error = error.substr(0, kMigrationErrorBytesMax);
  // The new epoch lifts the fences the driver may have set (docs/migration.md: a fence lives
  // until the machine installs a newer epoch).
  bump_epoch(fmt::format("migration {} attempt {} aborted: {}", m.id, m.attempt, m.error));
  for (auto& p : m.progress) p.ready = false;  // the next attempt waits for fresh reports
  m.driver = topology::kNoMachine;
  if (m.cancel_requested) {
    set_phase(m, MigrationPhase::kCancelled, "cancelled by the operator");
  } else {
    set_phase(m, MigrationPhase::kCatchup, "retrying: " + m.error);
  }
}

// queued → staging; the table range is cut first if the migration's range is not exactly one
// (each cut is an epoch of its own; no data moves). False if it must keep waiting.
bool Service::start_migration(Migration& m) {
  const RoutingTableSpec& table = *state_.table;
  const topology::Shard* source = find_shard(table, m.source);
  const topology::Shard* target = find_shard(table, m.target);
  if (source == nullptr || target == nullptr) {
    m.error = fmt::format("shard {} no longer exists", source == nullptr ? m.source : m.target);
    set_phase(m, MigrationPhase::kCancelled, m.error);
    return false;
  }
  if (source->replicas.empty() || target->replicas.empty()) return false;
  const topology::Range range = table.ranges[range_index(table, m.start)];
  if (range.shard != m.source || !inside(range, m.start, m.end)) {
    m.error = fmt::format("{} is no longer inside one range of shard {}", m.range_text(),
                          m.source);
    set_phase(m, MigrationPhase::kCancelled, m.error);
    return false;
  }
  for (Token at : {m.start, m.end}) {
    const topology::Range& holder = state_.table->ranges[range_index(*state_.table, at)];
    if (at == 0 || holder.start == at) continue;  // already a range boundary
    auto created = topology::RoutingTable::create(*state_.table);
    CAIRN_ASSERT(created.is_ok(), created.status().to_string());
    auto split = created->split_range(holder.start, at);
    if (!split.is_ok()) {
      m.error = "cannot cut the range: " + split.status().message();
      set_phase(m, MigrationPhase::kCancelled, m.error);
      return false;
    }
    const topology::Epoch before = state_.table->epoch;
    install(split->spec(), fmt::format("range cut at {} for migration {}",
                                       topology::format_token(at), m.id));
    if (state_.table->epoch == before) return false;  // rejected: logged by install
  }
  m.progress.clear();
  set_phase(m, MigrationPhase::kStaging, "");
  return true;
}

void Service::advance_migrations() {
  if (!state_.table) return;
  const int64_t now = clock_->monotonic_ms();
  bool any_active = false;
  for (auto& m : state_.migrations) {
    if (m.finished()) continue;
    any_active = true;
    switch (m.phase) {
      case MigrationPhase::kQueued:
        if (!m.paused && shard_busy(m) == nullptr) start_migration(m);
        break;
      case MigrationPhase::kStaging:
      case MigrationPhase::kCatchup: {
        const bool staging = m.phase == MigrationPhase::kStaging;
        std::vector<MachineId> targets = target_machines(m);
        bool all = !targets.empty();
        for (MachineId id : targets) {
          const TargetProgress* p = m.find_progress(id);
          all = all && p != nullptr && (staging ? p->staged : p->ready);
        }
        if (!all) break;
        if (staging) {
          set_phase(m, MigrationPhase::kCatchup, "");
          break;
        }
        if (m.paused) break;
        const topology::Shard* target = find_shard(*state_.table, m.target);
        if (target == nullptr || target->replicas.empty()) break;
        m.driver = target->leader != topology::kNoMachine ? target->leader
                                                          : target->replicas.front();
        m.attempt += 1;
        m.cutover_started_ms = now;
        set_phase(m, MigrationPhase::kCutover,
                  fmt::format("attempt {}, driver machine {}", m.attempt, m.driver));
        break;
      }
      case MigrationPhase::kCutover:
        if (now - m.cutover_started_ms >= kCutoverTimeoutMs) {
          abort_attempt(m, fmt::format("no commit within {} ms of the cutover",
                                       kCutoverTimeoutMs));
        }
        break;
      case MigrationPhase::kCleanup: {
        bool all = true;
        for (MachineId id : m.sources_at_commit) {
          const MachineRecord* machine = state_.find_machine(id);
          bool gone = machine == nullptr || machine->health == Health::kDead;
          all = all && (gone || contains(m.cleaned, id));
        }
        if (all) set_phase(m, MigrationPhase::kDone, "");
        break;
      }
      case MigrationPhase::kDone:
      case MigrationPhase::kCancelled:
        break;
    }
  }
  state_.prune_migrations();  // not inside the loop: it erases elements
  if (!any_active && settings_.auto_rebalance) run_balancer();
}

void Service::run_balancer() {
  std::vector<Move> active;
  for (const auto& m : state_.migrations) {
    if (!m.finished()) active.push_back(Move{m.start, m.end, m.source, m.target});
  }
  // The halves of a recent hot split stay where load put them for their cool-down (no
  // flapping, hot_shards.h rule 6): shown to the balancer as busy moves onto their own shard,
  // which leaves every share as it is.
  for (const PinnedRange& p : hot_policy_.pinned(clock_->monotonic_ms())) {
    const ShardId owner = state_.table->ranges[range_index(*state_.table, p.start)].shard;
    active.push_back(Move{p.start, p.end, owner, owner});
  }
  for (const Move& move : balance(*state_.table, active)) {
    auto id = queue_migration("rebalance", move.start, move.end, move.source, move.target, 0);
    if (!id.is_ok()) {
      spdlog::error("orchestrator: balancer move not queued: {}", id.status().to_string());
      return;
    }
  }
}

Result<uint64_t> Service::queue_migration(const std::string& kind, Token start, Token end,
                                          ShardId source, ShardId target, uint64_t max_rate) {
  size_t active = std::count_if(state_.migrations.begin(), state_.migrations.end(),
                                [](const Migration& m) { return !m.finished(); });
  if (active >= kActiveMigrationsMax) {
    return Status::busy(fmt::format("already {} active migrations", active));
  }
  Migration m;
  m.id = state_.next_migration_id++;
  m.kind = kind;
  m.start = start;
  m.end = end;
  m.source = source;
  m.target = target;
  m.max_rate = max_rate;
  m.created_ms = clock_->wall_ms();
  m.updated_ms = m.created_ms;
  m.phase_started_ms = m.created_ms;
  state_.migrations.push_back(m);  // ids grow: the vector stays sorted
  add_event(fmt::format("migration {}: queued {} {} shard {} → shard {}", m.id, kind,
                        m.range_text(), source, target));
  return m.id;
}

void Service::apply_report(MachineId machine, const MigrationReport& report) {
  Migration* m = state_.find_migration(report.id);
  if (m == nullptr || m->finished()) return;  // stale: the machine learns from the answer
  const int64_t now = clock_->monotonic_ms();
  if (report.fence_ms.has_value() && m->attempt != 0 &&
      (m->phase == MigrationPhase::kCutover || m->phase == MigrationPhase::kCleanup ||
       m->phase == MigrationPhase::kCatchup)) {
    // One fence time per attempt; later reports of the same attempt correct it.
    if (m->fence_attempt != m->attempt || m->fence_history.empty()) {
      m->fence_history.push_back(*report.fence_ms);
      while (m->fence_history.size() > kFenceHistoryMax) m->fence_history.pop_front();
      m->fence_attempt = m->attempt;
      dirty_ = true;
    } else if (m->fence_history.back() != *report.fence_ms) {
      m->fence_history.back() = *report.fence_ms;
      dirty_ = true;
    }
    m->fence_ms_last = *report.fence_ms;
    m->fence_ms_max = std::max(m->fence_ms_max, *report.fence_ms);
  }
  if (m->phase == MigrationPhase::kCleanup) {
    if (report.cleaned && contains(m->sources_at_commit, machine) &&
        !contains(m->cleaned, machine)) {
      m->cleaned.push_back(machine);
      m->updated_ms = clock_->wall_ms();
      dirty_ = true;
    }
    return;
  }
  if (m->phase == MigrationPhase::kQueued) return;
  if (!contains(target_machines(*m), machine)) return;
  TargetProgress* p = m->find_progress(machine);
  if (p == nullptr) {
    if (m->progress.size() >= topology::kMachinesMax) return;
    m->progress.push_back(TargetProgress{});
    p = &m->progress.back();
    p->machine = machine;
  }
  // Progress is not written at once (machines keep their own and restart staging anyway):
  // it goes out with the next phase change or periodic save.
  p->staged = report.staged;
  p->ready = report.ready;
  p->keys = report.keys;
  p->lag = report.lag;
  if (p->rate_ms == 0 || report.bytes < p->rate_bytes) {
    p->rate_ms = now;
    p->rate_bytes = report.bytes;
  } else if (now - p->rate_ms >= kRateIntervalMs) {
    p->rate = static_cast<double>(report.bytes - p->rate_bytes) * 1000.0 /
              static_cast<double>(now - p->rate_ms);
    p->rate_ms = now;
    p->rate_bytes = report.bytes;
  }
  p->bytes = report.bytes;
  if (report.copy_ms.has_value()) p->copy_ms = *report.copy_ms;
}

Result<nlohmann::json> Service::commit_migration(uint64_t id, uint32_t attempt,
                                                 topology::Epoch epoch) {
  std::lock_guard lock(mu_);
  Migration* m = state_.find_migration(id);
  if (m == nullptr) return Status::not_found(fmt::format("unknown migration {}", id));
  if (m->phase != MigrationPhase::kCutover) {
    return Status::busy(fmt::format("migration {} is {}, not in cutover", id,
                                    migration_phase_name(m->phase)));
  }
  if (attempt != m->attempt) {
    return Status::busy(fmt::format("attempt {} is stale: migration {} is at attempt {}", attempt,
                                    id, m->attempt));
  }
  if (m->cancel_requested) return Status::busy(fmt::format("migration {} is being cancelled", id));
  if (!state_.table || state_.table->epoch != epoch) {
    return Status::busy(fmt::format("the table is at epoch {}, not {}",
                                     state_.table ? state_.table->epoch : 0, epoch));
  }
  const topology::Range& range = state_.table->ranges[range_index(*state_.table, m->start)];
  if (range.start != m->start || range.end != m->end || range.shard != m->source) {
    return Status::busy(fmt::format("{} is not a range of shard {} in epoch {}", m->range_text(),
                                    m->source, epoch));
  }
  auto created = topology::RoutingTable::create(*state_.table);
  CAIRN_ASSERT(created.is_ok(), created.status().to_string());
  auto next = created->reassign_range(m->start, m->target);
  if (!next.is_ok()) return Status::busy("cannot reassign: " + next.status().message());
  const topology::Shard* source = find_shard(*state_.table, m->source);
  std::vector<MachineId> sources = source != nullptr ? members(*source) : std::vector<MachineId>{};
  install(next->spec(), fmt::format("migration {} committed: {} now owned by shard {}", id,
                                    m->range_text(), m->target));
  if (state_.table->epoch != epoch + 1) return Status::busy("the new table was rejected");
  m->commit_epoch = state_.table->epoch;
  m->sources_at_commit = std::move(sources);
  m->cleaned.clear();
  m->error.clear();
  set_phase(*m, MigrationPhase::kCleanup, fmt::format("commit epoch {}", m->commit_epoch));
  // The driver pushes the table it gets here: it must be on disk first.
  if (Status saved = persist(false); !saved.is_ok()) return saved;
  auto table = topology::RoutingTable::create(*state_.table);
  CAIRN_ASSERT(table.is_ok(), table.status().to_string());
  return table->to_json();
}

Status Service::abort_migration(uint64_t id, uint32_t attempt, std::string error) {
  std::lock_guard lock(mu_);
  Migration* m = state_.find_migration(id);
  if (m == nullptr) return Status::not_found(fmt::format("unknown migration {}", id));
  if (m->phase != MigrationPhase::kCutover || attempt != m->attempt) {
    return Status::busy(fmt::format("migration {} is {} at attempt {}: nothing to abort", id,
                                    migration_phase_name(m->phase), m->attempt));
  }
  abort_attempt(*m, error.empty() ? "aborted by the driver" : error);
  state_.prune_migrations();
  return persist(false);
}

Status Service::pause_migration(uint64_t id) {
  std::lock_guard lock(mu_);
  Migration* m = state_.find_migration(id);
  if (m == nullptr) return Status::not_found(fmt::format("unknown migration {}", id));
  if (m->phase != MigrationPhase::kQueued && m->phase != MigrationPhase::kStaging &&
      m->phase != MigrationPhase::kCatchup) {
    return Status::busy(fmt::format("migration {} is {}: only queued, staging and catchup "
                                    "migrations can be paused",
                                    id, migration_phase_name(m->phase)));
  }
  if (m->paused) return Status::ok();
  m->paused = true;
  m->updated_ms = clock_->wall_ms();
  add_event(fmt::format("migration {}: paused (operator)", id));
  return persist(false);
}

Status Service::resume_migration(uint64_t id) {
  std::lock_guard lock(mu_);
  Migration* m = state_.find_migration(id);
  if (m == nullptr) return Status::not_found(fmt::format("unknown migration {}", id));
  if (m->finished()) {
    return Status::busy(fmt::format("migration {} is {}", id, migration_phase_name(m->phase)));
  }
  if (!m->paused) return Status::ok();
  m->paused = false;
  m->updated_ms = clock_->wall_ms();
  add_event(fmt::format("migration {}: resumed (operator)", id));
  return persist(false);
}

Status Service::cancel_migration(uint64_t id) {
  std::lock_guard lock(mu_);
  Migration* m = state_.find_migration(id);
  if (m == nullptr) return Status::not_found(fmt::format("unknown migration {}", id));
  switch (m->phase) {
    case MigrationPhase::kCancelled:
      return Status::ok();
    case MigrationPhase::kCleanup:
    case MigrationPhase::kDone:
      return Status::busy(fmt::format("migration {} already committed", id));
    case MigrationPhase::kCutover:
      // The driver's commit is refused from now on; the abort lifts its fences.
      m->cancel_requested = true;
      abort_attempt(*m, "cancelled by the operator");
      break;
    case MigrationPhase::kQueued:
    case MigrationPhase::kStaging:
    case MigrationPhase::kCatchup:
      m->cancel_requested = true;
      set_phase(*m, MigrationPhase::kCancelled, "operator");
      break;
  }
  state_.prune_migrations();
  return persist(false);
}

Status Service::set_migration_rate(uint64_t id, uint64_t max_rate) {
  std::lock_guard lock(mu_);
  Migration* m = state_.find_migration(id);
  if (m == nullptr) return Status::not_found(fmt::format("unknown migration {}", id));
  if (m->finished()) {
    return Status::busy(fmt::format("migration {} is {}", id, migration_phase_name(m->phase)));
  }
  m->max_rate = max_rate;
  m->updated_ms = clock_->wall_ms();
  add_event(fmt::format("migration {}: max rate {} bytes/s{}", id, max_rate,
                        max_rate == 0 ? " (the default)" : ""));
  return persist(false);
}

Result<MigrationsCreated> Service::split(ShardId shard_id, std::optional<Token> at,
                                         uint64_t max_rate) {
  std::lock_guard lock(mu_);
  if (!state_.table) return Status::busy("the cluster is not bootstrapped yet");
  const RoutingTableSpec& table = *state_.table;
  const topology::Shard* shard = find_shard(table, shard_id);
  if (shard == nullptr) return Status::invalid_argument(fmt::format("unknown shard {}", shard_id));
  for (const auto& m : state_.migrations) {
    if (!m.finished() && m.source == shard_id) {
      return Status::busy(fmt::format("shard {} is already the source of migration {} ({}); "
                                      "wait for it",
                                      shard_id, m.id, migration_phase_name(m.phase)));
    }
  }
  std::vector<topology::Range> owned;
  Wide total = 0;
  for (const auto& range : table.ranges) {
    if (range.shard != shard_id) continue;
    owned.push_back(range);
    total += span(range.start, range.end);
  }
  if (total < Wide{2} * kMinRangeTokens) {
    return Status::invalid_argument(fmt::format(
        "range too small to split: shard {} owns {} tokens, a split needs at least {}", shard_id,
        static_cast<uint64_t>(std::min<Wide>(total, UINT64_MAX)), 2 * kMinRangeTokens));
  }
  // The pieces to move, in ring order.
  std::vector<std::pair<Token, Token>> pieces;
  if (at) {
    for (const auto& range : owned) {
      if (range.contains(*at) && range.start != *at) {
        if (span(range.start, *at) < kMinRangeTokens || span(*at, range.end) < kMinRangeTokens) {
          return Status::invalid_argument(fmt::format(
              "range too small to split at {}: both parts of [{}, {}) need at least {} tokens",
              topology::format_token(*at), topology::format_token(range.start),
              topology::format_token(range.end), kMinRangeTokens));
        }
        pieces.emplace_back(*at, range.end);
      } else if (range.start >= *at) {
        pieces.emplace_back(range.start, range.end);
      }
    }
    if (pieces.empty()) {
      return Status::invalid_argument(fmt::format("shard {} owns nothing from {} on", shard_id,
                                                  topology::format_token(*at)));
    }
    if (pieces.size() == owned.size() && pieces.front().first == owned.front().start) {
      return Status::invalid_argument(fmt::format(
          "--at {} would move all of shard {}: nothing would be left", topology::format_token(*at),
          shard_id));
    }
  } else {
    Wide left = total / 2;
    for (const auto& range : owned) {
      if (left < kMinRangeTokens) break;
      Wide size = span(range.start, range.end);
      if (size <= left) {
        pieces.emplace_back(range.start, range.end);
        left -= size;
        continue;
      }
      // Cut so that the moved part is exact (to the nearest slot boundary: a slot stays in one
      // range), unless that leaves a sliver on either side.
      if (size - left >= kMinRangeTokens) {
        pieces.emplace_back(range.start, slot_aligned_cut(range.start, range.end,
                                                          range.start + static_cast<Token>(left)));
      } else {
        pieces.emplace_back(range.start, range.end);
      }
      break;
    }
  }
  auto created = split_to_new_shard(shard_id, pieces, max_rate, "split");
  if (!created.is_ok()) return created.status();
  created->message = fmt::format(
      "shard {} created from machines {}; {} migration(s) queued moving {} to it",
      created->new_shard, created->message, created->ids.size(),
      at ? fmt::format("shard {}'s ring span from {} on", shard_id, topology::format_token(*at))
         : fmt::format("half of shard {}'s ring span", shard_id));
  if (Status saved = persist(false); !saved.is_ok()) return saved;
  return created;
}

std::vector<MachineId> Service::free_machines() const {
  if (!state_.table) return {};
  const RoutingTableSpec& table = *state_.table;
  auto usable = [&](MachineId id) {
    const MachineRecord* m = state_.find_machine(id);
    return m != nullptr && m->health == Health::kUp && !m->draining;
  };
  std::vector<MachineId> spares, extras;
  for (const auto& machine : state_.machines) {
    if (!usable(machine.id)) continue;
    bool has_role = false, is_extra = false;
    for (const auto& s : table.shards) {
      if (contains(s.extras, machine.id)) is_extra = true;
      if (contains(members(s), machine.id)) has_role = true;
    }
    if (!has_role) spares.push_back(machine.id);
    else if (is_extra) extras.push_back(machine.id);
  }
  // A machine may be an extra of one shard and hold another role elsewhere: not free.
  std::erase_if(extras, [&](MachineId id) {
    for (const auto& s : table.shards) {
      if (contains(s.replicas, id) || contains(s.joining, id)) return true;
    }
    return false;
  });
  spares.insert(spares.end(), extras.begin(), extras.end());
  return spares;
}

// The machines' names go back in `message` (the callers word the rest).
Result<MigrationsCreated> Service::split_to_new_shard(
    ShardId shard_id, const std::vector<std::pair<Token, Token>>& pieces, uint64_t max_rate,
    const std::string& kind) {
  const RoutingTableSpec& table = *state_.table;
  const uint32_t rf = table.replication_factor;
  std::vector<MachineId> chosen = free_machines();
  if (chosen.size() < rf) {
    return Status::busy(fmt::format("split needs {} free machines (spares or extras), {} available",
                                    rf, chosen.size()));
  }
  chosen.resize(rf);
  RoutingTableSpec next = table;
  ShardId new_id = 0;
  for (const auto& s : next.shards) new_id = std::max(new_id, s.id);
  new_id += 1;
  for (auto& s : next.shards) {
    std::erase_if(s.extras, [&](MachineId id) { return contains(chosen, id); });
  }
  topology::Shard fresh;
  fresh.id = new_id;
  fresh.joining = chosen;
  next.shards.push_back(fresh);
  for (MachineId id : chosen) {
    auto listed = std::find_if(next.machines.begin(), next.machines.end(),
                               [&](const topology::Machine& m) { return m.id == id; });
    if (listed != next.machines.end()) {
      listed->state = topology::MachineState::kJoining;
    } else {
      const MachineRecord* record = state_.find_machine(id);
      next.machines.push_back(topology::Machine{id, record->address, record->internal_address,
                                                topology::MachineState::kJoining});
    }
  }
  std::sort(next.machines.begin(), next.machines.end(),
            [](const topology::Machine& a, const topology::Machine& b) { return a.id < b.id; });
  std::string names;
  for (MachineId id : chosen) names += (names.empty() ? "" : ", ") + std::to_string(id);
  const topology::Epoch before = table.epoch;
  install(std::move(next), fmt::format("{} of shard {}: new shard {} from machines {} (joining)",
                                       kind, shard_id, new_id, names));
  if (state_.table->epoch == before) return Status::internal("the split's table was rejected");
  MigrationsCreated created;
  created.new_shard = new_id;
  for (const auto& [start, end] : pieces) {
    auto id = queue_migration(kind, start, end, shard_id, new_id, max_rate);
    if (!id.is_ok()) return id.status();
    created.ids.push_back(*id);
  }
  created.message = names;
  return created;
}

Result<MigrationsCreated> Service::move(Token start, std::optional<Token> end, ShardId to,
                                        uint64_t max_rate) {
  std::lock_guard lock(mu_);
  if (!state_.table) return Status::busy("the cluster is not bootstrapped yet");
  const RoutingTableSpec& table = *state_.table;
  const topology::Range& range = table.ranges[range_index(table, start)];
  if (!end) {
    if (range.start != start) {
      return Status::invalid_argument(fmt::format(
          "no range starts at {} (it lies in [{}, {})); give START-END",
          topology::format_token(start), topology::format_token(range.start),
          topology::format_token(range.end)));
    }
    end = range.end;
  }
  if (!topology::before_end(start, *end)) {
    return Status::invalid_argument(fmt::format("empty range [{}, {})",
                                                topology::format_token(start),
                                                topology::format_token(*end)));
  }
  if (!inside(range, start, *end)) {
    return Status::invalid_argument(fmt::format(
        "[{}, {}) is not inside one table range ({} lies in [{}, {}))",
        topology::format_token(start), topology::format_token(*end), topology::format_token(start),
        topology::format_token(range.start), topology::format_token(range.end)));
  }
  if (find_shard(table, to) == nullptr) {
    return Status::invalid_argument(fmt::format("unknown shard {}", to));
  }
  if (range.shard == to) {
    return Status::invalid_argument(fmt::format("the range is already owned by shard {}", to));
  }
  for (const auto& m : state_.migrations) {
    if (!m.finished() && m.overlaps(start, *end)) {
      return Status::busy(fmt::format("overlaps migration {} {} ({})", m.id, m.range_text(),
                                      migration_phase_name(m.phase)));
    }
  }
  auto id = queue_migration("move", start, *end, range.shard, to, max_rate);
  if (!id.is_ok()) return id.status();
  MigrationsCreated created;
  created.ids.push_back(*id);
  Migration probe = *state_.find_migration(*id);
  const Migration* busy = shard_busy(probe);
  created.message =
      busy != nullptr
          ? fmt::format("migration {} queued: shard {} or {} is already migrating (migration {})",
                        *id, range.shard, to, busy->id)
          : fmt::format("migration {} queued: {} shard {} → shard {}", *id, probe.range_text(),
                        range.shard, to);
  if (Status saved = persist(false); !saved.is_ok()) return saved;
  return created;
}

nlohmann::json Service::migrations_json() const {
  std::lock_guard lock(mu_);
  json out = json::array();
  for (const auto& m : state_.migrations) {
    json j = migration_to_json(m);
    j.erase("fence_history");
    j.erase("fence_attempt");
    // The slowest target bounds the migration.
    uint64_t keys = 0, bytes = 0, lag = 0;
    double rate = 0;
    bool first = true;
    for (const auto& p : m.progress) {
      keys = first ? p.keys : std::min(keys, p.keys);
      bytes = first ? p.bytes : std::min(bytes, p.bytes);
      rate = first ? p.rate : std::min(rate, p.rate);
      lag = std::max(lag, p.lag);
      first = false;
    }
    j["active"] = !m.finished();
    j["keys"] = keys;
    j["bytes"] = bytes;
    j["lag"] = lag;
    j["rate"] = rate;
    // The slowest target's staging time, as the machines measured it (0: not staged yet).
    uint64_t copy_ms = 0;
    for (const auto& p : m.progress) copy_ms = std::max(copy_ms, p.copy_ms);
    j["copy_ms"] = copy_ms;
    j["effective_max_rate"] = m.max_rate != 0 ? m.max_rate : settings_.migration_max_rate;
    // The range's bytes: the fullest source machine's bytes × the range's share of the source
    // shard's span (keys hash uniformly, so bytes spread like tokens).
    json estimate = nullptr, eta = nullptr;
    if (state_.table && (m.phase == MigrationPhase::kQueued ||
                         m.phase == MigrationPhase::kStaging)) {
      const topology::Shard* source = find_shard(*state_.table, m.source);
      Wide source_span = 0;
      for (const auto& r : state_.table->ranges) {
        if (r.shard == m.source) source_span += span(r.start, r.end);
      }
      uint64_t source_bytes = 0;
      if (source != nullptr) {
        for (MachineId id : members(*source)) {
          if (const MachineRecord* rec = state_.find_machine(id)) {
            source_bytes = std::max(source_bytes, rec->load.bytes);
          }
        }
      }
      if (source_span > 0) {
        double est = static_cast<double>(source_bytes) *
                     (static_cast<double>(span(m.start, m.end)) /
                      static_cast<double>(source_span));
        estimate = static_cast<uint64_t>(est);
        if (m.phase == MigrationPhase::kStaging && rate > 0) {
          eta = std::max(0.0, (est - static_cast<double>(bytes)) / rate);
        }
      }
    }
    j["estimated_bytes"] = estimate;
    j["eta_s"] = eta;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace cairn::orchestrator
