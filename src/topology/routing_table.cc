#include "topology/routing_table.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

namespace cairn::topology {
namespace {

using Json = nlohmann::json;

// Deeper JSON than this is never a routing table; refusing it early bounds the parser's work.
constexpr size_t kJsonDepthMax = 16;

constexpr MachineState kMachineStates[] = {MachineState::kUp,    MachineState::kDown,
                                           MachineState::kDead,  MachineState::kJoining,
                                           MachineState::kSpare, MachineState::kLeaving};

bool is_known_state(MachineState state) {
  return std::find(std::begin(kMachineStates), std::end(kMachineStates), state) !=
         std::end(kMachineStates);
}

std::string format_range(const Range& range) {
  return fmt::format("[{}, {})", format_token(range.start),
                     range.end == 0 ? std::string("2^64") : format_token(range.end));
}

// "host:port" with a non-empty host (an IPv6 host in brackets) and a port in 1..65535.
Status check_address(MachineId id, std::string_view field, std::string_view address) {
  auto bad = [&](std::string_view why) {
    return Status::invalid_argument(
        fmt::format("machine {} {} \"{}\" {}", id, field, address, why));
  };
  if (address.size() > kAddressBytesMax) return bad("is too long");
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return bad("is not host:port");
  const std::string_view host = address.substr(0, colon);
  const std::string_view port = address.substr(colon + 1);
  if (host.empty()) return bad("has an empty host");
  if (host.find(':') != std::string_view::npos &&
      (host.front() != '[' || host.back() != ']' || host.size() < 3)) {
    return bad("has an IPv6 host that is not in brackets");
  }
  uint32_t port_number = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() ||
      port_number == 0 || port_number > 65535) {
    return bad("has no valid port (1-65535)");
  }
  return Status::ok();
}

Status check_machines(const RoutingTableSpec& spec) {
  if (spec.machines.size() > kMachinesMax) {
    return Status::invalid_argument(
        fmt::format("{} machines, at most {} allowed", spec.machines.size(), kMachinesMax));
  }
  std::unordered_set<MachineId> ids;
  std::unordered_set<std::string_view> addresses;
  std::unordered_set<std::string_view> internal_addresses;
  for (const Machine& machine : spec.machines) {
    if (machine.id == kNoMachine) return Status::invalid_argument("machine id 0 is reserved");
    if (!ids.insert(machine.id).second) {
      return Status::invalid_argument(fmt::format("machine {} appears twice", machine.id));
    }
    if (!is_known_state(machine.state)) {
      return Status::invalid_argument(fmt::format("machine {} has an unknown state", machine.id));
    }
    if (Status s = check_address(machine.id, "address", machine.address); !s.is_ok()) return s;
    if (Status s = check_address(machine.id, "internal_address", machine.internal_address);
        !s.is_ok()) {
      return s;
    }
    if (!addresses.insert(machine.address).second) {
      return Status::invalid_argument(fmt::format(
          "machine {} address {} is used by another machine", machine.id, machine.address));
    }
    if (!internal_addresses.insert(machine.internal_address).second) {
      return Status::invalid_argument(
          fmt::format("machine {} internal_address {} is used by another machine", machine.id,
                      machine.internal_address));
    }
  }
  return Status::ok();
}

Status check_shard(const RoutingTableSpec& spec, const Shard& shard,
                   const std::unordered_map<MachineId, const Machine*>& machines) {
  // Fewer is allowed (a dead replica removed before its replacement has its data); more never.
  if (shard.replicas.size() > spec.replication_factor) {
    return Status::invalid_argument(
        fmt::format("shard {} has {} voting replicas, more than the replication factor {}",
                    shard.id, shard.replicas.size(), spec.replication_factor));
  }
  if (shard.extras.size() > kMachinesMax || shard.joining.size() > kMachinesMax) {
    return Status::invalid_argument(fmt::format("shard {} has too many members", shard.id));
  }
  std::unordered_map<MachineId, std::string_view> roles;
  auto add_role = [&](const std::vector<MachineId>& members, std::string_view role) -> Status {
    for (MachineId id : members) {
      const auto machine = machines.find(id);
      if (machine == machines.end()) {
        return Status::invalid_argument(
            fmt::format("shard {} {} machine {} is not in the table", shard.id, role, id));
      }
      if (machine->second->state == MachineState::kSpare) {
        return Status::invalid_argument(
            fmt::format("shard {} {} machine {} is a spare", shard.id, role, id));
      }
      const auto [previous, inserted] = roles.emplace(id, role);
      if (!inserted) {
        return Status::invalid_argument(fmt::format("shard {} lists machine {} as {} and as {}",
                                                    shard.id, id, previous->second, role));
      }
    }
    return Status::ok();
  };
  if (Status s = add_role(shard.replicas, "voting replica"); !s.is_ok()) return s;
  if (Status s = add_role(shard.extras, "extra replica"); !s.is_ok()) return s;
  if (Status s = add_role(shard.joining, "joining replica"); !s.is_ok()) return s;
  if (shard.leader == kNoMachine) {
    if (shard.lease_expiry_ms != 0) {
      return Status::invalid_argument(
          fmt::format("shard {} has a lease expiry but no leader", shard.id));
    }
  } else if (std::find(shard.replicas.begin(), shard.replicas.end(), shard.leader) ==
             shard.replicas.end()) {
    return Status::invalid_argument(fmt::format(
        "shard {} leader {} is not one of its voting replicas", shard.id, shard.leader));
  }
  return Status::ok();
}

Status check_shards(const RoutingTableSpec& spec) {
  if (spec.replication_factor == 0 || spec.replication_factor > kReplicationFactorMax) {
    return Status::invalid_argument(fmt::format("replication factor {} is not in 1..{}",
                                                spec.replication_factor, kReplicationFactorMax));
  }
  if (spec.shards.empty()) return Status::invalid_argument("the table has no shard");
  if (spec.shards.size() > kShardsMax) {
    return Status::invalid_argument(
        fmt::format("{} shards, at most {} allowed", spec.shards.size(), kShardsMax));
  }
  std::unordered_map<MachineId, const Machine*> machines;
  for (const Machine& machine : spec.machines) machines.emplace(machine.id, &machine);
  std::unordered_set<ShardId> ids;
  for (const Shard& shard : spec.shards) {
    if (shard.id == kNoShard) return Status::invalid_argument("shard id 0 is reserved");
    if (!ids.insert(shard.id).second) {
      return Status::invalid_argument(fmt::format("shard {} appears twice", shard.id));
    }
    if (Status s = check_shard(spec, shard, machines); !s.is_ok()) return s;
  }
  return Status::ok();
}

Status check_ranges(const RoutingTableSpec& spec) {
  const std::vector<Range>& ranges = spec.ranges;
  if (ranges.empty()) return Status::invalid_argument("the table has no range");
  if (ranges.size() > kRangesMax) {
    return Status::invalid_argument(
        fmt::format("{} ranges, at most {} allowed", ranges.size(), kRangesMax));
  }
  std::unordered_set<ShardId> shards;
  for (const Shard& shard : spec.shards) shards.insert(shard.id);
  Token expected_start = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const Range& range = ranges[i];
    const bool last = i + 1 == ranges.size();
    if (range.start != expected_start) {
      const char* why = i == 0                         ? "the first range must start at token 0"
                        : range.start > expected_start ? "a gap after the previous range"
                                                       : "it overlaps the previous range";
      return Status::invalid_argument(fmt::format("range {} {} starts at {}, expected {} ({})", i,
                                                  format_range(range), format_token(range.start),
                                                  format_token(expected_start), why));
    }
    if (range.end == 0 && !last) {
      return Status::invalid_argument(fmt::format(
          "range {} {} ends at 2^64 but is not the last range", i, format_range(range)));
    }
    if (range.end != 0 && range.end <= range.start) {
      return Status::invalid_argument(
          fmt::format("range {} {} is empty or reversed", i, format_range(range)));
    }
    if (last && range.end != 0) {
      return Status::invalid_argument(
          fmt::format("the last range {} ends at {}, the ring is not covered up to 2^64",
                      format_range(range), format_token(range.end)));
    }
    if (shards.find(range.shard) == shards.end()) {
      return Status::invalid_argument(
          fmt::format("range {} {} is owned by shard {}, which is "
                      "not in the table",
                      i, format_range(range), range.shard));
    }
    expected_start = range.end;
  }
  return Status::ok();
}

