#include "coordinator/cluster_internal.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <utility>

#include "common/assert.h"
#include "storage/cell.h"
#include "storage/engine.h"

namespace cairn::coordinator {
namespace {

// Whether token bound `a` lies before bound `b`, where 0 stands for the ring end (2^64).
bool bound_before(topology::Token a, topology::Token b) { return a != 0 && (b == 0 || a < b); }

ReplicaOutcome outcome_of_error_reply(const resp::Value& value) {
  if (std::optional<replica::Fence> fence = replica::parse_fence_error(value.str)) {
    if (!fence->ok()) return ReplicaOutcome::fenced(*fence);
  }
  return ReplicaOutcome::failure(value.str);
}

}  // namespace

int remaining_ms(Deadline deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(1, left.count()));
}

Gather::Gather(size_t needed, size_t slots) : needed_(needed), slots_(slots, SlotState::kPending) {
  CAIRN_ASSERT(needed <= slots, "a gather cannot need more answers than it has replicas");
}

void Gather::succeed(size_t slot) { record(slot, SlotState::kSucceeded); }
void Gather::fail(size_t slot) { record(slot, SlotState::kFailed); }

void Gather::record(size_t slot, SlotState state) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    CAIRN_ASSERT(slot < slots_.size(), "gather slot out of range");
    if (slots_[slot] != SlotState::kPending) return;  // invariant 1
    slots_[slot] = state;
    if (state == SlotState::kSucceeded) {
      ++successes_;
    } else {
      ++failures_;
    }
  }
  changed_.notify_all();
}

bool Gather::wait_for_needed(Deadline deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_until(lock, deadline, [this] {
    return successes_ >= needed_ || slots_.size() - failures_ < needed_;
  });
  return successes_ >= needed_;
}

void Gather::wait_for_all(Deadline deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_until(lock, deadline,
                      [this] { return successes_ + failures_ == slots_.size(); });
}

bool Gather::wait_for_needed_or_failure(Deadline until, size_t failures_seen) {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_until(lock, until,
                      [&] { return successes_ >= needed_ || failures_ > failures_seen; });
  return successes_ >= needed_;
}

size_t Gather::failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

size_t Gather::successes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return successes_;
}

std::vector<size_t> Gather::succeeded_slots() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<size_t> slots;
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i] == SlotState::kSucceeded) slots.push_back(i);
  }
  return slots;
}

ReplicaOutcome outcome_of_fence(const replica::Fence& fence) {
  return fence.ok() ? ReplicaOutcome::success() : ReplicaOutcome::fenced(fence);
}

ReplicaOutcome decode_apply_reply(const Result<resp::Value>& reply) {
  if (!reply.is_ok()) return ReplicaOutcome::failure(reply.status().to_string());
  if (reply.value().is_error()) return outcome_of_error_reply(reply.value());
  if (reply.value().type == resp::Value::Type::kBulk) {
    // The replica kept a newer cell; the bulk string is its timestamp.
    uint64_t newer = 0;
    const std::string& text = reply.value().str;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), newer);
    if (error != std::errc() || end != text.data() + text.size() || newer == 0) {
      return ReplicaOutcome::failure("malformed CAIRN.APPLY reply");
    }
    return ReplicaOutcome::success(newer);
  }
  if (reply.value().type != resp::Value::Type::kInteger) {
    return ReplicaOutcome::failure("malformed CAIRN.APPLY reply");
  }
  return ReplicaOutcome::success();
}

ReplicaOutcome decode_read_reply(const Result<resp::Value>& reply,
                                 std::optional<storage::Cell>* cell) {
  if (!reply.is_ok()) return ReplicaOutcome::failure(reply.status().to_string());
  if (reply.value().is_error()) return outcome_of_error_reply(reply.value());
  const resp::Value& value = reply.value();
  if (value.type == resp::Value::Type::kNull) {
    cell->reset();
    return ReplicaOutcome::success();
  }
  if (value.type != resp::Value::Type::kBulk) {
    return ReplicaOutcome::failure("malformed CAIRN.READ reply");
  }
  Result<storage::Cell> decoded = storage::decode_cell(value.str);
  if (!decoded.is_ok()) return ReplicaOutcome::failure(decoded.status().to_string());
  *cell = std::move(*decoded);
  return ReplicaOutcome::success();
}

