#pragma once
// Wall-clock and monotonic time in milliseconds. Pure modules never call these: they take time
// as an argument, so tests and simulations can drive them.

#include <cstdint>

namespace cairn {

// Milliseconds since the Unix epoch (CLOCK_REALTIME).
int64_t wall_clock_ms();
// Microseconds since the Unix epoch (CLOCK_REALTIME).
int64_t wall_clock_us();
// Milliseconds from an arbitrary origin that never goes backwards (CLOCK_MONOTONIC).
int64_t monotonic_ms();

}  // namespace cairn
