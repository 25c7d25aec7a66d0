#include "common/hlc.h"

#include <algorithm>

#include "common/clock.h"

namespace cairn {

HybridClock::HybridClock(WallClockMs wall_clock_ms) : wall_clock_ms_(std::move(wall_clock_ms)) {}
HybridClock::HybridClock() : HybridClock(wall_clock_ms) {}

HlcTimestamp HybridClock::now() {
  const HlcTimestamp physical = make(wall_clock_ms_(), 0);
  HlcTimestamp previous = last_.load(std::memory_order_acquire);
  HlcTimestamp next;
  do {
    // Either the wall clock moved past everything seen (counter restarts at 0), or we tick the
    // counter of the last timestamp; a full counter carries into the physical part.
    next = std::max(physical, previous + 1);
  } while (!last_.compare_exchange_weak(previous, next, std::memory_order_acq_rel));
  return next;
}

void HybridClock::observe(HlcTimestamp remote) {
  HlcTimestamp previous = last_.load(std::memory_order_acquire);
  while (remote > previous &&
         !last_.compare_exchange_weak(previous, remote, std::memory_order_acq_rel)) {
  }
}

}  // namespace cairn
