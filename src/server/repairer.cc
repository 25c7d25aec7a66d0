#include "server/repairer.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/assert.h"
#include "common/clock.h"
#include "coordinator/cluster_internal.h"
#include "replica/range_digest.h"
#include "storage/cell.h"
#include "topology/token_range.h"

namespace cairn::server {

using topology::ShardId;
using topology::Token;

namespace {

using Position = topology::TokenWidth;  // a token, or 2^64 for the ring's end

constexpr Position kRingEnd = topology::kRingTokens;
constexpr size_t kPullPageKeys = 1000;

constexpr auto position_of_end = topology::end_position;
constexpr auto token_of_position = topology::token_at;

// A peer's answer to CAIRN.REPAIR DIGEST.
struct PeerDigest {
  bool ok = false;
  storage::PurgeBound bound;  // the replica's purge bound of the range holding the start
  bool too_big = false;
  std::optional<replica::Fence> fence;
  std::string error;
  replica::RangeDigest digest;
};

PeerDigest decode_digest_reply(Result<resp::Value> reply, size_t leaves) {
  PeerDigest answer;
  if (!reply.is_ok()) {
    answer.error = reply.status().to_string();
    return answer;
  }
  const resp::Value& value = *reply;
  if (value.is_error()) {
    if (value.str.rfind("TOOBIG", 0) == 0) {
      answer.too_big = true;
    } else {
      answer.fence = replica::parse_fence_error(value.str);
    }
    answer.error = value.str;
    return answer;
  }
  constexpr size_t kHead = 4;
  if (value.type != resp::Value::Type::kArray || value.elements.size() != kHead + 2 * leaves ||
      value.elements[0].type != resp::Value::Type::kInteger ||
      value.elements[1].type != resp::Value::Type::kInteger) {
    answer.error = "malformed digest reply";
    return answer;
  }
  answer.digest.visited = static_cast<uint64_t>(value.elements[0].integer);
  answer.bound.before_ms = value.elements[1].integer;
  for (auto [index, out] : {std::pair{size_t{2}, &answer.bound.start},
                            std::pair{size_t{3}, &answer.bound.end}}) {
    const std::string& text = value.elements[index].str;
    if (std::from_chars(text.data(), text.data() + text.size(), *out).ptr !=
        text.data() + text.size()) {
      answer.error = "malformed digest reply";
      return answer;
    }
  }
  answer.digest.hashes.resize(leaves);
  answer.digest.cells.resize(leaves);
  for (size_t i = 0; i < leaves; ++i) {
    const resp::Value& hash = value.elements[kHead + 2 * i];
    const resp::Value& cells = value.elements[kHead + 1 + 2 * i];
    uint64_t parsed = 0;
    const char* end = hash.str.data() + hash.str.size();
    if (hash.type != resp::Value::Type::kBulk || cells.type != resp::Value::Type::kInteger ||
        std::from_chars(hash.str.data(), end, parsed).ptr != end) {
      answer.error = "malformed digest reply";
      return answer;
    }
    answer.digest.hashes[i] = parsed;
    answer.digest.cells[i] = static_cast<uint64_t>(cells.integer);
  }
  answer.ok = true;
  return answer;
}

bool votes_in(const topology::Shard& shard, uint64_t machine) {
  return std::find(shard.replicas.begin(), shard.replicas.end(), machine) != shard.replicas.end();
}

}  // namespace

Repairer::Repairer(RepairerOptions options, replica::Replica& replica, net::PeerPool& peers)
    : options_(std::move(options)), replica_(replica), peers_(peers) {
  CAIRN_ASSERT(options_.leaves >= 1 && options_.segment_cells >= 1 &&
                   options_.max_cells >= options_.segment_cells,
               "bad repair options");
}

Repairer::~Repairer() { stop(); }

void Repairer::start() {
  CAIRN_ASSERT(!thread_.joinable(), "repairer started twice");
  if (!enabled()) return;
  thread_ = std::thread([this] { run(); });
}

void Repairer::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t Repairer::now_ms() const {
  return options_.wall_ms ? options_.wall_ms() : wall_clock_ms();
}

bool Repairer::wait_ms(int64_t ms) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
  return !stopping_;
}

bool Repairer::stopping() const {
  std::lock_guard lock(mu_);
  return stopping_;
}

