// Clocks: a monotonic clock for measuring, a wall clock for logs. Thread-safe.
#pragma once

#include <cstdint>

namespace pocket {

// Monotonic nanoseconds since an arbitrary epoch.
uint64_t MonotonicNs();
// Seconds since the Unix epoch, with sub-second precision.
double WallSeconds();

}  // namespace pocket
