#include "topology/slot_map.h"

#include <algorithm>

#include "common/assert.h"

namespace cairn::topology {

namespace {

// Tokens of [start, end) inside `slot`; end 0 is the ring's end.
uint64_t overlap(Token start, Token end, Slot slot) {
  const Token slot_first = slot_start(slot);
  const Token slot_last = slot_first + (kSlotTokens - 1);  // inclusive: no overflow at the end
  const Token range_last = end == 0 ? ~Token{0} : end - 1;
  const Token first = std::max(start, slot_first);
  const Token last = std::min(range_last, slot_last);
  return last < first ? 0 : last - first + 1;
}

bool is_up(const Machine* machine) { return machine->state == MachineState::kUp; }

}  // namespace

ShardId slot_owner(const RoutingTable& table, Slot slot) {
  CAIRN_ASSERT(slot < kSlotCount, "slot out of range");
  const std::vector<Range>& ranges = table.ranges();
  // The range holding the slot's first token, then every following range that starts inside.
  const Range& first = table.range_for_token(slot_start(slot));
  auto it = std::lower_bound(ranges.begin(), ranges.end(), first.start,
                             [](const Range& range, Token start) { return range.start < start; });
  CAIRN_ASSERT(it != ranges.end() && it->start == first.start, "range_for_token is a range");
  ShardId best = it->shard;
  uint64_t best_tokens = overlap(it->start, it->end, slot);
  for (++it; it != ranges.end() && slot_of_token(it->start) == slot; ++it) {
    const uint64_t tokens = overlap(it->start, it->end, slot);
    if (tokens > best_tokens) {
      best = it->shard;
      best_tokens = tokens;
    }
  }
  return best;
}

std::vector<SlotSpan> slot_spans(const RoutingTable& table) {
  std::vector<SlotSpan> spans;
  for (uint32_t slot = 0; slot < kSlotCount; ++slot) {
    const ShardId owner = slot_owner(table, static_cast<Slot>(slot));
    if (!spans.empty() && spans.back().shard == owner) {
      spans.back().last = static_cast<Slot>(slot);
    } else {
      spans.push_back(SlotSpan{static_cast<Slot>(slot), static_cast<Slot>(slot), owner});
    }
  }
  return spans;
}

const Machine* shard_primary(const RoutingTable& table, const Shard& shard) {
  if (shard.leader != kNoMachine) {
    const Machine* leader = table.find_machine(shard.leader);
    if (leader != nullptr && is_up(leader)) return leader;
  }
  const Machine* first = nullptr;
  for (MachineId id : shard.replicas) {
    const Machine* machine = table.find_machine(id);
    if (machine == nullptr) continue;
    if (is_up(machine)) return machine;
    if (first == nullptr) first = machine;
  }
  return first;
}

std::vector<const Machine*> shard_secondaries(const RoutingTable& table, const Shard& shard) {
  const Machine* primary = shard_primary(table, shard);
  std::vector<const Machine*> out;
  for (const std::vector<MachineId>* role : {&shard.replicas, &shard.extras}) {
    for (MachineId id : *role) {
      const Machine* machine = table.find_machine(id);
      if (machine != nullptr && machine != primary && is_up(machine)) out.push_back(machine);
    }
  }
  return out;
}

bool serves_shard(const Shard& shard, MachineId machine) {
  const auto has = [machine](const std::vector<MachineId>& ids) {
    return std::find(ids.begin(), ids.end(), machine) != ids.end();
  };
  return has(shard.replicas) || has(shard.extras);
}

}  // namespace cairn::topology