// ---- JSON parsing. Every helper names the path of the field it rejects. ----

Status field_error(std::string_view path, std::string_view why) {
  return Status::invalid_argument(fmt::format("routing table JSON: {}: {}", path, why));
}

Status check_object(const Json& json, std::string_view path,
                    std::initializer_list<std::string_view> allowed) {
  if (!json.is_object()) return field_error(path, "expected an object");
  for (const auto& item : json.items()) {
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
      return field_error(path, fmt::format("unknown field \"{}\"", item.key()));
    }
  }
  return Status::ok();
}

// Reads json[key] as a non-negative integer. When the field is absent, an optional field keeps
// `*out` unchanged and a required one is an error.
Status read_u64(const Json& json, std::string_view path, const char* key, bool required,
                uint64_t* out) {
  const auto it = json.find(key);
  const std::string field = fmt::format("{}.{}", path, key);
  if (it == json.end()) return required ? field_error(field, "missing") : Status::ok();
  if (it->is_number_unsigned()) {
    *out = it->get<uint64_t>();
  } else if (it->is_number_integer() && it->get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(it->get<int64_t>());
  } else {
    return field_error(field, "expected a non-negative integer");
  }
  return Status::ok();
}

Status read_string(const Json& json, std::string_view path, const char* key, std::string* out) {
  const auto it = json.find(key);
  const std::string field = fmt::format("{}.{}", path, key);
  if (it == json.end()) return field_error(field, "missing");
  if (!it->is_string()) return field_error(field, "expected a string");
  *out = it->get<std::string>();
  return Status::ok();
}