ReplicaOutcome decode_scan_reply(const Result<resp::Value>& reply, replica::ScanResult* result) {
  if (!reply.is_ok()) return ReplicaOutcome::failure(reply.status().to_string());
  if (reply.value().is_error()) return outcome_of_error_reply(reply.value());
  const resp::Value& value = reply.value();
  // A fourth element: the page stopped inside a big row and says where to resume.
  if (value.type != resp::Value::Type::kArray ||
      (value.elements.size() != 3 && value.elements.size() != 4) ||
      value.elements[1].type != resp::Value::Type::kInteger ||
      value.elements[2].type != resp::Value::Type::kArray ||
      value.elements[2].elements.size() % 3 != 0 ||
      (value.elements.size() == 4 && (value.elements[3].type != resp::Value::Type::kBulk ||
                                      value.elements[3].str.empty()))) {
    return ReplicaOutcome::failure("malformed CAIRN.SCAN reply");
  }
  result->resume = value.elements.size() == 4 ? value.elements[3].str : std::string();
  // The next token is a bulk string: tokens use all 64 bits and a RESP integer is signed.
  const resp::Value& next = value.elements[0];
  if (next.type != resp::Value::Type::kBulk) return ReplicaOutcome::failure("malformed next token");
  const auto [end, error] =
      std::from_chars(next.str.data(), next.str.data() + next.str.size(), result->next_token);
  if (error != std::errc() || end != next.str.data() + next.str.size() || next.str.empty()) {
    return ReplicaOutcome::failure("malformed next token");
  }
  result->done = value.elements[1].integer != 0;
  const std::vector<resp::Value>& pairs = value.elements[2].elements;
  result->entries.clear();
  result->entries.reserve(pairs.size() / 3);
  for (size_t i = 0; i < pairs.size(); i += 3) {
    if (pairs[i].type != resp::Value::Type::kBulk || pairs[i + 1].type != resp::Value::Type::kBulk ||
        pairs[i + 2].type != resp::Value::Type::kBulk) {
      return ReplicaOutcome::failure("malformed CAIRN.SCAN entry");
    }
    Result<storage::Cell> cell = storage::decode_cell(pairs[i + 2].str);
    if (!cell.is_ok()) return ReplicaOutcome::failure(cell.status().to_string());
    result->entries.push_back({pairs[i].str, std::move(*cell), pairs[i + 1].str});
  }
  return ReplicaOutcome::success();
}

ReplicaOutcome decode_row_reply(const Result<resp::Value>& reply, replica::RowPage* page) {
  if (!reply.is_ok()) return ReplicaOutcome::failure(reply.status().to_string());
  if (reply.value().is_error()) return outcome_of_error_reply(reply.value());
  const resp::Value& value = reply.value();
  using Type = resp::Value::Type;
  if (value.type != Type::kArray || value.elements.size() != 4 ||
      (value.elements[0].type != Type::kBulk && value.elements[0].type != Type::kNull) ||
      value.elements[1].type != Type::kBulk ||
      (value.elements[2].type != Type::kBulk && value.elements[2].type != Type::kNull) ||
      value.elements[3].type != Type::kArray || value.elements[3].elements.size() % 2 != 0) {
    return ReplicaOutcome::failure("malformed CAIRN.ROW reply");
  }
  *page = replica::RowPage{};
  if (value.elements[0].type == Type::kBulk) {
    Result<storage::Cell> header = storage::decode_cell(value.elements[0].str);
    if (!header.is_ok()) return ReplicaOutcome::failure(header.status().to_string());
    page->header = std::move(*header);
  }
  Result<storage::RowState> state = storage::decode_row_state(value.elements[1].str);
  if (!state.is_ok()) return ReplicaOutcome::failure(state.status().to_string());
  page->state = *state;
  if (value.elements[2].type == Type::kBulk) page->next = value.elements[2].str;
  const std::vector<resp::Value>& pairs = value.elements[3].elements;
  page->fields.reserve(pairs.size() / 2);
  for (size_t i = 0; i < pairs.size(); i += 2) {
    if (pairs[i].type != Type::kBulk || pairs[i + 1].type != Type::kBulk || pairs[i].str.empty()) {
      return ReplicaOutcome::failure("malformed CAIRN.ROW entry");
    }
    Result<storage::Cell> cell = storage::decode_cell(pairs[i + 1].str);
    if (!cell.is_ok()) return ReplicaOutcome::failure(cell.status().to_string());
    page->fields.emplace_back(pairs[i].str, std::move(*cell));
  }
  return ReplicaOutcome::success();
}

