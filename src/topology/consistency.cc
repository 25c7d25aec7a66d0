#include "topology/consistency.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <utility>

namespace cairn::topology {
namespace {

constexpr std::array<std::pair<std::string_view, ConsistencyLevel>, 5> kNamedLevels = {{
    {"ONE", ConsistencyLevel::one()},
    {"TWO", ConsistencyLevel::two()},
    {"THREE", ConsistencyLevel::three()},
    {"QUORUM", ConsistencyLevel::quorum()},
    {"ALL", ConsistencyLevel::all()},
}};

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

}  // namespace

ConsistencyLevel ConsistencyLevel::count(uint32_t count) {
  CAIRN_ASSERT(count >= 1 && count <= kCountMax, "consistency count out of range");
  return ConsistencyLevel(Kind::kCount, count);
}

Result<ConsistencyLevel> parse_consistency(std::string_view text) {
  for (const auto& [name, level] : kNamedLevels) {
    if (equals_ignoring_case(text, name)) return level;
  }
  const bool all_digits = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
  if (all_digits) {
    uint32_t count = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), count);
    if (error == std::errc() && end == text.data() + text.size() && count >= 1 &&
        count <= ConsistencyLevel::kCountMax) {
      return ConsistencyLevel::count(count);
    }
    return Status::invalid_argument(
        fmt::format("consistency level {} is out of range: a number must be 1..{}",
                    text.substr(0, 32), ConsistencyLevel::kCountMax));
  }
  // Bound the echo so a huge argument cannot make a huge error reply.
  return Status::invalid_argument(fmt::format(
      "unknown consistency level '{}{}' (expected ONE, TWO, THREE, QUORUM, ALL or a number 1..{})",
      text.substr(0, 32), text.size() > 32 ? "..." : "", ConsistencyLevel::kCountMax));
}

std::string consistency_name(ConsistencyLevel level) {
  switch (level.kind()) {
    case ConsistencyLevel::Kind::kOne:
      return "ONE";
    case ConsistencyLevel::Kind::kTwo:
      return "TWO";
    case ConsistencyLevel::Kind::kThree:
      return "THREE";
    case ConsistencyLevel::Kind::kQuorum:
      return "QUORUM";
    case ConsistencyLevel::Kind::kAll:
      return "ALL";
    case ConsistencyLevel::Kind::kCount:
      return std::to_string(level.number());
  }
  return "UNKNOWN";
}

Result<uint32_t> required(ConsistencyLevel level, uint32_t n_voting) {
  if (n_voting == 0) {
    return Status::invalid_argument("cannot satisfy any consistency level with 0 voting replicas");
  }
  uint32_t needed = 0;
  switch (level.kind()) {
    case ConsistencyLevel::Kind::kOne:
      needed = 1;
      break;
    case ConsistencyLevel::Kind::kTwo:
      needed = 2;
      break;
    case ConsistencyLevel::Kind::kThree:
      needed = 3;
      break;
    case ConsistencyLevel::Kind::kQuorum:
      needed = n_voting / 2 + 1;
      break;
    case ConsistencyLevel::Kind::kAll:
      needed = n_voting;
      break;
    case ConsistencyLevel::Kind::kCount:
      needed = level.number();
      break;
  }
  CAIRN_ASSERT(needed >= 1, "every consistency level needs at least one replica");
  if (needed > n_voting) {
    return Status::invalid_argument(
        fmt::format("cannot satisfy consistency {} with {} voting replica{}",
                    consistency_name(level), n_voting, n_voting == 1 ? "" : "s"));
  }
  return needed;
}

Result<bool> strong(ConsistencyLevel read, ConsistencyLevel write, uint32_t n_voting) {
  Result<uint32_t> r = required(read, n_voting);
  if (!r.is_ok()) return r.status();
  Result<uint32_t> w = required(write, n_voting);
  if (!w.is_ok()) return w.status();
  return r.value() + w.value() > n_voting;
}

}  // namespace cairn::topology
