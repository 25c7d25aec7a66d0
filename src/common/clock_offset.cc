#include "common/clock_offset.h"

#include <algorithm>
#include <cstdlib>

namespace cairn {

bool ClockOffset::observe(const ClockOffsetSample& sample) {
  const int64_t round_trip = std::max<int64_t>(0, sample.round_trip_ms);
  offset_ms_ = sample.reference_ms - (sample.sent_wall_ms + round_trip / 2);
  error_ms_ = round_trip / 2 + 1;
  ++samples_;
  if (max_offset_ms_ <= 0) return false;
  const int64_t distance = std::llabs(offset_ms_);
  const bool was_in_bound = in_bound_;
  if (in_bound_ && distance - error_ms_ > max_offset_ms_) in_bound_ = false;
  if (!in_bound_ && distance + error_ms_ <= max_offset_ms_) in_bound_ = true;
  return in_bound_ != was_in_bound;
}

}  // namespace cairn