Status read_token(const Json& json, std::string_view path, const char* key, Token* out) {
  const auto it = json.find(key);
  const std::string field = fmt::format("{}.{}", path, key);
  if (it == json.end()) return field_error(field, "missing");
  if (!it->is_string()) return read_u64(json, path, key, true, out);
  const std::string& text = it->get_ref<const std::string&>();
  auto bad = [&] {
    return field_error(field, fmt::format("\"{}\" is not a token (0x and 1-16 hex digits)", text));
  };
  if (text.size() < 3 || text.size() > 18 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X')) {
    return bad();
  }
  const char* begin = text.data() + 2;
  const char* end = text.data() + text.size();
  const auto [parsed_end, error] = std::from_chars(begin, end, *out, 16);
  if (error != std::errc() || parsed_end != end) return bad();
  return Status::ok();
}

Status read_id_list(const Json& json, std::string_view path, const char* key, bool required,
                    std::vector<uint64_t>* out) {
  const auto it = json.find(key);
  const std::string field = fmt::format("{}.{}", path, key);
  if (it == json.end()) return required ? field_error(field, "missing") : Status::ok();
  if (!it->is_array()) return field_error(field, "expected an array of machine ids");
  if (it->size() > kMachinesMax) return field_error(field, "too many entries");
  out->clear();
  for (const Json& element : *it) {
    if (!element.is_number_unsigned() &&
        !(element.is_number_integer() && element.get<int64_t>() >= 0)) {
      return field_error(field, "expected an array of machine ids (non-negative integers)");
    }
    out->push_back(element.get<uint64_t>());
  }
  return Status::ok();
}

const Json* find_array(const Json& json, const char* key, size_t max, Status* status) {
  const auto it = json.find(key);
  if (it == json.end()) {
    *status = field_error(key, "missing");
    return nullptr;
  }
  if (!it->is_array()) {
    *status = field_error(key, "expected an array");
    return nullptr;
  }
  if (it->size() > max) {
    *status = field_error(key, fmt::format("{} entries, at most {} allowed", it->size(), max));
    return nullptr;
  }
  return &*it;
}

Status parse_machine(const Json& json, std::string_view path, Machine* machine) {
  if (Status s = check_object(json, path, {"id", "address", "internal_address", "state"});
      !s.is_ok()) {
    return s;
  }
  if (Status s = read_u64(json, path, "id", true, &machine->id); !s.is_ok()) return s;
  if (Status s = read_string(json, path, "address", &machine->address); !s.is_ok()) return s;
  if (Status s = read_string(json, path, "internal_address", &machine->internal_address);
      !s.is_ok()) {
    return s;
  }
  std::string state;
  if (Status s = read_string(json, path, "state", &state); !s.is_ok()) return s;
  Result<MachineState> parsed = parse_machine_state(state);
  if (!parsed.is_ok()) return field_error(fmt::format("{}.state", path), parsed.status().message());
  machine->state = parsed.value();
  return Status::ok();
}

