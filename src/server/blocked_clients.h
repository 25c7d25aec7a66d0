#pragma once
// BlockedClients: the clients waiting in a blocking command (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH,
// BLMPOP, XREAD and XREADGROUP with BLOCK), by key, in the order they blocked (docs/protocol.md
// "Blocking commands").
//
// A waiter does not hold a thread: its connection is suspended and the waiter is a wake
// callback. When this machine applies a write that may have added elements to a key, deleted it
// or changed its type (notify()), the waiter of that key that blocked first is taken out of the
// queue and woken (after FLUSHALL, notify_all(): every waiter); it runs its command again (an
// attempt) and then either leaves (served, or its deadline passed) or goes back to its place
// with rearm().
//
// Invariants:
//  1. A waiter is either waiting (queued under each of its keys) or attempting (queued under
//     none); only a waiting one is woken, so each waiter has at most one attempt in flight.
//  2. Among the waiters of a key, the one with the smallest sequence number (the first to block)
//     is woken first; rearm() keeps a waiter's number, so a waiter whose attempt found nothing
//     keeps its place.
//  3. A notification is never lost for a waiter: notify() raises the key's epoch even when no
//     waiter is waiting, and rearm() refuses (the caller attempts again) when an epoch of the
//     waiter's keys moved since its attempt began (add() does the same with the global count of
//     notifications, read before the first attempt).
// Bounds: one waiter per suspended connection (so at most maxclients), a key entry per key of
// some waiter.
//
// Threading: every method may be called from any thread. Wake callbacks run on the thread that
// calls notify() or take(), outside the lock, and must only post work elsewhere.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cairn::server {

class BlockedClients {
 public:
  using Wake = std::function<void()>;

  // The number of notifications so far; read before a command's first attempt and given to
  // add().
  uint64_t notifications() const { return notifications_.load(std::memory_order_acquire); }

  // Queues a waiter on `keys` (after every waiter already queued on them). Returns its sequence
  // number, and in `missed` whether some notification happened since `notifications_before`
  // (the caller then attempts at once through take()).
  // `queue`: waiters with the same non-empty queue on a key are served by the same data (the
  // elements of a list, the new entries of one consumer group), so only the first of them
  // retries periodically (take_for_recheck); an empty queue retries on its own.
  uint64_t add(std::vector<std::string> keys, Wake wake, uint64_t notifications_before,
               bool& missed, std::string queue = {});
  // A push may have been applied to `key`: wakes its first waiting waiter, if any.
  void notify(std::string_view key);
  // Every key may have changed (FLUSHALL): wakes every waiting waiter, in the order they
  // blocked.
  void notify_all();
  // Moves a waiting waiter to attempting without waking it (a timer fired); false if it is not
  // waiting (an attempt is already in flight, or it is gone).
  bool take(uint64_t sequence);
  // As take(), for a periodic retry (a cluster machine's 100 ms recheck): a waiter retries
  // (kTaken) unless, on each of its keys, a waiter of the same queue blocked before it (kLater):
  // that one retries, and when it is served it wakes the next. So retries keep the
  // first-blocked, first-served order, and idle waiters of one queue cost one retry per
  // interval, not one each.
  enum class Recheck { kTaken, kLater, kNotWaiting };
  Recheck take_for_recheck(uint64_t sequence);
  // After an attempt that found nothing: queues the waiter again in its place. False when one of
  // its keys was notified during the attempt: it stays attempting and must attempt again.
  bool rearm(uint64_t sequence);
  // Forgets a waiter (served, timed out, or its client went away).
  void remove(uint64_t sequence);

  size_t size() const;

 private:
  struct Waiter {
    std::vector<std::string> keys;
    Wake wake;
    bool attempting = false;
    std::vector<uint64_t> epochs;  // of `keys`, when the attempt began
    std::string queue;
  };
  struct KeyState {
    std::set<uint64_t> waiting;  // sequence numbers, first blocked first
    uint64_t epoch = 0;          // notifications of this key while it had waiters
    std::set<uint64_t> members;  // waiters naming this key, waiting or attempting
  };

  // REQUIRES: mutex_ held. Takes `waiter` out of its keys' queues and records their epochs.
  void start_attempt(uint64_t sequence, Waiter& waiter);

  mutable std::mutex mutex_;
  uint64_t next_sequence_ = 1;
  std::map<uint64_t, Waiter> waiters_;
  std::unordered_map<std::string, KeyState> keys_;
  std::atomic<uint64_t> notifications_{0};
  std::atomic<size_t> count_{0};  // waiters_.size(), read without the lock by notify()
};

}  // namespace cairn::server
