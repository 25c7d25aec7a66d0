#pragma once
// Locking several keys at once for read-modify-write commands (Keyspace::atomically), shared by
// LocalKeyspace and the cluster leader (ClusterSession::atomically).
//
// Engine::lock_key is striped, so distinct keys may share a stripe, and stripes must be taken in
// one global order or two callers could deadlock. lock_keys() takes each distinct stripe once, in
// address order.

#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "storage/engine.h"

namespace cairn::coordinator {

// Locks the stripes of every key of `keys` (none for an empty span). The locks are released when
// the returned vector is destroyed.
std::vector<std::unique_lock<std::mutex>> lock_keys(storage::Engine& engine,
                                                    std::span<const std::string> keys);

}  // namespace cairn::coordinator
