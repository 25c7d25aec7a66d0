#include "orchestrator/state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "topology/token_range.h"

namespace cairn::orchestrator {

namespace {

constexpr int kStateVersion = 1;

using nlohmann::json;

std::string errno_text() { return std::strerror(errno); }

Status write_all(int fd, const std::string& data, const std::string& path) {
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::io_error(fmt::format("write {}: {}", path, errno_text()));
    }
    written += static_cast<size_t>(n);
  }
  return Status::ok();
}

Status fsync_directory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::io_error(fmt::format("open directory {}: {}", dir, errno_text()));
  int rc = ::fsync(fd);
  std::string error = rc != 0 ? errno_text() : "";
  ::close(fd);
  if (rc != 0) return Status::io_error(fmt::format("fsync directory {}: {}", dir, error));
  return Status::ok();
}

// Field access that reports a missing or mistyped field by name instead of throwing.
template <typename T>
Status get_field(const json& object, const char* name, T* out, const std::string& where) {
  auto it = object.find(name);
  if (it == object.end()) return Status::invalid_argument(fmt::format("{}: missing \"{}\"", where, name));
  bool type_ok = false;
  if constexpr (std::is_same_v<T, bool>) {
    type_ok = it->is_boolean();
  } else if constexpr (std::is_same_v<T, std::string>) {
    type_ok = it->is_string();
  } else if constexpr (std::is_floating_point_v<T>) {
    type_ok = it->is_number();
  } else if constexpr (std::is_signed_v<T>) {
    type_ok = it->is_number_integer();
  } else {
    type_ok = it->is_number_unsigned();
  }
  if (!type_ok) {
    return Status::invalid_argument(fmt::format("{}: \"{}\" has the wrong type", where, name));
  }
  *out = it->get<T>();
  return Status::ok();
}

#define CAIRN_RETURN_IF_ERROR(expr)      \
  do {                                   \
    Status status_ = (expr);             \
    if (!status_.is_ok()) return status_; \
  } while (0)

json machine_to_json(const MachineRecord& m) {
  return json{{"id", m.id},
              {"address", m.address},
              {"internal_address", m.internal_address},
              {"health", std::string(health_name(m.health))},
              {"draining", m.draining},
              {"load",
               {{"ops_per_sec", m.load.ops_per_sec},
                {"bytes", m.load.bytes},
                {"storage_bytes", m.load.storage_bytes},
                {"p99_us", m.load.p99_us}}}};
}

Status machine_from_json(const json& j, size_t index, MachineRecord* out) {
  std::string where = fmt::format("machines[{}]", index);
  if (!j.is_object()) return Status::invalid_argument(where + " is not an object");
  CAIRN_RETURN_IF_ERROR(get_field(j, "id", &out->id, where));
  CAIRN_RETURN_IF_ERROR(get_field(j, "address", &out->address, where));
  CAIRN_RETURN_IF_ERROR(get_field(j, "internal_address", &out->internal_address, where));
  std::string health;
  CAIRN_RETURN_IF_ERROR(get_field(j, "health", &health, where));
  auto parsed = parse_health(health);
  if (!parsed.is_ok()) return Status::invalid_argument(where + ": " + parsed.status().message());
  out->health = *parsed;
  CAIRN_RETURN_IF_ERROR(get_field(j, "draining", &out->draining, where));
  auto load = j.find("load");
  if (load == j.end() || !load->is_object()) {
    return Status::invalid_argument(where + ": missing \"load\" object");
  }
  std::string load_where = where + ".load";
  CAIRN_RETURN_IF_ERROR(get_field(*load, "ops_per_sec", &out->load.ops_per_sec, load_where));
  CAIRN_RETURN_IF_ERROR(get_field(*load, "bytes", &out->load.bytes, load_where));
  CAIRN_RETURN_IF_ERROR(get_field(*load, "storage_bytes", &out->load.storage_bytes, load_where));
  CAIRN_RETURN_IF_ERROR(get_field(*load, "p99_us", &out->load.p99_us, load_where));
  return Status::ok();
}

