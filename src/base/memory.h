// Process memory accounting from /proc/self/status (Linux), the Platform's available memory
// and cache size as free functions, and large allocations. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pocket {

// Resident set size now and at its peak (VmRSS, VmHWM), in bytes; 0 when unknown.
uint64_t CurrentRssBytes();
uint64_t PeakRssBytes();
// Physical memory that could be allocated now, in bytes; 0 when unknown:
// Platform::Default().available_memory_bytes() (the host's MemAvailable, or an injected
// profile's figure).
uint64_t AvailableMemoryBytes();

// Size of the CPU's last-level cache (L3, else L2), in bytes; 0 when unknown:
// Platform::Default().last_level_cache_bytes() (the host's from the kernel's sysfs cache
// topology of cpu0, else glibc's sysconf; on a VM the host's cache, shared with its other
// tenants). Kept for callers not yet handed a Platform (model/llama.cc).
uint64_t LastLevelCacheBytes();

// For large buffers that are streamed again and again (repacked weights): from 2 MiB up,
// 2 MiB-aligned and advised as transparent huge pages (madvise MADV_HUGEPAGE), which
// spares a TLB miss per 4 KiB when a decode step streams hundreds of MiB (1B-shaped Q4_0
// decode, one thread: 15 -> 22 tok/s). 64-byte aligned below that. Uninitialised; pages
// become resident when touched. Null when out of memory. Free with FreeLarge.
void* AllocateLarge(size_t bytes);
void FreeLarge(void* p);

}  // namespace pocket
