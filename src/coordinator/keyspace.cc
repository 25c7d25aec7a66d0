#include "coordinator/keyspace.h"

#include <atomic>
#include <memory>
#include <mutex>

namespace cairn::coordinator {
namespace {

std::mutex observer_mutex;
std::shared_ptr<const ExpiredObserver> observer;  // guarded by observer_mutex
std::atomic<bool> observing{false};

}  // namespace

void set_expired_observer(ExpiredObserver fn) {
  std::lock_guard lock(observer_mutex);
  observer = fn ? std::make_shared<const ExpiredObserver>(std::move(fn)) : nullptr;
  observing.store(observer != nullptr, std::memory_order_relaxed);
}

void note_if_expired(std::string_view key, const storage::Cell& cell, int64_t now_ms) {
  if (!observing.load(std::memory_order_relaxed)) return;
  if (cell.tombstone || !cell.expired_at(now_ms)) return;
  std::shared_ptr<const ExpiredObserver> fn;
  {
    std::lock_guard lock(observer_mutex);
    fn = observer;
  }
  if (fn) (*fn)(key, cell.expire_at_ms);
}

}  // namespace cairn::coordinator
