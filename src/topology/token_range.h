#pragma once
// Token ranges on the ring: [start, end), where an end of 0 stands for 2^64, the ring's end
// (docs/formats.md "Tokens"). This header is the one place that rule is written down; code
// that compares, measures or intersects ranges uses these helpers instead of testing for 0.
// Pure and constexpr.

#include <cstdint>

#include "topology/token.h"

namespace cairn::topology {

// Token counts and positions one bit wider than a token: 2^64 (the whole ring) fits.
using TokenWidth = unsigned __int128;
inline constexpr TokenWidth kRingTokens = TokenWidth{1} << 64;

// An end as a position: 0 becomes 2^64.
constexpr TokenWidth end_position(Token end) { return end == 0 ? kRingTokens : end; }
// The token at a position (2^64 becomes 0, the ring's end).
constexpr Token token_at(TokenWidth position) { return static_cast<Token>(position); }

// Tokens in [start, end). REQUIRES: end == 0 or end >= start.
constexpr TokenWidth token_span(Token start, Token end) { return end_position(end) - start; }

// token < end, with end 0 = 2^64.
constexpr bool before_end(Token token, Token end) { return end == 0 || token < end; }

// Whether `token` lies in [start, end).
constexpr bool in_range(Token token, Token start, Token end) {
  return token >= start && before_end(token, end);
}

// Whether [a_start, a_end) and [b_start, b_end) share a token.
constexpr bool ranges_overlap(Token a_start, Token a_end, Token b_start, Token b_end) {
  return before_end(a_start, b_end) && before_end(b_start, a_end);
}

// The earlier of two ends.
constexpr Token min_end(Token a, Token b) { return end_position(a) <= end_position(b) ? a : b; }

// Whether [outer_start, outer_end) holds every token of [inner_start, inner_end).
constexpr bool range_covers(Token outer_start, Token outer_end, Token inner_start,
                            Token inner_end) {
  return outer_start <= inner_start && end_position(inner_end) <= end_position(outer_end);
}

}  // namespace cairn::topology
