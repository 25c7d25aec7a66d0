#include "coordinator/key_locks.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "common/assert.h"
#include "topology/token.h"

namespace cairn::coordinator {

std::vector<std::unique_lock<std::mutex>> lock_keys(storage::Engine& engine,
                                                    std::span<const std::string> keys) {
  std::vector<std::unique_lock<std::mutex>> locks;
  if (keys.size() == 1) {
    locks.push_back(engine.lock_key(topology::token_of(keys[0]), keys[0]));
    return locks;
  }
  // Engine::lock_key does not say which stripe a key uses, but the stripe of a key never changes,
  // so each key's stripe is identified by briefly locking it (holding nothing else, so this cannot
  // deadlock); then each distinct stripe is locked once, in address order.
  std::vector<std::pair<const std::mutex*, const std::string*>> stripes;
  stripes.reserve(keys.size());
  for (const std::string& key : keys) {
    std::unique_lock<std::mutex> probe = engine.lock_key(topology::token_of(key), key);
    stripes.emplace_back(probe.mutex(), &key);
  }
  std::sort(stripes.begin(), stripes.end(),
            [](const auto& a, const auto& b) { return std::less<>()(a.first, b.first); });
  stripes.erase(std::unique(stripes.begin(), stripes.end(),
                            [](const auto& a, const auto& b) { return a.first == b.first; }),
                stripes.end());
  locks.reserve(stripes.size());
  for (const auto& [stripe, key] : stripes) {
    locks.push_back(engine.lock_key(topology::token_of(*key), *key));
    CAIRN_ASSERT(locks.back().mutex() == stripe, "a key's lock stripe changed");
  }
  return locks;
}

}  // namespace cairn::coordinator