// A token: "0x" + hex (as written) or a plain unsigned number.
Status token_field(const json& object, const char* name, topology::Token* out,
                   const std::string& where) {
  auto it = object.find(name);
  if (it == object.end()) {
    return Status::invalid_argument(fmt::format("{}: missing \"{}\"", where, name));
  }
  if (it->is_number_unsigned()) {
    *out = it->get<uint64_t>();
    return Status::ok();
  }
  auto parsed = it->is_string() ? parse_token(it->get<std::string>()) : Result<topology::Token>(
      Status::invalid_argument("not a token"));
  if (!parsed.is_ok()) {
    return Status::invalid_argument(fmt::format("{}: \"{}\" is not a token", where, name));
  }
  *out = *parsed;
  return Status::ok();
}

Status ids_field(const json& object, const char* name, std::vector<topology::MachineId>* out,
                 const std::string& where) {
  auto it = object.find(name);
  if (it == object.end()) return Status::ok();
  if (!it->is_array() || it->size() > topology::kMachinesMax) {
    return Status::invalid_argument(fmt::format("{}: \"{}\" is not an array of ids", where, name));
  }
  for (const json& id : *it) {
    if (!id.is_number_unsigned()) {
      return Status::invalid_argument(fmt::format("{}: \"{}\" holds a non-id", where, name));
    }
    out->push_back(id.get<topology::MachineId>());
  }
  return Status::ok();
}

Status migration_from_json(const json& j, size_t index, Migration* out) {
  std::string where = fmt::format("migrations[{}]", index);
  if (!j.is_object()) return Status::invalid_argument(where + " is not an object");
  CAIRN_RETURN_IF_ERROR(get_field(j, "id", &out->id, where));
  CAIRN_RETURN_IF_ERROR(get_field(j, "kind", &out->kind, where));
  CAIRN_RETURN_IF_ERROR(token_field(j, "start", &out->start, where));
  CAIRN_RETURN_IF_ERROR(token_field(j, "end", &out->end, where));
  CAIRN_RETURN_IF_ERROR(get_field(j, "source", &out->source, where));
  CAIRN_RETURN_IF_ERROR(get_field(j, "target", &out->target, where));
  std::string phase;
  CAIRN_RETURN_IF_ERROR(get_field(j, "phase", &phase, where));
  auto parsed = parse_migration_phase(phase);
  if (!parsed.is_ok()) return Status::invalid_argument(where + ": " + parsed.status().message());
  out->phase = *parsed;
  CAIRN_RETURN_IF_ERROR(get_field(j, "paused", &out->paused, where));
  CAIRN_RETURN_IF_ERROR(get_field(j, "max_rate", &out->max_rate, where));
  CAIRN_RETURN_IF_ERROR(get_field(j, "created_ms", &out->created_ms, where));
  CAIRN_RETURN_IF_ERROR(get_field(j, "updated_ms", &out->updated_ms, where));
  CAIRN_RETURN_IF_ERROR(get_field(j, "phase_started_ms", &out->phase_started_ms, where));
  CAIRN_RETURN_IF_ERROR(get_field(j, "attempt", &out->attempt, where));
  CAIRN_RETURN_IF_ERROR(get_field(j, "driver", &out->driver, where));
  CAIRN_RETURN_IF_ERROR(get_field(j, "commit_epoch", &out->commit_epoch, where));
  CAIRN_RETURN_IF_ERROR(get_field(j, "fence_ms_last", &out->fence_ms_last, where));
  CAIRN_RETURN_IF_ERROR(get_field(j, "fence_ms_max", &out->fence_ms_max, where));
  CAIRN_RETURN_IF_ERROR(get_field(j, "fence_attempt", &out->fence_attempt, where));
  auto fences = j.find("fence_history");
  if (fences != j.end()) {
    if (!fences->is_array() || fences->size() > kFenceHistoryMax) {
      return Status::invalid_argument(where + ": \"fence_history\" is not a short array");
    }
    for (const json& f : *fences) {
      if (!f.is_number_unsigned()) {
        return Status::invalid_argument(where + ": \"fence_history\" holds a non-number");
      }
      out->fence_history.push_back(f.get<uint64_t>());
    }
  }
  CAIRN_RETURN_IF_ERROR(get_field(j, "error", &out->error, where));
  CAIRN_RETURN_IF_ERROR(get_field(j, "cancel_requested", &out->cancel_requested, where));
  auto progress = j.find("progress");
  if (progress != j.end()) {
    if (!progress->is_array() || progress->size() > topology::kMachinesMax) {
      return Status::invalid_argument(where + ": \"progress\" is not an array");
    }
    for (size_t i = 0; i < progress->size(); ++i) {
      const json& p = (*progress)[i];
      std::string at = fmt::format("{}.progress[{}]", where, i);
      if (!p.is_object()) return Status::invalid_argument(at + " is not an object");
      TargetProgress t;
      CAIRN_RETURN_IF_ERROR(get_field(p, "machine", &t.machine, at));
      CAIRN_RETURN_IF_ERROR(get_field(p, "staged", &t.staged, at));
      CAIRN_RETURN_IF_ERROR(get_field(p, "ready", &t.ready, at));
      CAIRN_RETURN_IF_ERROR(get_field(p, "keys", &t.keys, at));
      CAIRN_RETURN_IF_ERROR(get_field(p, "bytes", &t.bytes, at));
      CAIRN_RETURN_IF_ERROR(get_field(p, "lag", &t.lag, at));
      CAIRN_RETURN_IF_ERROR(get_field(p, "rate", &t.rate, at));
      if (p.contains("copy_ms")) {  // absent in state files written before it existed
        CAIRN_RETURN_IF_ERROR(get_field(p, "copy_ms", &t.copy_ms, at));
      }
      out->progress.push_back(t);
    }
  }
  CAIRN_RETURN_IF_ERROR(ids_field(j, "sources_at_commit", &out->sources_at_commit, where));
  CAIRN_RETURN_IF_ERROR(ids_field(j, "cleaned", &out->cleaned, where));
  return Status::ok();
}