Status parse_shard(const Json& json, std::string_view path, Shard* shard) {
  if (Status s = check_object(json, path,
                              {"id", "replicas", "extras", "joining", "leader", "lease_expiry_ms"});
      !s.is_ok()) {
    return s;
  }
  if (Status s = read_u64(json, path, "id", true, &shard->id); !s.is_ok()) return s;
  if (Status s = read_id_list(json, path, "replicas", true, &shard->replicas); !s.is_ok()) return s;
  if (Status s = read_id_list(json, path, "extras", false, &shard->extras); !s.is_ok()) return s;
  if (Status s = read_id_list(json, path, "joining", false, &shard->joining); !s.is_ok()) return s;
  if (Status s = read_u64(json, path, "leader", false, &shard->leader); !s.is_ok()) return s;
  return read_u64(json, path, "lease_expiry_ms", false, &shard->lease_expiry_ms);
}

Status parse_range(const Json& json, std::string_view path, Range* range) {
  if (Status s = check_object(json, path, {"start", "end", "shard"}); !s.is_ok()) return s;
  if (Status s = read_token(json, path, "start", &range->start); !s.is_ok()) return s;
  if (Status s = read_token(json, path, "end", &range->end); !s.is_ok()) return s;
  return read_u64(json, path, "shard", true, &range->shard);
}

// Parses each element of the array `key` with `parse_one`.
template <typename T, typename Parse>
Status parse_array(const Json& json, const char* key, size_t max, Parse parse_one,
                   std::vector<T>* out) {
  Status status;
  const Json* array = find_array(json, key, max, &status);
  if (array == nullptr) return status;
  out->reserve(array->size());
  for (size_t i = 0; i < array->size(); ++i) {
    T item;
    if (Status s = parse_one((*array)[i], fmt::format("{}[{}]", key, i), &item); !s.is_ok()) {
      return s;
    }
    out->push_back(std::move(item));
  }
  return Status::ok();
}

Result<RoutingTableSpec> parse_spec(const Json& json) {
  if (Status s = check_object(json, "table",
                              {"epoch", "replication_factor", "machines", "shards", "ranges"});
      !s.is_ok()) {
    return s;
  }
  RoutingTableSpec spec;
  if (Status s = read_u64(json, "table", "epoch", true, &spec.epoch); !s.is_ok()) return s;
  uint64_t replication_factor = 0;
  if (Status s = read_u64(json, "table", "replication_factor", true, &replication_factor);
      !s.is_ok()) {
    return s;
  }
  if (replication_factor == 0 || replication_factor > kReplicationFactorMax) {
    return field_error(
        "table.replication_factor",
        fmt::format("{} is not in 1..{}", replication_factor, kReplicationFactorMax));
  }
  spec.replication_factor = static_cast<uint32_t>(replication_factor);
  if (Status s = parse_array(json, "machines", kMachinesMax, parse_machine, &spec.machines);
      !s.is_ok()) {
    return s;
  }
  if (Status s = parse_array(json, "shards", kShardsMax, parse_shard, &spec.shards); !s.is_ok()) {
    return s;
  }
  if (Status s = parse_array(json, "ranges", kRangesMax, parse_range, &spec.ranges); !s.is_ok()) {
    return s;
  }
  return spec;
}

// The deepest nesting of arrays and objects in `text`, counting only brackets outside strings.
size_t json_depth(std::string_view text) {
  size_t depth = 0;
  size_t deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

Json range_to_json(const Range& range) {
  return Json{{"start", format_token(range.start)},
              {"end", format_token(range.end)},
              {"shard", range.shard}};
}

}  // namespace

std::string_view machine_state_name(MachineState state) {
  switch (state) {
    case MachineState::kUp:
      return "up";
    case MachineState::kDown:
      return "down";
    case MachineState::kDead:
      return "dead";
    case MachineState::kJoining:
      return "joining";
    case MachineState::kSpare:
      return "spare";
    case MachineState::kLeaving:
      return "leaving";
  }
  return "unknown";
}

Result<MachineState> parse_machine_state(std::string_view name) {
  for (MachineState state : kMachineStates) {
    if (machine_state_name(state) == name) return state;
  }
  return Status::invalid_argument(fmt::format(
      "unknown machine state \"{}\" (expected up, down, dead, joining, spare or leaving)", name));
}

