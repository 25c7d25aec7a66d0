#include "server/rebuilder.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "coordinator/cluster_internal.h"
#include "replica/replica.h"
#include "storage/cell.h"
#include "topology/token_range.h"

namespace cairn::server {

using topology::ShardId;
using topology::Token;

std::string_view rebuild_state_name(RebuildState state) {
  switch (state) {
    case RebuildState::kIdle: return "idle";
    case RebuildState::kCopying: return "copying";
    case RebuildState::kDone: return "done";
  }
  return "idle";
}

Rebuilder::Rebuilder(RebuilderOptions options, replica::Replica& replica, net::PeerPool& peers)
    : options_(options), replica_(replica), peers_(peers) {}

Rebuilder::~Rebuilder() { stop(); }

void Rebuilder::start() {
  CAIRN_ASSERT(!thread_.joinable(), "rebuilder started twice");
  thread_ = std::thread([this] { run(); });
}

void Rebuilder::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Rebuilder::wait_ms(int ms) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
  return !stopping_;
}

ShardId Rebuilder::rebuilt_shard() const {
  const ShardId joining = joining_shard();
  std::lock_guard lock(mu_);
  if (progress_.state != RebuildState::kDone || progress_.shard != joining) {
    return topology::kNoShard;
  }
  return progress_.shard;
}

RebuildProgress Rebuilder::progress() const {
  std::lock_guard lock(mu_);
  return progress_;
}

std::string Rebuilder::info() const {
  const RebuildProgress p = progress();
  return fmt::format(
      "rebuild_state:{}\r\nrebuild_shard:{}\r\nrebuild_ranges_total:{}\r\nrebuild_ranges_done:{}"
      "\r\nrebuild_keys_copied:{}\r\nrebuild_bytes_copied:{}\r\n",
      rebuild_state_name(p.state), p.shard, p.ranges_total, p.ranges_done, p.keys_copied,
      p.bytes_copied);
}

ShardId Rebuilder::joining_shard() const {
  const auto table = replica_.tables().current();
  if (!table) return topology::kNoShard;
  const uint64_t me = replica_.machine_id();
  for (const topology::Shard& shard : table->shards()) {
    if (std::find(shard.joining.begin(), shard.joining.end(), me) != shard.joining.end()) {
      return shard.id;
    }
  }
  return topology::kNoShard;
}

void Rebuilder::run() {
  while (wait_ms(options_.poll_ms)) {
    const ShardId shard = joining_shard();
    {
      std::lock_guard lock(mu_);
      if (shard == topology::kNoShard) {
        // Promoted, or released: the next joining starts afresh (counters stay for INFO).
        if (progress_.state == RebuildState::kCopying) progress_.state = RebuildState::kIdle;
        left_since_done_ = true;
        continue;
      }
      if (progress_.state == RebuildState::kDone && progress_.shard == shard &&
          !left_since_done_) {
        continue;
      }
      left_since_done_ = false;
      progress_.state = RebuildState::kCopying;
      progress_.shard = shard;
      progress_.ranges_total = 0;
      progress_.ranges_done = 0;
      progress_.keys_copied = 0;
      progress_.bytes_copied = 0;
    }
    spdlog::info("rebuild: copying shard {} from its voting replicas", shard);
    if (!copy_shard(shard)) continue;  // stopping, or the role changed: looked at again above
    const RebuildProgress done = progress();
    spdlog::info("rebuild: shard {} copied ({} ranges, {} keys, {} bytes)", shard,
                 done.ranges_done, done.keys_copied, done.bytes_copied);
  }
}

bool Rebuilder::copy_shard(ShardId shard) {
  const auto table = replica_.tables().current();
  if (!table) return false;
  const std::vector<topology::Range> ranges = table->ranges_of_shard(shard);
  {
    std::lock_guard lock(mu_);
    progress_.ranges_total = ranges.size();
  }
  // A new shard owns no range: it has all of nothing and is done at once.
  for (const topology::Range& range : ranges) {
    if (!copy_range(shard, range.start, range.end)) return false;
    std::lock_guard lock(mu_);
    ++progress_.ranges_done;
  }
  std::lock_guard lock(mu_);
  if (stopping_) return false;
  progress_.state = RebuildState::kDone;
  return true;
}

