// Process memory accounting from /proc/self/status (Linux). Thread-safe.
#pragma once

#include <cstdint>

namespace pocket {

// Resident set size now and at its peak (VmRSS, VmHWM), in bytes; 0 when unknown.
uint64_t CurrentRssBytes();
uint64_t PeakRssBytes();
// Physical memory that could be allocated now (MemAvailable), in bytes; 0 when unknown.
uint64_t AvailableMemoryBytes();

}  // namespace pocket