std::string format_token(Token token) { return fmt::format("0x{:016x}", token); }

Result<Token> parse_token(std::string_view text) {
  int base = 10;
  if (text.starts_with("0x") || text.starts_with("0X")) {
    text.remove_prefix(2);
    base = 16;
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Status::invalid_argument(fmt::format("\"{}\" is not a token (0x hex or decimal)",
                                                text));
  }
  return value;
}


Status validate(const RoutingTableSpec& spec) {
  if (Status s = check_machines(spec); !s.is_ok()) return s;
  if (Status s = check_shards(spec); !s.is_ok()) return s;
  return check_ranges(spec);
}

Result<RoutingTable> RoutingTable::create(RoutingTableSpec spec) {
  if (Status s = validate(spec); !s.is_ok()) return s;
  std::sort(spec.machines.begin(), spec.machines.end(),
            [](const Machine& a, const Machine& b) { return a.id < b.id; });
  std::sort(spec.shards.begin(), spec.shards.end(),
            [](const Shard& a, const Shard& b) { return a.id < b.id; });
  return RoutingTable(std::move(spec));
}

Result<RoutingTable> RoutingTable::make_initial(std::vector<Machine> machines, uint32_t shard_count,
                                                uint32_t replication_factor,
                                                uint32_t ranges_per_shard) {
  if (shard_count == 0 || shard_count > kShardsMax) {
    return Status::invalid_argument(
        fmt::format("shard count {} is not in 1..{}", shard_count, kShardsMax));
  }
  if (replication_factor == 0 || replication_factor > kReplicationFactorMax) {
    return Status::invalid_argument(fmt::format("replication factor {} is not in 1..{}",
                                                replication_factor, kReplicationFactorMax));
  }
  const uint64_t range_count = uint64_t{shard_count} * ranges_per_shard;
  if (ranges_per_shard == 0 || range_count > kRangesMax) {
    return Status::invalid_argument(
        fmt::format("{} ranges per shard: need at least 1 and at most {} ranges in all",
                    ranges_per_shard, kRangesMax));
  }
  const uint64_t members = uint64_t{shard_count} * replication_factor;
  if (machines.size() < members) {
    return Status::invalid_argument(
        fmt::format("{} shards with replication factor {} need {} machines, only {} given",
                    shard_count, replication_factor, members, machines.size()));
  }
  RoutingTableSpec spec;
  spec.epoch = 1;
  spec.replication_factor = replication_factor;
  for (uint32_t k = 0; k < shard_count; ++k) {
    Shard shard;
    shard.id = k + 1;
    for (uint32_t r = 0; r < replication_factor; ++r) {
      Machine& machine = machines[uint64_t{k} * replication_factor + r];
      machine.state = MachineState::kUp;
      shard.replicas.push_back(machine.id);
    }
    shard.leader = shard.replicas.front();
    spec.shards.push_back(std::move(shard));
  }
  for (size_t i = members; i < machines.size(); ++i) machines[i].state = MachineState::kSpare;
  spec.machines = std::move(machines);
  // Range i starts at slot floor(i * 16384 / range_count), so every slot lies in one range
  // (docs/cluster.md, Redis Cluster clients) and the sizes differ by at most one slot. With more
  // ranges than slots, range i starts at floor(i * 2^64 / range_count) instead.
  const auto boundary = [range_count](uint64_t i) -> Token {
    if (range_count <= kSlotCount) {
      return slot_start(static_cast<Slot>(i * kSlotCount / range_count));
    }
    return static_cast<Token>((static_cast<unsigned __int128>(i) << 64) / range_count);
  };
  for (uint64_t i = 0; i < range_count; ++i) {
    const Token end = i + 1 == range_count ? 0 : boundary(i + 1);
    spec.ranges.push_back(Range{boundary(i), end, (i % shard_count) + 1});
  }
  return create(std::move(spec));
}

Result<RoutingTable> RoutingTable::from_json(const Json& json) {
  // The helpers check types before every access, but nlohmann reports some failures only by
  // throwing; none may escape this interface.
  try {
    Result<RoutingTableSpec> spec = parse_spec(json);
    if (!spec.is_ok()) return spec.status();
    return create(std::move(spec).value());
  } catch (const Json::exception& e) {
    return Status::invalid_argument(fmt::format("routing table JSON: {}", e.what()));
  }
}

