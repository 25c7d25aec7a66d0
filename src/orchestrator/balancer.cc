#include "orchestrator/balancer.h"

#include <algorithm>
#include <map>

#include "common/assert.h"

namespace cairn::orchestrator {

namespace {

using topology::ShardId;
using topology::Token;
// Shares are sums of spans up to 2^64 inclusive: one bit more than a token holds.
using Wide = topology::TokenWidth;

constexpr Wide kRing = topology::kRingTokens;

Wide span(Token start, Token end) { return token_span(start, end); }

bool overlaps(Token a_start, Token a_end, Token b_start, Token b_end) {
  return ranges_overlap(a_start, a_end, b_start, b_end);
}

struct Piece {
  Token start = 0;
  Token end = 0;
};

}  // namespace

Token slot_aligned_cut(Token start, Token end, Token at) {
  CAIRN_ASSERT(at > start && topology::before_end(at, end), "a cut lies strictly inside its range");
  const Token aligned = topology::nearest_slot_boundary(at);
  // 0 is the ring's end, never a cut; otherwise both parts must keep their minimum size.
  if (aligned == 0 || aligned <= start) return at;
  if (span(start, aligned) < kMinRangeTokens || span(aligned, end) < kMinRangeTokens) return at;
  if (end != 0 && aligned >= end) return at;
  return aligned;
}

double ring_fraction(Token start, Token end) {
  return static_cast<double>(span(start, end)) / static_cast<double>(kRing);
}

std::vector<Move> balance(const topology::RoutingTableSpec& table,
                          const std::vector<Move>& active) {
  std::map<ShardId, Wide> share;
  std::map<ShardId, std::vector<Piece>> free;
  for (const auto& shard : table.shards) {
    if (!shard.replicas.empty()) share[shard.id] = 0;
  }
  for (const auto& range : table.ranges) {
    share[range.shard] += span(range.start, range.end);
    bool busy = std::any_of(active.begin(), active.end(), [&](const Move& m) {
      return overlaps(range.start, range.end, m.start, m.end);
    });
    if (!busy) free[range.shard].push_back(Piece{range.start, range.end});
  }
  if (share.size() < 2) return {};
  for (const Move& m : active) {
    Wide moving = span(m.start, m.end);
    if (share.contains(m.source)) share[m.source] -= std::min(share[m.source], moving);
    if (share.contains(m.target)) share[m.target] += moving;
  }
  const Wide ideal = kRing / share.size();
  const Wide low = ideal - ideal / 10;
  const Wide high = ideal + ideal / 10;
  std::vector<Move> moves;
  // Each step brings the taker or the giver to the ideal, so 2 steps per shard suffice; the
  // bound only guards against a bug looping forever.
  const size_t steps_max = 4 * share.size() + 8;
  for (size_t step = 0; step < steps_max; ++step) {
    auto taker = share.begin();
    auto giver = share.begin();
    for (auto it = share.begin(); it != share.end(); ++it) {
      if (it->second < taker->second) taker = it;
      if (it->second > giver->second) giver = it;
    }
    if (taker->second >= low && giver->second <= high) break;
    if (taker == giver || giver->second <= ideal || taker->second >= ideal) break;
    Wide remaining = std::min(ideal - taker->second, giver->second - ideal);
    if (remaining < kMinRangeTokens) break;
    std::vector<Piece>& pieces = free[giver->first];
    // Whole ranges first, largest first (fewest migrations), lower start on ties.
    std::vector<size_t> order(pieces.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      Wide sa = span(pieces[a].start, pieces[a].end), sb = span(pieces[b].start, pieces[b].end);
      return sa != sb ? sa > sb : pieces[a].start < pieces[b].start;
    });
    std::vector<bool> taken(pieces.size(), false);
    Wide moved = 0;
    for (size_t i : order) {
      Wide size = span(pieces[i].start, pieces[i].end);
      // A range up to kMinRangeTokens larger than what is left is taken whole: it could not be
      // cut to the exact amount anyway, and the overshoot is negligible.
      if (remaining == 0 || size > remaining + kMinRangeTokens) continue;
      moves.push_back(Move{pieces[i].start, pieces[i].end, giver->first, taker->first});
      taken[i] = true;
      moved += size;
      remaining = size >= remaining ? 0 : remaining - size;
    }
    // Then one cut, in ring order, of a range large enough that both parts keep at least
    // kMinRangeTokens: the moved part is the rest, to the nearest slot boundary.
    std::vector<Piece> kept;
    bool cut = false;
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (taken[i]) continue;
      Piece piece = pieces[i];
      if (!cut && remaining >= kMinRangeTokens &&
          span(piece.start, piece.end) >= remaining + kMinRangeTokens) {
        const Token at =
            slot_aligned_cut(piece.start, piece.end, piece.start + static_cast<Token>(remaining));
        moves.push_back(Move{piece.start, at, giver->first, taker->first});
        moved += span(piece.start, at);
        remaining = 0;
        piece.start = at;
        cut = true;
      }
      kept.push_back(piece);
    }
    pieces = std::move(kept);
    if (moved == 0) break;
    giver->second -= std::min(giver->second, moved);
    taker->second += moved;
  }
  return moves;
}

}  // namespace cairn::orchestrator
