#pragma once
// ClockOffset: how far this machine's wall clock is from a reference clock (the orchestrator's),
// estimated from request/answer pairs as NTP does, and whether it is within a bound.
//
// A sample is one exchange: this machine read its wall clock `sent_wall_ms` as it sent, the
// reference stamped its answer with its own wall clock `reference_ms`, and the answer arrived
// `round_trip_ms` later (measured on the monotonic clock, which a wall-clock step cannot move).
// The reference read its clock somewhere within the round trip, so
//     offset = reference_ms - (sent_wall_ms + round_trip_ms / 2)     (positive: we are behind)
// is right to within error = round_trip_ms / 2 (+1 ms for millisecond rounding).
//
// The verdict has hysteresis on the error: a clock is declared out of bound only when even the
// most favourable reading of the sample is out (|offset| - error > max), and back in bound only
// when even the least favourable one is in (|offset| + error <= max). A slow answer (a large
// error) therefore changes nothing, in either direction. Pure: time comes in as arguments.

#include <cstdint>

namespace cairn {

struct ClockOffsetSample {
  int64_t sent_wall_ms = 0;   // this machine's wall clock when the request left
  int64_t round_trip_ms = 0;  // monotonic time from send to answer
  int64_t reference_ms = 0;   // the reference's wall clock in its answer
};

class ClockOffset {
 public:
  // max_offset_ms 0 turns the bound off: the clock is always in bound.
  explicit ClockOffset(int64_t max_offset_ms) : max_offset_ms_(max_offset_ms) {}

  // Takes one sample; returns whether the verdict changed.
  bool observe(const ClockOffsetSample& sample);

  bool measured() const { return samples_ > 0; }
  bool in_bound() const { return in_bound_; }
  int64_t offset_ms() const { return offset_ms_; }  // of the latest sample
  int64_t error_ms() const { return error_ms_; }    // of the latest sample
  int64_t max_offset_ms() const { return max_offset_ms_; }
  uint64_t samples() const { return samples_; }

 private:
  int64_t max_offset_ms_;
  bool in_bound_ = true;  // until a sample says otherwise
  int64_t offset_ms_ = 0;
  int64_t error_ms_ = 0;
  uint64_t samples_ = 0;
};

}  // namespace cairn