bool Rebuilder::copy_range(ShardId shard, Token start, Token end) {
  // Where the next page starts: a token and, inside it, where a page that stopped in a big row
  // said to resume (empty: the token's start).
  Token cursor = start;
  std::string from;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return false;
    }
    if (joining_shard() != shard) return false;
    const auto table = replica_.tables().current();
    // The range may have been split or moved since the copy began: copy what the current table
    // says owns `cursor`, within the range we were given.
    const topology::ReplicaSet set = table->replicas_for_token(cursor);
    if (set.shard == nullptr || set.shard->id != shard) return false;
    // A replica scans within one range of its table: stop the page at the end of the range
    // holding `cursor` if that comes first (end 0 = the ring's end).
    const Token range_end = table->range_for_token(cursor).end;
    const Token page_end =
        topology::end_position(range_end) < topology::end_position(end) ? range_end : end;
    const std::string epoch = std::to_string(table->epoch());
    std::vector<replica::ScanResult> answers;
    bool page_ok = !set.voting.empty();
    for (const topology::Machine* machine : set.voting) {
      std::vector<std::string> args = {"CAIRN.SCAN", epoch, std::to_string(cursor),
                                       std::to_string(page_end), std::to_string(kRebuildPageKeys)};
      if (!from.empty()) {
        args.emplace_back("FROM");
        args.push_back(from);
      }
      Result<resp::Value> reply =
          peers_.call_sync(machine->address, args, options_.request_timeout_ms);
      replica::ScanResult result;
      const coordinator::ReplicaOutcome outcome = coordinator::decode_scan_reply(reply, &result);
      if (!outcome.ok()) {
        if (outcome.kind == coordinator::ReplicaOutcome::Kind::kFence &&
            outcome.fence.code == replica::FenceCode::kTableBehind) {
          (void)peers_.call_sync(machine->address, {"CAIRN.TABLE", "SET", table->to_json_text()},
                                 options_.request_timeout_ms);
        }
        spdlog::debug("rebuild: machine {} did not serve the page at {}: {}", machine->id,
                      cursor, outcome.kind == coordinator::ReplicaOutcome::Kind::kFence
                                  ? replica::fence_error_text(outcome.fence)
                                  : outcome.error);
        page_ok = false;
        break;
      }
      answers.push_back(std::move(result));
    }
    if (!page_ok) {
      if (!wait_ms(options_.poll_ms)) return false;
      continue;  // redo the page
    }
    // Answers that are not done stopped at different positions; beyond the first of those the
    // others may lack cells, so the page ends there: `limit`, a storage-key bound (nullopt: the
    // ring's end).
    std::optional<std::string> limit;
    if (page_end != 0) limit = replica::scan_position(page_end);
    for (const replica::ScanResult& answer : answers) {
      if (answer.done || (answer.next_token == 0 && answer.resume.empty())) continue;
      std::string stop = replica::scan_position(answer.next_token, answer.resume);
      if (!limit || stop < *limit) limit = std::move(stop);
    }
    // Every answer holds all its cells below `limit`.
    uint64_t keys = 0;
    uint64_t bytes = 0;
    for (const replica::ScanResult& answer : answers) {
      for (const replica::ScanEntry& entry : answer.entries) {
        if (limit && storage::encode_key(topology::token_of(entry.key), entry.key,
                                         entry.sub_key) >= *limit) {
          continue;
        }
        Result<std::pair<replica::Fence, bool>> applied =
            replica_.apply(table->epoch(), entry.key, entry.cell, nullptr, entry.sub_key);
        if (!applied.is_ok() || !applied->first.ok()) {
          // Our own table moved on (or storage failed): redo the page with the newer table.
          page_ok = false;
          break;
        }
        if (applied->second) {
          ++keys;
          bytes += entry.key.size() + entry.cell.value.size();
        }
      }
      if (!page_ok) break;
    }
    {
      std::lock_guard lock(mu_);
      progress_.keys_copied += keys;
      progress_.bytes_copied += bytes;
    }
    if (!page_ok) {
      if (!wait_ms(options_.poll_ms)) return false;
      continue;
    }
    throttle(bytes);
    if (!limit) return true;  // the ring's end
    const Token next = replica::scan_position_token(*limit);
    const bool inside = replica::scan_position_inside_token(*limit);
    if (!inside && next == end) return true;
    if (*limit <= replica::scan_position(cursor, from)) {
      spdlog::error("rebuild: a page made no progress at token {}", cursor);
      if (!wait_ms(options_.poll_ms)) return false;
      continue;
    }
    cursor = next;
    from = inside ? *limit : std::string();
  }
}

void Rebuilder::throttle(uint64_t bytes) {
  if (options_.max_bytes_per_sec == 0) return;
  const int64_t now = monotonic_ms();
  if (now - window_start_ms_ >= 1000) {
    window_start_ms_ = now;
    window_bytes_ = 0;
  }
  window_bytes_ += bytes;
  if (window_bytes_ >= options_.max_bytes_per_sec) {
    (void)wait_ms(static_cast<int>(std::max<int64_t>(1, 1000 - (now - window_start_ms_))));
    window_start_ms_ = monotonic_ms();
    window_bytes_ = 0;
  }
}

}  // namespace cairn::server