Result<State> parse_state(const json& j) {
  if (!j.is_object()) return Status::invalid_argument("state is not a JSON object");
  int version = 0;
  CAIRN_RETURN_IF_ERROR(get_field(j, "version", &version, "state"));
  if (version != kStateVersion) {
    return Status::invalid_argument(fmt::format("state: unsupported version {}", version));
  }
  State state;
  CAIRN_RETURN_IF_ERROR(get_field(j, "next_event_seq", &state.next_event_seq, "state"));
  auto machines = j.find("machines");
  if (machines == j.end() || !machines->is_array()) {
    return Status::invalid_argument("state: missing \"machines\" array");
  }
  if (machines->size() > topology::kMachinesMax) {
    return Status::invalid_argument("state: too many machines");
  }
  for (size_t i = 0; i < machines->size(); ++i) {
    MachineRecord m;
    CAIRN_RETURN_IF_ERROR(machine_from_json((*machines)[i], i, &m));
    state.machines.push_back(std::move(m));
  }
  auto table = j.find("table");
  if (table == j.end()) return Status::invalid_argument("state: missing \"table\"");
  if (!table->is_null()) {
    auto parsed = topology::RoutingTable::from_json(*table);
    if (!parsed.is_ok()) {
      return Status::invalid_argument("state.table: " + parsed.status().message());
    }
    state.table = parsed->spec();
  }
  auto events = j.find("events");
  if (events == j.end() || !events->is_array() || events->size() > kEventsMax) {
    return Status::invalid_argument("state: \"events\" is missing, not an array or too long");
  }
  for (size_t i = 0; i < events->size(); ++i) {
    const json& e = (*events)[i];
    std::string where = fmt::format("events[{}]", i);
    if (!e.is_object()) return Status::invalid_argument(where + " is not an object");
    Event event;
    CAIRN_RETURN_IF_ERROR(get_field(e, "seq", &event.seq, where));
    CAIRN_RETURN_IF_ERROR(get_field(e, "time_ms", &event.time_ms, where));
    CAIRN_RETURN_IF_ERROR(get_field(e, "message", &event.message, where));
    state.events.push_back(std::move(event));
  }
  auto history = j.find("history");
  if (history == j.end() || !history->is_array() || history->size() > kHistoryMax) {
    return Status::invalid_argument("state: \"history\" is missing, not an array or too long");
  }
  for (size_t i = 0; i < history->size(); ++i) {
    const json& h = (*history)[i];
    std::string where = fmt::format("history[{}]", i);
    if (!h.is_object()) return Status::invalid_argument(where + " is not an object");
    HistorySample sample;
    CAIRN_RETURN_IF_ERROR(get_field(h, "time_ms", &sample.time_ms, where));
    CAIRN_RETURN_IF_ERROR(get_field(h, "down", &sample.down, where));
    state.history.push_back(sample);
  }
  // Both optional: files written before migrations existed load with none.
  if (j.contains("next_migration_id")) {
    CAIRN_RETURN_IF_ERROR(get_field(j, "next_migration_id", &state.next_migration_id, "state"));
  }
  auto migrations = j.find("migrations");
  if (migrations != j.end()) {
    if (!migrations->is_array() ||
        migrations->size() > kActiveMigrationsMax + kFinishedMigrationsMax) {
      return Status::invalid_argument("state: \"migrations\" is not an array or too long");
    }
    for (size_t i = 0; i < migrations->size(); ++i) {
      Migration m;
      CAIRN_RETURN_IF_ERROR(migration_from_json((*migrations)[i], i, &m));
      state.migrations.push_back(std::move(m));
    }
  }
  std::sort(state.machines.begin(), state.machines.end(),
            [](const MachineRecord& a, const MachineRecord& b) { return a.id < b.id; });
  std::sort(state.migrations.begin(), state.migrations.end(),
            [](const Migration& a, const Migration& b) { return a.id < b.id; });
  return state;
}

}  // namespace