ShardRepairStatus& Repairer::entry(ShardId shard) {
  ShardRepairStatus& status = shards_[shard];
  status.shard = shard;
  return status;
}

std::vector<ShardRepairStatus> Repairer::status() const {
  std::lock_guard lock(mu_);
  std::vector<ShardRepairStatus> out;
  out.reserve(shards_.size());
  for (const auto& [id, status] : shards_) out.push_back(status);
  return out;
}

std::string Repairer::info() const {
  const std::vector<ShardRepairStatus> shards = status();
  uint64_t fixed = 0;
  uint64_t passes = 0;
  for (const ShardRepairStatus& s : shards) {
    fixed += s.cells_fixed;
    passes += s.passes;
  }
  std::string out = fmt::format("repair_enabled:{}\r\nrepair_passes:{}\r\nrepair_cells_fixed:{}\r\n",
                                enabled() ? 1 : 0, passes, fixed);
  const int64_t now = now_ms();
  for (const ShardRepairStatus& s : shards) {
    out += fmt::format(
        "repair_shard_{}:last_full_ms={},last_full_age_s={},passes={},complete_passes={},"
        "segments={},leaves_differed={},cells_fixed={},last_pass_fixed={},running={},"
        "progress={:.3f},ranges_purgeable={}\r\n",
        s.shard, s.last_full_ms, s.last_full_ms == 0 ? -1 : (now - s.last_full_ms) / 1000,
        s.passes, s.complete_passes, s.segments, s.leaves_differed, s.cells_fixed,
        s.last_pass_fixed, s.running ? 1 : 0, s.progress, s.ranges_purgeable);
  }
  return out;
}

void Repairer::run() {
  while (wait_ms(options_.poll_ms)) {
    const auto table = replica_.tables().current();
    if (!table) continue;
    const uint64_t me = replica_.machine_id();
    std::vector<ShardId> mine;
    for (const topology::Shard& shard : table->shards()) {
      if (votes_in(shard, me) && shard.replicas.size() >= 2) mine.push_back(shard.id);
    }
    {
      // Forget shards this machine no longer votes in.
      std::lock_guard lock(mu_);
      std::erase_if(shards_, [&](const auto& item) {
        return std::find(mine.begin(), mine.end(), item.first) == mine.end();
      });
    }
    for (const ShardId shard : mine) {
      const int64_t now = monotonic_ms();
      auto due = next_pass_ms_.find(shard);
      if (due != next_pass_ms_.end() && now < due->second) continue;
      next_pass_ms_[shard] = now + options_.interval_ms;
      if (!pass(shard)) return;
    }
  }
}

bool Repairer::pass(ShardId shard) {
  const auto table = replica_.tables().current();
  if (!table) return true;
  const std::vector<topology::Range> ranges = table->ranges_of_shard(shard);
  Position total = 0;
  for (const topology::Range& range : ranges) total += position_of_end(range.end) - range.start;
  const int64_t started = now_ms();
  uint64_t fixed_before = 0;
  {
    std::lock_guard lock(mu_);
    ShardRepairStatus& status = entry(shard);
    status.running = true;
    status.progress = 0;
    fixed_before = status.cells_fixed;
  }
  bool complete = true;
  std::string problem;
  Position covered = 0;
  uint64_t purgeable = 0;
  for (const topology::Range& range : ranges) {
    if (stopping()) break;
    bool clean = true;
    if (!repair_range(shard, range, covered, problem, clean)) {
      complete = false;
    } else if (clean && options_.purge_delay_ms >= 0) {
      // Every voting replica held exactly our cells of the range when it was compared, so a
      // deletion made before the pass (less what may still arrive late) is on all of them.
      replica_.engine().purge_bounds().raise(range.start, range.end,
                                             started - options_.purge_delay_ms);
      ++purgeable;
    }
    std::lock_guard lock(mu_);
    entry(shard).progress =
        total == 0 ? 1.0 : static_cast<double>(covered) / static_cast<double>(total);
  }
  const bool stopped = stopping();
  std::lock_guard lock(mu_);
  ShardRepairStatus& status = entry(shard);
  status.running = false;
  status.last_pass_end_ms = now_ms();
  status.last_pass_fixed = status.cells_fixed - fixed_before;
  status.ranges_purgeable = purgeable;
  if (stopped) return false;
  ++status.passes;
  if (complete) {
    ++status.complete_passes;
    status.last_full_ms = started;
    status.last_problem.clear();
  } else {
    status.last_problem = problem;
    spdlog::debug("repair: pass over shard {} incomplete: {}", shard, problem);
  }
  if (status.last_pass_fixed > 0) {
    spdlog::info("repair: shard {}: {} cells were missing or older here and were fixed", shard,
                 status.last_pass_fixed);
  }
  return true;
}