MergedRowPage merge_row_pages(std::span<const replica::RowPage> answers, int64_t now_ms) {
  MergedRowPage merged;
  // Beyond the first `next` of an answer that is not done, the others may lack fields.
  for (const replica::RowPage& answer : answers) {
    if (answer.next && (!merged.next || *answer.next < *merged.next)) merged.next = answer.next;
  }
  auto covered = [&](const std::string& sub_key) { return !merged.next || sub_key < *merged.next; };
  std::vector<std::optional<storage::Cell>> headers;
  headers.reserve(answers.size());
  for (const replica::RowPage& answer : answers) {
    headers.push_back(answer.header);
    merged.hidden_through =
        std::max(merged.hidden_through, answer.state.hidden_through(now_ms));
  }
  merged.header = merge_cells(headers);
  if (merged.header) {
    merged.hidden_through =
        std::max(merged.hidden_through, storage::hidden_through(*merged.header, now_ms));
  }
  merged.stale_header.assign(answers.size(), false);
  for (size_t i : stale_answers(headers, merged.header)) merged.stale_header[i] = true;

  std::map<std::string_view, const storage::Cell*> winners;
  for (const replica::RowPage& answer : answers) {
    for (const auto& [sub_key, cell] : answer.fields) {
      if (!covered(sub_key)) break;  // fields come in sub-key order
      auto [it, inserted] = winners.try_emplace(sub_key, &cell);
      if (!inserted && storage::supersedes(cell, *it->second)) it->second = &cell;
    }
  }
  merged.fields.reserve(winners.size());
  for (const auto& [sub_key, cell] : winners) merged.fields.emplace_back(sub_key, *cell);

  merged.stale_fields.resize(answers.size());
  for (size_t a = 0; a < answers.size(); ++a) {
    // Both lists are in sub-key order: walk them together.
    const auto& held = answers[a].fields;
    size_t h = 0;
    for (size_t f = 0; f < merged.fields.size(); ++f) {
      const auto& [sub_key, winner] = merged.fields[f];
      while (h < held.size() && held[h].first < sub_key) ++h;
      const bool holds = h < held.size() && held[h].first == sub_key && held[h].second == winner;
      if (!holds && winner.timestamp > merged.hidden_through) merged.stale_fields[a].push_back(f);
    }
  }
  return merged;
}

std::optional<storage::Cell> merge_cells(std::span<const std::optional<storage::Cell>> cells) {
  const std::optional<storage::Cell>* winner = nullptr;
  for (const std::optional<storage::Cell>& cell : cells) {
    if (!cell) continue;
    if (winner == nullptr || storage::supersedes(*cell, **winner)) winner = &cell;
  }
  return winner == nullptr ? std::nullopt : *winner;
}

std::vector<size_t> stale_answers(std::span<const std::optional<storage::Cell>> cells,
                                  const std::optional<storage::Cell>& winner) {
  std::vector<size_t> stale;
  if (!winner) return stale;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (!cells[i] || *cells[i] != *winner) stale.push_back(i);
  }
  return stale;
}

ScanPage merge_scan_answers(topology::Token range_end,
                            std::span<const replica::ScanResult> answers, int64_t now_ms,
                            const ScanFilter& filter) {
  // Replicas that are not done stopped at different tokens; beyond the first of those stops the
  // other answers may be missing keys, so the page ends there (invariant 3).
  topology::Token limit = range_end;
  for (const replica::ScanResult& answer : answers) {
    if (!answer.done && bound_before(answer.next_token, limit)) limit = answer.next_token;
  }
  // Storage keys order by token, then key, exactly as the replicas return them.
  std::map<std::string, std::pair<std::string_view, const storage::Cell*>> merged;
  for (const replica::ScanResult& answer : answers) {
    for (const replica::ScanEntry& entry : answer.entries) {
      // Fields of rows are not keys (a KEYS scan leaves them out; an older machine may not).
      if (!entry.sub_key.empty()) continue;
      const topology::Token token = topology::token_of(entry.key);
      if (!bound_before(token, limit)) continue;
      auto [it, inserted] = merged.try_emplace(storage::encode_key(token, entry.key), entry.key,
                                               &entry.cell);
      if (!inserted && storage::supersedes(entry.cell, *it->second.second)) {
        it->second.second = &entry.cell;
      }
    }
  }
  ScanPage page;
  page.next_cursor = limit;
  for (const auto& [encoded, winner] : merged) {
    const auto& [key, cell] = winner;
    if (!cell->live_at(now_ms)) continue;
    if (filter && !filter(key, *cell)) continue;
    page.keys.emplace_back(key);
  }
  return page;
}

std::string uncertain_write_message(size_t acks, size_t required) {
  return "UNCERTAIN " + std::to_string(acks) + " of " + std::to_string(required) +
         " required replicas acknowledged; the write may have been applied";
}

std::string unavailable_read_message(size_t answers, size_t required) {
  return "UNAVAILABLE " + std::to_string(answers) + " of " + std::to_string(required) +
         " required replicas answered";
}

std::string no_leader_message(uint64_t shard) {
  return "NOLEADER shard " + std::to_string(shard) +
         " has no leader with a valid lease; retry when the cluster has elected one";
}

}  // namespace cairn::coordinator