std::string_view migration_phase_name(MigrationPhase phase) {
  switch (phase) {
    case MigrationPhase::kQueued: return "queued";
    case MigrationPhase::kStaging: return "staging";
    case MigrationPhase::kCatchup: return "catchup";
    case MigrationPhase::kCutover: return "cutover";
    case MigrationPhase::kCleanup: return "cleanup";
    case MigrationPhase::kDone: return "done";
    case MigrationPhase::kCancelled: return "cancelled";
  }
  return "?";
}

Result<MigrationPhase> parse_migration_phase(std::string_view name) {
  for (auto phase : {MigrationPhase::kQueued, MigrationPhase::kStaging, MigrationPhase::kCatchup,
                     MigrationPhase::kCutover, MigrationPhase::kCleanup, MigrationPhase::kDone,
                     MigrationPhase::kCancelled}) {
    if (migration_phase_name(phase) == name) return phase;
  }
  return Status::invalid_argument(fmt::format("unknown migration phase \"{}\"", name));
}

bool Migration::overlaps(topology::Token other_start, topology::Token other_end) const {
  return topology::ranges_overlap(start, end, other_start, other_end);
}

std::string Migration::range_text() const {
  return fmt::format("[{}, {})", topology::format_token(start), topology::format_token(end));
}

TargetProgress* Migration::find_progress(topology::MachineId machine) {
  for (auto& p : progress) {
    if (p.machine == machine) return &p;
  }
  return nullptr;
}

nlohmann::json migration_to_json(const Migration& m) {
  json progress = json::array();
  for (const auto& p : m.progress) {
    progress.push_back({{"machine", p.machine}, {"staged", p.staged}, {"ready", p.ready},
                        {"keys", p.keys}, {"bytes", p.bytes}, {"lag", p.lag},
                        {"rate", p.rate}, {"copy_ms", p.copy_ms}});
  }
  return json{{"id", m.id},
              {"kind", m.kind},
              {"start", topology::format_token(m.start)},
              {"end", topology::format_token(m.end)},
              {"source", m.source},
              {"target", m.target},
              {"phase", std::string(migration_phase_name(m.phase))},
              {"paused", m.paused},
              {"max_rate", m.max_rate},
              {"created_ms", m.created_ms},
              {"updated_ms", m.updated_ms},
              {"phase_started_ms", m.phase_started_ms},
              {"attempt", m.attempt},
              {"driver", m.driver},
              {"commit_epoch", m.commit_epoch},
              {"fence_ms_last", m.fence_ms_last},
              {"fence_ms_max", m.fence_ms_max},
              {"fence_attempt", m.fence_attempt},
              {"fence_history", m.fence_history},
              {"error", m.error},
              {"cancel_requested", m.cancel_requested},
              {"progress", std::move(progress)},
              {"sources_at_commit", m.sources_at_commit},
              {"cleaned", m.cleaned}};
}

Migration* State::find_migration(uint64_t id) {
  auto it = std::lower_bound(migrations.begin(), migrations.end(), id,
                             [](const Migration& m, uint64_t v) { return m.id < v; });
  return it != migrations.end() && it->id == id ? &*it : nullptr;
}