bool Repairer::repair_range(ShardId shard, const topology::Range& range, Position& covered,
                            std::string& problem, bool& clean) {
  const Position stop = position_of_end(range.end);
  Position cursor = range.start;
  // Segments start at a sixteenth of the range and adapt to the cells they hold.
  Position width = std::max<Position>(1, (stop - cursor) / 16);
  const size_t leaves = options_.leaves;
  bool range_complete = true;
  while (cursor < stop) {
    if (stopping()) return false;
    const auto table = replica_.tables().current();
    const topology::ReplicaSet set = table->replicas_for_token(token_of_position(cursor));
    if (set.shard == nullptr || set.shard->id != shard || !votes_in(*set.shard, replica_.machine_id())) {
      problem = fmt::format("the range at {} is no longer this machine's to repair in shard {}",
                            topology::format_token(token_of_position(cursor)), shard);
      return false;
    }
    // A digest is fenced within one range of the table: stop at its end too.
    const Position range_stop = position_of_end(table->range_for_token(token_of_position(cursor)).end);
    const Position segment_stop = std::min({cursor + width, stop, range_stop});
    const Token start = token_of_position(cursor);
    const Token end = token_of_position(segment_stop);
    // Both sides leave out the deletions before our purge bound of the range: compaction may
    // have removed them anywhere.
    const int64_t purge_before = replica_.engine().purge_bounds().bound(start);
    Result<std::pair<replica::Fence, replica::RangeDigest>> local =
        replica_.digest(table->epoch(), start, end, leaves, options_.max_cells, purge_before);
    if (!local.is_ok() || !local->first.ok()) {
      problem = local.is_ok() ? "fenced here: " + replica::fence_error_text(local->first)
                              : "digest here: " + local.status().to_string();
      return false;
    }
    const replica::RangeDigest& mine = local->second;
    if (mine.truncated) {
      width = std::max<Position>(1, width / 4);
      continue;
    }
    throttle(mine.visited);
    bool redo = false;
    bool compared_all = true;
    uint64_t differed = 0;
    uint64_t fixed = 0;
    const std::vector<std::string> request = {
        "CAIRN.REPAIR", "DIGEST", std::to_string(table->epoch()),
        std::to_string(start), std::to_string(end), std::to_string(leaves),
        std::to_string(options_.max_cells), std::to_string(purge_before)};
    for (const topology::Machine* machine : set.voting) {
      if (machine->id == replica_.machine_id()) continue;
      const PeerDigest theirs = decode_digest_reply(
          peers_.call_sync(machine->address, request, options_.request_timeout_ms), leaves);
      if (theirs.too_big) {
        redo = true;
        break;
      }
      if (!theirs.ok) {
        if (theirs.fence && theirs.fence->code == replica::FenceCode::kTableBehind) {
          (void)peers_.call_sync(machine->address, {"CAIRN.TABLE", "SET", table->to_json_text()},
                                 options_.request_timeout_ms);
        }
        problem = fmt::format("machine {} did not digest [{}, {}): {}", machine->id,
                              topology::format_token(start), topology::format_token(end),
                              theirs.error);
        compared_all = false;
        continue;
      }
      // A replica that knows a later purge bound for a range holding ours learnt it from a pass
      // in which every voting replica, this one included, held the same cells: adopt it (its
      // compaction may already have removed deletions ours still counts).
      const storage::PurgeBound& bound = theirs.bound;
      if (bound.before_ms > purge_before &&
          topology::range_covers(bound.start, bound.end, range.start, range.end)) {
        replica_.engine().purge_bounds().raise(range.start, range.end, bound.before_ms);
      }
      for (size_t leaf = 0; leaf < leaves; ++leaf) {
        if (theirs.digest.hashes[leaf] == mine.hashes[leaf] &&
            theirs.digest.cells[leaf] == mine.cells[leaf]) {
          continue;
        }
        ++differed;
        clean = false;
        // Only what the other replica holds can be pulled; what only we hold, it pulls itself.
        if (theirs.digest.cells[leaf] == 0) continue;
        const std::optional<uint64_t> stored =
            pull(*table, *machine, replica::leaf_start(start, end, leaves, leaf),
                 replica::leaf_start(start, end, leaves, leaf + 1), problem);
        if (!stored) {
          compared_all = false;
          continue;
        }
        fixed += *stored;
      }
    }
    if (redo) {
      width = std::max<Position>(1, width / 4);
      continue;
    }
    {
      std::lock_guard lock(mu_);
      ShardRepairStatus& status = entry(shard);
      ++status.segments;
      status.leaves_differed += differed;
      status.cells_fixed += fixed;
    }
    if (compared_all) {
      covered += segment_stop - cursor;
    } else {
      range_complete = false;  // the rest of the range is still compared
    }
    // Aim at segment_cells per digest.
    if (mine.visited > 2 * options_.segment_cells) {
      width = std::max<Position>(1, width / 2);
    } else if (mine.visited < options_.segment_cells / 2) {
      width = std::min<Position>(width * 2, kRingEnd);
    }
    cursor = segment_stop;
  }
  return range_complete;
}

