#pragma once
// Hybrid logical clock (docs/architecture.md). A timestamp is 64 bits: the high 48 are wall-clock
// milliseconds since the Unix epoch, the low 16 a counter that orders events within one
// millisecond. Invariants:
//  1. now() returns strictly increasing values, even if the wall clock goes backwards.
//  2. After observe(t), every later now() is greater than t.
//  3. If the counter would overflow within one millisecond, the physical part advances by one.

#include <atomic>
#include <cstdint>
#include <functional>

namespace cairn {

using HlcTimestamp = uint64_t;

class HybridClock {
 public:
  using WallClockMs = std::function<int64_t()>;

  // `wall_clock_ms` is read on every now(); tests pass a fake clock.
  explicit HybridClock(WallClockMs wall_clock_ms);
  HybridClock();

  // A timestamp later than every timestamp returned or observed before. Thread-safe.
  HlcTimestamp now();
  // Records a timestamp received from elsewhere so later now() results exceed it. Thread-safe.
  void observe(HlcTimestamp remote);
  // The largest timestamp returned or observed so far.
  HlcTimestamp last() const { return last_.load(std::memory_order_acquire); }

  static constexpr HlcTimestamp make(int64_t physical_ms, uint16_t logical) {
    return (static_cast<uint64_t>(physical_ms) << 16) | logical;
  }
  static constexpr int64_t physical_ms(HlcTimestamp t) { return static_cast<int64_t>(t >> 16); }
  static constexpr uint16_t logical(HlcTimestamp t) { return static_cast<uint16_t>(t & 0xffff); }

 private:
  WallClockMs wall_clock_ms_;
  std::atomic<HlcTimestamp> last_{0};
};

}  // namespace cairn