void State::prune_migrations() {
  size_t finished = std::count_if(migrations.begin(), migrations.end(),
                                  [](const Migration& m) { return m.finished(); });
  // Oldest first: migrations are sorted by id, and ids grow with time.
  for (auto it = migrations.begin(); finished > kFinishedMigrationsMax && it != migrations.end();) {
    if (it->finished()) {
      it = migrations.erase(it);
      --finished;
    } else {
      ++it;
    }
  }
}

MachineRecord* State::find_machine(topology::MachineId id) {
  auto it = std::lower_bound(machines.begin(), machines.end(), id,
                             [](const MachineRecord& m, topology::MachineId v) { return m.id < v; });
  return it != machines.end() && it->id == id ? &*it : nullptr;
}

const MachineRecord* State::find_machine(topology::MachineId id) const {
  return const_cast<State*>(this)->find_machine(id);
}

void State::add_event(int64_t time_ms, std::string message) {
  if (message.size() > kEventMessageBytesMax) message.resize(kEventMessageBytesMax);
  events.push_back(Event{next_event_seq++, time_ms, std::move(message)});
  while (events.size() > kEventsMax) events.pop_front();
}

void State::add_history(int64_t time_ms, uint32_t down) {
  history.push_back(HistorySample{time_ms, down});
  while (history.size() > kHistoryMax) history.pop_front();
}

double State::average_down() const {
  if (history.empty()) return 0;
  double sum = 0;
  for (const auto& sample : history) sum += sample.down;
  return sum / static_cast<double>(history.size());
}

std::string_view health_name(Health health) {
  switch (health) {
    case Health::kUp: return "up";
    case Health::kDown: return "down";
    case Health::kDead: return "dead";
  }
  return "?";
}

Result<Health> parse_health(std::string_view name) {
  if (name == "up") return Health::kUp;
  if (name == "down") return Health::kDown;
  if (name == "dead") return Health::kDead;
  return Status::invalid_argument(fmt::format("unknown health \"{}\"", name));
}

nlohmann::json state_to_json(const State& state) {
  json machines = json::array();
  for (const auto& m : state.machines) machines.push_back(machine_to_json(m));
  json events = json::array();
  for (const auto& e : state.events) {
    events.push_back({{"seq", e.seq}, {"time_ms", e.time_ms}, {"message", e.message}});
  }
  json history = json::array();
  for (const auto& h : state.history) {
    history.push_back({{"time_ms", h.time_ms}, {"down", h.down}});
  }
  json table = nullptr;
  if (state.table) {
    auto created = topology::RoutingTable::create(*state.table);
    CAIRN_ASSERT(created.is_ok(), "the orchestrator holds an invalid table: " +
                                      created.status().to_string());
    table = created->to_json();
  }
  json migrations = json::array();
  for (const auto& m : state.migrations) migrations.push_back(migration_to_json(m));
  return json{{"version", kStateVersion}, {"next_event_seq", state.next_event_seq},
              {"machines", std::move(machines)}, {"table", std::move(table)},
              {"events", std::move(events)},     {"history", std::move(history)},
              {"next_migration_id", state.next_migration_id},
              {"migrations", std::move(migrations)}};
}

Result<State> state_from_json(const nlohmann::json& json) {
  try {
    auto state = parse_state(json);
    if (!state.is_ok()) return state;
    Status valid = validate_state(*state);
    if (!valid.is_ok()) return valid;
    return state;
  } catch (const nlohmann::json::exception& e) {
    // get<T>() range errors (e.g. a negative id) end here: still a value, never a throw.
    return Status::invalid_argument(std::string("state: ") + e.what());
  }
}