Result<RoutingTable> RoutingTable::from_json_text(std::string_view text) {
  if (text.size() > kTableJsonBytesMax) {
    return Status::invalid_argument(
        fmt::format("routing table JSON is {} bytes, at most {}", text.size(), kTableJsonBytesMax));
  }
  if (json_depth(text) > kJsonDepthMax) {
    return Status::invalid_argument("routing table JSON is nested too deeply");
  }
  Json json;
  try {
    json = Json::parse(text);
  } catch (const Json::exception& e) {
    return Status::invalid_argument(fmt::format("routing table JSON does not parse: {}", e.what()));
  }
  return from_json(json);
}

Json RoutingTable::to_json() const {
  Json machines = Json::array();
  for (const Machine& machine : spec_.machines) {
    machines.push_back(Json{{"id", machine.id},
                            {"address", machine.address},
                            {"internal_address", machine.internal_address},
                            {"state", std::string(machine_state_name(machine.state))}});
  }
  Json shards = Json::array();
  for (const Shard& shard : spec_.shards) {
    shards.push_back(Json{{"id", shard.id},
                          {"replicas", shard.replicas},
                          {"extras", shard.extras},
                          {"joining", shard.joining},
                          {"leader", shard.leader},
                          {"lease_expiry_ms", shard.lease_expiry_ms}});
  }
  Json ranges = Json::array();
  for (const Range& range : spec_.ranges) ranges.push_back(range_to_json(range));
  return Json{{"epoch", spec_.epoch},
              {"replication_factor", spec_.replication_factor},
              {"machines", std::move(machines)},
              {"shards", std::move(shards)},
              {"ranges", std::move(ranges)}};
}

std::string RoutingTable::to_json_text() const { return to_json().dump(); }

const Machine* RoutingTable::find_machine(MachineId id) const {
  const auto it = std::lower_bound(spec_.machines.begin(), spec_.machines.end(), id,
                                   [](const Machine& m, MachineId value) { return m.id < value; });
  return it != spec_.machines.end() && it->id == id ? &*it : nullptr;
}

const Shard* RoutingTable::find_shard(ShardId id) const {
  const auto it = std::lower_bound(spec_.shards.begin(), spec_.shards.end(), id,
                                   [](const Shard& s, ShardId value) { return s.id < value; });
  return it != spec_.shards.end() && it->id == id ? &*it : nullptr;
}

const Range& RoutingTable::range_for_token(Token token) const {
  // The first range whose start is above the token, minus one; the first range starts at 0, so
  // the result is never before the beginning.
  const auto it = std::upper_bound(spec_.ranges.begin(), spec_.ranges.end(), token,
                                   [](Token value, const Range& r) { return value < r.start; });
  CAIRN_ASSERT(it != spec_.ranges.begin(), "the first range must start at token 0");
  return *(it - 1);
}

const Shard& RoutingTable::shard_for_token(Token token) const {
  const Shard* shard = find_shard(range_for_token(token).shard);
  CAIRN_ASSERT(shard != nullptr, "every range owner is a shard of the table");
  return *shard;
}

ReplicaSet RoutingTable::replicas_for_token(Token token) const {
  ReplicaSet set;
  set.shard = &shard_for_token(token);
  auto resolve = [this](const std::vector<MachineId>& ids, std::vector<const Machine*>* out) {
    out->reserve(ids.size());
    for (MachineId id : ids) {
      const Machine* machine = find_machine(id);
      CAIRN_ASSERT(machine != nullptr, "every shard member is a machine of the table");
      out->push_back(machine);
    }
  };
  resolve(set.shard->replicas, &set.voting);
  resolve(set.shard->extras, &set.extras);
  resolve(set.shard->joining, &set.joining);
  return set;
}

std::vector<Range> RoutingTable::ranges_of_shard(ShardId shard) const {
  std::vector<Range> owned;
  for (const Range& range : spec_.ranges) {
    if (range.shard == shard) owned.push_back(range);
  }
  return owned;
}

int64_t RoutingTable::range_index_starting_at(Token start) const {
  const auto it = std::lower_bound(spec_.ranges.begin(), spec_.ranges.end(), start,
                                   [](const Range& r, Token value) { return r.start < value; });
  if (it == spec_.ranges.end() || it->start != start) return -1;
  return it - spec_.ranges.begin();
}