std::optional<uint64_t> Repairer::pull(const topology::RoutingTable& table,
                                       const topology::Machine& machine, Token start, Token end,
                                       std::string& problem) {
  const Position stop = position_of_end(end);
  Token cursor = start;
  std::string from;
  uint64_t stored = 0;
  const std::string epoch = std::to_string(table.epoch());
  storage::Engine& engine = replica_.engine();
  while (true) {
    if (stopping()) return std::nullopt;
    std::vector<std::string> args = {"CAIRN.SCAN", epoch, std::to_string(cursor),
                                     std::to_string(end), std::to_string(kPullPageKeys)};
    if (!from.empty()) {
      args.emplace_back("FROM");
      args.push_back(from);
    }
    replica::ScanResult page;
    const coordinator::ReplicaOutcome outcome = coordinator::decode_scan_reply(
        peers_.call_sync(machine.address, args, options_.request_timeout_ms), &page);
    if (!outcome.ok()) {
      problem = fmt::format("machine {} did not serve cells at {}: {}", machine.id,
                            topology::format_token(cursor),
                            outcome.kind == coordinator::ReplicaOutcome::Kind::kFence
                                ? replica::fence_error_text(outcome.fence)
                                : outcome.error);
      return std::nullopt;
    }
    for (const replica::ScanEntry& cell : page.entries) {
      // A cell past the grace period may already be gone here by design: not a difference.
      if (engine.may_have_purged(topology::token_of(cell.key), cell.cell)) continue;
      Result<std::pair<replica::Fence, bool>> applied =
          replica_.apply(table.epoch(), cell.key, cell.cell, nullptr, cell.sub_key);
      if (!applied.is_ok() || !applied->first.ok()) {
        problem = applied.is_ok() ? "fenced here: " + replica::fence_error_text(applied->first)
                                  : "apply here: " + applied.status().to_string();
        return std::nullopt;
      }
      if (applied->second) ++stored;
    }
    throttle(page.entries.size());
    if (page.done) return stored;
    const Position next = page.next_token == 0 && page.resume.empty() ? kRingEnd : page.next_token;
    if (page.resume.empty() && next >= stop) return stored;
    if (page.resume.empty() && next <= cursor) {
      problem = fmt::format("a page from machine {} made no progress at {}", machine.id,
                            topology::format_token(cursor));
      return std::nullopt;
    }
    cursor = page.next_token;
    from = page.resume;
  }
}

void Repairer::throttle(uint64_t cells) {
  const int64_t now = monotonic_ms();
  if (now - window_start_ms_ >= 1000) {
    window_start_ms_ = now;
    window_cells_ = 0;
  }
  window_cells_ += cells;
  if (window_cells_ >= options_.cells_per_sec) {
    // Sleep for the time these cells are worth at the rate, less what the window already took.
    const int64_t worth = static_cast<int64_t>(window_cells_ * 1000 / options_.cells_per_sec);
    (void)wait_ms(std::max<int64_t>(1, worth - (now - window_start_ms_)));
    window_start_ms_ = monotonic_ms();
    window_cells_ = 0;
  }
}

}  // namespace cairn::server
