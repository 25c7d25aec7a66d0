#include "replica/replica.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <utility>

#include "topology/token.h"

namespace cairn::replica {
namespace {

constexpr std::string_view kStaleEpoch = "STALEEPOCH";
constexpr std::string_view kTableBehind = "TABLEBEHIND";
constexpr std::string_view kNotOwner = "NOTOWNER";
constexpr std::string_view kNoTable = "NOTABLE";

// A page never examines more than max(count * kScanWorkFactor, kScanWorkMin) cells, unless one
// token alone holds more: a token is never split across pages (the cursor is a token), so it is
// returned whole, up to kScanTokenCellsMax cells (many keys behind one hash tag).
constexpr size_t kScanWorkFactor = 10;
constexpr size_t kScanWorkMin = 1000;
constexpr size_t kScanTokenCellsMax = 100000;

bool holds(const std::vector<const topology::Machine*>& machines, uint64_t id) {
  return std::any_of(machines.begin(), machines.end(),
                     [id](const topology::Machine* machine) { return machine->id == id; });
}

// The fence of a request at `epoch` for `token`, against one snapshot of the table.
Fence fence_of(const topology::RoutingTable* table, uint64_t machine_id, uint64_t epoch,
               topology::Token token) {
  if (table == nullptr) return Fence{FenceCode::kNoTable, 0};
  const uint64_t current = table->epoch();
  if (epoch < current) return Fence{FenceCode::kStaleEpoch, current};
  if (epoch > current) return Fence{FenceCode::kTableBehind, current};
  const topology::ReplicaSet set = table->replicas_for_token(token);
  if (holds(set.voting, machine_id) || holds(set.extras, machine_id) ||
      holds(set.joining, machine_id)) {
    return Fence{FenceCode::kNone, current};
  }
  return Fence{FenceCode::kNotOwner, current};
}

}  // namespace

std::string fence_error_text(const Fence& fence) {
  switch (fence.code) {
    case FenceCode::kNone:
      return "";
    case FenceCode::kStaleEpoch:
      return std::string(kStaleEpoch) + " " + std::to_string(fence.epoch);
    case FenceCode::kTableBehind:
      return std::string(kTableBehind) + " " + std::to_string(fence.epoch);
    case FenceCode::kNotOwner:
      return std::string(kNotOwner) + " " + std::to_string(fence.epoch);
    case FenceCode::kNoTable:
      return std::string(kNoTable);
  }
  return "";
}

std::optional<Fence> parse_fence_error(std::string_view error_text) {
  if (!error_text.empty() && error_text.front() == '-') error_text.remove_prefix(1);
  const size_t space = error_text.find(' ');
  const std::string_view code = error_text.substr(0, space);
  if (code == kNoTable) return Fence{FenceCode::kNoTable, 0};
  Fence fence;
  if (code == kStaleEpoch) {
    fence.code = FenceCode::kStaleEpoch;
  } else if (code == kTableBehind) {
    fence.code = FenceCode::kTableBehind;
  } else if (code == kNotOwner) {
    fence.code = FenceCode::kNotOwner;
  } else {
    return std::nullopt;
  }
  if (space == std::string_view::npos) return std::nullopt;
  std::string_view number = error_text.substr(space + 1);
  number = number.substr(0, number.find(' '));  // tolerate trailing words
  const char* end = number.data() + number.size();
  const auto [parsed_end, error] = std::from_chars(number.data(), end, fence.epoch);
  if (error != std::errc() || parsed_end != end || number.empty()) return std::nullopt;
  return fence;
}

Replica::Replica(storage::Engine& engine, HybridClock& clock, uint64_t machine_id,
                 TableHolder& tables)
    : engine_(engine), clock_(clock), machine_id_(machine_id), tables_(tables) {}

Fence Replica::check(uint64_t epoch, topology::Token token) const {
  const std::shared_ptr<const topology::RoutingTable> table = tables_.current();
  return fence_of(table.get(), machine_id_, epoch, token);
}

Result<std::pair<Fence, bool>> Replica::apply(uint64_t epoch, std::string_view key,
                                              const storage::Cell& cell,
                                              HlcTimestamp* newer_timestamp) {
  const topology::Token token = topology::token_of(key);
  const Fence fence = check(epoch, token);
  if (!fence.ok()) return std::make_pair(fence, false);
  // A coordinator that later leads this shard must stamp after every cell it stores.
  clock_.observe(cell.timestamp);
  Result<bool> stored = engine_.apply(token, key, cell, newer_timestamp);
  if (!stored.is_ok()) return stored.status();
  return std::make_pair(fence, *stored);
}

Result<std::pair<Fence, std::optional<storage::Cell>>> Replica::read(uint64_t epoch,
                                                                     std::string_view key) {
  const topology::Token token = topology::token_of(key);
  const Fence fence = check(epoch, token);
  if (!fence.ok()) return std::make_pair(fence, std::optional<storage::Cell>());
  Result<std::optional<storage::Cell>> cell = engine_.read(token, key);
  if (!cell.is_ok()) return cell.status();
  return std::make_pair(fence, std::move(cell).value());
}

Result<std::pair<Fence, ScanResult>> Replica::scan(uint64_t epoch, topology::Token start,
                                                   topology::Token end, size_t count) {
  // One snapshot for the fence and the range bound, so both speak of the same table.
  const std::shared_ptr<const topology::RoutingTable> table = tables_.current();
  const Fence fence = fence_of(table.get(), machine_id_, epoch, start);
  if (!fence.ok()) return std::make_pair(fence, ScanResult{});
  if (count == 0) return Status::invalid_argument("scan count must be positive");
  if (end != 0 && end <= start) {
    return Status::invalid_argument("scan end must be after its start (0 = the ring's end)");
  }
  // The fence covers the range holding `start` only; a wider scan could read tokens this
  // machine does not own.
  const topology::Range& range = table->range_for_token(start);
  if (range.end != 0 && (end == 0 || end > range.end)) {
    return Status::invalid_argument("scan end " + topology::format_token(end) +
                                    " exceeds the end of the range " +
                                    topology::format_token(range.end));
  }

  const size_t work_max =
      std::max(std::min(count, SIZE_MAX / kScanWorkFactor) * kScanWorkFactor, kScanWorkMin);
  ScanResult result;
  // Entries before `boundary` are whole tokens; those after belong to `current_token`.
  size_t boundary = 0;
  topology::Token current_token = start;
  bool stopped = false;
  bool too_big = false;
  Status status = engine_.scan(start, end, [&](topology::Token token, std::string_view key,
                                               const storage::Cell& cell) {
    if (result.entries.empty() || token != current_token) {
      boundary = result.entries.size();
      // A new token starts: the page may end here.
      if (boundary >= count || boundary >= work_max) {
        result.next_token = token;
        stopped = true;
        return false;
      }
      current_token = token;
    }
    if (result.entries.size() >= work_max && boundary > 0) {
      // Out of budget inside a token: end the page before that token, to return it whole in
      // the next page.
      result.entries.resize(boundary);
      result.next_token = current_token;
      stopped = true;
      return false;
    }
    if (result.entries.size() - boundary >= kScanTokenCellsMax) {
      too_big = true;
      return false;
    }
    result.entries.push_back(ScanEntry{std::string(key), cell});
    return true;
  });
  if (!status.is_ok()) return status;
  if (too_big) {
    return Status::busy("token " + topology::format_token(current_token) + " holds more than " +
                        std::to_string(kScanTokenCellsMax) + " keys; it cannot be scanned");
  }
  if (!stopped) {
    result.done = true;
    result.next_token = end;
  }
  return std::make_pair(fence, std::move(result));
}

Status Replica::clear() { return engine_.clear(); }

}  // namespace cairn::replica