namespace {

Status validate_migrations(const State& state) {
  size_t finished = 0;
  std::vector<const Migration*> active;
  for (size_t i = 0; i < state.migrations.size(); ++i) {
    const Migration& m = state.migrations[i];
    std::string where = fmt::format("migration {}", m.id);
    if (m.id == 0 || m.id >= state.next_migration_id) {
      return Status::invalid_argument(where + ": id is 0 or not below next_migration_id");
    }
    if (i > 0 && state.migrations[i - 1].id >= m.id) {
      return Status::invalid_argument(where + ": ids are not unique and increasing");
    }
    if (m.kind != "rebalance" && m.kind != "split" && m.kind != "move" && m.kind != "hot-split") {
      return Status::invalid_argument(fmt::format("{}: unknown kind \"{}\"", where, m.kind));
    }
    if (m.end != 0 && m.end <= m.start) {
      return Status::invalid_argument(where + ": empty range " + m.range_text());
    }
    if (m.source == topology::kNoShard || m.target == topology::kNoShard || m.source == m.target) {
      return Status::invalid_argument(where + ": source and target must be distinct shards");
    }
    if (m.fence_history.size() > kFenceHistoryMax) {
      return Status::invalid_argument(where + ": fence history too long");
    }
    if (m.finished()) {
      ++finished;
      continue;
    }
    for (const Migration* other : active) {
      if (other->overlaps(m.start, m.end)) {
        return Status::invalid_argument(fmt::format("{}: range {} overlaps active migration {}",
                                                    where, m.range_text(), other->id));
      }
    }
    active.push_back(&m);
  }
  if (finished > kFinishedMigrationsMax) {
    return Status::invalid_argument("more than the kept number of finished migrations");
  }
  if (active.size() > kActiveMigrationsMax) {
    return Status::invalid_argument("too many active migrations");
  }
  return Status::ok();
}

}  // namespace

Status validate_state(const State& state) {
  std::set<topology::MachineId> ids;
  for (const auto& m : state.machines) {
    if (m.id == topology::kNoMachine) return Status::invalid_argument("machine id 0");
    if (!ids.insert(m.id).second) {
      return Status::invalid_argument(fmt::format("machine {} appears twice", m.id));
    }
  }
  if (state.table) {
    Status valid = topology::validate(*state.table);
    if (!valid.is_ok()) return Status::invalid_argument("table: " + valid.message());
    for (const auto& shard : state.table->shards) {
      for (const auto* list : {&shard.replicas, &shard.extras, &shard.joining}) {
        for (auto id : *list) {
          if (!ids.contains(id)) {
            return Status::invalid_argument(
                fmt::format("shard {} names machine {}, which is not registered", shard.id, id));
          }
        }
      }
    }
  }
  for (size_t i = 1; i < state.events.size(); ++i) {
    if (state.events[i].seq <= state.events[i - 1].seq) {
      return Status::invalid_argument(fmt::format("events[{}]: sequence does not increase", i));
    }
  }
  if (!state.events.empty() && state.next_event_seq <= state.events.back().seq) {
    return Status::invalid_argument("next_event_seq is not past the last event");
  }
  return validate_migrations(state);
}

Status save_state(const std::string& path, const State& state) {
  std::string text = state_to_json(state).dump(1);
  text.push_back('\n');
  std::filesystem::path target(path);
  std::string dir = target.has_parent_path() ? target.parent_path().string() : ".";
  std::string temp = path + ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error(fmt::format("create {}: {}", temp, errno_text()));
  Status written = write_all(fd, text, temp);
  if (written.is_ok() && ::fsync(fd) != 0) {
    written = Status::io_error(fmt::format("fsync {}: {}", temp, errno_text()));
  }
  ::close(fd);
  if (!written.is_ok()) {
    ::unlink(temp.c_str());
    return written;
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    Status failed = Status::io_error(fmt::format("rename {} to {}: {}", temp, path, errno_text()));
    ::unlink(temp.c_str());
    return failed;
  }
  // Without this the rename itself may be lost at a power failure.
  return fsync_directory(dir);
}

Result<State> load_state(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return Status::not_found(fmt::format("{} does not exist", path));
  }
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return Status::io_error(fmt::format("stat {}: {}", path, ec.message()));
  if (size > kStateFileBytesMax) {
    return Status::corruption(fmt::format("{}: {} bytes, more than the limit {}", path, size,
                                          kStateFileBytesMax));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error(fmt::format("open {}: {}", path, errno_text()));
  std::stringstream buffer;
  buffer << in.rdbuf();
  json parsed = json::parse(buffer.str(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return Status::corruption(fmt::format(
        "{} is not valid JSON (corrupt or truncated); fix or move it away to start afresh",
        path));
  }
  auto state = state_from_json(parsed);
  if (!state.is_ok()) {
    return Status::corruption(fmt::format("{}: {}", path, state.status().message()));
  }
  return state;
}

}  // namespace cairn::orchestrator
