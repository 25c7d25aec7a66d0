#include "server/blocked_clients.h"

#include <unordered_set>

#include "common/assert.h"

namespace cairn::server {

uint64_t BlockedClients::add(std::vector<std::string> keys, Wake wake,
                             uint64_t notifications_before, bool& missed, std::string queue) {
  std::lock_guard lock(mutex_);
  const uint64_t sequence = next_sequence_++;
  Waiter& waiter = waiters_[sequence];
  // A key named twice (BLPOP k k 0) is queued once: members holds each waiter once per key.
  // (Views into waiter.keys, which the reserve keeps in place.)
  std::unordered_set<std::string_view> seen;
  waiter.keys.reserve(keys.size());
  for (std::string& key : keys) {
    if (seen.contains(key)) continue;
    waiter.keys.push_back(std::move(key));
    seen.insert(waiter.keys.back());
  }
  waiter.wake = std::move(wake);
  waiter.queue = std::move(queue);
  for (const std::string& key : waiter.keys) {
    KeyState& state = keys_[key];
    state.waiting.insert(sequence);
    state.members.insert(sequence);
  }
  count_.store(waiters_.size(), std::memory_order_relaxed);
  missed = notifications_.load(std::memory_order_acquire) != notifications_before;
  return sequence;
}

void BlockedClients::start_attempt(uint64_t sequence, Waiter& waiter) {
  CAIRN_ASSERT(!waiter.attempting, "only a waiting waiter starts an attempt");
  waiter.attempting = true;
  waiter.epochs.clear();
  for (const std::string& key : waiter.keys) {
    KeyState& state = keys_.at(key);
    state.waiting.erase(sequence);
    waiter.epochs.push_back(state.epoch);
  }
}

void BlockedClients::notify(std::string_view key) {
  notifications_.fetch_add(1, std::memory_order_acq_rel);
  if (count_.load(std::memory_order_relaxed) == 0) return;
  Wake wake;
  {
    std::lock_guard lock(mutex_);
    auto found = keys_.find(std::string(key));
    if (found == keys_.end()) return;
    KeyState& state = found->second;
    ++state.epoch;
    if (state.waiting.empty()) return;
    const uint64_t sequence = *state.waiting.begin();
    Waiter& waiter = waiters_.at(sequence);
    start_attempt(sequence, waiter);
    wake = waiter.wake;
  }
  wake();
}

void BlockedClients::notify_all() {
  notifications_.fetch_add(1, std::memory_order_acq_rel);
  if (count_.load(std::memory_order_relaxed) == 0) return;
  std::vector<Wake> wakes;
  {
    std::lock_guard lock(mutex_);
    for (auto& [key, state] : keys_) ++state.epoch;
    for (auto& [sequence, waiter] : waiters_) {
      if (waiter.attempting) continue;  // its rearm sees the epochs moved and attempts again
      start_attempt(sequence, waiter);
      wakes.push_back(waiter.wake);
    }
  }
  for (const Wake& wake : wakes) wake();
}

bool BlockedClients::take(uint64_t sequence) {
  std::lock_guard lock(mutex_);
  auto found = waiters_.find(sequence);
  if (found == waiters_.end() || found->second.attempting) return false;
  start_attempt(sequence, found->second);
  return true;
}

BlockedClients::Recheck BlockedClients::take_for_recheck(uint64_t sequence) {
  std::lock_guard lock(mutex_);
  auto found = waiters_.find(sequence);
  if (found == waiters_.end() || found->second.attempting) return Recheck::kNotWaiting;
  const Waiter& waiter = found->second;
  bool behind_everywhere = !waiter.queue.empty();
  for (size_t i = 0; i < waiter.keys.size() && behind_everywhere; ++i) {
    bool behind = false;
    for (const uint64_t member : keys_.at(waiter.keys[i]).members) {
      if (member >= sequence) break;
      if (waiters_.at(member).queue == waiter.queue) {
        behind = true;
        break;
      }
    }
    behind_everywhere = behind;
  }
  if (behind_everywhere) return Recheck::kLater;
  start_attempt(sequence, found->second);
  return Recheck::kTaken;
}

bool BlockedClients::rearm(uint64_t sequence) {
  std::lock_guard lock(mutex_);
  Waiter& waiter = waiters_.at(sequence);
  CAIRN_ASSERT(waiter.attempting, "rearm follows an attempt");
  bool moved = false;
  for (size_t i = 0; i < waiter.keys.size(); ++i) {
    const uint64_t epoch = keys_.at(waiter.keys[i]).epoch;
    moved |= epoch != waiter.epochs[i];
    waiter.epochs[i] = epoch;
  }
  if (moved) return false;
  waiter.attempting = false;
  for (const std::string& key : waiter.keys) keys_.at(key).waiting.insert(sequence);
  return true;
}

void BlockedClients::remove(uint64_t sequence) {
  std::lock_guard lock(mutex_);
  auto found = waiters_.find(sequence);
  if (found == waiters_.end()) return;
  for (const std::string& key : found->second.keys) {
    auto state = keys_.find(key);
    CAIRN_ASSERT(state != keys_.end(), "a waiter's key has an entry");
    state->second.waiting.erase(sequence);
    state->second.members.erase(sequence);
    if (state->second.members.empty()) keys_.erase(state);
  }
  waiters_.erase(found);
  count_.store(waiters_.size(), std::memory_order_relaxed);
}

size_t BlockedClients::size() const {
  std::lock_guard lock(mutex_);
  return waiters_.size();
}

}  // namespace cairn::server
