#include "topology/token.h"

#include <xxhash.h>

namespace cairn::topology {

std::string_view hash_tag(std::string_view key) {
  const size_t open = key.find('{');
  if (open == std::string_view::npos) return key;
  const size_t close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

Token token_of(std::string_view key) {
  const std::string_view hashed = hash_tag(key);
  return XXH3_64bits(hashed.data(), hashed.size());
}

}  // namespace cairn::topology