Result<RoutingTable> RoutingTable::split_range(Token range_start, Token at_token) const {
  const int64_t index = range_index_starting_at(range_start);
  if (index < 0) {
    return Status::invalid_argument(
        fmt::format("no range starts at {}", format_token(range_start)));
  }
  const Range range = spec_.ranges[index];
  if (at_token <= range.start || !range.contains(at_token)) {
    return Status::invalid_argument(fmt::format("cannot split range {} at {}: not strictly inside",
                                                format_range(range), format_token(at_token)));
  }
  if (spec_.ranges.size() >= kRangesMax) {
    return Status::invalid_argument(
        fmt::format("cannot split: the table already has {} ranges", kRangesMax));
  }
  if (spec_.epoch == UINT64_MAX) return Status::invalid_argument("the epoch cannot advance");
  RoutingTableSpec next = spec_;
  next.epoch = spec_.epoch + 1;
  next.ranges[index].end = at_token;
  next.ranges.insert(next.ranges.begin() + index + 1, Range{at_token, range.end, range.shard});
  Result<RoutingTable> table = create(std::move(next));
  CAIRN_ASSERT(table.is_ok(), table.status().to_string());
  return table;
}

Result<RoutingTable> RoutingTable::reassign_range(Token range_start, ShardId to_shard) const {
  const int64_t index = range_index_starting_at(range_start);
  if (index < 0) {
    return Status::invalid_argument(
        fmt::format("no range starts at {}", format_token(range_start)));
  }
  const Range& range = spec_.ranges[index];
  if (find_shard(to_shard) == nullptr) {
    return Status::invalid_argument(fmt::format("shard {} is not in the table", to_shard));
  }
  if (range.shard == to_shard) {
    return Status::invalid_argument(
        fmt::format("range {} is already owned by shard {}", format_range(range), to_shard));
  }
  if (spec_.epoch == UINT64_MAX) return Status::invalid_argument("the epoch cannot advance");
  RoutingTableSpec next = spec_;
  next.epoch = spec_.epoch + 1;
  next.ranges[index].shard = to_shard;
  Result<RoutingTable> table = create(std::move(next));
  CAIRN_ASSERT(table.is_ok(), table.status().to_string());
  return table;
}

std::string RoutingTable::describe() const {
  auto join = [](const std::vector<MachineId>& ids) {
    return ids.empty() ? std::string("-") : fmt::format("{}", fmt::join(ids, ","));
  };
  constexpr double kRingTokens = 18446744073709551616.0;  // 2^64
  std::string out = fmt::format("epoch {}  rf {}  {} machines  {} shards  {} ranges\n", spec_.epoch,
                                spec_.replication_factor, spec_.machines.size(),
                                spec_.shards.size(), spec_.ranges.size());
  out += "shards:\n";
  for (const Shard& shard : spec_.shards) {
    double tokens = 0;
    size_t range_count = 0;
    for (const Range& range : spec_.ranges) {
      if (range.shard != shard.id) continue;
      // size() saturates one short of 2^64 for a whole-ring range; invisible at this precision.
      tokens += static_cast<double>(range.size());
      ++range_count;
    }
    std::string leader = "none";
    if (shard.leader != kNoMachine) {
      leader = shard.lease_expiry_ms == 0
                   ? fmt::format("{} (lease never expires)", shard.leader)
                   : fmt::format("{} (lease until {} ms)", shard.leader, shard.lease_expiry_ms);
    }
    out += fmt::format(
        "  shard {}: replicas {}  extras {}  joining {}  leader {}  "
        "{} ranges, {:.1f}% of ring\n",
        shard.id, join(shard.replicas), join(shard.extras), join(shard.joining), leader,
        range_count, 100.0 * tokens / kRingTokens);
  }
  out += "machines:\n";
  for (const Machine& machine : spec_.machines) {
    out +=
        fmt::format("  machine {}: {:<7} {} (internal {})\n", machine.id,
                    machine_state_name(machine.state), machine.address, machine.internal_address);
  }
  out += "ranges:\n";
  for (const Range& range : spec_.ranges) {
    out += fmt::format("  {} shard {}\n", format_range(range), range.shard);
  }
  return out;
}

}  // namespace cairn::topology
