#include "replica/replica.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <shared_mutex>
#include <thread>
#include <utility>

#include "common/assert.h"
#include "topology/token.h"
#include "topology/token_range.h"

namespace cairn::replica {
namespace {

constexpr std::string_view kStaleEpoch = "STALEEPOCH";
constexpr std::string_view kTableBehind = "TABLEBEHIND";
constexpr std::string_view kNotOwner = "NOTOWNER";
constexpr std::string_view kNoTable = "NOTABLE";
constexpr std::string_view kMoving = "MOVING";

// The meta column family entry holding the migration fences (JSON).
constexpr std::string_view kFencesMetaName = "fences";
// fence_range waits at most this long for requests that skipped the fence lock to finish.
constexpr auto kFenceDrainMax = std::chrono::seconds(1);

// A page never examines more than max(count * kScanWorkFactor, kScanWorkMin) cells. It ends
// between tokens, unless one token alone holds more: a page of all cells then stops inside the
// token (a big row; ScanResult::resume), while a keys-only page returns the token whole, up to
// kScanTokenCellsMax keys (many keys behind one hash tag; a client's SCAN cursor is a token).
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
    case FenceCode::kMoving:
      return std::string(kMoving) + " " + std::to_string(fence.epoch);
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
  } else if (code == kMoving) {
    fence.code = FenceCode::kMoving;
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

// Migration fences. Requests take the fence lock shared only while `any` is set; a request that
// skips it counts itself in its thread's slot of `unlocked`, and fence_range sets `any` and then
// waits for every slot to drain (both sides use sequentially consistent operations, so either
// the request sees `any` set or fence_range sees it counted). Slots are per thread group and
// cache-line sized, so the hot path never shares a written cache line between cores.
struct Replica::FenceState {
  static constexpr size_t kSlots = 16;
  struct alignas(64) Slot {
    std::atomic<int64_t> count{0};
  };
  std::array<Slot, kSlots> unlocked;
  std::atomic<bool> any{false};
  mutable std::shared_mutex mu;
  std::vector<RangeFence> list;  // guarded by mu
  // fence_range calls in progress (guarded by mu): `any` is not cleared while one runs, else a
  // request could skip the lock right after the new fence is added.
  int fencing = 0;

  static size_t slot_of_this_thread() {
    static std::atomic<size_t> next{0};
    thread_local const size_t slot = next.fetch_add(1, std::memory_order_relaxed) % kSlots;
    return slot;
  }
  bool drained() const {
    return std::all_of(unlocked.begin(), unlocked.end(),
                       [](const Slot& slot) { return slot.count.load() == 0; });
  }
};

// Held by one apply/read/scan from its fence check until its storage access is done.
class Replica::FenceGuard {
 public:
  explicit FenceGuard(FenceState& state) : state_(state) {
    slot_ = FenceState::slot_of_this_thread();
    state_.unlocked[slot_].count.fetch_add(1);
    if (!state_.any.load()) return;
    state_.unlocked[slot_].count.fetch_sub(1);
    locked_ = true;
    state_.mu.lock_shared();
  }
  ~FenceGuard() {
    if (locked_) {
      state_.mu.unlock_shared();
    } else {
      state_.unlocked[slot_].count.fetch_sub(1);
    }
  }
  FenceGuard(const FenceGuard&) = delete;
  FenceGuard& operator=(const FenceGuard&) = delete;
  // True when fences may be in force: the caller must look at the list (under the lock held).
  bool locked() const { return locked_; }

 private:
  FenceState& state_;
  size_t slot_ = 0;
  bool locked_ = false;
};

namespace {

// Tokens are saved as JSON numbers (unsigned 64-bit, exact in nlohmann::json).
nlohmann::json fences_to_json(const std::vector<Replica::RangeFence>& fences) {
  nlohmann::json list = nlohmann::json::array();
  for (const Replica::RangeFence& fence : fences) {
    list.push_back({{"epoch", fence.epoch}, {"start", fence.start}, {"end", fence.end}});
  }
  return list;
}

Result<std::vector<Replica::RangeFence>> fences_from_json(std::string_view text) {
  const nlohmann::json list = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!list.is_array()) return Status::corruption("replica: saved fences are not a JSON array");
  std::vector<Replica::RangeFence> fences;
  for (const nlohmann::json& item : list) {
    const bool valid = item.is_object() && item.contains("epoch") && item.contains("start") &&
                       item.contains("end") && item["epoch"].is_number_unsigned() &&
                       item["start"].is_number_unsigned() && item["end"].is_number_unsigned();
    if (!valid) return Status::corruption("replica: a saved fence is malformed");
    fences.push_back(Replica::RangeFence{item["epoch"].get<uint64_t>(),
                                         item["start"].get<topology::Token>(),
                                         item["end"].get<topology::Token>()});
  }
  return fences;
}

// True if no fence of `list` is in force under `table` (each is older than its epoch).
bool all_lifted(const std::vector<Replica::RangeFence>& list,
                const topology::RoutingTable* table) {
  if (table == nullptr) return false;
  return std::all_of(list.begin(), list.end(), [table](const Replica::RangeFence& fence) {
    return fence.epoch < table->epoch();
  });
}

// True if [start, end) and [fence.start, fence.end) share a token.
bool overlaps(const Replica::RangeFence& fence, topology::Token start, topology::Token end) {
  return topology::ranges_overlap(fence.start, fence.end, start, end);
}

// One page of stored cells with start <= token < end, from `from` if given (see the bounds
// above). REQUIRES: count > 0, end == 0 or end > start.
// Checks that [start, end) (end 0: the ring's end) is not empty and lies within the range of
// `table` holding `start`: a fence covers that range only, so a wider read could reach tokens
// this machine does not own. `what` names the request in the error.
Status within_one_range(const topology::RoutingTable& table, topology::Token start,
                        topology::Token end, std::string_view what) {
  if (!topology::before_end(start, end)) {
    return Status::invalid_argument(std::string(what) +
                                    " end must be after its start (0 = the ring's end)");
  }
  const topology::Range& range = table.range_for_token(start);
  if (!topology::range_covers(range.start, range.end, start, end)) {
    return Status::invalid_argument(std::string(what) + " end " + topology::format_token(end) +
                                    " exceeds the end of the range " +
                                    topology::format_token(range.end));
  }
  return Status::ok();
}

Result<ScanResult> scan_page(storage::Engine& engine, topology::Token start, topology::Token end,
                             size_t count, bool keys_only, std::string_view from) {
  if (!from.empty() && (!scan_position_inside_token(from) || scan_position_token(from) != start)) {
    return Status::invalid_argument("scan resume position is not inside the start token");
  }
  const size_t work_max =
      std::max(std::min(count, SIZE_MAX / kScanWorkFactor) * kScanWorkFactor, kScanWorkMin);
  ScanResult result;
  // Entries before `boundary` are whole tokens; those after belong to `current_token`.
  size_t boundary = 0;
  topology::Token current_token = start;
  bool stopped = false;
  bool too_big = false;
  Status row_status = Status::ok();
  Status status = engine.scan(start, end, [&](topology::Token token, std::string_view key,
                                              std::string_view sub_key,
                                              const storage::Cell& cell) {
    if (keys_only && sub_key.empty() && !cell.tombstone && storage::is_row_type(cell.type)) {
      // A row with no field left is no key (a cluster leaves the header of a row emptied by
      // HDEL, SREM...: Keyspace::deletes_emptied_rows). This replica's count may lag one that
      // holds a field it missed; the coordinator merges the replicas' answers, so the key is
      // listed when any answering replica still counts a field.
      Result<storage::StoredRow> row = engine.read_row(token, key);
      if (!row.is_ok()) {
        row_status = row.status();
        return false;
      }
      if (row->state.count == 0) return true;
    }
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
    if (result.entries.size() >= work_max) {
      if (boundary > 0) {
        // Out of budget inside a token: end the page before that token, to return it whole in
        // the next page.
        result.entries.resize(boundary);
        result.next_token = current_token;
        stopped = true;
        return false;
      }
      if (!keys_only) {
        // The token alone fills the page (a big row): stop inside it, after the last cell.
        const ScanEntry& last = result.entries.back();
        result.next_token = current_token;
        result.resume = storage::encode_key(current_token, last.key, last.sub_key);
        result.resume.push_back('\0');
        stopped = true;
        return false;
      }
    }
    if (result.entries.size() - boundary >= kScanTokenCellsMax) {
      too_big = true;
      return false;
    }
    result.entries.push_back(ScanEntry{std::string(key), cell, std::string(sub_key)});
    return true;
  }, keys_only, from);
  if (!status.is_ok()) return status;
  if (!row_status.is_ok()) return row_status;
  if (too_big) {
    return Status::busy("token " + topology::format_token(current_token) + " holds more than " +
                        std::to_string(kScanTokenCellsMax) + " keys; it cannot be scanned");
  }
  if (!stopped) {
    result.done = true;
    result.next_token = end;
  }
  return result;
}

}  // namespace

std::string scan_position(topology::Token token, std::string_view resume) {
  return resume.empty() ? storage::token_prefix(token) : std::string(resume);
}

topology::Token scan_position_token(std::string_view position) {
  topology::Token token = 0;
  for (size_t i = 0; i < 8 && i < position.size(); ++i) {
    token = token << 8 | static_cast<uint8_t>(position[i]);
  }
  return token;
}

Replica::Replica(storage::Engine& engine, HybridClock& clock, uint64_t machine_id,
                 TableHolder& tables)
    : engine_(engine),
      clock_(clock),
      machine_id_(machine_id),
      tables_(tables),
      fence_state_(std::make_unique<FenceState>()) {
  // A fence forgotten after a restart could let the source accept a write the target misses, so
  // an unreadable list stops the machine rather than being ignored.
  Result<std::optional<std::string>> saved = engine_.get_meta(kFencesMetaName);
  CAIRN_ASSERT(saved.is_ok(), "replica: reading the saved fences: " + saved.status().to_string());
  if (!saved->has_value()) return;
  Result<std::vector<RangeFence>> fences = fences_from_json(**saved);
  CAIRN_ASSERT(fences.is_ok(), fences.status().to_string());
  fence_state_->list = std::move(fences).value();
  fence_state_->any = !fence_state_->list.empty();
}

Replica::~Replica() = default;

Fence Replica::check(uint64_t epoch, topology::Token token) const {
  const std::shared_ptr<const topology::RoutingTable> table = tables_.current();
  return fence_of(table.get(), machine_id_, epoch, token);
}

Fence Replica::fence_for(const FenceGuard& guard, const topology::RoutingTable* table,
                         uint64_t epoch, topology::Token start, topology::Token end) const {
  const Fence fence = fence_of(table, machine_id_, epoch, start);
  if (!fence.ok() || !guard.locked()) return fence;
  // fence.ok() means epoch == the table's epoch, so a fence at `epoch` is in force.
  for (const RangeFence& range : fence_state_->list) {
    if (range.epoch == epoch && overlaps(range, start, end)) {
      return Fence{FenceCode::kMoving, epoch};
    }
  }
  return fence;
}

void Replica::forget_lifted_fences() {
  FenceState& state = *fence_state_;
  std::unique_lock<std::shared_mutex> lock(state.mu);
  const uint64_t current = tables_.epoch();
  // Lifted fences need not be removed from the saved list: they are never in force again
  // (epochs only grow), and the next fence_range saves the pruned list.
  std::erase_if(state.list, [current](const RangeFence& fence) { return fence.epoch < current; });
  if (state.list.empty() && state.fencing == 0) state.any = false;
}

Result<std::pair<Fence, bool>> Replica::apply(uint64_t epoch, std::string_view key,
                                              const storage::Cell& cell,
                                              HlcTimestamp* newer_timestamp,
                                              std::string_view sub_key) {
  const topology::Token token = topology::token_of(key);
  bool lifted = false;
  Result<std::pair<Fence, bool>> result = std::make_pair(Fence{}, false);
  {
    FenceGuard guard(*fence_state_);
    const std::shared_ptr<const topology::RoutingTable> table = tables_.current();
    const Fence fence = fence_for(guard, table.get(), epoch, token, token + 1);
    lifted = guard.locked() && fence.ok() && all_lifted(fence_state_->list, table.get());
    if (!fence.ok()) return std::make_pair(fence, false);
    // A coordinator that later leads this shard must stamp after every cell it stores.
    clock_.observe(cell.timestamp);
    const LoadTimer timer(load_);
    Result<bool> stored = sub_key.empty()
                              ? engine_.apply(token, key, cell, newer_timestamp)
                              : engine_.apply_field(token, key, sub_key, cell, newer_timestamp);
    if (!stored.is_ok()) return stored.status();
    if (load_ != nullptr) {
      load_->record_write(token, key, key.size() + sub_key.size() + cell.value.size(),
                          timer.elapsed_us());
    }
    result = std::make_pair(fence, *stored);
  }
  if (lifted) forget_lifted_fences();
  return result;
}

Result<std::pair<Fence, std::optional<storage::Cell>>> Replica::read(uint64_t epoch,
                                                                     std::string_view key,
                                                                     std::string_view sub_key) {
  const topology::Token token = topology::token_of(key);
  bool lifted = false;
  std::optional<storage::Cell> found;
  Fence fence;
  {
    FenceGuard guard(*fence_state_);
    const std::shared_ptr<const topology::RoutingTable> table = tables_.current();
    fence = fence_for(guard, table.get(), epoch, token, token + 1);
    lifted = guard.locked() && fence.ok() && all_lifted(fence_state_->list, table.get());
    if (!fence.ok()) return std::make_pair(fence, std::optional<storage::Cell>());
    const LoadTimer timer(load_);
    Result<std::optional<storage::Cell>> cell = sub_key.empty()
                                                    ? engine_.read(token, key)
                                                    : engine_.read_field(token, key, sub_key);
    if (!cell.is_ok()) return cell.status();
    found = std::move(cell).value();
    if (load_ != nullptr) {
      load_->record_read(token, key, found ? found->value.size() : 0, timer.elapsed_us());
    }
  }
  if (lifted) forget_lifted_fences();
  return std::make_pair(fence, std::move(found));
}

Result<std::pair<Fence, RowPage>> Replica::read_row_page(uint64_t epoch, std::string_view key,
                                                         std::string_view from_sub_key,
                                                         size_t count) {
  if (count == 0) return Status::invalid_argument("row page count must be positive");
  const topology::Token token = topology::token_of(key);
  bool lifted = false;
  RowPage page;
  Fence fence;
  {
    FenceGuard guard(*fence_state_);
    const std::shared_ptr<const topology::RoutingTable> table = tables_.current();
    fence = fence_for(guard, table.get(), epoch, token, token + 1);
    lifted = guard.locked() && fence.ok() && all_lifted(fence_state_->list, table.get());
    if (!fence.ok()) return std::make_pair(fence, RowPage{});
    const LoadTimer timer(load_);
    Result<storage::StoredRow> row = engine_.read_row(token, key);
    if (!row.is_ok()) return row.status();
    page.header = std::move(row->header);
    page.state = row->state;
    Status status = engine_.scan_row(
        token, key, from_sub_key, [&](std::string_view sub_key, const storage::Cell& cell) {
          if (page.fields.size() >= count) {
            page.next = std::string(sub_key);
            return false;
          }
          page.fields.emplace_back(std::string(sub_key), cell);
          return true;
        });
    if (!status.is_ok()) return status;
    if (load_ != nullptr) {
      uint64_t bytes = 0;
      for (const auto& [sub_key, cell] : page.fields) bytes += sub_key.size() + cell.value.size();
      load_->record_read(token, key, bytes, timer.elapsed_us());
    }
  }
  if (lifted) forget_lifted_fences();
  return std::make_pair(fence, std::move(page));
}

Result<std::pair<Fence, ScanResult>> Replica::scan(uint64_t epoch, topology::Token start,
                                                   topology::Token end, size_t count,
                                                   bool keys_only, std::string_view from) {
  FenceGuard guard(*fence_state_);
  // One snapshot for the fence and the range bound, so both speak of the same table.
  const std::shared_ptr<const topology::RoutingTable> table = tables_.current();
  const Fence fence = fence_for(guard, table.get(), epoch, start, end);
  if (!fence.ok()) return std::make_pair(fence, ScanResult{});
  if (count == 0) return Status::invalid_argument("scan count must be positive");
  if (Status within = within_one_range(*table, start, end, "scan"); !within.is_ok()) return within;

  Result<ScanResult> page = scan_page(engine_, start, end, count, keys_only, from);
  if (!page.is_ok()) return page.status();
  return std::make_pair(fence, std::move(page).value());
}

Result<std::pair<Fence, RangeDigest>> Replica::digest(uint64_t epoch, topology::Token start,
                                                      topology::Token end, size_t leaves,
                                                      size_t max_cells,
                                                      int64_t purge_before_ms) {
  FenceGuard guard(*fence_state_);
  const std::shared_ptr<const topology::RoutingTable> table = tables_.current();
  const Fence fence = fence_for(guard, table.get(), epoch, start, end);
  if (!fence.ok()) return std::make_pair(fence, RangeDigest{});
  if (Status within = within_one_range(*table, start, end, "digest"); !within.is_ok()) {
    return within;
  }
  Result<RangeDigest> digest =
      digest_range(engine_, start, end, leaves, max_cells, engine_.options().wall_clock_ms(),
                   purge_before_ms);
  if (!digest.is_ok()) return digest.status();
  return std::make_pair(fence, std::move(digest).value());
}

Result<ScanResult> Replica::scan_stored(topology::Token start, topology::Token end,
                                        size_t count, std::string_view from) {
  if (count == 0) return Status::invalid_argument("scan count must be positive");
  if (!topology::before_end(start, end)) {
    return Status::invalid_argument("scan end must be after its start (0 = the ring's end)");
  }
  return scan_page(engine_, start, end, count, /*keys_only=*/false, from);
}

Status Replica::clear() { return engine_.clear(); }

Status Replica::save_fences_locked() {
  return engine_.put_meta(kFencesMetaName, fences_to_json(fence_state_->list).dump());
}

Result<std::pair<Fence, uint64_t>> Replica::fence_range(uint64_t epoch, topology::Token start,
                                                        topology::Token end) {
  if (!topology::before_end(start, end)) {
    return Status::invalid_argument("fence end must be after its start (0 = the ring's end)");
  }
  FenceState& state = *fence_state_;
  {
    // From here on every new request takes the lock; then wait for those that skipped it.
    std::unique_lock<std::shared_mutex> lock(state.mu);
    state.fencing += 1;
    state.any = true;
  }
  struct Done {
    FenceState& state;
    ~Done() {
      std::unique_lock<std::shared_mutex> lock(state.mu);
      state.fencing -= 1;
    }
  } done{state};
  const auto drain_deadline = std::chrono::steady_clock::now() + kFenceDrainMax;
  while (!state.drained()) {
    if (std::chrono::steady_clock::now() >= drain_deadline) {
      return Status::busy("replica: requests in flight did not finish; fence again");
    }
    std::this_thread::yield();
  }
  {
    std::unique_lock<std::shared_mutex> lock(state.mu);
    const std::shared_ptr<const topology::RoutingTable> table = tables_.current();
    const Fence fence = fence_of(table.get(), machine_id_, epoch, start);
    if (!fence.ok()) return std::make_pair(fence, uint64_t{0});
    std::erase_if(state.list, [epoch](const RangeFence& other) { return other.epoch < epoch; });
    const RangeFence added{epoch, start, end};
    if (std::find(state.list.begin(), state.list.end(), added) == state.list.end()) {
      if (state.list.size() >= kFencesMax) {
        return Status::busy("replica: " + std::to_string(kFencesMax) + " fences are in force");
      }
      state.list.push_back(added);
    }
    // Saved (and synced) before any answer: a fence must survive kill -9.
    if (Status saved = save_fences_locked(); !saved.is_ok()) {
      std::erase_if(state.list, [&added](const RangeFence& other) { return other == added; });
      return saved;
    }
  }
  // Every request that passed its check before the fence is in storage now; make it durable,
  // so the LSN read next covers it.
  if (Status synced = engine_.sync(); !synced.is_ok()) return synced;
  return std::make_pair(Fence{FenceCode::kNone, epoch}, engine_.latest_sequence());
}

std::vector<Replica::RangeFence> Replica::fences() const {
  const FenceState& state = *fence_state_;
  std::shared_lock<std::shared_mutex> lock(state.mu);
  const uint64_t current = tables_.epoch();
  std::vector<RangeFence> in_force;
  for (const RangeFence& fence : state.list) {
    if (fence.epoch == current) in_force.push_back(fence);
  }
  return in_force;
}

Result<bool> Replica::apply_copied(std::string_view key, const storage::Cell& cell) {
  clock_.observe(cell.timestamp);
  return engine_.apply(topology::token_of(key), key, cell);
}

Result<size_t> Replica::apply_copied_batch(const std::vector<storage::WalChange>& cells,
                                           bool logged) {
  HlcTimestamp newest = 0;
  for (const storage::WalChange& change : cells) newest = std::max(newest, change.cell.timestamp);
  if (newest != 0) clock_.observe(newest);
  return engine_.apply_batch(cells, logged);
}

}  // namespace cairn::replica
